"""Finding what was sent to one person, for ``mall-notify history`` and the admin API alike."""

from __future__ import annotations

from datetime import datetime

from streams.core.history import HistoryLine, HistoryQuery, history
from streams.core.outcomes import Outcome
from streams.core.recipients import recipient_hash
from streams.ops.reading import read_all

READ_TIMEOUT_SECONDS = 120.0


def recipient_query(
    key: bytes, phone: str | None, openid: str | None, shop_id: int | None, since: datetime | None
) -> HistoryQuery:
    """The query for one phone number or one openid; ValueError for none or both."""
    if (phone is None) == (openid is None):
        raise ValueError("give one of phone or openid")
    kind, address = ("phone", phone) if phone is not None else ("openid", openid or "")
    return HistoryQuery(recipient_hash(key, kind, address), shop_id, since)


def read_recipient_history(
    bootstrap_servers: str, outcomes_topic: str, query: HistoryQuery
) -> list[HistoryLine]:
    """Every outcome the outcomes topic still holds for the query's recipient (blocking: it reads
    the whole topic, which keeps 14 days)."""
    records = read_all(bootstrap_servers, outcomes_topic, timeout=READ_TIMEOUT_SECONDS)
    return history((Outcome.model_validate_json(r.value) for r in records if r.value), query)
