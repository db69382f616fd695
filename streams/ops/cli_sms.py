"""The SMS business from the command line: ``mall-notify sms packages|buy|pay|balance|spend|purchases``,
``sms package create|price|retire``, ``sms qualification phone-code|submit|status``,
``sms letter create|show``,
``sms signatures apply|review|activate|list`` and ``sms templates submit|list``.

These are the platform operator's commands (the admin API gives shops the same, each its own);
they read and write the account topic as the workers do.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Annotated

import typer
from pydantic import ValidationError

from streams.core.catalog import Catalog
from streams.core.errors import ConfigError
from streams.core.send_log import spend_of, spend_since
from streams.core.shops import ShopRules, SmsTemplate
from streams.core.sms_quota import (
    AccountBook,
    Payment,
    PaymentRefused,
    new_purchase,
    purchase_record,
)
from streams.core.sms_signatures import activate_signature, review_signature
from streams.core.validation import problems
from streams.ops import sms_reviews
from streams.ops.cli_common import (
    ExitCode,
    JsonOption,
    console,
    database_url,
    fail,
    kafka_topic,
    load_cli_settings,
    print_json,
    table,
)
from streams.ops.cli_settings import catalog_of, settings_topic, shop_of
from streams.ops.cli_sms_changes import change_shop, review_client
from streams.ops.cli_sms_onboarding import letter_app, qualification_app
from streams.ops.cli_sms_packages import package_app, packages_of
from streams.ops.reading import read_all
from streams.ops.shop_store import publish_payment, publish_purchases, read_shops
from streams.runtime.database import DatabaseUnavailable, connect, fetch, spend_statement
from streams.settings import Settings

sms_app = typer.Typer(help="SMS packages, balances, signatures and templates.", no_args_is_help=True)
ShopArgument = Annotated[int, typer.Argument(help="shop id", min=1)]
READ_TIMEOUT_SECONDS = 60.0


def _account(settings: Settings) -> tuple[str, str]:
    return kafka_topic(settings, attrgetter("sms_account"))


def _book(settings: Settings) -> AccountBook:
    book = AccountBook()
    for record in read_all(*_account(settings), timeout=READ_TIMEOUT_SECONDS):
        book.apply(record.key, record.value)
    return book


def yuan(fen: int) -> str:
    return f"¥{fen / 100:.2f}"


@sms_app.command("packages")
def packages(as_json: JsonOption = False) -> None:
    """The SMS packages the platform sells."""
    offered = packages_of(load_cli_settings())
    if as_json:
        print_json([package.model_dump() for package in offered.values()])
        return
    rows = table("id", "name", "messages", "price")
    for package in offered.values():
        rows.add_row(package.id, package.name, str(package.messages), yuan(package.price_fen))
    console.print(rows)


@sms_app.command("buy")
def buy(
    shop_id: ShopArgument,
    package: Annotated[str, typer.Option("--package", help="package id, see `mall-notify sms packages`")],
    paid: Annotated[
        str | None,
        typer.Option(
            "--paid", help="the order is already paid offline: the reason, e.g. the transfer's reference"
        ),
    ] = None,
) -> None:
    """Order a package for a shop: pending until its payment is confirmed (`sms pay`, or `--paid`
    now), its messages credited then; the trial package once per shop."""
    settings = load_cli_settings()
    offered = packages_of(settings).get(package)
    if offered is None:
        known = ", ".join(packages_of(settings))
        raise fail(f"--package: no package {package!r} (packages: {known})")
    if paid is not None and not 1 <= len(paid) <= 200:
        raise fail("--paid: 1 to 200 characters")
    bootstrap, topic = _account(settings)
    book, now = _book(settings), datetime.now(UTC)
    refused = book.purchase_refusal(shop_id, offered.id, now)
    if refused is not None:
        raise fail(refused, ExitCode.FAILED)
    purchase = new_purchase(shop_id, offered, _operator(), now)
    try:
        publish_purchases(bootstrap, topic, [purchase])
    except RuntimeError:
        raise fail(
            "Kafka did not acknowledge the purchase; nothing was ordered", ExitCode.UNREACHABLE
        ) from None
    console.print(
        f"shop {shop_id} ordered {offered.name} ({offered.messages} messages, {yuan(offered.price_fen)}): "
        f"purchase {purchase.purchase_id}",
        markup=False,
    )
    if paid is None:
        console.print(
            f"pending until paid; confirm its payment with `mall-notify sms pay {shop_id} "
            f"{purchase.purchase_id} --reason ...`",
            markup=False,
        )
        return
    book.apply(*purchase_record(purchase))  # read your own write
    _confirm(settings, _payment(book.pay(shop_id, purchase.purchase_id, _operator(), paid, now)))


def _operator() -> str:
    return f"platform:{getpass.getuser()}"[:64]


def _payment(paid: Payment | PaymentRefused) -> Payment:
    if isinstance(paid, PaymentRefused):
        raise fail(paid.detail, ExitCode.FAILED)
    return paid


def _confirm(settings: Settings, payment: Payment) -> None:
    bootstrap, topic = _account(settings)
    try:
        publish_payment(bootstrap, topic, payment)
    except RuntimeError:
        raise fail(
            "Kafka did not acknowledge the payment; nothing was credited", ExitCode.UNREACHABLE
        ) from None
    available = _book(settings).balance(payment.shop_id).available
    console.print(
        f"shop {payment.shop_id}: purchase {payment.purchase_id} paid ({payment.reason}); "
        f"balance: {available} messages",
        markup=False,
    )


@sms_app.command("pay")
def pay(
    shop_id: ShopArgument,
    purchase_id: Annotated[str, typer.Argument(help="the purchase, see `mall-notify sms purchases`")],
    reason: Annotated[str, typer.Option("--reason", help="how it was paid: the transfer's reference, say")],
) -> None:
    """The platform confirms a purchase order's offline payment: the shop's balance is credited
    (once, however often it is confirmed)."""
    settings = load_cli_settings()
    if not 1 <= len(reason) <= 200:
        raise fail("--reason: 1 to 200 characters")
    payment = _book(settings).pay(shop_id, purchase_id, _operator(), reason, datetime.now(UTC))
    _confirm(settings, _payment(payment))


@sms_app.command("balance")
def balance(shop_id: ShopArgument, as_json: JsonOption = False) -> None:
    """A shop's SMS balance: bought, used (segments sent), and SMS not sent for lack of balance."""
    account = _book(load_cli_settings()).balance(shop_id)
    if as_json:
        print_json(account.model_dump(exclude={"reserved"}))
        return
    rows = table("shop", "bought", "used", "available", "SMS sent", "not sent: balance used up")
    rows.add_row(
        str(shop_id),
        str(account.purchased),
        str(account.used),
        str(account.available),
        str(account.sent),
        str(account.refused),
    )
    console.print(rows)


