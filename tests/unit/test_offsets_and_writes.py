"""The bookkeeping every lane relies on: which offset may be committed, which partition is stalled,
and what a failed write means for its record."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from streams.runtime.kafka.clients import WriteProblem, write_problem
from streams.runtime.lanes.lane import Offsets

P = ("notify.send.wechat_oa", 2)


def test_the_committable_offset_is_the_first_unfinished_record() -> None:
    offsets = Offsets()
    for number in (10, 11, 12):
        offsets.read(P, number, at=0.0)
    offsets.done(P, 11)
    assert [(o.partition, o.offset) for o in offsets.committable()] == [(2, 10)]
    offsets.done(P, 10)
    [moved] = offsets.committable()
    assert moved.offset == 12, "10 and 11 are finished, 12 is not"
    offsets.committed([moved])
    assert offsets.committable() == [], "nothing moved since the commit"
    offsets.done(P, 12)
    assert [o.offset for o in offsets.committable()] == [13]


def test_a_partition_is_stalled_when_its_oldest_unfinished_record_is_too_old() -> None:
    offsets = Offsets()
    offsets.read(P, 5, at=100.0)
    offsets.read(P, 6, at=150.0)
    assert offsets.stalled(now=155.0, after_seconds=60) == []
    assert offsets.stalled(now=161.0, after_seconds=60) == [P]
    offsets.done(P, 5)
    assert offsets.stalled(now=161.0, after_seconds=60) == []


def test_rewinding_forgets_the_records_that_will_be_read_again() -> None:
    offsets = Offsets()
    for number in (20, 21, 22):
        offsets.read(P, number, at=0.0)
    offsets.done(P, 20)
    offsets.rewind(P, 21)
    assert offsets.in_flight() == 0
    assert [o.offset for o in offsets.committable()] == [21]


def test_a_transaction_marker_after_the_last_record_is_not_left_to_finish() -> None:
    offsets = Offsets()
    offsets.read(P, 30, at=0.0)
    offsets.done(P, 30)
    assert offsets.position(P) == 31, "the marker at 31 is where the broker's stable end is 32"
    offsets.fetched(P, 32)
    assert offsets.position(P) == 32
    offsets.read(P, 32, at=1.0)
    assert offsets.position(P) == 32, "an unfinished record holds the position"
    offsets.done(P, 32)
    assert offsets.position(P) == 33, "what was finished since counts, not the older answer"


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        (KafkaError.MSG_SIZE_TOO_LARGE, WriteProblem.RECORD),
        (KafkaError.INVALID_RECORD, WriteProblem.RECORD),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, WriteProblem.REFUSED),
        (KafkaError._MSG_TIMED_OUT, WriteProblem.OUTAGE),
        (KafkaError._TRANSPORT, WriteProblem.OUTAGE),
        (KafkaError._PURGE_QUEUE, WriteProblem.OUTAGE),  # an aborted transaction: not the record's fault
        (KafkaError.INVALID_PRODUCER_EPOCH, WriteProblem.OUTAGE),
    ],
)
def test_only_what_is_known_to_be_about_the_record_ends_in_a_dead_letter(
    code: int, problem: WriteProblem
) -> None:
    assert write_problem(KafkaError(code)) is problem
