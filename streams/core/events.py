"""The event contract: CloudEvents 1.0 structured-mode JSON envelopes with typed ``data``.

Upstream services publish these to the event topics, keyed by order number (or user id for
events without an order) so that one order's events stay in order on one partition.
``shopid`` is a CloudEvents extension attribute (CloudEvents attribute names are lowercase
letters and digits only, so it cannot be spelled ``shop_id`` on the wire).

Parsing is exactly as strict as the published JSON Schemas (``config/schemas/``, generated from
these models): no string-to-number coercion, times only as RFC 3339 strings with an offset,
integers as JSON Schema defines them (a number with no fractional part: ``12900`` or ``12900.0``).
Unknown attributes are ignored, as CloudEvents readers must.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, Self

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from streams.core.errors import EventRejected, RejectReason
from streams.core.quiet_hours import check_window
from streams.core.validation import describe

_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _rfc3339(value: object) -> object:
    if isinstance(value, str) and _RFC3339.match(value):
        return datetime.fromisoformat(value.upper())  # impossible dates raise ValueError, reported as such
    raise ValueError("must be an RFC 3339 date-time string with an offset, like 2026-11-25T12:03:10Z")


def _integral(value: object) -> object:
    """JSON Schema's integer: a number without a fractional part, whatever its spelling."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# constraints before the validator, so that they appear in the JSON Schema as JSON Schema keywords
Text = Annotated[str, Field(min_length=1, max_length=200)]
Fen = Annotated[
    int, Field(ge=0, description="an amount of money in fen (0.01 yuan)"), BeforeValidator(_integral)
]
Minutes = Annotated[int, Field(ge=1, le=60), BeforeValidator(_integral)]
ShopId = Annotated[int, Field(gt=0), BeforeValidator(_integral)]
Time = Annotated[
    datetime, BeforeValidator(_rfc3339), WithJsonSchema({"type": "string", "format": "date-time"})
]


