"""The admin API's SMS endpoints: packages, purchases and balances, signatures and templates.

A shop's token reaches its own shop: it buys packages, applies for signatures, picks the active
one, submits templates. Reviewing a signature is the platform's (platform token). Signatures and
templates are changed through the same review steps as ``mall-notify sms ...``
(:mod:`streams.ops.sms_reviews`); Aliyun's reviews take effect by themselves (its pushes and the
worker's poller, :mod:`streams.runtime.lanes.sms_reviews`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from channels.aliyun_review import AliyunSmsReview
from streams.api.bodies import (
    PaymentRequest,
    PurchaseRequest,
    ReviewRequest,
    SignatureRequest,
    TemplateRequest,
)
from streams.api.context import (
    CONTEXT,
    SHOP_ID,
    WHO,
    ApiContext,
    NoAliyun,
    acknowledged,
    audit,
    for_shop,
    platform_body,
    problem,
    quote,
    read_body,
    save,
)
from streams.core.shops import ShopRules, SmsTemplate
from streams.core.sms_quota import PaymentRefused, new_purchase, payment_record, purchase_record
from streams.core.sms_signatures import activate_signature, review_signature
from streams.core.tokens import PLATFORM
from streams.ops import sms_reviews
from streams.runtime.kafka.records import Write


def _now() -> datetime:
    return datetime.now(UTC)


async def buy(request: web.Request) -> web.Response:
    """A shop orders a package: a purchase order, pending until it is paid (the balance is credited
    then); the trial package once per shop."""
    context = request.app[CONTEXT]
    body = await read_body(request, PurchaseRequest)
    if isinstance(body, web.Response):
        return body
    package = context.sms.packages.get(body.package)
    if package is None:
        known = ", ".join(context.sms.packages)
        return problem(422, f"package: no package {quote(body.package)} (packages: {known})")
    shop_id, now = int(request.match_info["shop_id"]), _now()
    refused = context.sms.book.purchase_refusal(shop_id, package.id, now)
    if refused is not None:
        return problem(409, refused)
    purchase = new_purchase(shop_id, package, request[WHO], now)
    key, value = purchase_record(purchase)
    refusal = await acknowledged(context, [Write(context.sms.account_topic, key, value)], "purchase")
    if refusal is not None:
        return refusal
    context.sms.book.apply(key, value)  # read your own write; the follower brings it again
    audit.info(
        "purchase ordered", extra={"who": request[WHO], "shop_id": shop_id, "purchase": purchase.purchase_id}
    )
    return web.json_response(context.sms.book.order(purchase, now).model_dump(mode="json"), status=201)


async def pay(request: web.Request) -> web.Response:
    """The platform confirms an order's (offline) payment, with the reason: the balance is credited
    once, however often this is called. A shop's token may not credit its own balance."""
    context = request.app[CONTEXT]
    not_yours = "a payment is confirmed by the platform (platform token), never by the shop"
    body = await platform_body(request, PaymentRequest, not_yours)
    if isinstance(body, web.Response):
        return body
    shop_id, purchase_id, now = int(request.match_info["shop_id"]), request.match_info["purchase_id"], _now()
    payment = context.sms.book.pay(shop_id, purchase_id, PLATFORM, body.reason, now)
    if isinstance(payment, PaymentRefused):
        return problem(404 if payment.reason == "unknown_purchase" else 409, payment.detail)
    key, value = payment_record(payment)
    refusal = await acknowledged(context, [Write(context.sms.account_topic, key, value)], "payment")
    if refusal is not None:
        return refusal
    context.sms.book.apply(key, value)
    audit.info(
        "purchase paid",
        extra={"who": PLATFORM, "shop_id": shop_id, "purchase": purchase_id, "reason": body.reason},
    )
    purchase = context.sms.book.purchase(shop_id, purchase_id)
    assert purchase is not None  # it was just paid
    return web.json_response(context.sms.book.order(purchase, now).model_dump(mode="json"))


