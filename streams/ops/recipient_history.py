"""Finding what was sent to one person, for ``mall-notify history`` and the admin API alike."""

from __future__ import annotations

import re
from datetime import datetime

from streams.core.history import HistoryLine, HistoryQuery, history_lines
from streams.core.recipients import normalized_phone, recipient_hash
from streams.runtime.database import connect, fetch, messages_statement

MOBILE = re.compile(r"1[3-9][0-9]{9}", re.ASCII)
OPENID = re.compile(r"[A-Za-z0-9_-]{20,64}", re.ASCII)


def recipient_query(
    key: bytes, phone: str | None, openid: str | None, shop_id: int | None, since: datetime | None
) -> HistoryQuery:
    """The query for one phone number or one openid; ValueError for none, both, or one that is not
    a mainland mobile number or an openid."""
    if (phone is None) == (openid is None):
        raise ValueError("give one of phone or openid")
    if phone is not None and not MOBILE.fullmatch(normalized_phone(phone)):
        raise ValueError("phone: not a mainland mobile number (11 digits from 13 to 19, +86 allowed)")
    if openid is not None and not OPENID.fullmatch(openid):
        raise ValueError("openid: not a WeChat openid (20 to 64 letters, digits, - and _)")
    kind, address = ("phone", phone) if phone is not None else ("openid", openid or "")
    return HistoryQuery(recipient_hash(key, kind, address), shop_id, since)


def recipient_filter(key: bytes, phone: str | None, openid: str | None) -> str | None:
    """The keyed hash to filter on for an optional phone number or openid (None: neither given);
    ValueError as :func:`recipient_query`."""
    if phone is None and openid is None:
        return None
    return recipient_query(key, phone, openid, None, None).recipient_hash


def read_recipient_history(database_url: str, query: HistoryQuery) -> list[HistoryLine]:
    """The query's lines from the send log (blocking); DatabaseUnavailable when it cannot be read."""
    with connect(database_url) as conn:
        return history_lines(fetch(conn, messages_statement(query.messages())))
