"""The send-log part of ``make demo``: the run's outcomes as the shop's send log in PostgreSQL
shows them (``mall-notify messages``), once the send-log lane has written them."""

from __future__ import annotations

import time
from datetime import datetime

from rich.console import Console

from streams.core.send_log import MessageQuery, page_of
from streams.ops.cli_messages import messages_table
from streams.runtime.database import DatabaseUnavailable, connect, fetch, messages_statement
from streams.settings import Settings

WAIT_SECONDS = 20.0
SHOWN = 5


def print_send_log(
    console: Console, settings: Settings, shop_id: int, began: datetime, expected: int
) -> None:
    """The newest rows of the shop's send log since ``began``, once ``expected`` are there."""
    if settings.database_url is None:
        console.print("send log: no database (MALL_NOTIFY_DATABASE_URL), nothing stored")
        return
    statement = messages_statement(MessageQuery(shop_id=shop_id, since=began, limit=200))
    deadline = time.monotonic() + WAIT_SECONDS
    try:
        with connect(settings.database_url.get_secret_value()) as conn:
            while len(rows := fetch(conn, statement)) < expected and time.monotonic() < deadline:
                time.sleep(0.5)
    except DatabaseUnavailable as exc:
        console.print(f"send log: {exc}", markup=False, highlight=False)
        return
    page = page_of(rows, len(rows))
    console.print(
        f"[bold]send log[/] (PostgreSQL, `mall-notify messages {shop_id}`): {len(page.messages)} rows of "
        f"shop {shop_id} for this run, the newest {min(SHOWN, len(page.messages))}:"
    )
    console.print(messages_table(page.messages[:SHOWN]))
