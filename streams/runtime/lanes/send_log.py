"""The send-log lane: ``notify.outcomes`` into PostgreSQL, each outcome exactly once; and the
buyers' preferences (``mall.preferences``) into ``buyer_preferences``, the view the admin API and
the CLI read (the buyers lane keeps its own).

It is a member of its own consumer group (``<app id>.send-log``), so workers share the outcomes'
partitions. A batch's rows (:mod:`streams.core.send_log`) and the offsets it read up to are written
in one database transaction; on assignment the lane starts each partition where the database says
it stopped, not where Kafka's committed offsets say (those are only committed afterwards, for the
lag metrics). So a crash, a rebalance or a database restart at any moment writes every outcome
once: a batch either committed with its offsets, or is read again. An upsert is idempotent too, so
a partition handed over while its last batch was being written gets the same rows again.

It runs in a thread of its own (psycopg's blocking connection, confluent-kafka's blocking
consumer); a failure of the database stops it for a while, then it reconnects and goes on from the
offsets the database kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from streams.core.errors import EventRejected
from streams.core.events import PreferencesChangedEvent, parse_event
from streams.core.outcomes import Outcome
from streams.core.send_log import Row, choice_row, row_of
from streams.logs import fields, get_logger
from streams.runtime import metrics
from streams.runtime.database import (
    DatabaseUnavailable,
    behind,
    connect,
    migrate,
    read_offsets,
    retain,
    unavailable,
    write_rows,
)
from streams.runtime.kafka.clients import group_consumer_config

log = get_logger("send_log")
BATCH = 1_000
POLL_SECONDS = 0.5
RETRY_SECONDS = 2.0
RETENTION_EVERY_SECONDS = 3600.0
MEASURE_EVERY_SECONDS = 2.0


class SendLogLane:
    name = "send-log"

    def __init__(
        self,
        bootstrap_servers: str,
        database_url: str,
        topic: str,
        group: str,
        keep_days: int,
        session_timeout_seconds: float = 30.0,
        instance_id: str | None = None,
        preferences_topic: str | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.session_timeout_seconds = session_timeout_seconds
        self.instance_id = instance_id
        """the worker's identity, as the other lanes': a static member of its group, so a worker
        that comes back after a crash gets its partitions at once instead of after the session
        timeout of its former self"""
        self.database_url = database_url
        self.topic = topic
        self.preferences_topic = preferences_topic
        self.group = group
        self.keep_days = keep_days
        self._days: set[date] = set()
        """the days whose partitions of the send log exist, as far as this lane's session knows"""
        self._stop = threading.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        """Until ``stopping`` is set (the supervisor restarts it if it raises)."""
        self._stop.clear()
        worker = asyncio.create_task(asyncio.to_thread(self._run))
        stopped = asyncio.create_task(stopping.wait())
        try:
            await asyncio.wait([worker, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._stop.set()
            stopped.cancel()
            await worker

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._consume()
            except DatabaseUnavailable as exc:
                log.warning("send log paused: PostgreSQL unavailable", extra=fields(detail=str(exc)))
                metrics.SEND_LOG_FAILURES.inc()
                self._stop.wait(RETRY_SECONDS)

    def _consume(self) -> None:
        conn = connect(self.database_url)
        self._days = set()  # known again from this session on (another worker may drop old days)
        try:
            if behind(conn):
                log.info("send log schema migrated", extra=fields(versions=migrate(conn)))
            consumer = self._consumer(conn)
            try:
                self._loop(conn, consumer)
            finally:
                consumer.close()
        except psycopg.OperationalError as exc:  # the server went away mid-way: connect again
            raise unavailable(exc, self.database_url) from None
        finally:
            conn.close()

    def _consumer(self, conn: Any) -> Consumer:
        """A member of the lane's group that starts each partition it gets where the database says."""
        session_ms = int(self.session_timeout_seconds * 1000)
        static = {"group_instance_id": self.instance_id} if self.instance_id else {}
        consumer = Consumer(
            group_consumer_config(
                self.bootstrap_servers,
                self.group,
                on_loop=False,
                session_timeout_ms=session_ms,
                heartbeat_interval_ms=max(100, session_ms // 10),
                **static,
            )
        )

        def assigned(consumer: Any, partitions: list[TopicPartition]) -> None:
            offsets = {topic: read_offsets(conn, self.group, topic) for topic in self._topics()}
            for partition in partitions:
                partition.offset = offsets[partition.topic].get(partition.partition, OFFSET_BEGINNING)
            consumer.incremental_assign(partitions)

        def revoked(consumer: Any, partitions: list[TopicPartition]) -> None:
            consumer.incremental_unassign(partitions)
            for partition in partitions:
                with contextlib.suppress(KeyError):
                    metrics.SEND_LOG_BEHIND.remove(str(partition.partition))

        consumer.subscribe(self._topics(), on_assign=assigned, on_revoke=revoked, on_lost=revoked)
        return consumer

    def _topics(self) -> list[str]:
        return [self.topic, *([self.preferences_topic] if self.preferences_topic else [])]

    def _loop(self, conn: Any, consumer: Consumer) -> None:
        retained_at = measured_at = 0.0
        while not self._stop.is_set():
            if time.monotonic() - retained_at > RETENTION_EVERY_SECONDS:
                self._retain(conn)
                retained_at = time.monotonic()
            messages = [m for m in consumer.consume(BATCH, POLL_SECONDS) if _usable(m)]
            if messages:
                self._write(conn, messages)
                consumer.commit(asynchronous=True)
            if time.monotonic() - measured_at > MEASURE_EVERY_SECONDS:
                _measure(consumer, self.topic)
                measured_at = time.monotonic()

    def _write(self, conn: Any, messages: list[Any]) -> None:
        rows: list[Row] = []
        offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            offsets[(message.topic(), message.partition())] = message.offset() + 1
            try:
                if message.topic() == self.preferences_topic:
                    event = parse_event(message.value())
                    if isinstance(event, PreferencesChangedEvent):
                        rows.append(choice_row(event.data, event.shop_id))
                    continue
                rows.append(row_of(Outcome.model_validate_json(message.value() or b"")))
            except (ValueError, EventRejected):
                metrics.SEND_LOG_SKIPPED.inc()  # not an outcome (or preferences) of ours: nothing to show
        write_rows(conn, self.group, rows, offsets, self._days)
        metrics.SEND_LOG_ROWS.inc(len(rows))

    def _retain(self, conn: Any) -> None:
        dropped = retain(conn, self.keep_days, datetime.now(UTC))
        self._days.difference_update(dropped)
        if dropped:
            log.info("send log days dropped", extra=fields(days=[f"{day}" for day in dropped]))


def _measure(consumer: Consumer, topic: str) -> None:
    """How far each owned partition of the outcomes is from what the lane wrote (the consumer's
    position, past the transactions' markers; the end as the last fetch saw it)."""
    assigned = [partition for partition in consumer.assignment() if partition.topic == topic]
    for partition in consumer.position(assigned) if assigned else []:
        _, end = consumer.get_watermark_offsets(partition, cached=True)
        if partition.offset >= 0 and end >= 0:
            metrics.SEND_LOG_BEHIND.labels(str(partition.partition)).set(max(0, end - partition.offset))


def _usable(message: Any) -> bool:
    error = message.error()
    if error is None:
        return True
    if error.code() != KafkaError._PARTITION_EOF:
        log.warning("send log read error", extra=fields(detail=str(error)))
    return False