class Model(BaseModel):
    """Strict, tolerant reader: values must have the schema's JSON types; unknown attributes (new
    CloudEvents extensions, new data fields) are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class Party(Model):
    """A buyer or seller as the notification channels reach them."""

    user_id: Text
    oa_openid: Text | None = Field(default=None, description="openid under the shop's Official Account")
    mp_openid: Text | None = Field(default=None, description="openid under the shop's Mini Program")
    phone: Annotated[str, Field(pattern=r"^\+?[0-9]{6,15}$")] | None = None


class OrderSubmitted(Model):
    order_no: Text
    buyer: Party
    seller: Party | None = None
    goods_name: Text
    total_amount_fen: Fen
    submitted_at: Time


class PaymentSucceeded(Model):
    order_no: Text
    buyer: Party
    seller: Party | None = None
    goods_name: Text
    pay_amount_fen: Fen
    pay_method: Text | None = None
    paid_at: Time


class ShipmentDispatched(Model):
    order_no: Text
    buyer: Party
    goods_name: Text
    express_company: Text
    tracking_no: Text
    shipped_at: Time


class OrderRefunded(Model):
    order_no: Text
    buyer: Party
    seller: Party | None = None
    goods_name: Text
    refund_amount_fen: Fen
    reason: Text | None = None
    refunded_at: Time
    manual: bool = Field(description="refunded by hand by the shop (手动退款): only these notify the buyer")


class RefundRequested(Model):
    """A buyer asks the seller for a refund (维权)."""

    order_no: Text
    buyer: Party
    seller: Party
    goods_name: Text
    refund_amount_fen: Fen
    reason: Text | None = None
    requested_at: Time


class WithdrawalSucceeded(Model):
    buyer: Party
    amount_fen: Fen
    account: Text = Field(description="where the money went, e.g. 微信零钱")
    withdrawn_at: Time


class RechargeSucceeded(Model):
    buyer: Party
    amount_fen: Fen
    balance_fen: Fen
    recharged_at: Time


class CouponIssued(Model):
    buyer: Party
    coupon_name: Text
    coupon_value: Text = Field(description="what the coupon is worth, as shown to buyers, e.g. 满100减20")
    expires_at: Time


class CodeRequested(Model):
    """A verification code was generated for a user (the account service keeps the code itself)."""

    user: Party
    purpose: Literal["register", "reset_password", "login"]
    code: Annotated[str, Field(pattern=r"^[0-9]{4,8}$")]
    expires_in_minutes: Minutes = 5


class SmsPackagePaid(Model):
    """The mall's payment service took the payment of an SMS package order (短信购买): the order is
    credited, once however often this is delivered."""

    purchase_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the order's id")]
    amount_fen: Fen
    payment_no: Text = Field(description="the payment service's reference")
    paid_at: Time


class SmsBalanceLow(Model):
    """The pipeline's own event: a shop's SMS balance fell below its threshold (published by the
    SMS sender that charged the message which crossed it, once per crossing)."""

    seller: Party
    available: Annotated[
        int, Field(ge=0, description="segments left (0 when overdrawn)"), BeforeValidator(_integral)
    ]
    threshold: Annotated[int, Field(ge=0), BeforeValidator(_integral)]
    purchased: Annotated[
        int, Field(ge=0, description="segments bought so far, paid"), BeforeValidator(_integral)
    ]
    fell_at: Time


class WebhookDisabled(Model):
    """The pipeline's own event: a shop's webhook endpoint was switched off, its calls having
    failed for a day (published by the webhook sender that switched it off, once per endpoint and
    switch)."""

    seller: Party
    endpoint_id: Annotated[str, Field(pattern=r"^wh_[0-9a-f]{16}$")]
    host: Text = Field(description="the endpoint URL's host")
    reason: Text
    disabled_at: Time


class SmsReviewFinished(Model):
    """The pipeline's own event: Aliyun's review of a shop's SMS qualification, signature or
    template ended (published by the reviews lane that took Aliyun's report, once per review's end)."""

    seller: Party
    kind: Literal["qualification", "signature", "template"]
    subject: Text = Field(description="what was reviewed, e.g. 短信签名百客优选")
    result: Text = Field(description="通过, 未通过, ...")
    reason: Text = Field(description="Aliyun's reason for a refusal, 无 otherwise")
    reviewed_at: Time


TemplateId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
SubscribeAnswer = Literal["accept", "acceptWithAudio", "acceptWithAlert", "reject", "ban", "filter"]


class MpSubscriptionAnswered(Model):
    """A buyer answered the Mini Program's subscription panel (``wx.requestSubscribeMessage``,
    https://developers.weixin.qq.com/miniprogram/dev/api/open-api/subscribe-message/wx.requestSubscribeMessage.html):
    its ``success`` result per template id, as the mall's backend got it from its front end."""

    openid: Text = Field(description="the buyer's openid under the shop's Mini Program")
    results: dict[TemplateId, SubscribeAnswer] = Field(
        min_length=1,
        max_length=5,
        description="template id -> accept (or acceptWithAudio / acceptWithAlert), reject, ban "
        "(banned by WeChat) or filter (a template of the same title was asked for too); one call "
        "asks for at most 5",
    )
    long_term: bool = Field(
        default=False,
        description="the templates asked for are long-term (长期订阅): one acceptance allows every "
        "later message; else one-time, each acceptance allows one message. One call cannot mix both",
    )
    answered_at: Time


ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM")]


class BuyerQuietHours(Model):
    """A buyer's own night, in the shop's time zone: it replaces the times of the shop's quiet hours
    (the shop still says which categories wait)."""

    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        check_window(self.start, self.end, 'say "none"')
        return self

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


class BuyerNos(Model):
    """What a buyer refuses in one scope: the whole of it, replacing what was said before. A
    verification code (``security``) cannot be refused."""

    scope: Literal["shop", "platform"] = Field(
        default="shop",
        description="shop: the event's shop only; platform: every shop of the mall",
    )
    categories_off: list[Literal["transactional", "marketing"]] = Field(
        default_factory=list,
        max_length=2,
        description="the kinds of notice the buyer refuses: transactional (orders, refunds, wallet), "
        "marketing (coupons); security notices (verification codes) always go out",
    )
    channels_off: list[Literal["wechat_oa", "wechat_mp", "aliyun_sms"]] = Field(
        default_factory=list, max_length=3, description="the channels the buyer refuses"
    )
    quiet_hours: BuyerQuietHours | Literal["none"] | None = Field(
        default=None,
        description="the buyer's own quiet hours (start, end), in the shop's time zone; "
        '"none": no quiet hours, whatever the shop says; absent: the shop\'s',
    )


