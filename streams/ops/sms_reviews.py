"""The SMS qualification, letter, signature and template reviews, as the admin API and
``mall-notify sms`` both run them: each takes a shop's current settings and returns the new ones
to save, after checking everything it can before Aliyun is asked.

Errors: :class:`~streams.core.sms_signatures.Refused` (a rule of the review),
:class:`~streams.core.errors.ConfigError` (the settings would be invalid), and
:class:`~channels.aliyun_sms.AliyunCallFailed` (Aliyun refused or did not answer).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from channels.aliyun_review import AliyunSmsReview, LetterForm, QualificationForm
from streams.core.catalog import Catalog
from streams.core.shop_checks import parse_shop_rules
from streams.core.shops import AuthorizationLetter, Qualification, ShopRules, SmsTemplate
from streams.core.sms_onboarding import (
    check_new_qualification,
    letter_company,
    parse_valid,
    record_letter,
    record_qualification,
    signing_papers,
    template_rule,
)
from streams.core.sms_signatures import (
    NotYours,
    Refused,
    add_sms_template,
    apply_signature,
    review_signature,
    waiting_signature,
)

PLACEHOLDER_CODE = "SMS_0"
"""a template's code while it is checked, before Aliyun gives it one"""


async def submit_qualification(
    shop: ShopRules, form: QualificationForm, aliyun: AliyunSmsReview, now: datetime
) -> ShopRules:
    """The merchant's company submitted to Aliyun for third-party use (SubmitSmsQualification);
    the shop keeps its id, company and state, none of the people's details."""
    check_new_qualification(shop)
    qualification_id = await aliyun.submit_qualification(form)
    kept = Qualification(
        name=form.qualification_name,
        qualification_id=qualification_id,
        company_name=form.company_name,
        organization_code=form.organization_code,
        submitted_at=now,
        changed_at=now,
    )
    return record_qualification(shop, kept)


async def create_letter(
    shop: ShopRules, form: LetterForm, aliyun: AliyunSmsReview, now: datetime
) -> ShopRules:
    """The merchant's authorization letter for the signatures named (CreateSmsAuthorizationLetter),
    from the company of its qualification."""
    company, code = letter_company(shop)
    valid_from, valid_until = parse_valid(form.valid)
    letter_id = await aliyun.create_letter(form, company, code)
    letter = AuthorizationLetter(
        letter_id=letter_id,
        name=form.name,
        signatures=list(form.signatures),
        valid_from=valid_from,
        valid_until=valid_until,
        created_at=now,
    )
    return record_letter(shop, letter)


def apply(shop: ShopRules, name: str, others: Iterable[ShopRules], now: datetime) -> ShopRules:
    """The shop applies for a signature no other shop holds."""
    for other in others:
        if other.shop_id != shop.shop_id and other.sms and other.sms.signature(name):
            raise NotYours(f"signature {name!r} belongs to another shop")
    return apply_signature(shop, name, now)


async def review(
    shop: ShopRules, name: str, approve: bool, reason: str | None, aliyun: AliyunSmsReview, now: datetime
) -> ShopRules:
    """The platform's decision; an approved signature is submitted to Aliyun (CreateSmsSign) with
    the shop's qualification and authorization letter."""
    if not approve:
        return review_signature(shop, name, False, reason, now)
    waiting_signature(shop, name)
    qualification_id, letter_id = signing_papers(shop, name, now.date())
    remark = f"shop {shop.shop_id}: {shop.name}"
    order_id = await aliyun.create_signature(name, qualification_id, letter_id, remark)
    return review_signature(shop, name, True, reason, now, order_id)


async def submit_template(
    shop: ShopRules,
    catalog: Catalog,
    draft: SmsTemplate,
    aliyun: AliyunSmsReview,
) -> ShopRules:
    """A new SMS template, checked against the scene's variables and the shop's other templates,
    then submitted to Aliyun (CreateSmsTemplate) related to the shop's active signature, with a
    rule per variable: saved with the code Aliyun gave it, in review."""
    fresh = {"template_code": PLACEHOLDER_CODE, "status": "reviewing", "reason": None}
    draft = draft.model_copy(update=fresh)
    candidate = add_sms_template(shop, draft)
    parse_shop_rules(candidate.model_dump(mode="json"), catalog, f"shop {shop.shop_id}")
    signature = shop.sms.active_signature() if shop.sms else None
    if signature is None:
        raise Refused(
            f"shop {shop.shop_id} has no active approved signature: Aliyun reviews a template with the "
            "signature it is sent under (sms signatures activate)"
        )
    scene = catalog.scenes[draft.scene]
    rule = template_rule(scene, draft.parameters())
    kind = (
        "verification_code"
        if scene.kind == "verification_code"
        else "marketing"
        if scene.category == "marketing"
        else "notice"
    )
    remark = f"shop {shop.shop_id}: {scene.title}"
    code = await aliyun.create_template(draft.name, draft.content, kind, signature, rule, remark)
    return add_sms_template(shop, draft.model_copy(update={"template_code": code}))


__all__ = [
    "PLACEHOLDER_CODE",
    "Refused",
    "apply",
    "create_letter",
    "review",
    "submit_qualification",
    "submit_template",
]
