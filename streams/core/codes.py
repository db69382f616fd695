"""Verification codes: never sent late, never more often to a phone than Aliyun allows. Pure.

A code that reaches its sender after its validity (counted from the event's time) ends skipped
as ``expired``. A phone number gets at most what Aliyun's default flow control allows for codes
(1 a minute, 5 an hour, 10 a day); beyond that the code ends skipped as ``phone_limit``, before
Aliyun is asked, instead of Aliyun answering ``isv.BUSINESS_LIMIT_CONTROL``. Where the sends of
each phone are kept is the runtime's (:mod:`streams.runtime.lanes.code_limits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

EXPIRED = "expired"
PHONE_LIMIT = "phone_limit"
ALIYUN_CODE_LIMITS = ((60.0, 1), (3600.0, 5), (86400.0, 10))
"""(window in seconds, messages at most) per phone number"""


@dataclass(frozen=True)
class CodeRules:
    validity_seconds: float = 300.0
    limits: tuple[tuple[float, int], ...] = ALIYUN_CODE_LIMITS

    @property
    def longest_window(self) -> float:
        """How long a code sent to a phone counts against it."""
        return max(window for window, _ in self.limits)


def expired(event_time: datetime | None, now: datetime, rules: CodeRules) -> bool:
    """Whether a code of ``event_time`` is too old to send at ``now``."""
    return event_time is not None and (now - event_time).total_seconds() > rules.validity_seconds


def phone_limit(sent: Sequence[float], now: float, rules: CodeRules) -> str | None:
    """Why one more code at ``now`` to a phone that was sent codes at ``sent`` would break a
    limit, or None."""
    for window, most in rules.limits:
        if sum(1 for at in sent if now - at < window) >= most:
            return f"{PHONE_LIMIT}: at most {most} code(s) in {_duration(window)} to one phone"
    return None


def recent(sent: Sequence[float], now: float, rules: CodeRules) -> list[float]:
    """The sends that still count at ``now`` (within the longest window)."""
    return [at for at in sent if now - at < rules.longest_window]


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    return f"{seconds:g} s"
