"""The quiet-hours part of ``make demo``, with a clock the demo controls (``MALL_NOTIFY_CLOCK_FILE``):
the samples go out at the mall's noon; then it is 23:00, a coupon is issued and held on a delay
topic by the shop's quiet hours (22:00-08:00); the clock moves to just before 08:00 the next day
and the coupon goes out when the window ends, its outcome saying ``deferred_until``.

Each run is a day of its own in the mall, after the days of the runs before, so the buyers' daily
caps start afresh however often the demo runs."""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import orjson
from rich.console import Console

from streams.core.outcomes import FINAL_STATUSES, Outcome, Status
from streams.core.rendering import MALL_TIME_ZONE
from streams.core.topics import Topics
from streams.devtools.upstream import publish_values
from streams.ops.reading import ReadRecord, end_offsets, read_until
from streams.runtime.clock import ShiftedClock, mall_time, set_clock

WAIT_SECONDS = 60.0

NOT_BEFORE_SECONDS = 2.0
"""how long the demo watches a held coupon not go out before it moves the clock to the morning"""


def night_coupon(events: list[bytes]) -> bytes | None:
    """A coupon of the samples again, as a new event (None: the samples have none)."""
    for line in events:
        document = orjson.loads(line)
        if document.get("type") == "coupon.issued":
            return orjson.dumps(document | {"id": f"evt-cpn-night-{uuid.uuid4().hex[:12]}"})
    return None


def demo_day(clock: Path) -> date:
    """The mall's day this run shows: today, or the day after the last run's morning."""
    today = datetime.now(MALL_TIME_ZONE).date()
    last = ShiftedClock(clock).now().astimezone(MALL_TIME_ZONE).date()
    return max(today, last + timedelta(days=1))


def coupon_at_night(
    bootstrap: str, topics: Topics, clock: Path, day: date, events: list[bytes], console: Console
) -> bool:
    """Publish a coupon at 23:00, show it held, move to the morning and show it sent; True if it was."""
    coupon = night_coupon(events)
    if coupon is None:
        return True
    set_clock(clock, mall_time("23:00", day=day))
    event_id = orjson.loads(coupon)["id"]
    start, held_from = (
        end_offsets(bootstrap, topics.outcomes),
        {t: end_offsets(bootstrap, t) for t in topics.deferred},
    )
    publish_values(bootstrap, topics, [coupon])
    held = _held(bootstrap, topics, held_from, event_id)
    if held is None:
        console.print(f"[red]coupon {event_id} published at 23:00 was not held by the quiet hours[/]")
        return False
    console.print(f"[bold]Quiet hours[/] 23:00 in the mall: coupon {event_id} held on {held.topic}")
    early = read_until(bootstrap, topics.outcomes, start, lambda _: False, NOT_BEFORE_SECONDS)
    if any(_final_of(record, event_id) for record in early):
        console.print("[red]the held coupon went out before the window ended[/]")
        return False
    set_clock(clock, mall_time("08:00", days=1, day=day) - timedelta(seconds=2))
    records = read_until(
        bootstrap, topics.outcomes, start, lambda rs: any(_final_of(r, event_id) for r in rs), WAIT_SECONDS
    )
    finals = [o for record in records if (o := _final_of(record, event_id)) is not None]
    if not finals or finals[0].deferred_until is None:
        console.print("[red]the held coupon did not go out when the window ended[/]")
        return False
    outcome = finals[0]
    assert outcome.deferred_until is not None
    until = outcome.deferred_until.astimezone(MALL_TIME_ZONE).strftime("%Y-%m-%d %H:%M")
    console.print(
        f"[bold]Quiet hours[/] the clock moved to 07:59:58: the coupon went out when the window ended: "
        f"{outcome.status.value} on {outcome.channel}, deferred_until {until} (Asia/Shanghai)"
    )
    return outcome.status is Status.DELIVERED


def _held(
    bootstrap: str, topics: Topics, starts: dict[str, dict[int, int]], event_id: str
) -> ReadRecord | None:
    """The coupon's notice on the delay topic it waits in (they are looked at in turn until found)."""
    marker = event_id.encode()
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for topic, start in starts.items():
            found = read_until(
                bootstrap, topic, start, lambda rs: any(marker in (r.value or b"") for r in rs), 0.5
            )
            for record in found:
                if marker in (record.value or b""):
                    return record
    return None


def _final_of(record: ReadRecord, event_id: str) -> Outcome | None:
    if record.value is None:
        return None
    outcome = Outcome.model_validate_json(record.value)
    return outcome if outcome.event_id == event_id and outcome.status in FINAL_STATUSES else None
