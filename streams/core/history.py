"""What was sent to one person: the outcomes that name a recipient's keyed hash, newest first,
each with the provider's receipt when one came. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from streams.core.outcomes import Outcome, Status


@dataclass(frozen=True)
class HistoryQuery:
    recipient_hash: str
    shop_id: int | None = None
    since: datetime | None = None


class HistoryLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    shop_id: int | None
    scene: str | None
    channel: str | None
    recipient: str
    """the masked address"""
    status: Status
    reason: str | None = None
    receipt: str | None = None
    """reached / not_reached, when the provider's receipt came"""
    receipt_reason: str | None = None
    delivery_id: str | None = None


def history(outcomes: Iterable[Outcome], query: HistoryQuery) -> list[HistoryLine]:
    """One line per delivery to the recipient and event record it came from (its latest final
    outcome, and the receipt of a delivered one): an event published again shows its copy's
    ``duplicate_event`` line next to the original's."""
    finals: dict[tuple[str, str], Outcome] = {}
    receipts: dict[str, Outcome] = {}
    for outcome in outcomes:
        if outcome.recipient is None or outcome.recipient.hash != query.recipient_hash:
            continue
        if query.shop_id is not None and outcome.shop_id != query.shop_id:
            continue
        key = outcome.delivery_id or outcome.event_id or str(outcome.source)
        if outcome.status in RECEIPT_STATUSES:
            receipts[key] = outcome
        else:
            finals[(key, str(outcome.source))] = outcome
    lines = [
        _line(final, receipts.get(key) if final.status is Status.DELIVERED else None)
        for (key, _), final in finals.items()
        if query.since is None or final.at >= query.since
    ]
    return sorted(lines, key=lambda line: line.at, reverse=True)


def _line(final: Outcome, receipt: Outcome | None) -> HistoryLine:
    return HistoryLine(
        at=final.at,
        shop_id=final.shop_id,
        scene=final.scene,
        channel=final.channel.value if final.channel else None,
        recipient=final.recipient.masked if final.recipient else "",
        status=final.status,
        reason=final.reason,
        receipt=receipt.status.value if receipt else None,
        receipt_reason=receipt.reason if receipt else None,
        delivery_id=final.delivery_id,
    )


RECEIPT_STATUSES = frozenset({Status.REACHED, Status.NOT_REACHED})
