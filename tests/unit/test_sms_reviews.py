"""SMS signatures and templates through the platform's and Aliyun's reviews, and what a shop may
not change of the platform's record by saving its settings."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from channels.aliyun_review import Review
from channels.base import ChannelName
from streams.core.catalog import Catalog
from streams.core.errors import ConfigError
from streams.core.ownership import record_changes
from streams.core.render_plan import NO_ACTIVE_SIGNATURE, compile_shop
from streams.core.shops import AuthorizationLetter, Qualification, ShopRules, SmsAccount, SmsTemplate
from streams.core.sms_onboarding import letter_company, template_rule
from streams.core.sms_signatures import (
    NotYours,
    Refused,
    activate_signature,
    apply_signature,
    follow_signature,
    review_signature,
)
from streams.ops import sms_reviews
from streams.ops.shop_store import load_config_shops
from streams.settings import PROJECT_ROOT

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.fixture
def shop() -> ShopRules:
    return load_config_shops(PROJECT_ROOT / "config")[0]


def status(shop: ShopRules, name: str) -> tuple[str, str | None]:
    signature = shop.sms.signature(name) if shop.sms else None
    assert signature is not None
    return signature.status, signature.reason


def test_a_signature_moves_from_the_platforms_review_to_aliyuns(shop: ShopRules) -> None:
    applied = apply_signature(shop, "百客优选", NOW)
    assert status(applied, "百客优选") == ("reviewing", None)
    submitted = review_signature(applied, "百客优选", True, None, NOW)
    assert status(submitted, "百客优选") == ("submitted", None)
    assert follow_signature(submitted, "百客优选", "reviewing", "", NOW) == submitted
    approved = follow_signature(submitted, "百客优选", "approved", "", NOW)
    assert status(approved, "百客优选") == ("approved", None)
    active = activate_signature(approved, "百客优选")
    assert active.sms is not None
    assert active.sms.active_signature() == "百客优选"


def test_a_rejection_needs_a_reason_and_can_be_applied_for_again(shop: ShopRules) -> None:
    applied = apply_signature(shop, "百客优选", NOW)
    with pytest.raises(Refused, match="needs a reason"):
        review_signature(applied, "百客优选", False, "  ", NOW)
    rejected = review_signature(applied, "百客优选", False, "与店铺名称不符", NOW)
    assert status(rejected, "百客优选") == ("rejected", "与店铺名称不符")
    with pytest.raises(Refused, match="is rejected, not waiting for the platform's review"):
        review_signature(rejected, "百客优选", True, None, NOW)
    again = apply_signature(rejected, "百客优选", NOW)
    assert status(again, "百客优选") == ("reviewing", None)
    assert len(again.sms.signatures if again.sms else []) == 2  # replaced, not added


def test_aliyuns_rejection_keeps_its_reason(shop: ShopRules) -> None:
    submitted = shop.model_copy(
        update={
            "sms": SmsAccount.model_validate({"signatures": [{"name": "百客商城", "status": "submitted"}]})
        }
    )
    rejected = follow_signature(submitted, "百客商城", "rejected", "签名与企业名称不符", NOW)
    assert status(rejected, "百客商城") == ("rejected", "签名与企业名称不符")
    assert rejected.account(ChannelName.ALIYUN_SMS) is None


@pytest.mark.parametrize("name", ["ｂａｉｋｅ", "百客_商城", "百客٣", "A", "百客商城百客商城百客商城百"])
def test_a_signature_is_2_to_12_chinese_characters_ascii_letters_or_digits(
    shop: ShopRules, name: str
) -> None:
    """As the published pattern says it: fullwidth letters, other scripts' digits and underscores
    (which Python's \\w and \\d take) are refused like Aliyun refuses them."""
    with pytest.raises(Refused, match="2 to 12 characters"):
        apply_signature(shop, name, NOW)
    assert apply_signature(shop, "Baike百客2", NOW).sms.signature("Baike百客2") is not None


def test_a_shop_holds_ten_signatures_at_most(shop: ShopRules) -> None:
    for number in range(9):  # the demo shop has one already
        shop = apply_signature(shop, f"签名{number}", NOW)
    with pytest.raises(Refused, match="already has 10 signatures, the most a shop may hold"):
        apply_signature(shop, "第十一个", NOW)
    with pytest.raises(Refused, match="is already reviewing"):
        apply_signature(shop, "签名0", NOW)


@pytest.mark.parametrize("name", ["x", "十三个字的签名太长了真的太长", "百客<商城>"])
def test_a_signature_name_aliyun_would_refuse_is_refused_first(shop: ShopRules, name: str) -> None:
    with pytest.raises(Refused, match="2 to 12 characters"):
        apply_signature(shop, name, NOW)


def test_only_an_approved_signature_of_the_shop_can_be_active(shop: ShopRules) -> None:
    applied = apply_signature(shop, "百客优选", NOW)
    with pytest.raises(Refused, match="only an approved signature can be active"):
        activate_signature(applied, "百客优选")
    with pytest.raises(Refused, match="has no signature '别家的'"):
        activate_signature(applied, "别家的")


def test_another_shops_signature_cannot_be_applied_for(shop: ShopRules) -> None:
    other = shop.model_copy(update={"shop_id": 9002, "sms": None})
    with pytest.raises(NotYours, match="belongs to another shop"):
        sms_reviews.apply(other, "百客商城", [shop, other], NOW)


def test_without_an_active_signature_sms_scenes_are_skipped(shop: ShopRules, catalog: Catalog) -> None:
    unsigned = shop.model_copy(update={"sms": SmsAccount()})
    steps = [
        step
        for scene in compile_shop(unsigned, catalog).by_trigger["auth.code_requested"]
        for step in scene.steps
    ]
    assert {str(step) for step in steps} == {
        f"{scene}/aliyun_sms: {NO_ACTIVE_SIGNATURE}"
        for scene in ("code_register", "code_reset_password", "code_login")
    }


def test_a_template_in_review_is_not_sent(shop: ShopRules, catalog: Catalog) -> None:
    templates = [
        t.model_copy(update={"status": "reviewing"}) if t.scene == "code_login" else t
        for t in shop.sms_templates
    ]
    plan = compile_shop(shop.model_copy(update={"sms_templates": templates}), catalog)
    [login] = [scene for scene in plan.by_trigger["auth.code_requested"] if scene.scene_id == "code_login"]
    assert [str(step) for step in login.steps] == [
        "code_login/aliyun_sms: SMS template SMS_480000002 is reviewing on Aliyun"
    ]


class FakeAliyun:
    """Aliyun's review calls, answering from a script (the sandbox plays it for real elsewhere)."""

    def __init__(self, reviews: dict[str, Review]) -> None:
        self.reviews = reviews
        self.submitted: list[str] = []

    async def create_template(
        self, name: str, content: str, kind: str, related_signature: str, rule: dict[str, str], remark: str
    ) -> str:
        self.submitted.append(f"{kind}:{name}:{content}:{related_signature}:{rule}")
        return "SMS_777"

    async def create_signature(self, name: str, qualification_id: int, letter_id: int, remark: str) -> str:
        self.submitted.append(f"sign:{name}:{qualification_id}:{letter_id}")
        return "20044156924"

    async def template(self, code: str) -> Review:
        return self.reviews[code]

    async def signature(self, name: str) -> Review:
        return self.reviews[name]


async def test_a_template_is_checked_before_aliyun_is_asked_then_follows_its_review(
    shop: ShopRules, catalog: Catalog
) -> None:
    aliyun = FakeAliyun({"SMS_777": Review("approved", "")})
    draft = SmsTemplate(
        name="新登录码", scene="code_login", template_code="SMS_0", content="验证码${pin}", enabled=False
    )
    with pytest.raises(ConfigError, match="unknown variable pin"):
        await sms_reviews.submit_template(shop, catalog, draft, aliyun)  # type: ignore[arg-type]
    enabled = draft.model_copy(update={"content": "验证码${code}", "enabled": True})
    with pytest.raises(Refused, match="already has the enabled template 登录验证码"):
        await sms_reviews.submit_template(shop, catalog, enabled, aliyun)  # type: ignore[arg-type]
    assert aliyun.submitted == []  # nothing reached Aliyun
    submitted = await sms_reviews.submit_template(
        shop, catalog, enabled.model_copy(update={"enabled": False}), aliyun
    )  # type: ignore[arg-type]
    assert aliyun.submitted == ["verification_code:新登录码:验证码${code}:百客商城:{'code': 'numberCaptcha'}"]
    new = submitted.sms_templates[-1]
    assert (new.template_code, new.status) == ("SMS_777", "reviewing")


def test_a_shops_own_save_cannot_change_the_platforms_record(shop: ShopRules) -> None:
    assert record_changes(shop, shop) == []
    switched = shop.model_copy(
        update={"sms_templates": [t.model_copy(update={"enabled": False}) for t in shop.sms_templates]}
    )
    assert record_changes(shop, switched) == []  # turning its templates off is the shop's to do
    taken = shop.model_copy(update={"wechat_oa": shop.wechat_mp})
    assert record_changes(shop, taken) == ["wechat_oa: the shop's appid is set by the platform"]
    self_approved = apply_signature(shop, "自批签名", NOW)
    assert record_changes(shop, self_approved) == [
        "sms.signatures: signatures change only through their review (sms/signatures)"
    ]
    rewritten = shop.model_copy(
        update={"sms_templates": [shop.sms_templates[0].model_copy(update={"content": "改过的${code}"})]}
    )
    assert record_changes(shop, rewritten)[0].startswith(
        "sms_templates: SMS_480000001 is not this shop's template"
    )
    assert record_changes(None, shop)[0] == "wechat_oa: the shop's appid is set by the platform"


def papers(shop: ShopRules, status: str = "approved", names: tuple[str, ...] = ("百客优选",)) -> ShopRules:
    """The shop with a qualification in ``status`` and a letter naming ``names`` for 2026."""
    account = (shop.sms or SmsAccount()).model_copy(
        update={
            "qualification": Qualification(
                name="百客优选资质",
                qualification_id=10001,
                company_name="杭州百客优选网络科技有限公司",
                organization_code="91330100MA2KXXXX1X",
                status=status,  # type: ignore[arg-type]
                submitted_at=NOW,
                changed_at=NOW,
            ),
            "letter": AuthorizationLetter(
                letter_id=20002,
                name="百客优选授权书",
                signatures=list(names),
                valid_from=date(2026, 1, 1),
                valid_until=date(2026, 12, 31),
                created_at=NOW,
            ),
        }
    )
    return shop.model_copy(update={"sms": account})


async def test_a_signature_reaches_aliyun_only_with_an_approved_qualification_and_a_letter_naming_it(
    shop: ShopRules,
) -> None:
    aliyun = FakeAliyun({})
    applied = apply_signature(shop, "百客优选", NOW)
    cases = [
        (applied, "qualification is missing"),
        (papers(applied, status="reviewing"), "qualification is reviewing"),
        (papers(applied, names=("别的签名",)), "no authorization letter of shop 9001 names '百客优选'"),
    ]
    for unready, why in cases:
        with pytest.raises(Refused, match=why):
            await sms_reviews.review(unready, "百客优选", True, None, aliyun, NOW)  # type: ignore[arg-type]
    expired = datetime(2027, 1, 5, tzinfo=UTC)
    with pytest.raises(Refused, match="valid 2026-01-01 to 2026-12-31, not on 2027-01-05"):
        await sms_reviews.review(papers(applied), "百客优选", True, None, aliyun, expired)  # type: ignore[arg-type]
    assert aliyun.submitted == []
    submitted = await sms_reviews.review(papers(applied), "百客优选", True, None, aliyun, NOW)  # type: ignore[arg-type]
    assert aliyun.submitted == ["sign:百客优选:10001:20002"]
    signature = submitted.sms.signature("百客优选") if submitted.sms else None
    assert signature is not None
    assert (signature.status, signature.order_id) == ("submitted", "20044156924")


def test_a_letter_is_from_the_company_of_a_qualification_in_force(shop: ShopRules) -> None:
    with pytest.raises(Refused, match="has no qualification in force"):
        letter_company(shop)
    assert letter_company(papers(shop, status="reviewing")) == (
        "杭州百客优选网络科技有限公司",
        "91330100MA2KXXXX1X",
    )
    with pytest.raises(Refused, match="has no qualification in force"):
        letter_company(papers(shop, status="rejected"))


def test_a_template_tells_aliyun_what_each_variable_holds(catalog: Catalog) -> None:
    shipped = catalog.scenes["buyer_order_shipped"]
    assert template_rule(shipped, ["order_no", "express_company", "ship_time"]) == {
        "order_no": "other_number2",
        "express_company": "name",
        "ship_time": "time",
    }
    assert template_rule(catalog.scenes["code_login"], ["code"]) == {"code": "numberCaptcha"}
    with pytest.raises(Refused, match="exactly one variable"):
        template_rule(catalog.scenes["code_login"], ["code", "expires_in_minutes"])


def test_the_platforms_papers_are_not_the_shops_to_change(shop: ShopRules) -> None:
    assert record_changes(shop, papers(shop)) == [
        "sms.qualification: the platform submits it to Aliyun (sms/qualification)",
        "sms.letter: the platform submits it to Aliyun (sms/letter)",
    ]
