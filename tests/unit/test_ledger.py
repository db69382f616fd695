"""The ledger: state per partition, rebuilt from its changelog, written to the same partition,
remembered for its TTL, dropped with the partition."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from streams.core.outcomes import Status
from streams.runtime.ledger import ChangelogRecord, Ledger, NotOwned, entry_value

HOUR = 3600.0
START = 1_764_000_000.0
SEND = "notify.send.wechat_oa"
CHANGELOG = "notify.ledger.send.wechat_oa"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def changelog(records: dict[int, list[tuple[bytes, bytes]]]):  # type: ignore[no-untyped-def]
    """A changelog reader over fixed records, recording what it was asked for."""
    asked: list[tuple[str, list[int]]] = []

    def read(topic: str, partitions: list[int]) -> Iterable[ChangelogRecord]:
        asked.append((topic, partitions))
        for partition in partitions:
            for key, value in records.get(partition, []):
                yield partition, key, value

    return read, asked


def test_a_partition_is_rebuilt_from_its_changelog_partition_only() -> None:
    ledger = Ledger({SEND: CHANGELOG}, ttl_seconds=24 * HOUR, clock=Clock(START))
    read, asked = changelog(
        {
            2: [
                (b"d-old", entry_value(Status.DELIVERED, START - 30 * HOUR)),
                (b"d-1", entry_value(Status.DEAD_LETTERED, START - HOUR)),
                (b"d-1", entry_value(Status.DELIVERED, START - 0.5 * HOUR)),
                (b"junk", b"not an entry"),
            ],
            3: [(b"d-3", entry_value(Status.DELIVERED, START))],
        }
    )
    restored, count = ledger.read([(SEND, 2)], read)
    ledger.install(restored)
    assert asked == [(CHANGELOG, [2])]
    assert count == 4
    assert ledger.final((SEND, 2), "d-1") is Status.DELIVERED, "the latest entry of a key wins"
    assert ledger.final((SEND, 2), "d-old") is None, "older than the TTL"
    assert ledger.final((SEND, 2), "junk") is None
    with pytest.raises(NotOwned):
        ledger.final((SEND, 3), "d-3")


def test_an_entry_goes_to_the_same_partition_of_the_changelog_and_is_known_at_once() -> None:
    ledger = Ledger({SEND: CHANGELOG}, ttl_seconds=24 * HOUR, clock=Clock(START))
    ledger.install(ledger.read([(SEND, 4)], changelog({})[0])[0])
    write = ledger.entry((SEND, 4), "d-9", Status.DELIVERED, START)
    assert (write.topic, write.partition, write.key) == (CHANGELOG, 4, b"d-9")
    assert write.value == entry_value(Status.DELIVERED, START)
    assert ledger.final((SEND, 4), "d-9") is Status.DELIVERED


def test_entries_expire_and_dropped_partitions_free_their_memory() -> None:
    clock = Clock(START)
    ledger = Ledger({SEND: CHANGELOG}, ttl_seconds=24 * HOUR, clock=clock)
    read, _ = changelog(
        {0: [(b"a", entry_value(Status.DELIVERED, START))], 1: [(b"b", entry_value(Status.SKIPPED, START))]}
    )
    ledger.install(ledger.read([(SEND, 0), (SEND, 1)], read)[0])
    assert len(ledger) == 2
    clock.now = START + 25 * HOUR
    assert ledger.final((SEND, 0), "a") is None
    ledger.drop([(SEND, 1)])
    assert len(ledger) == 0, "expired entries are dropped as they are met, revoked partitions at once"


def test_a_topic_without_a_ledger_is_not_covered() -> None:
    ledger = Ledger({SEND: CHANGELOG}, ttl_seconds=HOUR)
    assert ledger.covers(SEND)
    assert not ledger.covers("notify.retry.wechat_oa.10s")
