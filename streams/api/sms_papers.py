"""The admin API's endpoints for a merchant's papers for its SMS signatures (the platform's):
the company's qualification and its authorization letter. They run the same steps as
``mall-notify sms qualification|letter`` (:mod:`streams.ops.sms_reviews`).

The qualification's body holds the people's details: they go to Aliyun only; the answer and the
shop's settings carry the company, Aliyun's id and the review's state."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from pydantic import SecretStr

from channels.aliyun_review import AliyunSmsReview, LetterForm, QualificationForm
from streams.api.bodies import PhoneCodeRequest
from streams.api.context import SHOP_ID, ApiContext, NoAliyun, for_shop, platform_body, problem, save
from streams.core.shops import ShopRules
from streams.ops import sms_reviews

PLATFORM_ONLY = "a merchant's papers are submitted by the platform (platform token)"


def _aliyun(context: ApiContext) -> AliyunSmsReview:
    if context.sms.aliyun is None:
        raise NoAliyun("no Aliyun AccessKey is configured on this API: the review cannot reach Aliyun")
    return context.sms.aliyun


async def _saved(request: web.Request, shop: ShopRules, action: str, part: str) -> web.Response:
    answer = await save(request, str(shop.shop_id), shop.model_dump(mode="json"), action, reviewed=True)
    if answer.status != 200:
        return answer
    kept = getattr(shop.sms, part) if shop.sms else None
    return web.json_response(kept.model_dump(mode="json") if kept else None, status=201)


@for_shop
async def send_phone_code(request: web.Request, context: ApiContext, _: ShopRules) -> web.Response:
    body = await platform_body(request, PhoneCodeRequest, PLATFORM_ONLY)
    if isinstance(body, web.Response):
        return body
    await _aliyun(context).send_phone_code(SecretStr(body.phone))
    return web.json_response({"sent_to": f"***{body.phone[-4:]}"})


@for_shop
async def submit_qualification(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    form = await platform_body(request, QualificationForm, PLATFORM_ONLY)
    if isinstance(form, web.Response):
        return form
    submitted = await sms_reviews.submit_qualification(shop, form, _aliyun(context), datetime.now(UTC))
    return await _saved(
        request, submitted, f"submit qualification {form.qualification_name}", "qualification"
    )


@for_shop
async def get_qualification(_: web.Request, __: ApiContext, shop: ShopRules) -> web.Response:
    kept = shop.sms.qualification if shop.sms else None
    if kept is None:
        return problem(404, f"shop {shop.shop_id} has no qualification")
    return web.json_response(kept.model_dump(mode="json"))


@for_shop
async def create_letter(request: web.Request, context: ApiContext, shop: ShopRules) -> web.Response:
    form = await platform_body(request, LetterForm, PLATFORM_ONLY)
    if isinstance(form, web.Response):
        return form
    created = await sms_reviews.create_letter(shop, form, _aliyun(context), datetime.now(UTC))
    return await _saved(request, created, f"create authorization letter {form.name}", "letter")


@for_shop
async def get_letter(_: web.Request, __: ApiContext, shop: ShopRules) -> web.Response:
    letter = shop.sms.letter if shop.sms else None
    if letter is None:
        return problem(404, f"shop {shop.shop_id} has no authorization letter")
    return web.json_response(letter.model_dump(mode="json"))


QUALIFICATION = f"/v1/shops/{SHOP_ID}/sms/qualification"
LETTER = f"/v1/shops/{SHOP_ID}/sms/letter"
ROUTES = [
    web.post(f"{QUALIFICATION}/phone-code", send_phone_code),
    web.post(QUALIFICATION, submit_qualification),
    web.get(QUALIFICATION, get_qualification),
    web.post(LETTER, create_letter),
    web.get(LETTER, get_letter),
]