@sms_app.command("spend")
def spend(
    shop_id: ShopArgument,
    days: Annotated[int, typer.Option(help="days up to today, in the mall's time (at most 90)")] = 7,
    as_json: JsonOption = False,
) -> None:
    """A shop's SMS balance, and the SMS it sent each day (from the send log): what to reconcile
    its spend against."""
    settings, now = load_cli_settings(), datetime.now(UTC)
    try:
        since = spend_since(now, days)
    except ValueError as exc:
        raise fail(f"--{exc}") from None
    try:
        with connect(database_url(settings)) as conn:
            rows = fetch(conn, spend_statement(shop_id, since))
    except DatabaseUnavailable as exc:
        raise fail(str(exc), ExitCode.UNREACHABLE) from None
    sent = spend_of(_book(settings).balance(shop_id), rows, since, now)
    if as_json:
        print_json(sent.model_dump(mode="json"))
        return
    account = sent.balance
    title = f"shop {shop_id}: {account.available} segments available of {account.purchased} bought"
    rows_shown = table("day", "SMS delivered", "segments", title=title)
    for day in sent.days:
        rows_shown.add_row(day.day.isoformat(), str(day.messages), str(day.segments))
    console.print(rows_shown)


@sms_app.command("purchases")
def purchases(shop_id: ShopArgument, as_json: JsonOption = False) -> None:
    """A shop's purchase orders, oldest first: when, which package, how many messages, who, and
    whether it is paid, pending or expired."""
    orders = _book(load_cli_settings()).orders(shop_id, datetime.now(UTC))
    if as_json:
        print_json([order.model_dump(mode="json") for order in orders])
        return
    title = f"shop {shop_id}: {len(orders)} purchases"
    rows = table("time", "purchase", "package", "messages", "price", "who", "status", title=title)
    for order in orders:
        rows.add_row(
            order.at.isoformat(timespec="seconds"),
            order.purchase_id,
            order.package,
            str(order.messages),
            yuan(order.price_fen),
            order.who,
            order.status if order.payment is None else f"paid ({order.payment.reason})",
        )
    console.print(rows)


signatures_app = typer.Typer(help="SMS signatures: apply, review, activate, list.", no_args_is_help=True)
templates_app = typer.Typer(help="SMS templates: submit to Aliyun, list with reviews.", no_args_is_help=True)
sms_app.add_typer(signatures_app, name="signatures")
sms_app.add_typer(templates_app, name="templates")
sms_app.add_typer(qualification_app, name="qualification")
sms_app.add_typer(letter_app, name="letter")
sms_app.add_typer(package_app, name="package")
NameArgument = Annotated[str, typer.Argument(help="the signature, e.g. 百客商城")]


