"""``mall-notify preferences set``: what a buyer refuses, for one shop or (``--platform``) every shop,
for the platform's operator; published as a ``preferences.changed`` event on the mall's topic for
them, as the mall and the admin API publish it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError

from channels.base import ChannelName
from streams.core.buyer_choices import (
    CATEGORY_BITS,
    CHANNEL_BITS,
    NO_QUIET_HOURS,
    PREFERENCES_TYPE,
    BuyerChoices,
    Choices,
    buyer_choices,
    choices_summary,
    preferences_event,
    refusal,
)
from streams.core.events import BuyerQuietHours, PreferencesChanged
from streams.core.render_plan import Skip
from streams.core.routing import Routing
from streams.core.validation import describe
from streams.ops.cli_common import (
    ExitCode,
    JsonOption,
    console,
    database_url,
    fail,
    kafka_topic,
    load_cli_settings,
    print_json,
)
from streams.ops.shop_store import publish_records
from streams.runtime.database import DatabaseUnavailable, choices_statement, connect, fetch
from streams.settings import Settings

CATEGORIES = tuple(CATEGORY_BITS)
CHANNELS = tuple(channel.value for channel in CHANNEL_BITS)
preferences_app = typer.Typer(help="Buyers' preferences: what a buyer refuses.", no_args_is_help=True)


@preferences_app.command("set")
def set_preferences(
    shop_id: Annotated[int, typer.Argument(help="the shop the buyer said it in", min=1)],
    user_id: Annotated[str, typer.Argument(help="the buyer: the mall's user id")],
    off: Annotated[
        list[str] | None,
        typer.Option(
            "--off",
            help="a category (transactional, marketing) or channel (wechat_oa, "
            "wechat_mp, aliyun_sms) the buyer refuses; repeat it; none: everything on",
        ),
    ] = None,
    platform: Annotated[bool, typer.Option("--platform", help="for every shop of the mall")] = False,
    quiet_hours: Annotated[
        str | None,
        typer.Option(
            "--quiet-hours",
            help="the buyer's own quiet hours, START-END in the shop's time zone (23:00-07:00), or "
            "none (never held); without it: the shop's",
        ),
    ] = None,
) -> None:
    """Replace what a buyer refuses in one scope (security notices always go out)."""
    settings = load_cli_settings()
    refused = off or []
    for name in refused:
        if name == "security":
            raise fail(
                "--off security: security notices (verification codes) cannot be refused", ExitCode.CONFIG
            )
        if name not in CATEGORIES + CHANNELS:
            known = f"a category ({', '.join(CATEGORIES)}) nor a channel ({', '.join(CHANNELS)})"
            raise fail(f"--off {name}: neither {known}", ExitCode.CONFIG)
    said = {
        "user_id": user_id,
        "scope": "platform" if platform else "shop",
        "categories_off": [name for name in refused if name in CATEGORIES],
        "channels_off": [name for name in refused if name in CHANNELS],
        "quiet_hours": _window(quiet_hours),
        "changed_at": datetime.now(UTC).isoformat(),
    }
    try:
        changed = PreferencesChanged.model_validate(said)
    except ValidationError as exc:
        raise fail(describe(exc), ExitCode.CONFIG) from None
    bootstrap, topic = kafka_topic(settings, lambda topics: topics.event_topic_for(PREFERENCES_TYPE) or "")
    event_id, event = preferences_event(shop_id, changed, "/mall-notify/cli")
    try:
        publish_records(bootstrap, topic, [(user_id.encode(), event)], "preferences")
    except RuntimeError as exc:
        raise fail(str(exc), ExitCode.UNREACHABLE) from None
    console.print(f"{event_id}: {choices_summary(changed, shop_id)}")


def _window(said: str | None) -> str | dict[str, str] | None:
    """``--quiet-hours`` as the event says it."""
    if said is None or said == NO_QUIET_HOURS:
        return said
    start, dash, end = said.partition("-")
    if not dash:
        raise fail(f"--quiet-hours {said}: write START-END (23:00-07:00) or none", ExitCode.CONFIG)
    try:
        return BuyerQuietHours(start=start, end=end).model_dump()
    except ValidationError as exc:
        raise fail(f"--quiet-hours {said}: {describe(exc)}", ExitCode.CONFIG) from None


@preferences_app.command("show")
def show_preferences(
    shop_id: Annotated[int, typer.Argument(help="the shop", min=1)],
    user_id: Annotated[str, typer.Argument(help="the buyer: the mall's user id")],
    as_json: JsonOption = False,
) -> None:
    """What a buyer refuses in a shop and in every shop (from the send log's database)."""
    [choices] = _read_choices(load_cli_settings(), shop_id, [user_id]).values()
    if as_json:
        print_json(choices.model_dump(mode="json"))
        return
    for scope, said in (("this shop", choices.shop), ("every shop", choices.platform)):
        refused = ", ".join([*said.categories_off, *said.channels_off]) if said else ""
        when = f" (since {said.changed_at:%Y-%m-%d %H:%M})" if said else ""
        quiet = f"; quiet hours {said.quiet_hours}" if said and said.quiet_hours else ""
        shown = (refused + " off") if refused else "everything on"
        console.print(f"{user_id} in {scope}: {shown}{quiet}{when}", markup=False, highlight=False)


def with_buyers_choices(settings: Settings, routing: Routing, shop_id: int) -> Routing:
    """The routing with what its buyers refuse (as the send log's database keeps it) skipped, as
    the buyers lane would skip it: for ``explain --buyer``."""
    said = _read_choices(settings, shop_id, sorted({buyer.user_id for buyer in routing.buyers.values()}))
    sends, skips = [], list(routing.skips)
    for dispatch in routing.dispatches:
        buyer = routing.buyers.get(dispatch.scene)
        refused = _refused(said[buyer.user_id], buyer.category, dispatch.delivery.channel) if buyer else None
        if refused is None:
            sends.append(dispatch)
        else:
            skips.append(Skip(refused, dispatch.scene, dispatch.delivery.channel))
    return replace(routing, dispatches=sends, skips=skips)


def _refused(choices: BuyerChoices, category: str, channel: ChannelName) -> str | None:
    return refusal(category, channel, Choices.of(choices.shop), Choices.of(choices.platform))


def _read_choices(settings: Settings, shop_id: int, users: list[str]) -> dict[str, BuyerChoices]:
    try:
        with connect(database_url(settings)) as conn:
            return {
                user: buyer_choices(user, fetch(conn, choices_statement(user, shop_id))) for user in users
            }
    except DatabaseUnavailable as exc:
        raise fail(str(exc), ExitCode.UNREACHABLE) from None
