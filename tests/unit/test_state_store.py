"""The state store on local disk, without Kafka: what a lane reads and writes, what reaches the files
(committed writes only, with their checkpoint), expiry, and the ledger's compact entries. The
restore from a changelog runs against the real broker (tests/integration/test_state.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.core.outcomes import Status
from streams.runtime.lanes.ledger import Ledger
from streams.runtime.state.store import Disk, NotOwned, Store

HOUR = 3600.0
START = 1_764_000_000.0
SEND = "notify.send.wechat_oa"
CHANGELOG = "notify.ledger.send.wechat_oa"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    return Store(
        "send.wechat_oa", {SEND: CHANGELOG}, Disk(tmp_path, cache_bytes=4 << 20), 24 * HOUR, clock=clock
    )


def reopened(store: Store, number: int = 2) -> Store:
    store.close([(SEND, number)])
    store.open((SEND, number))
    return store


def test_a_write_is_seen_at_once_and_reaches_the_disk_only_when_its_transaction_commits(store: Store) -> None:
    partition = store.open((SEND, 2))
    committed = partition.put(b"k1", b"one", START)
    uncommitted = partition.put(b"k2", b"two", START)
    assert (committed.topic, committed.partition, committed.key) == (CHANGELOG, 2, b"k1")
    assert [e.payload for e in map(partition.get, (b"k1", b"k2")) if e] == [b"one", b"two"]

    store.committed(CHANGELOG, 2, [(b"k1", committed.value)], offset=41)
    assert uncommitted.value is not None
    store = reopened(store)
    again = store.partition((SEND, 2))
    assert again.get(b"k1") is not None
    assert again.get(b"k1").payload == b"one"
    assert again.get(b"k2") is None, "a write whose transaction never committed is not on disk"
    assert again.checkpoint() == 42, "the changelog offset after the last record the files reflect"


def test_a_tombstone_deletes_and_the_latest_write_of_a_key_wins(store: Store) -> None:
    partition = store.open((SEND, 2))
    first = partition.put(b"k", b"first", START)
    second = partition.put(b"k", b"second", START + 1)
    gone = partition.put(b"g", b"soon deleted", START)
    deleted = partition.delete(b"g")
    assert partition.get(b"g") is None
    store.committed(CHANGELOG, 2, [(w.key or b"", w.value) for w in (first, second, gone, deleted)], offset=9)
    partition = reopened(store).partition((SEND, 2))
    assert partition.get(b"k") is not None
    assert partition.get(b"k").payload == b"second"
    assert partition.get(b"g") is None


def test_entries_expire_after_their_ttl_and_a_sweep_deletes_them_from_disk(
    store: Store, clock: Clock
) -> None:
    partition = store.open((SEND, 2))
    old = partition.put(b"old", b"x", START - 23 * HOUR)
    new = partition.put(b"new", b"y", START)
    store.committed(CHANGELOG, 2, [(b"old", old.value), (b"new", new.value)], offset=1)
    assert partition.get(b"old") is not None
    clock.now = START + 2 * HOUR
    assert partition.get(b"old") is None, "older than the TTL"
    dropped = store.sweep()
    assert [(source, key) for source, key, _ in dropped] == [((SEND, 2), b"old")]
    assert partition.get(b"new") is not None
    assert store.sweep() == [], "a second sweep within a second does nothing"


def test_older_lists_the_live_entries_of_one_tag_oldest_first(store: Store) -> None:
    partition = store.open((SEND, 1))
    writes = [
        partition.put(b"a", b"sent a", START - 300, tag=1),
        partition.put(b"b", b"sent b", START - 200, tag=1),
        partition.put(b"c", b"receipt c", START - 250, tag=2),
        partition.put(b"a", b"", START - 100, tag=3),  # a's pair is done: no longer waiting
        partition.put(b"d", b"sent d", START - 10, tag=1),
    ]
    store.committed(CHANGELOG, 1, [(w.key or b"", w.value) for w in writes], offset=5)
    waiting = partition.older(1, before=START - 60, limit=10)
    assert [(key, entry.payload) for key, entry in waiting] == [(b"b", b"sent b")]


def test_a_partition_not_owned_is_refused_and_a_closed_one_keeps_its_files(
    store: Store, tmp_path: Path
) -> None:
    with pytest.raises(NotOwned):
        store.partition((SEND, 3))
    partition = store.open((SEND, 3))
    write = partition.put(b"k", b"v", START)
    store.committed(CHANGELOG, 3, [(b"k", write.value)], offset=0)
    store.close([(SEND, 3)])
    with pytest.raises(NotOwned):
        store.partition((SEND, 3))
    assert (tmp_path / "send.wechat_oa" / f"{SEND}-3").is_dir()
    assert store.open((SEND, 3)).checkpoint() == 1


def test_a_commit_for_a_partition_given_away_meanwhile_is_ignored(store: Store) -> None:
    partition = store.open((SEND, 4))
    write = partition.put(b"k", b"v", START)
    store.close([(SEND, 4)])
    store.committed(CHANGELOG, 4, [(b"k", write.value)], offset=7)  # no error: its new owner has it
    assert store.open((SEND, 4)).get(b"k") is None


def test_the_ledger_keeps_a_compact_entry_per_delivery(store: Store) -> None:
    ledger = Ledger(store)
    store.open((SEND, 2))
    delivery_id = "9f86d081884c7d659a2feaa0c55ad015"
    write = ledger.entry((SEND, 2), delivery_id, Status.DELIVERED, START, origin="mall.orders[3]@1234")
    assert len(write.key or b"") == 16, "a digest of the delivery id"
    assert len(write.value or b"") == 9 + 1 + 8, "tag and time, status, a digest of the origin"
    assert ledger.final((SEND, 2), delivery_id) is Status.DELIVERED
    assert ledger.same_origin((SEND, 2), delivery_id, "mall.orders[3]@1234")
    assert not ledger.same_origin((SEND, 2), delivery_id, "mall.orders[3]@9999"), "the event published again"
    assert ledger.final((SEND, 2), "another") is None
    assert ledger.covers(SEND)
    assert not ledger.covers("notify.retry.wechat_oa.10s")
    with pytest.raises(NotOwned):
        ledger.final((SEND, 5), delivery_id)