@signatures_app.command("apply")
def signature_apply(shop_id: ShopArgument, name: NameArgument) -> None:
    """The shop applies for a signature (at most 10); the platform reviews it next."""

    async def change(settings: Settings, shop: ShopRules, catalog: Catalog) -> ShopRules:
        others = read_shops(*settings_topic(settings), catalog).values()
        return sms_reviews.apply(shop, name, others, datetime.now(UTC))

    change_shop(
        shop_id,
        change,
        f"sms signatures apply {name}",
        f"shop {shop_id} applied for signature {name}: the platform reviews it next",
    )


@signatures_app.command("review")
def signature_review(
    shop_id: ShopArgument,
    name: NameArgument,
    approve: Annotated[bool, typer.Option("--approve/--reject", help="the platform's decision")],
    reason: Annotated[str | None, typer.Option(help="why it is rejected (required with --reject)")] = None,
) -> None:
    """The platform's review: --approve submits it to Aliyun (CreateSmsSign, with the shop's
    qualification and authorization letter); --reject needs --reason."""

    async def change(settings: Settings, shop: ShopRules, _: Catalog) -> ShopRules:
        now = datetime.now(UTC)
        if approve:
            return await sms_reviews.review(shop, name, True, reason, review_client(settings), now)
        return review_signature(shop, name, False, reason, now)

    outcome = "submitted to Aliyun for its review" if approve else "rejected"
    change_shop(
        shop_id, change, f"sms signatures review {name}", f"signature {name} of shop {shop_id}: {outcome}"
    )


@signatures_app.command("activate")
def signature_activate(shop_id: ShopArgument, name: NameArgument) -> None:
    """Send the shop's SMS with this approved signature."""

    async def change(_: Settings, shop: ShopRules, __: Catalog) -> ShopRules:
        return activate_signature(shop, name)

    change_shop(
        shop_id,
        change,
        f"sms signatures activate {name}",
        f"shop {shop_id} now sends its SMS signed 【{name}】",
    )


def _shop(shop_id: int) -> ShopRules:
    settings = load_cli_settings()
    return shop_of(settings, shop_id, catalog_of(settings))


@signatures_app.command("list")
def signature_list(shop_id: ShopArgument, as_json: JsonOption = False) -> None:
    """The shop's signatures with their review (Aliyun's reviews take effect by themselves)."""
    shop = _shop(shop_id)
    signatures = shop.sms.signatures if shop.sms else []
    active = shop.sms.active if shop.sms else None
    if as_json:
        print_json({"active": active, "signatures": [s.model_dump(mode="json") for s in signatures]})
        return
    rows = table("signature", "status", "active", "reason", "applied", title=f"shop {shop_id}: signatures")
    for signature in signatures:
        applied = signature.applied_at.isoformat(timespec="seconds") if signature.applied_at else ""
        is_active = "yes" if signature.name == active else ""
        rows.add_row(signature.name, signature.status, is_active, signature.reason or "", applied)
    console.print(rows)


@templates_app.command("submit")
def template_submit(
    shop_id: ShopArgument,
    scene: Annotated[str, typer.Option(help="the scene it is sent for, see `mall-notify catalog`")],
    name: Annotated[str, typer.Option(help="the template's name")],
    content: Annotated[str, typer.Option(help="the text, with ${variables} of the scene")],
    enabled: Annotated[bool, typer.Option("--enabled/--disabled", help="send it once approved")] = True,
) -> None:
    """Check a new SMS template, submit it to Aliyun (CreateSmsTemplate, related to the shop's
    active signature) and save it in review."""

    async def change(settings: Settings, shop: ShopRules, catalog: Catalog) -> ShopRules:
        try:
            code = sms_reviews.PLACEHOLDER_CODE
            draft = SmsTemplate(name=name, scene=scene, template_code=code, content=content, enabled=enabled)
        except ValidationError as exc:
            raise ConfigError("the template", problems(exc)) from None
        return await sms_reviews.submit_template(shop, catalog, draft, review_client(settings))

    changed = change_shop(
        shop_id,
        change,
        f"sms templates submit {name}",
        f"template {name} submitted to Aliyun: it is sent once approved",
    )
    console.print(f"its code: {changed.sms_templates[-1].template_code}", markup=False)


@templates_app.command("list")
def template_list(shop_id: ShopArgument, as_json: JsonOption = False) -> None:
    """The shop's SMS templates with Aliyun's review."""
    templates = _shop(shop_id).sms_templates
    if as_json:
        print_json([template.model_dump(mode="json") for template in templates])
        return
    rows = table("code", "name", "scene", "status", "enabled", "content", "reason")
    for t in templates:
        rows.add_row(
            t.template_code, t.name, t.scene, t.status, "yes" if t.enabled else "", t.content, t.reason or ""
        )
    console.print(rows)
