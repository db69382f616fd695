"""Verification codes: never sent late, never more often to a phone than Aliyun allows. Pure.

A code that reaches its sender after its validity (counted from the event's time) ends skipped
as ``expired``. A phone number gets at most what Aliyun's default flow control allows for codes
(1 a minute, 5 an hour, 10 a day); beyond that the code ends skipped as ``phone_limit``, before
Aliyun is asked, instead of Aliyun answering ``isv.BUSINESS_LIMIT_CONTROL``.
"""

from __future__ import annotations

from collections import deque
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


def expired(event_time: datetime | None, now: datetime, rules: CodeRules) -> bool:
    """Whether a code of ``event_time`` is too old to send at ``now``."""
    return event_time is not None and (now - event_time).total_seconds() > rules.validity_seconds


class PhoneLimits:
    """The codes sent to each phone number recently (a sender lane's own; a restart forgets them,
    and Aliyun's own flow control still applies)."""

    def __init__(self, rules: CodeRules) -> None:
        self._rules = rules
        self._longest = max(window for window, _ in rules.limits)
        self._sent: dict[str, deque[float]] = {}

    def refusal(self, phone: str, now: float) -> str | None:
        """Why one more code to ``phone`` at ``now`` would break a limit, or None."""
        sent = self._recent(phone, now)
        for window, most in self._rules.limits:
            if sum(1 for at in sent if now - at < window) >= most:
                return f"{PHONE_LIMIT}: at most {most} code(s) in {_duration(window)} to one phone"
        return None

    def sent(self, phone: str, now: float) -> None:
        self._sent.setdefault(phone, self._recent(phone, now)).append(now)

    def _recent(self, phone: str, now: float) -> deque[float]:
        """The phone's sends within the longest window (a phone with none is forgotten)."""
        sent = self._sent.get(phone, deque())
        while sent and now - sent[0] >= self._longest:
            sent.popleft()
        if not sent:
            self._sent.pop(phone, None)
        return sent


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    return f"{seconds:g} s"


class CodeGate:
    """What a verification code must pass before its sender calls Aliyun. Admitting a code counts
    it against its phone's limits at once, so two codes in flight cannot both take the last slot."""

    def __init__(self, rules: CodeRules) -> None:
        self.rules = rules
        self._limits = PhoneLimits(rules)

    def refusal(self, phone: str, event_time: datetime | None, now: datetime) -> str | None:
        """Why the code is not sent (``expired``, ``phone_limit: ...``), or None: it may go."""
        if expired(event_time, now, self.rules):
            return EXPIRED
        at = now.timestamp()
        refused = self._limits.refusal(phone, at)
        if refused is None:
            self._limits.sent(phone, at)
        return refused
