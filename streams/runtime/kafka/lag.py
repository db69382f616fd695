"""Where the partitions the lanes own end, asked of the broker every few seconds by a client of its
own: the lag of a lane (and so a consumer that stopped taking records) shows even when the lane's
own consumer is not being polled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streams.logs import Repeats, get_logger
from streams.runtime.kafka.clients import admin_client, stable_bounds
from streams.runtime.lanes.lane import Lane, Partition, PartitionEnd

log = get_logger("lag")
REPEATS = Repeats(log, interval_seconds=30.0)
INTERVAL_SECONDS = 5.0
TIMEOUT_SECONDS = 5.0


class EndOffsets:
    def __init__(self, bootstrap_servers: str, lanes: Iterable[Lane]) -> None:
        self._lanes = list(lanes)
        self._bootstrap = bootstrap_servers
        self._admin: AdminClient = admin_client(bootstrap_servers)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            owned = {partition for lane in self._lanes for partition in lane.status.assigned}
            if owned:
                try:
                    ends = await asyncio.to_thread(self._ask, owned)
                except KafkaException as exc:
                    REPEATS.warning("partition ends unknown", detail=str(exc.args[0] if exc.args else exc))
                    # fresh metadata: after a broker restart the old client asks with a stale
                    # leader epoch and keeps being refused (FENCED_LEADER_EPOCH)
                    self._admin = admin_client(self._bootstrap)
                else:
                    for lane in self._lanes:
                        lane.ends = {p: ends[p] for p in lane.status.assigned if p in ends}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), INTERVAL_SECONDS)

    def _ask(self, partitions: set[Partition]) -> dict[Partition, PartitionEnd]:
        """The last stable and the oldest offset of each partition (blocking: run it in a thread)."""
        bounds = stable_bounds(self._admin, partitions, TIMEOUT_SECONDS)
        return {partition: PartitionEnd(end, start) for partition, (start, end) in bounds.items()}
