"""Quiet hours: when a shop's (or a buyer's) night holds notices back, until when, and which delay
bucket a held notice waits in. Pure: the clock is passed in.

A window is a start and an end minute of the day in a time zone; one whose start is after its end
runs over midnight (22:00-08:00). A notice of a category the shop defers, decided inside the
window, waits until the window's end; one whose scene stops being valid before that (a coupon's
end) is not held but ends ``skipped`` as ``expired``.

A held notice waits on the delay topics, one per bucket of waiting time (the retry tiers'
pattern): it goes to the longest bucket not longer than what is left to wait (the shortest when
less is left) and is read again when that bucket's wait, or its own, is over; so each bucket's
records come due in the order they were written, and a notice held ten hours makes a few hops
through ever shorter buckets rather than blocking a partition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EXPIRED = "expired"
DEFERRED = "deferred"
MINUTES_A_DAY = 24 * 60
CLOCK_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
HOLD_HEADER = "mall-notify-hold-until"
"""a held notice's header: when the delay lane gives it back (epoch seconds, as text)"""


def minute_of(clock_time: str) -> int:
    """``"22:30"`` -> 1350; raises ValueError for anything but HH:MM."""
    match = CLOCK_TIME.match(clock_time)
    if match is None:
        raise ValueError(f"{clock_time!r} is not a time of day (HH:MM, 00:00 to 23:59)")
    return int(match[1]) * 60 + int(match[2])


def clock_time(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def check_window(start: str, end: str, instead: str) -> None:
    """Raises ValueError for a window that holds nothing (``instead``: what to say instead)."""
    if start == end:
        raise ValueError(f"start: equal to end, the window holds nothing ({instead})")


def zone_of(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raises ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a time zone (an IANA name, like Asia/Shanghai)") from None


@dataclass(frozen=True, slots=True)
class Window:
    """From ``start`` to ``end`` (minutes of the day) in ``zone``; start == end holds nothing."""

    start: int
    end: int
    zone: str

    def __str__(self) -> str:
        return f"{clock_time(self.start)}-{clock_time(self.end)} {self.zone}"

    def holds(self, minute: int) -> bool:
        if self.start <= self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def ends_after(self, now: datetime) -> datetime | None:
        """When the window ``now`` is in ends (None: ``now`` is not in it)."""
        local = now.astimezone(zone_of(self.zone))
        minute = local.hour * 60 + local.minute
        if not self.holds(minute):
            return None
        day = local.date() if minute < self.end else local.date() + timedelta(days=1)
        end = datetime.combine(day, time(self.end // 60, self.end % 60), tzinfo=local.tzinfo)
        return end.astimezone(now.tzinfo)


@dataclass(frozen=True, slots=True)
class Hold:
    """A notice held back: until when, and the delay bucket it waits in until it is read again."""

    until: datetime
    bucket: int
    """the index of the bucket"""
    read_again_at: datetime


def hold(until: datetime, now: datetime, buckets: list[float]) -> Hold:
    """Where a notice held ``until`` waits now: the longest bucket (seconds, shortest first) not
    longer than what is left, else the shortest; read again after the bucket's wait or its own."""
    left = (until - now).total_seconds()
    fitting = [index for index, seconds in enumerate(buckets) if seconds <= left]
    bucket = fitting[-1] if fitting else 0
    wait = min(buckets[bucket], max(left, 0.0))
    return Hold(until, bucket, now + timedelta(seconds=wait))


def expires_before(valid_until: float | None, at: datetime) -> bool:
    """Whether a notice valid until ``valid_until`` (epoch seconds; None: no end) is no longer
    valid at ``at``."""
    return valid_until is not None and valid_until < at.timestamp()
