"""The event contract: CloudEvents 1.0 structured-mode JSON envelopes with typed ``data``.

Upstream services publish these to the event topics, keyed by order number (or user id for
events without an order) so that one order's events stay in order on one partition.
``shopid`` is a CloudEvents extension attribute (CloudEvents attribute names are lowercase
letters and digits only, so it cannot be spelled ``shop_id`` on the wire).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from streams.core.errors import EventRejected, RejectReason
from streams.core.validation import describe

Text = Annotated[str, Field(min_length=1, max_length=200)]
Fen = Annotated[int, Field(ge=0, description="an amount of money in fen (0.01 yuan)")]


class Model(BaseModel):
    """Tolerant reader: unknown attributes (new CloudEvents extensions, new data fields) are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class Party(Model):
    """A buyer or seller as the notification channels reach them."""

    user_id: Text
    oa_openid: Text | None = Field(default=None, description="openid under the shop's Official Account")
    mp_openid: Text | None = Field(default=None, description="openid under the shop's Mini Program")
    phone: Annotated[str, Field(pattern=r"^\+?\d{6,15}$")] | None = None


class OrderSubmitted(Model):
    order_no: Text
    buyer: Party
    seller: Party | None = None
    goods_name: Text
    total_amount_fen: Fen
    submitted_at: AwareDatetime


class PaymentSucceeded(Model):
    order_no: Text
    buyer: Party
    seller: Party | None = None
    goods_name: Text
    pay_amount_fen: Fen
    pay_method: Text | None = None
    paid_at: AwareDatetime


class ShipmentDispatched(Model):
    order_no: Text
    buyer: Party
    goods_name: Text
    express_company: Text
    tracking_no: Text
    shipped_at: AwareDatetime


class OrderRefunded(Model):
    order_no: Text
    buyer: Party
    seller: Party | None = None
    goods_name: Text
    refund_amount_fen: Fen
    reason: Text | None = None
    refunded_at: AwareDatetime


class RefundRequested(Model):
    """A buyer asks the seller for a refund (维权)."""

    order_no: Text
    buyer: Party
    seller: Party
    goods_name: Text
    refund_amount_fen: Fen
    reason: Text | None = None
    requested_at: AwareDatetime


class WithdrawalSucceeded(Model):
    buyer: Party
    amount_fen: Fen
    account: Text = Field(description="where the money went, e.g. 微信零钱")
    withdrawn_at: AwareDatetime


class RechargeSucceeded(Model):
    buyer: Party
    amount_fen: Fen
    balance_fen: Fen
    recharged_at: AwareDatetime


class CouponIssued(Model):
    buyer: Party
    coupon_name: Text
    coupon_value: Text = Field(description="what the coupon is worth, as shown to buyers, e.g. 满100减20")
    expires_at: AwareDatetime


class CodeRequested(Model):
    """A verification code was generated for a user (the account service keeps the code itself)."""

    user: Party
    purpose: Literal["register", "reset_password", "login"]
    code: Annotated[str, Field(pattern=r"^\d{4,8}$")]
    expires_in_minutes: int = Field(default=5, ge=1, le=60)


class Envelope(Model):
    specversion: Literal["1.0"]
    id: Text
    source: Text
    time: AwareDatetime
    subject: Text | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    shop_id: int = Field(alias="shopid", gt=0)


class OrderSubmittedEvent(Envelope):
    type: Literal["order.submitted"]
    data: OrderSubmitted


class PaymentSucceededEvent(Envelope):
    type: Literal["payment.succeeded"]
    data: PaymentSucceeded


class ShipmentDispatchedEvent(Envelope):
    type: Literal["shipment.dispatched"]
    data: ShipmentDispatched


class OrderRefundedEvent(Envelope):
    type: Literal["order.refunded"]
    data: OrderRefunded


class RefundRequestedEvent(Envelope):
    type: Literal["order.refund_requested"]
    data: RefundRequested


class WithdrawalSucceededEvent(Envelope):
    type: Literal["wallet.withdrawal_succeeded"]
    data: WithdrawalSucceeded


class RechargeSucceededEvent(Envelope):
    type: Literal["wallet.recharge_succeeded"]
    data: RechargeSucceeded


class CouponIssuedEvent(Envelope):
    type: Literal["coupon.issued"]
    data: CouponIssued


class CodeRequestedEvent(Envelope):
    type: Literal["auth.code_requested"]
    data: CodeRequested


Event = Annotated[
    OrderSubmittedEvent
    | PaymentSucceededEvent
    | ShipmentDispatchedEvent
    | OrderRefundedEvent
    | RefundRequestedEvent
    | WithdrawalSucceededEvent
    | RechargeSucceededEvent
    | CouponIssuedEvent
    | CodeRequestedEvent,
    Field(discriminator="type"),
]
EVENT_MODELS: dict[str, type[Envelope]] = {
    "order.submitted": OrderSubmittedEvent,
    "payment.succeeded": PaymentSucceededEvent,
    "shipment.dispatched": ShipmentDispatchedEvent,
    "order.refunded": OrderRefundedEvent,
    "order.refund_requested": RefundRequestedEvent,
    "wallet.withdrawal_succeeded": WithdrawalSucceededEvent,
    "wallet.recharge_succeeded": RechargeSucceededEvent,
    "coupon.issued": CouponIssuedEvent,
    "auth.code_requested": CodeRequestedEvent,
}
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(raw: bytes | None) -> Event:
    """Parse one record value into a typed event, or raise :class:`EventRejected`."""
    try:
        document: Any = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as exc:
        raise EventRejected(RejectReason.INVALID_JSON, str(exc)) from None
    if not isinstance(document, dict):
        raise EventRejected(RejectReason.SCHEMA_INVALID, "the event must be a JSON object")
    event_type = document.get("type")
    if event_type not in EVENT_MODELS:
        raise EventRejected(RejectReason.UNKNOWN_TYPE, f"unknown event type {event_type!r}")
    try:
        return _EVENT_ADAPTER.validate_python(document)
    except ValidationError as exc:
        # the first path part is the union tag (the event type): leave it out of the message
        raise EventRejected(RejectReason.SCHEMA_INVALID, describe(exc, skip_first=1, limit=5)) from None


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every event type, as published under ``config/schemas/``."""
    return {
        event_type: model.model_json_schema(by_alias=True, mode="validation")
        for event_type, model in EVENT_MODELS.items()
    }
