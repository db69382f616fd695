"""``mall-notify messages``: the send log (PostgreSQL), a shop's or every shop's, newest first; and
``mall-notify db migrate``: the send log's schema brought up to date."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from pydantic import ValidationError
from rich.table import Table

from channels.base import ChannelName
from streams.core.send_log import Message, MessageQuery, after_cursor, page_of
from streams.core.validation import describe
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
from streams.ops.cli_history import recipient_key
from streams.ops.recipient_history import recipient_filter
from streams.runtime.database import DatabaseUnavailable, connect, fetch, messages_statement, migrate
from streams.settings import Settings

db_app = typer.Typer(help="The send log's database (PostgreSQL).", no_args_is_help=True)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the migrations (migrations/*.sql) the database does not have yet."""
    url = database_url(load_cli_settings())
    try:
        with connect(url) as conn:
            applied = migrate(conn)
    except DatabaseUnavailable as exc:
        raise fail(str(exc), ExitCode.UNREACHABLE) from None
    console.print(f"applied {', '.join(map(str, applied))}" if applied else "the schema is up to date")


def messages_command(
    shop: Annotated[int | None, typer.Argument(help="the shop (default: every shop)")] = None,
    scene: Annotated[str | None, typer.Option(help="only this scene")] = None,
    channel: Annotated[ChannelName | None, typer.Option(help="only this channel")] = None,
    status: Annotated[
        Literal["delivered", "skipped", "dead_lettered"] | None, typer.Option(help="only this outcome")
    ] = None,
    phone: Annotated[str | None, typer.Option(help="only to this phone number")] = None,
    openid: Annotated[str | None, typer.Option(help="only to this openid")] = None,
    since: Since = None,
    limit: Annotated[int, typer.Option(help="messages per page (at most 200)")] = 50,
    cursor: Annotated[str | None, typer.Option(help="the next page, as the previous one ended")] = None,
    as_json: JsonOption = False,
) -> None:
    """The send log, newest first: what was sent (or not, and why), to whom (masked), reached or not."""
    settings = load_cli_settings()
    url = database_url(settings)
    try:
        query = MessageQuery(
            shop_id=shop,
            scene=scene,
            channel=channel,
            status=status,
            since=parse_when(since),
            recipient_hash=_recipient(settings, phone, openid),
            limit=limit,
            after=after_cursor(cursor) if cursor else None,
        )
    except ValidationError as exc:
        raise fail(describe(exc)) from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        with connect(url) as conn:
            page = page_of(fetch(conn, messages_statement(query)), query.limit)
    except DatabaseUnavailable as exc:
        raise fail(str(exc), ExitCode.UNREACHABLE) from None
    if as_json:
        print_json(page.model_dump(mode="json"))
        return
    rows = messages_table(page.messages)
    console.print(rows)
    if page.next:
        console.print(f"more: --cursor {page.next}", markup=False, highlight=False)


def messages_table(messages: list[Message]) -> Table:
    rows = table("finished", "shop", "scene", "channel", "to", "outcome", "reached", "reason")
    for message in messages:
        rows.add_row(
            message.finished_at.isoformat(timespec="seconds") if message.finished_at else "",
            str(message.shop_id or ""),
            message.scene or "",
            message.channel or "",
            message.to or "",
            message.status,
            "" if message.reached is None else "yes" if message.reached else "no",
            message.reason or "",
        )
    return rows


def _recipient(settings: Settings, phone: str | None, openid: str | None) -> str | None:
    if phone is None and openid is None:
        return None
    return recipient_filter(recipient_key(settings), phone, openid)
