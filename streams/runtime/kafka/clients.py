"""How every Kafka client of the project is configured (confluent-kafka / librdkafka), and what a
failed write means. One client stack for the worker, the admin API, the command line and tools.

librdkafka logs only its fatal errors, through our JSON logs; its other errors reach ``error_cb``,
which logs each kind once per interval with a count (:class:`~streams.logs.Repeats`), so an
outage is a few lines, not thousands.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any, cast

from confluent_kafka import IsolationLevel, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from streams.logs import Repeats, get_logger
from streams.runtime.kafka.records import Write

log = get_logger("kafka")
LIBRDKAFKA_LOG = get_logger("librdkafka")
CLIENT_ERRORS = Repeats(log, interval_seconds=30.0)
PREFETCH_RECORDS = 2_000
"""records a lane's consumer fetches ahead per partition, at most"""
PREFETCH_KIB = 8 * 1024
"""kilobytes a lane's consumer holds fetched ahead, at most"""
DELIVERY_TIMEOUT_MS = 60_000
"""How long librdkafka keeps retrying a write before it reports it failed (we then try again)."""


def report_client_error(error: KafkaError) -> None:
    """``error_cb`` of every client: connection trouble is logged once per interval, counted."""
    CLIENT_ERRORS.warning(f"kafka client: {error.name()}", detail=error.str())


async def report_consumer_error(error: KafkaError) -> None:
    """The same, for ``confluent_kafka.aio.AIOConsumer``, which awaits its callbacks on the loop."""
    report_client_error(error)


def _base(bootstrap_servers: str, extra: dict[str, Any], *, on_loop: bool = False) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap_servers,
        "log_level": 0,
        "logger": LIBRDKAFKA_LOG,
        "error_cb": report_consumer_error if on_loop else report_client_error,
        **{key.replace("_", "."): value for key, value in extra.items()},
    }


def partition_argument(partition: int | None) -> int:
    """librdkafka's ``partition``: -1 (RD_KAFKA_PARTITION_UA) lets the partitioner pick from the key."""
    return -1 if partition is None else partition


def produce(
    producer: Producer, write: Write, on_delivery: Callable[[KafkaError | None, Message], None]
) -> None:
    """Hand one write to the producer (BufferError when its queue is full, KafkaException)."""
    producer.produce(
        write.topic,
        value=write.value,
        key=write.key,
        headers=cast(list[tuple[str, str | bytes | None]] | None, write.headers),
        partition=partition_argument(write.partition),
        on_delivery=on_delivery,
    )


def producer_config(bootstrap_servers: str, **extra: Any) -> dict[str, Any]:
    """acks=all, idempotent, and murmur2 partitioning, so a key lands where the Java clients put it."""
    return _base(
        bootstrap_servers,
        {
            "acks": "all",
            "enable_idempotence": True,
            "partitioner": "murmur2_random",
            "linger_ms": 5,
            "delivery_timeout_ms": DELIVERY_TIMEOUT_MS,
            **extra,
        },
    )


def idempotent_producer(bootstrap_servers: str, **extra: Any) -> Producer:
    """A synchronous producer, for the command line and tools (the worker writes in transactions)."""
    return Producer(producer_config(bootstrap_servers, **extra))


def admin_client(bootstrap_servers: str) -> AdminClient:
    """For topic admin (``topics ensure``, tools): logs like every other client."""
    return AdminClient(_base(bootstrap_servers, {}))


def stable_bounds(
    admin: AdminClient, partitions: Iterable[tuple[str, int]], timeout: float
) -> dict[tuple[str, int], tuple[int, int]]:
    """The oldest offset and the last stable offset (what ``read_committed`` readers read up to) of
    each partition, in two requests for them all. Blocking: run it in a thread. KafkaException when
    the cluster does not answer."""
    asked = list(partitions)

    def offsets(spec: OffsetSpec) -> dict[tuple[str, int], int]:
        answers = admin.list_offsets(
            {TopicPartition(topic, number): spec for topic, number in asked},
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=timeout,
        )
        return {(tp.topic, tp.partition): int(future.result().offset) for tp, future in answers.items()}

    starts = offsets(OffsetSpec.earliest())  # type: ignore[no-untyped-call]
    ends = offsets(OffsetSpec.latest())  # type: ignore[no-untyped-call]
    return {partition: (starts[partition], ends[partition]) for partition in ends}


def group_consumer_config(
    bootstrap_servers: str, group_id: str, *, on_loop: bool = True, **extra: Any
) -> dict[str, Any]:
    """A member of a consumer group whose offsets are committed with what it wrote (in the worker's
    transactions, or the send log's database), never automatically; it reads only committed
    records. ``on_loop``: for an AIOConsumer (the lanes), else a blocking Consumer in a thread."""
    return _base(
        bootstrap_servers,
        {
            "group_id": group_id,
            "auto_offset_reset": "earliest",
            "enable_auto_commit": False,
            "isolation_level": "read_committed",
            "partition_assignment_strategy": "cooperative-sticky",
            # librdkafka prefetches up to 100,000 records a partition and 64 MiB a consumer by
            # default: with a backlog, that is the worker's memory. A few thousand keep it busy.
            "queued_min_messages": PREFETCH_RECORDS,
            "queued_max_messages_kbytes": PREFETCH_KIB,
            **extra,
        },
        on_loop=on_loop,
    )


def reader_config(bootstrap_servers: str, *, on_loop: bool = False, **extra: Any) -> dict[str, Any]:
    """A consumer that only assigns partitions to itself and never commits (state restore, views).
    librdkafka wants a group id all the same; it is never joined. ``on_loop``: for an AIOConsumer."""
    return _base(
        bootstrap_servers,
        {
            "group_id": f"mall-notify-reader-{uuid.uuid4().hex}",
            "enable_auto_commit": False,
            "enable_partition_eof": False,
            **extra,
        },
        on_loop=on_loop,
    )


class WriteProblem(StrEnum):
    """What a failed write means for the record it was made for."""

    RECORD = "record"
    """The record cannot be written as it is (too large with its headers, an invalid record): write
    it in a form that fits, at once."""
    REFUSED = "refused"
    """The cluster refuses it for another lasting reason (authorization, policy): try a few times,
    then write it in a form that fits."""
    OUTAGE = "outage"
    """The cluster is unreachable or busy: try again until it is back; the partition waits."""


_RECORD_ERRORS = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,
    }
)

_REFUSALS = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.POLICY_VIOLATION,
        KafkaError.TOPIC_EXCEPTION,
        KafkaError.INVALID_REQUIRED_ACKS,
    }
)


def write_problem(error: KafkaError) -> WriteProblem:
    """Only what is known to be about the record, or a lasting refusal, ends in a dead letter;
    anything else (outages, timeouts, an aborted or fenced transaction purging its writes) is
    tried again, and a partition waits visibly rather than a good record being dead-lettered."""
    if error.code() in _RECORD_ERRORS:
        return WriteProblem.RECORD
    if error.code() in _REFUSALS:
        return WriteProblem.REFUSED
    return WriteProblem.OUTAGE
