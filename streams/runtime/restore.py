"""Restoring the ledger of newly assigned partitions from their changelogs, before their first
record is handled (the lane's assignment waits for it; other lanes go on)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.ledger import ChangelogRecord, Ledger, PartitionId
from streams.runtime.topic_reader import read_to_end

log = get_logger("restore")
ATTEMPTS = 3
READ_TIMEOUT_SECONDS = 300.0


async def restore(lane: str, ledger: Ledger, bootstrap_servers: str, partitions: list[PartitionId]) -> None:
    """Read the partitions' changelogs and install their state; raises after :data:`ATTEMPTS`
    failed reads (the lane then restarts and joins its group again)."""
    if not partitions:
        return

    def read(topic: str, numbers: list[int]) -> Iterator[ChangelogRecord]:
        for message in read_to_end(bootstrap_servers, topic, numbers, READ_TIMEOUT_SECONDS):
            yield message.partition() or 0, message.key(), message.value()

    began = time.monotonic()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            restored, count = await asyncio.to_thread(ledger.read, partitions, read)
            break
        except Exception as exc:  # the cluster did not answer: try again, then let the lane restart
            log.warning("state restore failed", extra=fields(lane=lane, attempt=attempt, detail=repr(exc)))
            if attempt == ATTEMPTS:
                raise
            await asyncio.sleep(attempt)
    ledger.install(restored)
    metrics.STATE_RESTORED.labels(lane).inc(count)
    log.info(
        "state restored",
        extra=fields(
            lane=lane, partitions=len(partitions), records=count, seconds=round(time.monotonic() - began, 3)
        ),
    )
