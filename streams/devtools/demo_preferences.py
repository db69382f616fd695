"""The buyers' part of ``make demo``: before the samples go out, one buyer of the demo shop refuses
its marketing (as the mall publishes it: ``preferences.changed``); that buyer's coupon notice then
ends skipped as ``opted_out``, not sent, while the other buyers' coupons go out."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from streams.core.buyer_choices import OPTED_OUT, preferences_event
from streams.core.events import PreferencesChanged
from streams.core.outcomes import Outcome, Status
from streams.core.topics import Topics
from streams.devtools.upstream import publish_values
from streams.ops.reading import end_offsets, read_until

DEMO_REFUSING_BUYER = "u-66002"
"""the sample events' buyer who refuses the demo shop's marketing"""
SAID_WAIT_SECONDS = 60.0


def buyer_refuses_marketing(bootstrap: str, topics: Topics, shop_id: int, console: Console) -> None:
    """The buyer's no, published and passed on by the router before anything is sent to them."""
    changed = PreferencesChanged.model_validate(
        {
            "user_id": DEMO_REFUSING_BUYER,
            "categories_off": ["marketing"],
            "changed_at": datetime.now(UTC).isoformat(),
        }
    )
    event_id, value = preferences_event(shop_id, changed, "/mall/demo")
    start = end_offsets(bootstrap, topics.outcomes)
    publish_values(bootstrap, topics, [value])
    read_until(
        bootstrap,
        topics.outcomes,
        start,
        lambda records: event_id.encode() in {record.key for record in records},
        SAID_WAIT_SECONDS,
    )
    console.print(f"[bold]Preferences[/] buyer {DEMO_REFUSING_BUYER} refused shop {shop_id}'s marketing")


def print_refusals(console: Console, grouped: dict[str, list[Outcome]]) -> None:
    """What the buyers' choices held back."""
    held = [
        o
        for outcomes in grouped.values()
        for o in outcomes
        if o.status is Status.SKIPPED and (o.reason or "").startswith(OPTED_OUT)
    ]
    scenes = ", ".join(sorted({f"{o.scene}/{o.channel}" for o in held})) or "nothing"
    console.print(f"[bold]Preferences[/] {len(held)} notices skipped as {OPTED_OUT}, not sent: {scenes}")
