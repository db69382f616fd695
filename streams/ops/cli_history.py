"""``mall-notify history``: what was sent to one person (a phone number or an openid), from the
send log in PostgreSQL, found by the recipient's keyed hash."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from streams.core.history import HistoryLine
from streams.ops.cli_common import (
    ExitCode,
    JsonOption,
    console,
    database_url,
    fail,
    load_cli_settings,
    print_json,
    table,
)
from streams.ops.cli_dlq import Since, parse_when
from streams.ops.recipient_history import read_recipient_history, recipient_query
from streams.runtime.database import DatabaseUnavailable
from streams.settings import Settings


def recipient_key(settings: Settings) -> bytes:
    if settings.recipient_key is None:
        raise fail(
            "MALL_NOTIFY_RECIPIENT_KEY is not set: outcomes name recipients by a hash keyed with it, "
            "so without it there is no history to search",
            ExitCode.CONFIG,
        )
    return settings.recipient_key.get_secret_value().encode()


def history_command(
    phone: Annotated[str | None, typer.Option(help="the person's phone number")] = None,
    openid: Annotated[str | None, typer.Option(help="the person's WeChat openid (OA or MP)")] = None,
    shop: Annotated[int | None, typer.Option(help="only this shop")] = None,
    since: Since = None,
    as_json: JsonOption = False,
) -> None:
    """What was sent to one person, newest first (the newest 200): time, shop, scene, channel,
    outcome, receipt."""
    if (phone is None) == (openid is None):
        raise fail("give one of --phone or --openid")
    settings = load_cli_settings()
    try:
        query = recipient_query(recipient_key(settings), phone, openid, shop, parse_when(since))
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        lines = read_recipient_history(database_url(settings), query)
    except DatabaseUnavailable as exc:
        raise fail(str(exc), ExitCode.UNREACHABLE) from None
    if as_json:
        print_json([line.model_dump(mode="json") for line in lines])
        return
    console.print(history_table(lines, f"{len(lines)} messages"))


def history_table(lines: list[HistoryLine], title: str) -> Table:
    rows = table("time", "shop", "scene", "channel", "to", "outcome", "receipt", "reason", title=title)
    for line in lines:
        rows.add_row(
            line.at.isoformat(timespec="seconds"),
            str(line.shop_id or ""),
            line.scene or "",
            line.channel or "",
            line.recipient,
            line.status.value,
            line.receipt or "",
            escape(line.receipt_reason or line.reason or ""),
        )
    return rows
