"""The event contract as an upstream team sees it: what is accepted, what is rejected and why."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson
import pytest

from streams.core.errors import EventRejected, RejectReason
from streams.core.events import PaymentSucceededEvent, json_schemas, parse_event
from tests.factories import ROOT, payment_event, to_bytes, with_changes

SCHEMAS = ROOT / "config" / "schemas"
SAMPLES = ROOT / "config" / "samples" / "demo-events.jsonl"


def test_a_payment_event_parses_into_typed_fields() -> None:
    event = parse_event(to_bytes(payment_event(order_no="E1", pay_amount_fen=12900)))
    assert isinstance(event, PaymentSucceededEvent)
    assert event.shop_id == 9001
    assert event.data.order_no == "E1"
    assert event.data.pay_amount_fen == 12900
    assert event.data.paid_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"type": "payment.succeeded", ', RejectReason.INVALID_JSON),
        (b"", RejectReason.INVALID_JSON),
        (b"[1, 2]", RejectReason.SCHEMA_INVALID),
        (to_bytes(with_changes(payment_event(), type="order.chargeback")), RejectReason.UNKNOWN_TYPE),
        (to_bytes(with_changes(payment_event(), specversion="0.3")), RejectReason.SCHEMA_INVALID),
        (to_bytes(with_changes(payment_event(), time="2026-11-25T12:00:00")), RejectReason.SCHEMA_INVALID),
        (to_bytes(payment_event(pay_amount_fen=-1)), RejectReason.SCHEMA_INVALID),
    ],
)
def test_bad_records_are_rejected_with_a_reason(raw: bytes, reason: RejectReason) -> None:
    with pytest.raises(EventRejected) as rejected:
        parse_event(raw)
    assert rejected.value.reason is reason


def test_a_schema_error_names_the_field() -> None:
    event = payment_event()
    del event["data"]["goods_name"]
    with pytest.raises(EventRejected) as rejected:
        parse_event(to_bytes(event))
    assert "data.goods_name: Field required" in rejected.value.detail


def test_unknown_attributes_are_tolerated() -> None:
    event = with_changes(payment_event(), traceparent="00-abc-def-01")
    event["data"]["coupon_discount_fen"] = 500
    assert parse_event(to_bytes(event)).id == event["id"]


def test_published_schemas_match_the_models() -> None:
    """config/schemas is what upstream teams validate against: it must not drift from the code."""
    for event_type, schema in json_schemas().items():
        published = json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())
        assert published == json.loads(orjson.dumps(schema)), (
            f"run `mall-notify schemas export` ({event_type})"
        )


def test_published_schemas_agree_with_the_parser_on_the_samples() -> None:
    """Upstream validating with the published schema gets the same verdict as our parser."""
    for line in Path(SAMPLES).read_bytes().splitlines():
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        schema_path = SCHEMAS / f"{document.get('type')}.schema.json"
        if not schema_path.exists():
            continue
        schema_ok = jsonschema.Draft202012Validator(json.loads(schema_path.read_text())).is_valid(document)
        try:
            parse_event(line)
            parser_ok = True
        except EventRejected:
            parser_ok = False
        assert schema_ok == parser_ok, document["id"]
