"""Asking for a person's history: a phone number or an openid, written as people write them, and
a moment to look back to; what the history shows is tested on PostgreSQL (test_send_log_store)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.core.moments import parse_moment
from streams.ops.recipient_history import recipient_query

AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("phone", "openid", "problem"),
    [
        ("12345", None, "phone: not a mainland mobile number"),
        ("138abcd5678", None, "phone: not a mainland mobile number"),
        ("١٣٨١٢٣٤٥٦٧٨", None, "phone: not a mainland mobile number"),  # Arabic-Indic digits
        (None, "o-short", "openid: not a WeChat openid"),
        (None, None, "give one of phone or openid"),
    ],
)
def test_a_phone_or_openid_that_is_none_is_refused_saying_why(
    phone: str | None, openid: str | None, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        recipient_query(b"k" * 32, phone, openid, None, None)


def test_a_phone_may_be_written_as_people_write_it() -> None:
    same = {recipient_query(b"k" * 32, p, None, None, None) for p in ("+86 138 1234 5678", "13812345678")}
    assert len(same) == 1


@pytest.mark.parametrize("text", ["99999999d", "4000d", "2h30m", "²h"])
def test_a_moment_out_of_range_or_unreadable_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"further back|neither like"):
        parse_moment(text, AT)
