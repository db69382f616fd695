"""A merchant's qualification, authorization letter, signature and template through Aliyun's
current API (the official SDK against the sandbox, which follows Aliyun's API reference), and a
code sent with what came out of it. The old actions are offline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import utils_models
from pydantic import SecretStr

from channels.aliyun_review import AliyunSmsReview, LetterForm, QualificationForm
from channels.aliyun_sms import AliyunCallFailed, AliyunSmsChannel, AliyunSmsConfig
from channels.base import ChannelName
from streams.devtools.local_stack import SANDBOX_ALIYUN_KEY
from tests.conftest import Sandbox
from tests.factories import delivery

ADMIN_PHONE = "13900001111"


def review_client(sandbox: Sandbox) -> AliyunSmsReview:
    key = SANDBOX_ALIYUN_KEY
    return AliyunSmsReview(AliyunSmsConfig(key[0], SecretStr(key[1]), sandbox.endpoint, "http", 1000, 1000))


def qualification_form(certify_code: str, **changes: Any) -> QualificationForm:
    values: dict[str, Any] = {
        "qualification_name": "百客优选资质",
        "company_name": "杭州百客优选网络科技有限公司",
        "organization_code": "91330100MA2KXXXX1X",
        "business_licenses": [{"type": "businessLicense", "pic": "1001/license.png"}],
        "business_license_valid": "2020-01-01~2099-12-31",
        "legal_person_name": "王五",
        "legal_person_id_no": "330100199001011234",
        "legal_person_id_valid": "2020-01-01~2040-01-01",
        "admin_name": "李四",
        "admin_id_no": "330100199202021234",
        "admin_id_valid": "2020-01-01~2040-01-01",
        "admin_id_front": "1001/admin-front.png",
        "admin_id_back": "1001/admin-back.png",
        "admin_phone": ADMIN_PHONE,
        "certify_code": certify_code,
    }
    return QualificationForm.model_validate(values | changes)


LETTER = LetterForm(
    name="百客优选授权书",
    signatures=["百客优选"],
    valid="2026-01-01~2028-12-31",
    letter_pic="1001/letter.png",
    platform_company="百客商城科技有限公司",
)


async def phone_code(sandbox: Sandbox, aliyun: AliyunSmsReview) -> str:
    """What the administrator's phone received."""
    await aliyun.send_phone_code(SecretStr(ADMIN_PHONE))
    url = f"{sandbox.url}/__sandbox__/aliyun/phone-codes/{ADMIN_PHONE}"
    async with aiohttp.ClientSession() as session, session.get(url) as reply:
        code: str = (await reply.json())["code"]
        return code


def later(sandbox: Sandbox, seconds: float) -> None:
    """Aliyun's reviewers take ``seconds`` (the sandbox's clock moves on)."""
    now = sandbox.state.clock()
    sandbox.state.clock = lambda: now + seconds


async def test_a_merchant_goes_from_qualification_to_a_sent_code(sandbox: Sandbox) -> None:
    aliyun = review_client(sandbox)
    code = await phone_code(sandbox, aliyun)
    qualification_id = await aliyun.submit_qualification(qualification_form(code))
    reviewing = await aliyun.qualification("百客优选资质")
    assert reviewing is not None
    assert (reviewing.qualification_id, reviewing.status) == (qualification_id, "reviewing")
    with pytest.raises(AliyunCallFailed, match="not an approved qualification"):
        await aliyun.create_signature("百客优选", qualification_id, 1, "r")
    later(sandbox, 5)
    approved = await aliyun.qualification("百客优选资质")
    assert approved is not None
    assert approved.status == "approved"
    letter_id = await aliyun.create_letter(LETTER, "杭州百客优选网络科技有限公司", "91330100MA2KXXXX1X")
    order_id = await aliyun.create_signature("百客优选", qualification_id, letter_id, "shop 1001")
    assert order_id
    assert (await aliyun.signature("百客优选")).status == "reviewing"
    assert (await aliyun.signatures(pages=1))["百客优选"].status == "reviewing"
    later(sandbox, 10)
    assert (await aliyun.signature("百客优选")).status == "approved"
    template_code = await aliyun.create_template(
        "登录验证码",
        "您的登录验证码为${code}，5分钟内有效。",
        "verification_code",
        "百客优选",
        {"code": "numberCaptcha"},
        "r",
    )
    assert (await aliyun.template(template_code)).status == "reviewing"
    later(sandbox, 15)
    assert (await aliyun.templates(pages=1))[template_code].status == "approved"
    sms = delivery(
        channel=ChannelName.ALIYUN_SMS,
        account="百客优选",
        recipient="13812345678",
        template_id=template_code,
        fields={"code": "482913"},
    )
    key = SANDBOX_ALIYUN_KEY
    assert (
        await AliyunSmsChannel(AliyunSmsConfig(key[0], SecretStr(key[1]), sandbox.endpoint, "http")).send(sms)
    ).ok


