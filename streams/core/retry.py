"""When to try a failed delivery again, and when to give up. Pure: no Kafka, no clock, no randomness
of its own (``rand`` is passed in), so every decision is testable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from channels.base import ErrorClass, SendResult
from streams.core.topics import RetryTier


@dataclass(frozen=True)
class Retry:
    tier: RetryTier
    due_at: datetime


@dataclass(frozen=True)
class GiveUp:
    reason: str


def compute_backoff(delay_seconds: float, jitter: float, rand: float) -> float:
    """The tier's delay stretched by up to ``jitter`` (a fraction), never shortened: a retry is
    never early, and retries of one outage spread out instead of arriving together."""
    return delay_seconds * (1.0 + jitter * min(max(rand, 0.0), 1.0))


def decide(
    result: SendResult,
    attempts: int,
    tiers: list[RetryTier],
    *,
    unknown_code_max_retries: int,
    jitter: float,
    now: datetime,
    rand: float,
) -> Retry | GiveUp:
    """What to do after the ``attempts``-th failed attempt (1 for the first) of a delivery.

    Permanent errors are not retried. Transient ones (and an access token still refused after
    its refresh) go through the tiers in order; an unknown provider code only through the first
    ``unknown_code_max_retries`` tiers, since nobody knows yet whether waiting helps.
    """
    if result.error_class in (ErrorClass.PERMANENT, ErrorClass.UNREACHABLE):
        return GiveUp(str(result.error_class))
    allowed = min(len(tiers), unknown_code_max_retries) if result.unknown_code else len(tiers)
    if attempts > allowed:
        return GiveUp("retries_exhausted")
    tier = tiers[attempts - 1]
    delay = compute_backoff(tier.delay_seconds, jitter, rand)
    return Retry(tier, now + timedelta(seconds=delay))
