"""A merchant's papers for its SMS signatures, from the command line (the platform's commands):
``mall-notify sms qualification phone-code|submit|status`` and ``sms letter create|show``.

The qualification's file holds the company's and the people's details (ID numbers, the
administrator's phone): they go to Aliyun and nowhere else; the shop's settings keep the
company, Aliyun's id and the review's state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import orjson
import typer
from pydantic import BaseModel, SecretStr, ValidationError

from channels.aliyun_review import AliyunSmsReview, LetterForm, QualificationForm
from channels.aliyun_sms import AliyunCallFailed
from streams.core.catalog import Catalog
from streams.core.errors import ConfigError
from streams.core.shops import AuthorizationLetter, Qualification, ShopRules
from streams.core.validation import problems
from streams.ops import sms_reviews
from streams.ops.cli_common import ExitCode, JsonOption, console, fail, load_cli_settings, print_json
from streams.ops.cli_settings import catalog_of, shop_of
from streams.ops.cli_sms_changes import change_shop, review_client
from streams.settings import Settings

qualification_app = typer.Typer(
    help="The merchant's company qualification (资质) for its SMS signatures.", no_args_is_help=True
)
letter_app = typer.Typer(
    help="The merchant's authorization letter (授权委托书) for its SMS signatures.", no_args_is_help=True
)
ShopArgument = Annotated[int, typer.Argument(help="shop id", min=1)]
FileOption = Annotated[Path, typer.Option("--file", help="a JSON document (see docs/OPERATIONS.md)")]
FormT = TypeVar("FormT", bound=BaseModel)


def _form(path: Path, model: type[FormT]) -> FormT:
    try:
        return model.model_validate(orjson.loads(path.read_bytes()))
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}", ExitCode.USAGE) from None
    except orjson.JSONDecodeError as exc:
        raise fail(f"{path} is not JSON: {exc}", ExitCode.USAGE) from None
    except ValidationError as exc:
        raise fail(str(ConfigError(str(path), problems(exc))), ExitCode.CONFIG) from None


@qualification_app.command("phone-code")
def phone_code(
    phone: Annotated[str, typer.Option(help="the company's SMS administrator's mobile number")],
) -> None:
    """Have Aliyun text the administrator the code their qualification is submitted with
    (RequiredPhoneCode); it goes into the file's certify_code."""
    settings = load_cli_settings()
    try:
        asyncio.run(review_client(settings).send_phone_code(SecretStr(phone)))
    except AliyunCallFailed as exc:
        raise fail(f"Aliyun: {exc.result.code}: {exc.result.reason}", ExitCode.FAILED) from None
    console.print(f"Aliyun sent a code to the phone ending {phone[-4:]}", markup=False)


Paper = Qualification | AuthorizationLetter


def _submitted(
    shop_id: int,
    call: Callable[[ShopRules, AliyunSmsReview], Awaitable[ShopRules]],
    action: str,
    part: Literal["qualification", "letter"],
) -> Paper | None:
    """Run ``call`` on the shop's settings with Aliyun, save them: the paper it made."""

    async def change(settings: Settings, shop: ShopRules, _: Catalog) -> ShopRules:
        return await call(shop, review_client(settings))

    changed = change_shop(shop_id, change, action)
    paper: Paper | None = getattr(changed.sms, part) if changed.sms else None
    return paper


def _paper(shop_id: int, part: Literal["qualification", "letter"], as_json: bool) -> Paper | None:
    """The shop's paper (one line and exit 1 without it); None when it was printed as JSON."""
    settings = load_cli_settings()
    shop = shop_of(settings, shop_id, catalog_of(settings))
    paper: Paper | None = getattr(shop.sms, part) if shop.sms else None
    if paper is None:
        hint = "sms qualification submit" if part == "qualification" else "sms letter create"
        raise fail(
            f"shop {shop_id} has no {part.replace('letter', 'authorization letter')} ({hint})",
            ExitCode.FAILED,
        )
    if as_json:
        print_json(paper.model_dump(mode="json"))
        return None
    return paper


@qualification_app.command("submit")
def qualification_submit(shop_id: ShopArgument, file: FileOption) -> None:
    """Submit the merchant's company to Aliyun for third-party use (SubmitSmsQualification)."""
    form = _form(file, QualificationForm)
    kept = _submitted(
        shop_id,
        lambda shop, aliyun: sms_reviews.submit_qualification(shop, form, aliyun, datetime.now(UTC)),
        f"sms qualification submit {form.qualification_name}",
        "qualification",
    )
    if isinstance(kept, Qualification):
        console.print(
            f"shop {shop_id}: qualification {kept.name} ({kept.company_name}) submitted, Aliyun's id "
            f"{kept.qualification_id}: Aliyun reviews it next",
            markup=False,
        )


@qualification_app.command("status")
def qualification_status(shop_id: ShopArgument, as_json: JsonOption = False) -> None:
    """The shop's qualification and Aliyun's review of it (the worker's poller follows it)."""
    kept = _paper(shop_id, "qualification", as_json)
    if isinstance(kept, Qualification):
        reason = f": {kept.reason}" if kept.reason else ""
        console.print(
            f"shop {shop_id}: qualification {kept.name} ({kept.company_name}, {kept.organization_code}), "
            f"Aliyun's id {kept.qualification_id}: {kept.status}{reason}",
            markup=False,
        )


@letter_app.command("create")
def letter_create(shop_id: ShopArgument, file: FileOption) -> None:
    """Create the merchant's authorization letter for the signatures it names
    (CreateSmsAuthorizationLetter), from the company of its qualification."""
    form = _form(file, LetterForm)
    letter = _submitted(
        shop_id,
        lambda shop, aliyun: sms_reviews.create_letter(shop, form, aliyun, datetime.now(UTC)),
        f"sms letter create {form.name}",
        "letter",
    )
    if isinstance(letter, AuthorizationLetter):
        console.print(
            f"shop {shop_id}: letter {letter.name} (Aliyun's id {letter.letter_id}) covers "
            f"{', '.join(letter.signatures)} until {letter.valid_until}",
            markup=False,
        )


@letter_app.command("show")
def letter_show(shop_id: ShopArgument, as_json: JsonOption = False) -> None:
    """The shop's authorization letter."""
    letter = _paper(shop_id, "letter", as_json)
    if isinstance(letter, AuthorizationLetter):
        console.print(
            f"shop {shop_id}: letter {letter.name} (Aliyun's id {letter.letter_id}) covers "
            f"{', '.join(letter.signatures)} from {letter.valid_from} to {letter.valid_until}",
            markup=False,
        )