async def test_a_qualification_needs_the_code_its_administrators_phone_received(sandbox: Sandbox) -> None:
    aliyun = review_client(sandbox)
    await phone_code(sandbox, aliyun)
    with pytest.raises(AliyunCallFailed, match="CertifyCode"):
        await aliyun.submit_qualification(qualification_form("000000"))


async def test_a_third_partys_signature_needs_a_letter_naming_it(sandbox: Sandbox) -> None:
    aliyun = review_client(sandbox)
    qualification_id = await aliyun.submit_qualification(
        qualification_form(await phone_code(sandbox, aliyun))
    )
    later(sandbox, 5)
    await aliyun.qualification("百客优选资质")
    letter_id = await aliyun.create_letter(LETTER, "杭州百客优选网络科技有限公司", "91330100MA2KXXXX1X")
    with pytest.raises(AliyunCallFailed, match="a letter naming the signature"):
        await aliyun.create_signature("百客旗舰", qualification_id, letter_id, "r")
    other = LETTER.model_copy(update={"name": "另一授权书", "signatures": ["百客旗舰"]})
    elsewhere = await aliyun.create_letter(other, "别家公司", "91110000MA0000000X")
    with pytest.raises(AliyunCallFailed, match="credit code"):
        await aliyun.create_signature("百客旗舰", qualification_id, elsewhere, "r")


async def test_a_template_names_an_approved_signature_and_a_documented_rule_per_variable(
    sandbox: Sandbox,
) -> None:
    aliyun = review_client(sandbox)
    content = "您的订单${order_no}已发货。"

    def create(**changes: Any) -> Callable[[], Any]:
        values: dict[str, Any] = {"related_signature": "百客商城", "rule": {"order_no": "other_number2"}}
        values |= changes
        return lambda: aliyun.create_template("发货通知", content, "notice", remark="r", **values)

    for refused, why in [
        (create(related_signature="百客旗舰店"), "RelatedSignName"),  # seeded: still in review
        (create(rule={}), "TemplateRule"),
        (create(rule={"order_no": "orderNumber"}), "TemplateRule"),  # not an attribute Aliyun lists
    ]:
        with pytest.raises(AliyunCallFailed, match=why):
            await refused()
    assert (await create()()).startswith("SMS_")


async def test_a_rejection_says_aliyuns_reason(sandbox: Sandbox) -> None:
    aliyun = review_client(sandbox)
    code = await aliyun.create_template(
        "测试模板", "您的订单${order_no}已发货。", "notice", "百客商城", {"order_no": "other_number2"}, "r"
    )
    later(sandbox, 5)
    review = await aliyun.template(code)
    assert (review.status, review.reason) == ("rejected", "内容不符合规范：含有“测试”")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.add_sms_sign_async(
            sms_models.AddSmsSignRequest(sign_name="新店铺", sign_source=1, remark="r")
        ),
        lambda c: c.query_sms_sign_async(sms_models.QuerySmsSignRequest(sign_name="百客商城")),
        lambda c: c.query_sms_template_async(
            sms_models.QuerySmsTemplateRequest(template_code="SMS_480000001")
        ),
    ],
)
async def test_the_old_signature_and_template_actions_are_offline(
    sandbox: Sandbox, call: Callable[[Client], Any]
) -> None:
    key = SANDBOX_ALIYUN_KEY
    config = utils_models.Config(
        access_key_id=key[0], access_key_secret=key[1], endpoint=sandbox.endpoint, protocol="http"
    )
    answer = await call(Client(config))
    assert answer.body.code == "isv.INTERFACE_OFFLINE"


def test_the_people_in_a_qualification_never_print() -> None:
    form = qualification_form("123456")
    shown = repr(form) + str(form) + form.model_dump_json()
    for secret in ("330100199001011234", "330100199202021234", ADMIN_PHONE, "123456"):
        assert secret not in shown
