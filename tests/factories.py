"""Builders of realistic events and deliveries for tests (plain dicts and models, no Kafka)."""

from __future__ import annotations

import copy
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from channels.base import ChannelName, Delivery
from streams.core.dispatch import Dispatch
from streams.core.source import SourceRecord

ROOT = Path(__file__).resolve().parent.parent
DEMO_SHOP = 9001
DEMO_APPID = "wx5f2a9c1d8e7b6a01"
DEMO_TEMPLATE_ID = "Zq3RkV7mC1pT9wXo2bN8sYd4fLh6gJ0aEuKiM5rQvWc"
BUYER_OPENID = "oR8sT1a2b3c4d5e6f7g8h9i0jKlM"
UNFOLLOWED_OPENID = "oR8sTunfollowed0000000000xYz"


def payment_event(**data_overrides: Any) -> dict[str, Any]:
    """A payment.succeeded event of the demo shop; ``data`` fields can be overridden."""
    order_no = data_overrides.pop("order_no", f"E{uuid.uuid4().hex[:12].upper()}")
    data = {
        "order_no": order_no,
        "buyer": {"user_id": "u-88231", "oa_openid": BUYER_OPENID, "phone": "13812345678"},
        "goods_name": "纯棉短袖T恤 白色 L码",
        "pay_amount_fen": 12900,
        "pay_method": "wechat_pay",
        "paid_at": "2026-11-25T12:03:10Z",
    }
    data.update(data_overrides)
    return {
        "specversion": "1.0",
        "id": f"evt-{uuid.uuid4().hex}",
        "type": "payment.succeeded",
        "source": "/mall/payment",
        "time": "2026-11-25T12:03:11Z",
        "subject": f"order/{order_no}",
        "shopid": DEMO_SHOP,
        "data": data,
    }


def with_changes(event: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    changed.update(envelope)
    return changed


def to_bytes(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document)


def delivery(**overrides: Any) -> Delivery:
    """A rendered OA message of the demo shop, as a channel receives it."""
    values: dict[str, Any] = {
        "delivery_id": uuid.uuid4().hex,
        "channel": ChannelName.WECHAT_OA,
        "account": DEMO_APPID,
        "recipient": BUYER_OPENID,
        "template_id": DEMO_TEMPLATE_ID,
        "fields": {
            "character_string1": "E202611250001",
            "amount2": "129.00元",
            "thing3": "纯棉短袖T恤",
            "time4": "2026-11-25 20:03",
        },
    }
    values.update(overrides)
    return Delivery(**values)


def dispatch(message: Delivery | None = None, **overrides: Any) -> Dispatch:
    """A delivery as the router puts it on a send topic (``message`` defaults to :func:`delivery`)."""
    values: dict[str, Any] = {
        "delivery": message or delivery(),
        "event_id": f"evt-{uuid.uuid4().hex}",
        "event_type": "payment.succeeded",
        "shop_id": DEMO_SHOP,
        "scene": "buyer_order_paid",
        "source": SourceRecord("mall.payments", 0, 7),
        "fanout": 1,
        "created_at": datetime(2026, 11, 25, 12, 3, 12, tzinfo=UTC),
    }
    values.update(overrides)
    return Dispatch(**values)


SELLER_OPENID = "oSeLLer0a1b2c3d4e5f6g7h8i9jK"
MP_OPENID = "oMp1a2b3c4d5e6f7g8h9i0jKlMnO"
BUYER = {"user_id": "u-88231", "oa_openid": BUYER_OPENID, "mp_openid": MP_OPENID, "phone": "13812345678"}
SELLER = {"user_id": "s-1001", "oa_openid": SELLER_OPENID}
AT = "2026-11-25T04:06:01Z"  # 12:06 in Asia/Shanghai
COUPON_ENDS = "2026-12-12T15:59:59Z"
"""when the sample coupon ends (the sample events' 双十二)"""


def event(event_type: str, data: dict[str, Any], shop: int = DEMO_SHOP) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"evt-{uuid.uuid4().hex}",
        "type": event_type,
        "source": "/mall/test",
        "time": AT,
        "shopid": shop,
        "data": data,
    }


def fresh_code(phone: str | None = None) -> dict[str, Any]:
    """A verification code requested now (a code is only sent within its validity), by default
    for a new phone each time (codes are limited per phone)."""
    phone = phone or f"139{random.randrange(10**8):08d}"
    requested = event(
        "auth.code_requested",
        {"user": {"user_id": f"u-{phone}", "phone": phone}, "purpose": "login", "code": "620417"},
    )
    return requested | {"time": datetime.now(UTC).isoformat()}


SAMPLE_EVENTS: dict[str, dict[str, Any]] = {
    "order.submitted": event(
        "order.submitted",
        {
            "order_no": "E1",
            "buyer": BUYER,
            "seller": SELLER,
            "goods_name": "帆布双肩包",
            "total_amount_fen": 15900,
            "submitted_at": AT,
        },
    ),
    "payment.succeeded": event(
        "payment.succeeded",
        {
            "order_no": "E1",
            "buyer": BUYER,
            "seller": SELLER,
            "goods_name": "帆布双肩包",
            "pay_amount_fen": 15900,
            "paid_at": AT,
        },
    ),
    "shipment.dispatched": event(
        "shipment.dispatched",
        {
            "order_no": "E1",
            "buyer": BUYER,
            "goods_name": "帆布双肩包",
            "express_company": "顺丰速运",
            "tracking_no": "SF123",
            "shipped_at": AT,
        },
    ),
    "order.refunded": event(
        "order.refunded",
        {
            "order_no": "E1",
            "buyer": BUYER,
            "goods_name": "帆布双肩包",
            "refund_amount_fen": 5000,
            "refunded_at": AT,
            "manual": True,
        },
    ),
    "order.refund_requested": event(
        "order.refund_requested",
        {
            "order_no": "E1",
            "buyer": BUYER,
            "seller": SELLER,
            "goods_name": "帆布双肩包",
            "refund_amount_fen": 5000,
            "reason": "尺码不合适",
            "requested_at": AT,
        },
    ),
    "wallet.withdrawal_succeeded": event(
        "wallet.withdrawal_succeeded",
        {"buyer": BUYER, "amount_fen": 10000, "account": "微信零钱", "withdrawn_at": AT},
    ),
    "wallet.recharge_succeeded": event(
        "wallet.recharge_succeeded",
        {"buyer": BUYER, "amount_fen": 10000, "balance_fen": 25050, "recharged_at": AT},
    ),
    "coupon.issued": event(
        "coupon.issued",
        {
            "buyer": BUYER,
            "coupon_name": "双十二店铺券",
            "coupon_value": "满100减20",
            "expires_at": COUPON_ENDS,
        },
    ),
    "auth.code_requested": event(
        "auth.code_requested", {"user": BUYER, "purpose": "register", "code": "482913"}
    ),
    "sms_balance.low": event(
        "sms_balance.low",
        {"seller": SELLER, "available": 37, "threshold": 100, "purchased": 1000, "fell_at": AT},
    ),
    "webhook.disabled": event(
        "webhook.disabled",
        {
            "seller": SELLER,
            "endpoint_id": "wh_0123456789abcdef",
            "host": "hooks.example.com",
            "reason": "failing for 24 hours",
            "disabled_at": AT,
        },
    ),
    "sms_review.finished": event(
        "sms_review.finished",
        {
            "seller": SELLER,
            "kind": "signature",
            "subject": "短信签名百客优选",
            "result": "通过",
            "reason": "无",
            "reviewed_at": AT,
        },
    ),
}
