"""The ledger: final outcomes, as state partitioned with the records they are about.

A record read on partition *p* of a topic gets its ledger entry on partition *p* of that topic's
changelog (``notify.ledger.<topic>``, compacted, as many partitions), kept in the lane's
:class:`~streams.runtime.state.store.Store` on local disk. So the worker that owns partition *p*
of a send topic holds, and only holds, the entries of the deliveries on it, on disk: memory does
not grow with them, and a restart reads only the changelog's tail.

An entry is compact: the key is a 16-byte digest of the delivery or event id, the value its final
status (one byte) and an 8-byte digest of the event record it came from (which tells an event
published again apart from the same record read twice). Entries are kept for the TTL (the
changelog's retention should be as long): a delivery read again after that is treated as new.
"""

from __future__ import annotations

import hashlib

from streams.core.outcomes import Status
from streams.runtime.kafka.records import Write
from streams.runtime.state.store import Partition, Store

STATUS_CODES = {
    Status.DELIVERED: 1,
    Status.SKIPPED: 2,
    Status.DEAD_LETTERED: 3,
    Status.REACHED: 4,
    Status.NOT_REACHED: 5,
}
STATUSES = {code: status for status, code in STATUS_CODES.items()}


def ledger_key(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


def origin_digest(origin: str) -> bytes:
    return hashlib.blake2b(origin.encode(), digest_size=8).digest()


class Ledger:
    """The final outcomes of the partitions a lane owns, in its store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def covers(self, topic: str) -> bool:
        """Whether records of ``topic`` have a ledger here."""
        return self.store.covers(topic)

    def final(self, source: Partition, key: str) -> Status | None:
        """The final status of ``key`` on its partition; NotOwned when this lane does not own it."""
        entry = self.store.partition(source).get(ledger_key(key))
        return STATUSES.get(entry.payload[0]) if entry and entry.payload else None

    def same_origin(self, source: Partition, key: str, origin: str) -> bool:
        """Whether the final outcome of ``key`` came from the event record ``origin`` (True when its
        entry does not say); NotOwned as :meth:`final`."""
        entry = self.store.partition(source).get(ledger_key(key))
        return entry is None or len(entry.payload) == 1 or entry.payload[1:] == origin_digest(origin)

    def entry(
        self, source: Partition, key: str, status: Status, at: float, origin: str | None = None
    ) -> Write:
        """Know a final outcome now; the changelog record that keeps it (NotOwned as :meth:`final`:
        the record is then its partition's new owner's, who reads it again)."""
        payload = bytes([STATUS_CODES[status]]) + (origin_digest(origin) if origin else b"")
        return self.store.partition(source).put(ledger_key(key), payload, at)