async def get_purchases(request: web.Request) -> web.Response:
    orders = request.app[CONTEXT].sms.book.orders(int(request.match_info["shop_id"]), _now())
    return web.json_response([order.model_dump(mode="json") for order in orders])


async def get_balance(request: web.Request) -> web.Response:
    balance = request.app[CONTEXT].sms.book.balance(int(request.match_info["shop_id"]))
    return web.json_response(balance.model_dump(exclude={"reserved"}))


def _aliyun(context: ApiContext) -> AliyunSmsReview:
    if context.sms.aliyun is None:
        raise NoAliyun("no Aliyun AccessKey is configured on this API: the review cannot reach Aliyun")
    return context.sms.aliyun


@for_shop
async def get_signatures(_: web.Request, __: ApiContext, shop: ShopRules) -> web.Response:
    account = shop.sms
    return web.json_response(
        {
            "active": account.active if account else None,
            "signatures": [s.model_dump(mode="json") for s in account.signatures] if account else [],
        }
    )


@for_shop
async def apply_signature(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    body = await read_body(request, SignatureRequest)
    if isinstance(body, web.Response):
        return body
    applied = sms_reviews.apply(shop, body.name, context.shops.values(), _now())
    return await _saved(request, applied, f"apply for signature {body.name}", status=201)


@for_shop
async def review(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    body = await platform_body(
        request, ReviewRequest, "signatures are reviewed by the platform (platform token)"
    )
    if isinstance(body, web.Response):
        return body
    name = request.match_info["name"]
    if body.approve:
        reviewed = await sms_reviews.review(shop, name, True, body.reason, _aliyun(context), _now())
    else:
        reviewed = review_signature(shop, name, False, body.reason, _now())
    return await _saved(request, reviewed, f"{'approve' if body.approve else 'reject'} signature {name}")


@for_shop
async def activate(request: web.Request, _: ApiContext, shop: ShopRules) -> web.Response:
    name = request.match_info["name"]
    return await _saved(request, activate_signature(shop, name), f"activate signature {name}")


@for_shop
async def get_templates(_: web.Request, __: ApiContext, shop: ShopRules) -> web.Response:
    return web.json_response([t.model_dump(mode="json") for t in shop.sms_templates])


@for_shop
async def submit_template(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    body = await read_body(request, TemplateRequest)
    if isinstance(body, web.Response):
        return body
    draft = SmsTemplate(
        name=body.name,
        scene=body.scene,
        template_code=sms_reviews.PLACEHOLDER_CODE,
        content=body.content,
        enabled=body.enabled,
    )
    submitted = await sms_reviews.submit_template(shop, context.catalog, draft, _aliyun(context))
    return await _saved(request, submitted, f"submit SMS template {body.name}", status=201)


async def _saved(request: web.Request, shop: ShopRules, action: str, status: int = 200) -> web.Response:
    answer = await save(request, str(shop.shop_id), shop.model_dump(mode="json"), action, reviewed=True)
    if answer.status == 200:
        answer.set_status(status)
    return answer


ROUTES = [
    web.post(f"/v1/shops/{SHOP_ID}/sms/purchases", buy),
    web.post(f"/v1/shops/{SHOP_ID}/sms/purchases/{{purchase_id}}/payment", pay),
    web.get(f"/v1/shops/{SHOP_ID}/sms/purchases", get_purchases),
    web.get(f"/v1/shops/{SHOP_ID}/sms/balance", get_balance),
    web.get(f"/v1/shops/{SHOP_ID}/sms/signatures", get_signatures),
    web.post(f"/v1/shops/{SHOP_ID}/sms/signatures", apply_signature),
    web.post(f"/v1/shops/{SHOP_ID}/sms/signatures/{{name}}/review", review),
    web.post(f"/v1/shops/{SHOP_ID}/sms/signatures/{{name}}/activate", activate),
    web.get(f"/v1/shops/{SHOP_ID}/sms/templates", get_templates),
    web.post(f"/v1/shops/{SHOP_ID}/sms/templates", submit_template),
]
