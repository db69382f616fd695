"""Per-account concurrency and rate limits, so one shop's burst cannot exhaust a provider quota."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiolimiter import AsyncLimiter


@dataclass(frozen=True)
class Limits:
    concurrency: int = 32
    """At most this many calls in flight per account (appid, or SMS signature)."""
    rate_per_second: float = 100.0
    """At most this many calls started per second per account."""


class AccountLimiter:
    """One semaphore and one leaky bucket per account, created on first use."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._rates: dict[str, AsyncLimiter] = {}

    @asynccontextmanager
    async def slot(self, account: str) -> AsyncIterator[None]:
        semaphore = self._semaphores.get(account)
        if semaphore is None:
            semaphore = self._semaphores[account] = asyncio.Semaphore(self._limits.concurrency)
        rate = self._rates.get(account)
        if rate is None:
            rate = self._rates[account] = AsyncLimiter(self._limits.rate_per_second, time_period=1.0)
        async with semaphore, rate:
            yield
