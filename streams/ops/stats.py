"""``mall-notify stats``: the accounting invariant, read from Kafka itself.

    events consumed = delivered + skipped + dead-lettered + in flight

"Consumed" is what the router's consumer group has committed on the event topics. An event is
delivered when every delivery it produced is delivered, dead-lettered when it or one of its
deliveries is, skipped when it produced none (or when it was a duplicate of an event already
handled); in flight until then (a delivery waiting in a retry tier, or not sent yet). Outcomes
are read back from the outcomes topic, latest per key. Events not consumed yet are "unread".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from streams.core.outcomes import Outcome, Status, settled
from streams.core.topics import Topics
from streams.ops.reading import ReadRecord, end_offsets, read_all, start_offsets
from streams.runtime.kafka.clients import reader_config


@dataclass(frozen=True)
class Accounting:
    consumed: int
    delivered: int
    skipped: int
    dead_lettered: int
    deliveries: Counter[str]
    retry_waiting: int
    unread: int = 0
    """events on the event topics the router has not consumed yet"""

    @property
    def in_flight(self) -> int:
        return self.consumed - self.delivered - self.skipped - self.dead_lettered

    def as_json(self) -> dict[str, object]:
        return {
            "consumed": self.consumed,
            "delivered": self.delivered,
            "skipped": self.skipped,
            "dead_lettered": self.dead_lettered,
            "in_flight": self.in_flight,
            "unread": self.unread,
            "deliveries": dict(self.deliveries),
            "retry_waiting": self.retry_waiting,
        }


def latest_outcomes(records: list[ReadRecord]) -> list[Outcome]:
    """The latest outcome of every key (a replay may have turned dead_lettered into delivered)."""
    latest: dict[bytes, Outcome] = {}
    for record in records:
        latest[record.key or b""] = Outcome.model_validate_json(record.value or b"")
    return list(latest.values())


Positions = dict[tuple[str, int], int]


def account(
    positions: Positions, starts: Positions, outcomes: list[Outcome], retry_waiting: int, unread: int = 0
) -> Accounting:
    """Classify each consumed event by its outcomes. Pure. Only events below the committed
    positions count, so an event handled but not committed yet is not counted twice."""
    consumed = sum(position - starts.get(tp, 0) for tp, position in positions.items())
    by_event: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        source = outcome.source
        if (
            starts.get((source.topic, source.partition), 0)
            <= source.offset
            < positions.get((source.topic, source.partition), 0)
        ):
            by_event.setdefault(str(source), []).append(outcome)
    statuses: Counter[Status] = Counter()
    for event_outcomes in by_event.values():
        if not settled(event_outcomes):
            continue
        found = {outcome.status for outcome in event_outcomes}
        for status in (Status.DEAD_LETTERED, Status.SKIPPED, Status.DELIVERED):
            if status in found:
                statuses[status] += 1
                break
    deliveries = Counter(o.status.value for o in outcomes if o.delivery_id)
    return Accounting(
        consumed,
        statuses[Status.DELIVERED],
        statuses[Status.SKIPPED],
        statuses[Status.DEAD_LETTERED],
        deliveries,
        retry_waiting,
        unread,
    )


def committed_positions(
    bootstrap_servers: str, group_id: str, topics: list[str]
) -> tuple[Positions, Positions, int]:
    """The group's committed position per partition, the oldest retained offsets, and the
    records not committed yet (lag)."""
    consumer = Consumer(reader_config(bootstrap_servers, group_id=group_id))
    positions: Positions = {}
    starts: Positions = {}
    lag = 0
    try:
        for topic in topics:
            first, ends = start_offsets(bootstrap_servers, topic), end_offsets(bootstrap_servers, topic)
            for partition in consumer.committed([TopicPartition(topic, p) for p in ends], timeout=10):
                number = partition.partition
                starts[(topic, number)] = first[number]
                positions[(topic, number)] = partition.offset if partition.offset >= 0 else first[number]
                lag += ends[number] - positions[(topic, number)]
    finally:
        consumer.close()
    return positions, starts, lag


def read_accounting(bootstrap_servers: str, topics: Topics, app_id: str) -> Accounting:
    positions, starts, unread = committed_positions(bootstrap_servers, app_id, topics.event_topics)
    retry_topics = [
        topics.retry_topic(channel, tier) for channel in topics.spec.send for tier in topics.spec.retry.tiers
    ]
    _, _, retry_waiting = committed_positions(bootstrap_servers, f"{app_id}-retry", retry_topics)
    records = read_all(bootstrap_servers, topics.outcomes, timeout=120)
    return account(positions, starts, latest_outcomes(records), retry_waiting, unread)
