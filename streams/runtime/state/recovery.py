"""The one restore path: a partition newly assigned to a lane reads its changelog from the local
checkpoint to the end before its first record is handled (the lane's assignment waits; other
lanes go on).

- No local files, or files behind what the changelog still retains (compacted or deleted past the
  checkpoint), or ahead of it (the topic was recreated): the files are wiped and the partition is
  read from the changelog's oldest record.
- A tombstone deletes its key; a record older than its tag's TTL is skipped; a record that is not
  an entry is counted (``mall_notify_state_unreadable_records_total``) and skipped.
- Progress is written with its checkpoint every few thousand records, so a read that fails is
  tried again (with backoff) from where it stopped; after :data:`ATTEMPTS` the lane restarts.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from confluent_kafka import Consumer, Message

from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.kafka.clients import reader_config
from streams.runtime.kafka.topic_reader import read_between, watermarks
from streams.runtime.state.partition import HEAD, Change, StorePartition
from streams.runtime.state.store import Partition, Store

log = get_logger("restore")
ATTEMPTS = 5
FIRST_BACKOFF_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 300.0
BATCH = 5_000


async def restore(store: Store, bootstrap_servers: str, sources: list[Partition]) -> Counter[str]:
    """Open the partitions' files and bring them up to their changelogs' end; what it took
    (``records`` read, ``expired``, ``unreadable``, ``wiped`` partitions)."""
    if not sources:
        return Counter()
    began = time.monotonic()
    partitions = [store.open(source) for source in sources]
    counts: Counter[str] = Counter()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            counts += await asyncio.to_thread(_restore, bootstrap_servers, partitions)
            break
        except Exception as exc:  # the cluster did not answer: go on from the checkpoint, then give up
            log.warning(
                "state restore failed", extra=fields(store=store.name, attempt=attempt, detail=repr(exc))
            )
            if attempt == ATTEMPTS:
                store.close(sources)
                raise
            await asyncio.sleep(FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1))
    seconds = time.monotonic() - began
    metrics.STATE_RESTORED.labels(store.name).inc(counts["records"])
    metrics.STATE_UNREADABLE.labels(store.name).inc(counts["unreadable"])
    metrics.STATE_RESTORE_SECONDS.labels(store.name).inc(seconds)
    log.info(
        "state restored",
        extra=fields(store=store.name, partitions=len(sources), seconds=round(seconds, 3), **counts),
    )
    return counts


def _restore(bootstrap_servers: str, partitions: list[StorePartition]) -> Counter[str]:
    """Blocking: read each changelog partition from its checkpoint to its end."""
    counts: Counter[str] = Counter()
    consumer = Consumer(reader_config(bootstrap_servers))
    try:
        by_changelog: dict[str, list[StorePartition]] = {}
        for state in partitions:
            by_changelog.setdefault(state.changelog, []).append(state)
        for changelog, states in by_changelog.items():
            counts += _restore_changelog(consumer, changelog, states)
    finally:
        consumer.close()
    return counts


def _restore_changelog(consumer: Consumer, changelog: str, states: list[StorePartition]) -> Counter[str]:
    counts: Counter[str] = Counter()
    ranges: dict[int, tuple[int, int]] = {}
    by_number = {state.number: state for state in states}
    for state in states:
        low, high = watermarks(consumer, changelog, state.number)
        start = state.checkpoint()
        if start is None or not low <= start <= high:
            if start is not None:
                counts["wiped"] += 1
                state.wipe()
            start = low
        ranges[state.number] = (start, high)
    batches: dict[int, list[Change]] = {number: [] for number in by_number}
    for message in read_between(consumer, changelog, ranges, READ_TIMEOUT_SECONDS):
        number = message.partition() or 0
        batch = batches[number]
        change = _change(by_number[number], message, counts)
        if change is not None:
            batch.append(change)
        if len(batch) >= BATCH:
            by_number[number].write(batch, (message.offset() or 0) + 1)
            batches[number] = []
    for number, (_, end) in ranges.items():
        by_number[number].write(batches[number], end)
    return counts


def _change(state: StorePartition, message: Message, counts: Counter[str]) -> Change | None:
    """What a changelog record changes, or None (counted) when it changes nothing."""
    counts["records"] += 1
    key, value = message.key(), message.value()
    if not key:
        counts["unreadable"] += 1
        return None
    if value is None:
        return key, None
    if len(value) < HEAD.size:
        counts["unreadable"] += 1
        return None
    tag, at_ms = HEAD.unpack_from(value)
    if not state.fresh(tag, at_ms / 1000):
        counts["expired"] += 1
        return None
    return key, value
