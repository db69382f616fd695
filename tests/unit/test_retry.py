"""Retry decisions and backoff, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from channels.base import ErrorClass, SendResult
from streams.core.retry import GiveUp, Retry, compute_backoff, decide
from streams.core.topics import RetryTier

TIERS = [
    RetryTier(name="10s", delay_seconds=10),
    RetryTier(name="1m", delay_seconds=60),
    RetryTier(name="10m", delay_seconds=600),
]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
BUSY = SendResult.failed(ErrorClass.TRANSIENT, "-1", "busy")


@given(st.floats(min_value=0.1, max_value=3600), st.floats(min_value=0, max_value=1), st.floats(0, 1))
def test_backoff_is_never_early_and_bounded_by_the_jitter(delay: float, jitter: float, rand: float) -> None:
    backoff = compute_backoff(delay, jitter, rand)
    assert delay <= backoff <= delay * (1 + jitter) + 1e-9


def test_transient_failures_climb_the_tiers_in_order() -> None:
    decisions = [
        decide(BUSY, attempt, TIERS, unknown_code_max_retries=1, jitter=0.0, now=NOW, rand=0.0)
        for attempt in (1, 2, 3, 4)
    ]
    assert decisions[:3] == [Retry(tier, NOW + timedelta(seconds=tier.delay_seconds)) for tier in TIERS]
    assert decisions[3] == GiveUp("retries_exhausted")


def test_permanent_failures_are_never_retried() -> None:
    permanent = SendResult.failed(ErrorClass.PERMANENT, "43101", "not subscribed")
    assert decide(permanent, 1, TIERS, unknown_code_max_retries=1, jitter=0.1, now=NOW, rand=0.3) == GiveUp(
        "permanent"
    )


def test_an_unknown_code_gets_a_bounded_number_of_retries() -> None:
    unknown = SendResult.failed(ErrorClass.TRANSIENT, "48001", "?", unknown_code=True)
    assert isinstance(decide(unknown, 1, TIERS, unknown_code_max_retries=1, jitter=0, now=NOW, rand=0), Retry)
    assert decide(unknown, 2, TIERS, unknown_code_max_retries=1, jitter=0, now=NOW, rand=0) == GiveUp(
        "retries_exhausted"
    )


def test_a_token_still_refused_after_its_refresh_is_retried_later() -> None:
    reauth = SendResult.failed(ErrorClass.REAUTH, "40001", "access token invalid")
    assert isinstance(decide(reauth, 1, TIERS, unknown_code_max_retries=1, jitter=0, now=NOW, rand=0), Retry)
