"""The published JSON Schemas and the worker's parser accept and refuse the same events: an
upstream service that validates against the schemas and one that doesn't get the same answer.

Each near miss changes one thing of a valid event. A standard validator (jsonschema, draft 2020-12,
with the date-time format checked) decides with the schema of the event's declared type.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from streams.core.errors import EventRejected
from streams.core.events import parse_event
from tests.factories import SAMPLE_EVENTS

SCHEMAS = {
    path.name.removesuffix(".schema.json"): Draft202012Validator(
        json.loads(path.read_text()), format_checker=FormatChecker()
    )
    for path in (Path(__file__).parents[2] / "config" / "schemas").glob("*.schema.json")
}
PAID = SAMPLE_EVENTS["payment.succeeded"]
CODE = SAMPLE_EVENTS["auth.code_requested"]


def schema_accepts(document: Any) -> bool:
    event_type = document.get("type") if isinstance(document, dict) else None
    validator = SCHEMAS.get(event_type) if isinstance(event_type, str) else None
    return validator is not None and validator.is_valid(document)


def parser_accepts(document: Any) -> bool:
    try:
        parse_event(orjson.dumps(document))
    except EventRejected:
        return False
    return True


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``base`` with the value at a dotted path replaced (or removed, for ...)."""
    document = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = document
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return document


NEAR_MISSES = [
    ("a string amount", changed(PAID, "data.pay_amount_fen", "4999"), False),
    ("an integral float amount", changed(PAID, "data.pay_amount_fen", 12900.0), True),
    ("a fractional amount", changed(PAID, "data.pay_amount_fen", 12900.5), False),
    ("a negative amount", changed(PAID, "data.pay_amount_fen", -1), False),
    ("a boolean amount", changed(PAID, "data.pay_amount_fen", True), False),
    ("shop_id instead of shopid", changed(changed(PAID, "shopid", ...), "shop_id", 1001), False),
    ("a string shop id", changed(PAID, "shopid", "1001"), False),
    ("shop id zero", changed(PAID, "shopid", 0), False),
    ("an integer time", changed(PAID, "time", 1764000000), False),
    ("a time of digits", changed(PAID, "time", "1764000000"), False),
    ("a time without offset", changed(PAID, "time", "2026-11-25T12:00:00"), False),
    ("a time without seconds", changed(PAID, "time", "2026-11-25T12:00Z"), False),
    ("a time with a space", changed(PAID, "time", "2026-11-25 12:00:00Z"), False),
    ("a lowercase time", changed(PAID, "time", "2026-11-25t12:00:00z"), True),
    ("nanoseconds and an offset", changed(PAID, "data.paid_at", "2026-11-25T12:00:00.123456789+08:00"), True),
    ("a 30th of February", changed(PAID, "data.paid_at", "2026-02-30T12:00:00Z"), False),
    ("an offset of 24 hours", changed(PAID, "data.paid_at", "2026-11-25T12:00:00+24:00"), False),
    ("a leap second", changed(PAID, "data.paid_at", "2026-12-31T23:59:60Z"), False),
    ("no goods name", changed(PAID, "data.goods_name", ...), False),
    ("an empty goods name", changed(PAID, "data.goods_name", ""), False),
    ("a goods name of 201 characters", changed(PAID, "data.goods_name", "x" * 201), False),
    ("a null optional pay method", changed(PAID, "data.pay_method", None), True),
    ("a null required buyer", changed(PAID, "data.buyer", None), False),
    ("a phone with letters", changed(PAID, "data.buyer.phone", "1381234567a"), False),
    ("a phone with full-width digits", changed(PAID, "data.buyer.phone", "１３８１２３４５６７８"), False),
    ("an unknown extension attribute", changed(PAID, "traceparent", "00-abc"), True),
    ("an unknown data field", changed(PAID, "data.coupon", "x"), True),
    ("spec version 0.3", changed(PAID, "specversion", "0.3"), False),
    ("a code of letters", changed(CODE, "data.code", "abcdef"), False),
    ("a purpose of the future", changed(CODE, "data.purpose", "bind_phone"), False),
    ("an expiry of 61 minutes", changed(CODE, "data.expires_in_minutes", 61), False),
    ("an expiry as a float", changed(CODE, "data.expires_in_minutes", 5.0), True),
]


@pytest.mark.parametrize(("what", "document", "valid"), NEAR_MISSES, ids=[case[0] for case in NEAR_MISSES])
def test_the_schema_and_the_parser_agree_on_near_misses(
    what: str, document: dict[str, Any], valid: bool
) -> None:
    assert (schema_accepts(document), parser_accepts(document)) == (valid, valid), what


@pytest.mark.parametrize("event_type", sorted(SAMPLE_EVENTS))
def test_every_sample_event_is_valid_for_both(event_type: str) -> None:
    document = SAMPLE_EVENTS[event_type]
    assert schema_accepts(document)
    assert parser_accepts(document)


ODD_VALUES = st.sampled_from(
    [None, True, 0, -1, 1.5, 12900.0, "", "4999", "x" * 201, [], {}, "2026-11-25T12:00:00Z", "2026-11-25"]
)


def leaves(document: Any, prefix: str = "") -> list[str]:
    if not isinstance(document, dict):
        return [prefix]
    return [path for key, value in document.items() for path in leaves(value, f"{prefix}{key}.")]


@given(event_type=st.sampled_from(sorted(SAMPLE_EVENTS)), data=st.data())
@settings(max_examples=300, deadline=None)
def test_whatever_one_value_becomes_the_schema_and_the_parser_agree(
    event_type: str, data: st.DataObject
) -> None:
    base = SAMPLE_EVENTS[event_type]
    path = data.draw(st.sampled_from(leaves(base))).rstrip(".")
    document = changed(base, path, data.draw(ODD_VALUES | st.just(...)))
    assert schema_accepts(document) == parser_accepts(document), (path, document)
