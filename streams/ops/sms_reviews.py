"""The SMS signature and template reviews, as the admin API and ``mall-notify sms`` both run them:
each takes a shop's current settings and returns the new ones to save, after checking everything
it can before Aliyun is asked.

Errors: :class:`~streams.core.sms_signatures.Refused` (a rule of the review),
:class:`~streams.core.errors.ConfigError` (the settings would be invalid), and
:class:`~channels.aliyun_sms.AliyunCallFailed` (Aliyun refused or did not answer).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from channels.aliyun_sms import AliyunSmsReview
from streams.core.catalog import Catalog
from streams.core.shop_checks import parse_shop_rules
from streams.core.shops import ShopRules, SmsTemplate
from streams.core.sms_signatures import (
    NotYours,
    Refused,
    add_sms_template,
    apply_signature,
    follow_signature,
    follow_sms_template,
    review_signature,
)

PLACEHOLDER_CODE = "SMS_0"
"""a template's code while it is checked, before Aliyun gives it one"""


def apply(shop: ShopRules, name: str, others: Iterable[ShopRules], now: datetime) -> ShopRules:
    """The shop applies for a signature no other shop holds."""
    for other in others:
        if other.shop_id != shop.shop_id and other.sms and other.sms.signature(name):
            raise NotYours(f"signature {name!r} belongs to another shop")
    return apply_signature(shop, name, now)


async def review(
    shop: ShopRules, name: str, approve: bool, reason: str | None, aliyun: AliyunSmsReview, now: datetime
) -> ShopRules:
    """The platform's decision; an approved signature is submitted to Aliyun (AddSmsSign)."""
    reviewed = review_signature(shop, name, approve, reason, now)
    if approve:
        await aliyun.submit_signature(name, remark=f"shop {shop.shop_id}: {shop.name}")
    return reviewed


async def refresh(shop: ShopRules, aliyun: AliyunSmsReview, now: datetime) -> ShopRules:
    """Aliyun's reviews of the shop's submitted signatures and templates in review, taken in."""
    signatures = shop.sms.signatures if shop.sms else []
    for signature in [s for s in signatures if s.status == "submitted"]:
        answer = await aliyun.signature(signature.name)
        shop = follow_signature(shop, signature.name, answer.status, answer.reason, now)
    for template in [t for t in shop.sms_templates if t.status == "reviewing"]:
        answer = await aliyun.template(template.template_code)
        shop = follow_sms_template(shop, template.template_code, answer.status, answer.reason)
    return shop


async def submit_template(
    shop: ShopRules,
    catalog: Catalog,
    draft: SmsTemplate,
    aliyun: AliyunSmsReview,
) -> ShopRules:
    """A new SMS template, checked against the scene's variables and the shop's other templates,
    then submitted to Aliyun (AddSmsTemplate): saved with the code Aliyun gave it, in review."""
    fresh = {"template_code": PLACEHOLDER_CODE, "status": "reviewing", "reason": None}
    draft = draft.model_copy(update=fresh)
    candidate = add_sms_template(shop, draft)
    parse_shop_rules(candidate.model_dump(mode="json"), catalog, f"shop {shop.shop_id}")
    scene = catalog.scenes[draft.scene]
    kind = "verification_code" if scene.kind == "verification_code" else "notice"
    code = await aliyun.submit_template(draft.name, draft.content, kind, remark=f"shop {shop.shop_id}")
    return add_sms_template(shop, draft.model_copy(update={"template_code": code}))


__all__ = ["PLACEHOLDER_CODE", "Refused", "apply", "refresh", "review", "submit_template"]
