"""The ledger remembers final outcomes for its TTL, as they are read back or written."""

from __future__ import annotations

from datetime import UTC, datetime

from channels.base import SourceRecord
from streams.core.failures import Headers
from streams.core.outcomes import Outcome, Status
from streams.runtime.ledger import OutcomeLedger

HOUR = 3600.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Publisher:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes]] = []

    async def publish(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> None:
        self.records.append((topic, key, value))


def outcome(delivery_id: str, status: Status, at: float) -> Outcome:
    return Outcome(
        status=status,
        event_id="e",
        delivery_id=delivery_id,
        at=datetime.fromtimestamp(at, UTC),
        source=SourceRecord(topic="t", partition=0, offset=1),
    )


START = datetime(2026, 11, 25, tzinfo=UTC).timestamp()


async def test_what_is_read_back_and_written_is_known_until_the_ttl_passes() -> None:
    clock = Clock(START)
    publisher = Publisher()
    ledger = OutcomeLedger("unused:9092", "notify.outcomes", publisher, ttl_seconds=24 * HOUR, clock=clock)
    ledger._apply(b"d-old", outcome("d-old", Status.DELIVERED, START - 30 * HOUR).to_json())
    ledger._apply(b"d-read", outcome("d-read", Status.DEAD_LETTERED, START - HOUR).to_json())
    ledger._apply(b"d-read", outcome("d-read", Status.DELIVERED, START).to_json())
    ledger._apply(b"junk", b"not an outcome")
    await ledger.record(outcome("d-new", Status.DELIVERED, START + HOUR))
    assert publisher.records[0][1] == b"d-new"
    assert ledger.final("d-old") is None, "older than the TTL when it was read"
    assert (ledger.final("d-read"), ledger.final("d-new"), ledger.final("junk")) == (
        Status.DELIVERED,
        Status.DELIVERED,
        None,
    )
    clock.now = START + 24.5 * HOUR
    assert ledger.final("d-read") is None
    assert ledger.final("d-new") is Status.DELIVERED
    assert len(ledger) == 1, "expired entries are dropped, memory stays bounded"
