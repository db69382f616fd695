"""The clock of the lanes that keep time for buyers (quiet hours): the system's, or, for demos and
tests, the system's moved by what a clock file says (``MALL_NOTIFY_CLOCK_FILE``), so a night can
be shown in a minute. The file holds ``{"offset_seconds": N}``; it is read again when it changes,
at most a few times a second, and a missing or unreadable file moves nothing."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path

import orjson

from streams.core.quiet_hours import minute_of
from streams.core.rendering import MALL_TIME_ZONE
from streams.logs import fields, get_logger

log = get_logger("clock")
CHECK_SECONDS = 0.1


class ShiftedClock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0.0
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0

    def offset(self) -> float:
        now = time.monotonic()
        if now - self._checked >= CHECK_SECONDS:
            self._checked = now
            self._read()
        return self._offset

    def _read(self) -> None:
        try:
            status = os.stat(self.path)
            stamp = (status.st_ino, status.st_mtime_ns)  # a rewrite is a new file
            if stamp == self._stamp:
                return
            offset = float(orjson.loads(self.path.read_bytes())["offset_seconds"])
        except FileNotFoundError:
            self._stamp, self._offset = None, 0.0
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("clock file unreadable, the clock stays as it was", extra=fields(error=str(exc)))
            return
        self._stamp = stamp
        if offset != self._offset:
            log.info("clock moved", extra=fields(offset_seconds=round(offset, 3)))
        self._offset = offset

    def time(self) -> float:
        """Epoch seconds, moved."""
        return time.time() + self.offset()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)


def mall_time(clock_time: str, days: int = 0, day: date | None = None) -> datetime:
    """``clock_time`` (HH:MM) of ``day`` (default: today) in the mall's time zone, ``days`` later (UTC)."""
    when = (day or datetime.now(MALL_TIME_ZONE).date()) + timedelta(days=days)
    hour, minute = divmod(minute_of(clock_time), 60)
    return datetime.combine(when, dt_time(hour, minute), tzinfo=MALL_TIME_ZONE).astimezone(UTC)


def set_clock(path: Path, at: datetime) -> float:
    """Make ``path``'s clock say ``at`` now; the offset written."""
    offset = at.timestamp() - time.time()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps({"offset_seconds": offset}))
    temporary.replace(path)
    return offset
