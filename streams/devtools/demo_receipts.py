"""The receipts part of ``make demo``: the providers' receipts for the demo's deliveries (one of
them a user who blocked the Official Account), and what was sent to the demo buyer, as
``mall-notify history`` shows it."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape

from streams.core.outcomes import Outcome, Status
from streams.core.topics import Topics
from streams.ops.cli_history import history_table
from streams.ops.reading import ReadRecord, read_until
from streams.ops.recipient_history import read_recipient_history, recipient_query
from streams.runtime.database import DatabaseUnavailable
from streams.settings import Settings

DEMO_RECIPIENT_KEY = "demo-recipient-key-not-a-real-secret"
"""the demo's own key for the recipients' hashes (a real platform keeps its own secret)"""
RECEIPT_WAIT_SECONDS = 15.0
RECEIPTS = (Status.REACHED, Status.NOT_REACHED)


def wait_for_receipts(
    bootstrap: str, topics: Topics, start: dict[int, int], delivered: set[str]
) -> list[Outcome]:
    """The receipts of this run's delivered messages, once all came (or the wait is over)."""

    def receipts(records: list[ReadRecord]) -> list[Outcome]:
        outcomes = (Outcome.model_validate_json(record.value or b"") for record in records)
        return [o for o in outcomes if o.status in RECEIPTS and o.delivery_id in delivered]

    def complete(records: list[ReadRecord]) -> bool:
        return {o.delivery_id for o in receipts(records)} >= delivered

    return receipts(read_until(bootstrap, topics.outcomes, start, complete, RECEIPT_WAIT_SECONDS))


def print_receipts(console: Console, receipts: list[Outcome], delivered: int) -> None:
    reached = sum(1 for receipt in receipts if receipt.status is Status.REACHED)
    console.print(
        f"[bold]receipts[/]: {len(receipts)} of {delivered} delivered messages: {reached} reached, "
        f"{len(receipts) - reached} not reached"
    )
    for receipt in receipts:
        if receipt.status is Status.NOT_REACHED and receipt.channel:
            who = receipt.recipient.masked if receipt.recipient else ""
            where = f"{receipt.scene}/{receipt.channel.value}"
            console.print(f"  not reached: {where} to {escape(who)}: {escape(receipt.reason or '')}")


def buyer_openid(events: list[bytes]) -> str | None:
    """The OA openid of the first sample paid order's buyer."""
    for line in events:
        try:
            document: Any = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(document, dict) and document.get("type") == "payment.succeeded":
            openid = document.get("data", {}).get("buyer", {}).get("oa_openid")
            return str(openid) if openid else None
    return None


def print_history(console: Console, settings: Settings, openid: str, since: datetime) -> None:
    """What was sent to the buyer during this run, as `mall-notify history --openid ...` shows it
    (from the send log, once its delivered messages have their receipts there)."""
    if settings.database_url is None:
        return
    query = recipient_query(DEMO_RECIPIENT_KEY.encode(), None, openid, None, since)
    url, deadline = settings.database_url.get_secret_value(), time.monotonic() + RECEIPT_WAIT_SECONDS
    try:
        while True:
            lines = read_recipient_history(url, query)
            waiting = any(line.receipt is None for line in lines if line.status is Status.DELIVERED)
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    except DatabaseUnavailable as exc:
        console.print(f"history: {exc}", markup=False, highlight=False)
        return
    console.print(history_table(lines, "mall-notify history --openid (the demo buyer)"))
