"""The failure history survives the trip through Kafka headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from channels.base import ErrorClass
from streams.core.failures import Failure, Stage
from streams.core.source import SourceRecord

moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


@given(
    stage=st.sampled_from(Stage),
    reason=st.text(min_size=1, max_size=40),
    detail=st.text(max_size=200),
    attempts=st.integers(0, 20),
    code=st.none() | st.text(min_size=1, max_size=30),
    error_class=st.none() | st.sampled_from(ErrorClass),
    first=moments,
    due=st.none() | moments,
    replays=st.integers(0, 5),
)
def test_headers_round_trip(
    stage: Stage,
    reason: str,
    detail: str,
    attempts: int,
    code: str | None,
    error_class: ErrorClass | None,
    first: datetime,
    due: datetime | None,
    replays: int,
) -> None:
    failure = Failure(
        stage=stage,
        reason=reason,
        detail=detail,
        origin=SourceRecord(topic="t.x", partition=2, offset=9),
        first_failed_at=first,
        last_failed_at=first + timedelta(seconds=5),
        attempts=attempts,
        event_id="evt-1",
        delivery_id="d1",
        error_class=error_class,
        provider_code=code,
        due_at=due,
        replays=replays,
    )
    assert Failure.from_headers(failure.headers()) == failure


def test_a_record_without_history_has_none() -> None:
    assert Failure.from_headers([("traceparent", b"00-1-2-01")]) is None
    assert Failure.from_headers([("x-notify-stage", b"send")]) is None, "incomplete history is not trusted"


def test_a_replay_starts_the_attempts_over_and_counts_itself() -> None:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    failure = Failure(
        stage=Stage.SEND,
        reason="retries_exhausted",
        detail="busy",
        origin=SourceRecord(topic="t", partition=0, offset=1),
        first_failed_at=now,
        last_failed_at=now,
        attempts=4,
        due_at=now,
    )
    replayed = failure.replayed(now + timedelta(hours=1))
    assert (replayed.attempts, replayed.replays, replayed.due_at) == (0, 1, None)
    assert replayed.replayed_at == now + timedelta(hours=1)
    assert replayed.replayed(now).replays == 2
