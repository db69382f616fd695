"""A merchant's standing with Aliyun before its SMS signatures can be submitted. Pure.

Aliyun's real-name rules (since its 2024-12 API change) want, for a signature the platform's
account applies for on a merchant's behalf (他用): an approved **qualification** of the merchant's
company, and an **authorization letter** from that company naming the signature, valid today, with
the company's credit code. The platform submits both (``mall-notify sms qualification|letter``,
the admin API's ``sms/qualification`` and ``sms/letter``); a signature the platform approves is
submitted to Aliyun only when both are in order (:func:`signing_papers`).

Every function returns the shop's new settings, or raises
:class:`~streams.core.sms_signatures.Refused` with a sentence for the person who asked.
"""

from __future__ import annotations

from datetime import date, datetime

from streams.core.catalog import Scene, SmsRule, ValueFormat
from streams.core.shops import (
    AuthorizationLetter,
    Qualification,
    QualificationState,
    ShopRules,
    SmsAccount,
)
from streams.core.sms_signatures import Refused

IN_FORCE: frozenset[QualificationState] = frozenset({"reviewing", "approved"})
"""a qualification in either state stands: another is not submitted over it"""


def _account(shop: ShopRules) -> SmsAccount:
    return shop.sms or SmsAccount()


def _with(shop: ShopRules, **update: object) -> ShopRules:
    return shop.model_copy(update={"sms": _account(shop).model_copy(update=update)})


def check_new_qualification(shop: ShopRules) -> None:
    """A shop has one qualification at a time: a new one only after a refusal or a withdrawal."""
    current = _account(shop).qualification
    if current is not None and current.status in IN_FORCE:
        raise Refused(
            f"shop {shop.shop_id} already has the qualification {current.name!r} ({current.status}); "
            "a new one can be submitted once Aliyun refused it"
        )


def record_qualification(shop: ShopRules, qualification: Qualification) -> ShopRules:
    """The qualification just submitted to Aliyun."""
    check_new_qualification(shop)
    return _with(shop, qualification=qualification)


def follow_qualification(
    shop: ShopRules, status: QualificationState, reason: str, now: datetime
) -> ShopRules:
    """What Aliyun's review (QuerySmsQualificationRecord) says of the shop's qualification."""
    current = _account(shop).qualification
    if current is None or current.status == status:
        return shop
    kept = reason or None if status in ("rejected", "incomplete") else None
    return _with(
        shop, qualification=current.model_copy(update={"status": status, "reason": kept, "changed_at": now})
    )


def letter_company(shop: ShopRules) -> tuple[str, str]:
    """The company a new letter is from, and its credit code: the shop's qualification's."""
    qualification = _account(shop).qualification
    if qualification is None or qualification.status not in IN_FORCE:
        raise Refused(
            f"shop {shop.shop_id} has no qualification in force: submit one first "
            "(sms qualification submit); the letter must carry its company's credit code"
        )
    return qualification.company_name, qualification.organization_code


def parse_valid(text: str) -> tuple[date, date]:
    """``YYYY-MM-DD~YYYY-MM-DD`` as its first and last day."""
    first, _, last = text.partition("~")
    try:
        start, end = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError:
        raise Refused(f"{text!r} is not a period: YYYY-MM-DD~YYYY-MM-DD") from None
    if end < start:
        raise Refused(f"{text!r} ends before it starts")
    return start, end


def record_letter(shop: ShopRules, letter: AuthorizationLetter) -> ShopRules:
    """The letter just created on Aliyun; it replaces the shop's previous one."""
    return _with(shop, letter=letter)


def signing_papers(shop: ShopRules, name: str, today: date) -> tuple[int, int]:
    """The qualification id and letter id a signature ``name`` is submitted with, when the shop's
    papers allow it; Refused naming what is missing otherwise."""
    account = _account(shop)
    qualification, letter = account.qualification, account.letter
    if qualification is None or qualification.status != "approved":
        state = qualification.status if qualification else "missing"
        raise Refused(
            f"shop {shop.shop_id}'s qualification is {state}: a signature is submitted to Aliyun once "
            "Aliyun approved the company's qualification (sms qualification status)"
        )
    if letter is None or name not in letter.signatures:
        raise Refused(
            f"no authorization letter of shop {shop.shop_id} names {name!r}: create one that does "
            "(sms letter create)"
        )
    if not letter.valid_from <= today <= letter.valid_until:
        raise Refused(
            f"the authorization letter {letter.name!r} is valid {letter.valid_from} to {letter.valid_until}, "
            f"not on {today}: create a new one (sms letter create)"
        )
    return qualification.qualification_id, letter.letter_id


FORMAT_RULES: dict[ValueFormat, SmsRule] = {
    ValueFormat.AMOUNT_FEN: "money",
    ValueFormat.TIME: "time",
    ValueFormat.TEXT: "other_number2",
}


def template_rule(scene: Scene, parameters: list[str]) -> dict[str, SmsRule]:
    """CreateSmsTemplate's TemplateRule for a template of ``scene`` with these ``${parameters}``: a
    verification code's single variable holds digits (``numberCaptcha``); a notice's each say what
    they hold, from the catalog (``sms_rule``) or the variable's format."""
    if scene.kind == "verification_code":
        if len(set(parameters)) != 1:
            raise Refused(
                "a verification code template has exactly one variable, the code (Aliyun's rule for "
                f"verification templates); this one has {len(set(parameters))}"
            )
        return {parameters[0]: "numberCaptcha"}
    rules: dict[str, SmsRule] = {}
    for name in parameters:
        variable = scene.variables[name]
        rules[name] = variable.sms_rule or FORMAT_RULES[variable.format]
    return rules