class PreferencesChanged(BuyerNos):
    """What a buyer now lets the mall send them, from the mall's settings page (or the admin API)."""

    user_id: Text = Field(description="the buyer: the mall's user id, the same in every shop")
    changed_at: Time


class Envelope(Model):
    specversion: Literal["1.0"]
    id: Text
    source: Text
    time: Time
    subject: Text | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    shop_id: ShopId = Field(alias="shopid")


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


class SmsPackagePaidEvent(Envelope):
    type: Literal["sms_package.paid"]
    data: SmsPackagePaid


class SmsBalanceLowEvent(Envelope):
    type: Literal["sms_balance.low"]
    data: SmsBalanceLow


class WebhookDisabledEvent(Envelope):
    type: Literal["webhook.disabled"]
    data: WebhookDisabled


class SmsReviewFinishedEvent(Envelope):
    type: Literal["sms_review.finished"]
    data: SmsReviewFinished


class MpSubscriptionAnsweredEvent(Envelope):
    type: Literal["mp_subscription.answered"]
    data: MpSubscriptionAnswered


class PreferencesChangedEvent(Envelope):
    type: Literal["preferences.changed"]
    data: PreferencesChanged


Event = Annotated[
    OrderSubmittedEvent
    | PaymentSucceededEvent
    | ShipmentDispatchedEvent
    | OrderRefundedEvent
    | RefundRequestedEvent
    | WithdrawalSucceededEvent
    | RechargeSucceededEvent
    | CouponIssuedEvent
    | CodeRequestedEvent
    | SmsPackagePaidEvent
    | MpSubscriptionAnsweredEvent
    | PreferencesChangedEvent
    | SmsBalanceLowEvent
    | WebhookDisabledEvent
    | SmsReviewFinishedEvent,
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
    "sms_package.paid": SmsPackagePaidEvent,
    "mp_subscription.answered": MpSubscriptionAnsweredEvent,
    "preferences.changed": PreferencesChangedEvent,
    "sms_balance.low": SmsBalanceLowEvent,
    "webhook.disabled": WebhookDisabledEvent,
    "sms_review.finished": SmsReviewFinishedEvent,
}
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(raw: bytes | None) -> Event:
    """Parse one record value into a typed event, or raise :class:`EventRejected`."""
    try:
        return _EVENT_ADAPTER.validate_json(raw or b"")
    except ValidationError as exc:
        raise _rejected(exc) from None


def _rejected(exc: ValidationError) -> EventRejected:
    first = exc.errors()[0]
    if first["type"] == "json_invalid":
        return EventRejected(RejectReason.INVALID_JSON, first["msg"])
    if first["type"] == "dict_type":
        return EventRejected(RejectReason.SCHEMA_INVALID, "the event must be a JSON object")
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        tag = first.get("ctx", {}).get("tag")
        return EventRejected(RejectReason.UNKNOWN_TYPE, f"unknown event type {tag!r}")
    # the first path part is the union tag (the event type): leave it out of the message
    return EventRejected(RejectReason.SCHEMA_INVALID, describe(exc, skip_first=1, limit=5))


def envelope(
    event_id: str, event_type: str, source: str, shop_id: int, data: dict[str, Any], now: datetime
) -> bytes:
    """An event as a publisher writes it (CloudEvents structured JSON), times in UTC."""
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "type": event_type,
            "source": source,
            "time": now,
            "shopid": shop_id,
            "data": data,
        },
        option=orjson.OPT_UTC_Z,
    )


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every event type, as published under ``config/schemas/``."""
    return {
        event_type: model.model_json_schema(by_alias=True, mode="validation")
        for event_type, model in EVENT_MODELS.items()
    }
