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
    """One line per delivery to the recipient (its latest final outcome, and its receipt)."""
    finals: dict[str, Outcome] = {}
    receipts: dict[str, Outcome] = {}
    for outcome in outcomes:
        if outcome.recipient is None or outcome.recipient.hash != query.recipient_hash:
            continue
        if query.shop_id is not None and outcome.shop_id != query.shop_id:
            continue
        key = outcome.delivery_id or outcome.event_id or str(outcome.source)
        (receipts if outcome.status in RECEIPT_STATUSES else finals)[key] = outcome
    lines = [
        HistoryLine(
            at=final.at,
            shop_id=final.shop_id,
            scene=final.scene,
            channel=final.channel.value if final.channel else None,
            recipient=final.recipient.masked if final.recipient else "",
            status=final.status,
            reason=final.reason,
            receipt=receipts[key].status.value if key in receipts else None,
            receipt_reason=receipts[key].reason if key in receipts else None,
            delivery_id=final.delivery_id,
        )
        for key, final in finals.items()
        if query.since is None or final.at >= query.since
    ]
    return sorted(lines, key=lambda line: line.at, reverse=True)


RECEIPT_STATUSES = frozenset({Status.REACHED, Status.NOT_REACHED})
