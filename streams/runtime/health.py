"""Is this worker ready, and if not, why: what ``/readyz`` answers and the gauges show.

Ready means: the Kafka cluster answers, the shops' settings are loaded, every background task is
running (not waiting to be restarted after a crash), every lane has joined its group and
restored the state of its partitions, and no partition is stalled (a record unfinished for
longer than ``MALL_NOTIFY_STALL_SECONDS``, or records waiting on a partition that has not moved
for as long: an outage, a record nothing can move, or a consumer that stopped taking records).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException

from streams.logs import Repeats, get_logger
from streams.runtime import metrics
from streams.runtime.kafka.follower import TableFollower
from streams.runtime.kafka.transactions import Transactions
from streams.runtime.lanes.lane import Lane
from streams.runtime.state.store import Store
from streams.runtime.supervisor import Supervisor

log = get_logger("health")
REPEATS = Repeats(log, interval_seconds=30.0)
PROBE_INTERVAL_SECONDS = 2.0
PROBE_TIMEOUT_SECONDS = 5.0


class BrokerProbe:
    """Asks the cluster about a topic every few seconds through an existing client."""

    def __init__(self, ask: Callable[[float], None]) -> None:
        self._ask = ask
        self.reachable = False

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await asyncio.to_thread(self._ask, PROBE_TIMEOUT_SECONDS)
                if not self.reachable:
                    log.info("kafka is reachable")
                self.reachable = True
            except KafkaException as exc:
                self.reachable = False
                REPEATS.warning("kafka is not reachable", detail=str(exc))
            metrics.KAFKA_REACHABLE.set(1 if self.reachable else 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=PROBE_INTERVAL_SECONDS)


class Readiness:
    def __init__(
        self,
        supervisors: list[Supervisor],
        lanes: list[Lane],
        follower: TableFollower,
        probe: BrokerProbe,
        transactions: Transactions,
        stall_seconds: float,
        channels_off: list[str] | None = None,
        sms_bands: Callable[[], Counter[str]] | None = None,
    ) -> None:
        self._supervisors = supervisors
        self._lanes = lanes
        self._follower = follower
        self._probe = probe
        self._transactions = transactions
        self._stall_seconds = stall_seconds
        self._channels_off = channels_off or []
        self._sms_bands = sms_bands
        """how many shops' SMS balances are used up, low, ok (a worker that sends SMS)"""

    def report(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        for gauge in (metrics.CONSUMER_LAG, metrics.STATE_ENTRIES, metrics.STATE_DISK_BYTES):
            gauge.clear()  # partitions handed over since the last report disappear
        lanes = {lane.name: self._lane(lane, now) for lane in self._lanes}
        _cache_metrics(self._lanes)
        for band, shops in (self._sms_bands() if self._sms_bands else {}).items():
            metrics.SMS_SHOPS.labels(band).set(shops)
        tasks = {
            name: {"running": state.running, "restarts": state.restarts, "last_error": state.last_error}
            for supervisor in self._supervisors
            for name, state in supervisor.tasks.items()
        }
        waited = self._transactions.uncommitted_seconds(now)
        commits = {
            "uncommitted_writes": self._transactions.backlog(),
            "oldest_uncommitted_seconds": round(waited, 3),
            "stalled": waited > self._stall_seconds,
        }
        metrics.UNCOMMITTED_SECONDS.set(waited)
        ready = bool(
            self._probe.reachable
            and not commits["stalled"]
            and self._follower.loaded.is_set()
            and all(task["running"] for task in tasks.values())
            and all(
                lane["joined"] and not lane["restoring"] and not lane["stalled"] for lane in lanes.values()
            )
        )
        metrics.READY.set(1 if ready else 0)
        body = {
            "ready": ready,
            "kafka_reachable": self._probe.reachable,
            "settings_loaded": self._follower.loaded.is_set(),
            "channels_off": self._channels_off,
            "commits": commits,
            "lanes": lanes,
            "tasks": tasks,
        }
        return ready, body

    def _lane(self, lane: Lane, now: float) -> dict[str, Any]:
        stalled = sorted(f"{topic}[{number}]" for topic, number in lane.stalled(now))
        status = lane.status
        metrics.PARTITIONS_ASSIGNED.labels(lane.name).set(len(status.assigned))
        metrics.PARTITIONS_STALLED.labels(lane.name).set(len(stalled))
        metrics.IN_FLIGHT.labels(lane.name).set(lane.offsets.in_flight())
        entries = sum(_state_metrics(store) for store in lane.stores())
        lags = lane.lag()
        for (topic, number), waiting in lags.items():
            metrics.CONSUMER_LAG.labels(lane.name, topic, str(number)).set(waiting)
        return {
            "joined": status.joined,
            "partitions": len(status.assigned),
            "restoring": len(status.restoring),
            "stalled": stalled,
            "in_flight": lane.offsets.in_flight(),
            "lag": sum(lags.values()),
            "state_entries": entries,
        }


def _state_metrics(store: Store) -> int:
    """Set a store's gauges per partition; how many entries it holds in all."""
    total = 0
    for (topic, number), state in store.owned():
        partition, entries = f"{topic}[{number}]", state.entries()
        metrics.STATE_ENTRIES.labels(store.name, partition).set(entries)
        metrics.STATE_DISK_BYTES.labels(store.name, partition).set(state.disk_bytes())
        total += entries
    return total


def _cache_metrics(lanes: list[Lane]) -> None:
    """The block cache every store of the worker shares: once, from whichever store there is."""
    disk = next((store.disk for lane in lanes for store in lane.stores()), None)
    if disk is None:
        return
    metrics.STATE_CACHE_BYTES.set(disk.cache.get_usage())
    ratio = disk.cache_hit_ratio()
    if ratio is not None:
        metrics.STATE_CACHE_HIT_RATIO.set(ratio)
