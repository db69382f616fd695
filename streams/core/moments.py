"""Moments as people type them on the command line and in the API: ``2h``, ``30m``, ``7d`` ago,
or an ISO 8601 time (UTC when it names no zone). Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_AGO = re.compile(r"^([0-9]{1,9})([smhd])$", re.ASCII)
MAX_AGO = timedelta(days=3650)
"""how far back a moment may be asked for: ten years"""
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_moment(text: str, now: datetime) -> datetime:
    """The moment ``text`` names; ValueError says what is accepted."""
    match = _AGO.match(text)
    if match:
        ago = timedelta(**{_UNITS[match[2]]: int(match[1])})
        if ago > MAX_AGO:
            raise ValueError(f"{text!r} is further back than {MAX_AGO.days} days")
        return now - ago
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither like 2h / 30m / 7d nor an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
