"""SMS signatures (短信签名) and templates through their reviews. Pure.

A signature goes: applied by the shop (``reviewing``) -> the platform rejects it (``rejected``,
with the reason) or approves it and submits it to Aliyun with the merchant's qualification and
authorization letter (CreateSmsSign; ``submitted``, with Aliyun's order id) -> Aliyun's review
(GetSmsSign, QuerySmsSignList or its SignSmsReport push) approves (``approved``) or rejects it
(``rejected``, Aliyun's reason). A shop holds at most :data:`MAX_SIGNATURES`; a rejected one may be
applied for again. The shop picks one approved signature as active; only that one is ever sent.

An SMS template is submitted to Aliyun at once (CreateSmsTemplate gives its code) and is sent only
once Aliyun's review (GetSmsTemplate, QuerySmsTemplateList or TemplateSmsReport) says approved.

Every function returns the shop's new settings or raises :class:`Refused` with a sentence for the
person who asked; the caller saves them (the admin API and the CLI alike).
"""

from __future__ import annotations

from datetime import datetime

from streams.core.errors import MallNotifyError
from streams.core.shop_checks import MAX_SIGNATURES
from streams.core.shops import ReviewStatus, ShopRules, Signature, SmsAccount, SmsTemplate


class Refused(MallNotifyError):
    """The request breaks a rule of the review; the message says which, for a person."""


class NotYours(Refused):
    """The signature belongs to another shop."""


def _account(shop: ShopRules) -> SmsAccount:
    return shop.sms or SmsAccount()


def _with_signature(shop: ShopRules, signature: Signature) -> ShopRules:
    account = _account(shop)
    if account.signature(signature.name) is None:
        signatures = [*account.signatures, signature]
    else:
        signatures = [signature if s.name == signature.name else s for s in account.signatures]
    return shop.model_copy(update={"sms": account.model_copy(update={"signatures": signatures})})


def _signature(shop: ShopRules, name: str) -> Signature:
    signature = _account(shop).signature(name)
    if signature is None:
        raise Refused(f"shop {shop.shop_id} has no signature {name!r} (see `sms signatures list`)")
    return signature


def apply_signature(shop: ShopRules, name: str, now: datetime) -> ShopRules:
    """The shop applies for a signature; the platform reviews it next."""
    account = _account(shop)
    known = account.signature(name)
    if known is not None and known.status != "rejected":
        raise Refused(f"signature {name!r} is already {known.status}")
    if known is None and len(account.signatures) >= MAX_SIGNATURES:
        raise Refused(
            f"shop {shop.shop_id} already has {MAX_SIGNATURES} signatures, the most a shop may hold; "
            "a rejected one can be applied for again"
        )
    try:
        signature = Signature(name=name, status="reviewing", applied_at=now, changed_at=now)
    except ValueError:
        raise Refused(
            f"signature {name!r}: 2 to 12 characters, Chinese characters, letters or digits"
        ) from None
    return _with_signature(shop, signature)


def waiting_signature(shop: ShopRules, name: str) -> Signature:
    """The signature ``name``, waiting for the platform's review."""
    signature = _signature(shop, name)
    if signature.status != "reviewing":
        raise Refused(f"signature {name!r} is {signature.status}, not waiting for the platform's review")
    return signature


def review_signature(
    shop: ShopRules, name: str, approve: bool, reason: str | None, now: datetime, order_id: str | None = None
) -> ShopRules:
    """The platform's decision on a signature in review. Approving means submitting it to Aliyun
    (the caller calls CreateSmsSign first: ``order_id`` is its answer); rejecting needs a reason."""
    signature = waiting_signature(shop, name)
    if not approve and not (reason and reason.strip()):
        raise Refused("a rejection needs a reason the shop can act on (--reason)")
    update: dict[str, object] = (
        {"status": "submitted", "reason": None, "order_id": order_id}
        if approve
        else {"status": "rejected", "reason": reason}
    )
    return _with_signature(shop, signature.model_copy(update={**update, "changed_at": now}))


def follow_signature(
    shop: ShopRules, name: str, aliyun: ReviewStatus, reason: str, now: datetime
) -> ShopRules:
    """What Aliyun's review says of a submitted signature."""
    signature = _signature(shop, name)
    if signature.status != "submitted" or aliyun == "reviewing":
        return shop
    update = {"status": aliyun, "reason": (reason or "rejected by Aliyun") if aliyun == "rejected" else None}
    return _with_signature(shop, signature.model_copy(update={**update, "changed_at": now}))


def activate_signature(shop: ShopRules, name: str) -> ShopRules:
    """The shop's choice of the signature its SMS are sent with: an approved one of its own."""
    signature = _signature(shop, name)
    if signature.status != "approved":
        raise Refused(f"signature {name!r} is {signature.status}: only an approved signature can be active")
    return _activate(shop, name)


def _activate(shop: ShopRules, name: str) -> ShopRules:
    account = _account(shop).model_copy(update={"active": name})
    return shop.model_copy(update={"sms": account})


def add_sms_template(shop: ShopRules, template: SmsTemplate) -> ShopRules:
    """A template just submitted to Aliyun; refused when another enabled one serves its scene."""
    if template.enabled:
        current = shop.sms_template(template.scene)
        if current is not None:
            raise Refused(
                f"scene {template.scene} already has the enabled template {current.name} "
                f"({current.template_code}); submit this one with --disabled, or disable that one first"
            )
    return shop.model_copy(update={"sms_templates": [*shop.sms_templates, template]})


def follow_sms_template(shop: ShopRules, code: str, aliyun: ReviewStatus, reason: str) -> ShopRules:
    """What Aliyun's review says of a template."""
    templates = [
        t.model_copy(update={"status": aliyun, "reason": reason or None if aliyun == "rejected" else None})
        if t.template_code == code and t.status != aliyun
        else t
        for t in shop.sms_templates
    ]
    return shop.model_copy(update={"sms_templates": templates})
