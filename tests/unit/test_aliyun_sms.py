"""Aliyun SMS through the official SDK against the sandbox, which checks the ACS3 signature,
the signature/template review state, template variables and Aliyun's per-phone flow control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import SecretStr

from channels.aliyun_sms import CODES, AliyunSmsChannel, AliyunSmsConfig, AliyunSmsDetails, send_dates
from channels.base import ChannelName, Delivery, ErrorClass
from channels.sandbox.state import Fault
from streams.devtools.local_stack import SANDBOX_ALIYUN_KEY
from tests.conftest import Sandbox
from tests.factories import delivery


def sms_delivery(**changes: object) -> Delivery:
    values: dict[str, object] = {
        "channel": ChannelName.ALIYUN_SMS,
        "account": "百客商城",
        "recipient": "13812345678",
        "template_id": "SMS_480000001",
        "fields": {"code": "482913"},
    }
    return delivery(**(values | changes))


def channel(
    sandbox: Sandbox, key: tuple[str, str] = SANDBOX_ALIYUN_KEY, timeout_ms: int = 1000
) -> AliyunSmsChannel:
    config = AliyunSmsConfig(key[0], SecretStr(key[1]), sandbox.endpoint, "http", timeout_ms, timeout_ms)
    return AliyunSmsChannel(config)


async def test_a_code_is_sent_with_our_delivery_id_as_out_id(sandbox: Sandbox) -> None:
    sent = sms_delivery()
    result = await channel(sandbox).send(sent)
    assert result.ok
    assert result.provider_message_id
    [message] = sandbox.state.messages
    assert message["query"] == {
        "PhoneNumbers": "13812345678",
        "SignName": "百客商城",
        "TemplateCode": "SMS_480000001",
        "TemplateParam": orjson.dumps({"code": "482913"}).decode(),
        "OutId": sent.delivery_id,
    }


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"recipient": "12345"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ({"account": "百客旗舰店"}, "isv.SMS_SIGNATURE_ILLEGAL"),  # still under review
        ({"account": "无此签名"}, "isv.SMS_SIGNATURE_ILLEGAL"),
        ({"template_id": "SMS_000000000"}, "isv.SMS_TEMPLATE_ILLEGAL"),
        ({"fields": {"order": "1"}}, "isv.TEMPLATE_MISSING_PARAMETERS"),
        ({"fields": {"code": "9" * 36}}, "isv.PARAM_LENGTH_LIMIT"),
    ],
)
async def test_aliyun_refusals_are_permanent(sandbox: Sandbox, change: dict[str, object], code: str) -> None:
    result = await channel(sandbox).send(sms_delivery(**change))
    assert (result.error_class, result.code) == (ErrorClass.PERMANENT, code)
    assert sandbox.state.messages == []


async def test_a_phone_gets_at_most_one_sms_a_minute(sandbox: Sandbox) -> None:
    sms = channel(sandbox)
    first = await sms.send(sms_delivery())
    second = await sms.send(sms_delivery())
    other_phone = await sms.send(sms_delivery(recipient="13998765432"))
    assert first.ok
    assert other_phone.ok
    assert (second.error_class, second.code) == (ErrorClass.PERMANENT, "isv.BUSINESS_LIMIT_CONTROL")


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ((SANDBOX_ALIYUN_KEY[0], "not-the-secret"), "SignatureDoesNotMatch"),
        (("LTAI5tUnknownKey", "whatever"), "InvalidAccessKeyId.NotFound"),
    ],
)
async def test_bad_credentials_are_refused_by_the_signature_check(
    sandbox: Sandbox, key: tuple[str, str], code: str
) -> None:
    result = await channel(sandbox, key).send(sms_delivery())
    assert (result.error_class, result.code) == (ErrorClass.PERMANENT, code)


@pytest.mark.parametrize(("code", "expected"), sorted(CODES.items()))
async def test_every_aliyun_code_is_classified(
    sandbox: Sandbox, code: str, expected: tuple[ErrorClass, str]
) -> None:
    sandbox.state.add_fault(Fault(target="SendSms", aliyun_code=code))
    result = await channel(sandbox).send(sms_delivery())
    assert (result.error_class, result.code, result.reason) == (expected[0], code, expected[1])


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault(target="SendSms", latency_ms=1500), "timeout"),
        (Fault(target="SendSms", reset=True), "connection"),
        (Fault(target="SendSms", http_status=503, aliyun_code="ServiceUnavailable"), "ServiceUnavailable"),
        (Fault(target="SendSms", http_status=500, aliyun_code="SomethingNew"), "SomethingNew"),
        (Fault(target="SendSms", http_status=503), "unreadable_reply"),  # not JSON: a proxy's page
        (Fault(target="SendSms", http_status=502), "unreadable_reply"),
    ],
)
async def test_transport_failures_are_transient(sandbox: Sandbox, fault: Fault, code: str) -> None:
    sandbox.state.add_fault(fault)
    result = await channel(sandbox).send(sms_delivery())
    assert (result.error_class, result.code) == (ErrorClass.TRANSIENT, code)


async def test_an_http_5xx_with_a_body_the_sdk_cannot_read_goes_through_every_retry_tier(
    sandbox: Sandbox,
) -> None:
    """Not an unknown code (one tier): an outage, retried like WeChat's."""
    sandbox.state.add_fault(Fault(target="SendSms", http_status=503))
    result = await channel(sandbox).send(sms_delivery())
    assert not result.unknown_code


async def test_an_unreachable_aliyun_is_transient(sandbox: Sandbox) -> None:
    sandbox.url = "http://127.0.0.1:9"
    result = await channel(sandbox).send(sms_delivery())
    assert (result.error_class, result.code) == (ErrorClass.TRANSIENT, "connection")


def details(sandbox: Sandbox) -> AliyunSmsDetails:
    key = SANDBOX_ALIYUN_KEY
    return AliyunSmsDetails(AliyunSmsConfig(key[0], SecretStr(key[1]), sandbox.endpoint, "http", 1000, 1000))


def test_an_sms_is_looked_for_on_each_beijing_day_since_it_could_have_been_sent() -> None:
    late_utc = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)  # 23:30 in Beijing
    assert send_dates(late_utc, late_utc) == ["20261127"]
    assert send_dates(late_utc, late_utc + timedelta(hours=1)) == ["20261128", "20261127"]
    assert len(send_dates(late_utc - timedelta(days=90), late_utc)) == 30  # Aliyun keeps 30 days


async def test_aliyun_is_asked_whether_it_already_took_a_delivery_by_its_out_id(sandbox: Sandbox) -> None:
    sent, other = sms_delivery(), sms_delivery(fields={"code": "111111"}, delivery_id="another-delivery")
    now = datetime.now(UTC)
    assert await details(sandbox).took(sent, now, now) is None
    assert (await channel(sandbox).send(sent)).ok
    taken = await details(sandbox).took(sent, now - timedelta(minutes=1), datetime.now(UTC))
    assert taken is not None
    assert taken.ok
    assert await details(sandbox).took(other, now, datetime.now(UTC)) is None
    [asked, *_] = [r for r in sandbox.state.requests if r["path"] == "QuerySendDetails"]
    assert asked["query"]["PhoneNumber"] == sent.recipient
    assert asked["query"]["SendDate"] == now.astimezone(timezone(timedelta(hours=8))).strftime("%Y%m%d")
    assert "BizId" not in asked["query"]


async def test_an_sms_among_many_to_one_phone_is_found_on_a_later_page(sandbox: Sandbox) -> None:
    sent = sms_delivery()
    at = datetime.now(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
    earlier = [
        {"BizId": f"{n}^0", "TemplateCode": sent.template_id, "OutId": f"earlier-{n}", "at": at}
        for n in range(60)
    ]
    mine = {"BizId": "99^0", "TemplateCode": sent.template_id, "OutId": sent.delivery_id, "at": at}
    sandbox.state.aliyun.sent_details[sent.recipient] = [*earlier, mine]
    now = datetime.now(UTC)
    taken = await details(sandbox).took(sent, now, now)
    assert taken is not None
    assert taken.ok
    pages = [r["query"]["CurrentPage"] for r in sandbox.state.requests if r["path"] == "QuerySendDetails"]
    assert pages == ["1", "2"]


async def test_aliyun_down_leaves_a_delivery_in_doubt(sandbox: Sandbox) -> None:
    sandbox.state.add_fault(Fault(target="QuerySendDetails", http_status=503))
    now = datetime.now(UTC)
    answer = await details(sandbox).took(sms_delivery(), now, now)
    assert answer is not None
    assert not answer.ok
    assert answer.error_class is ErrorClass.TRANSIENT


async def test_a_new_accesskey_is_used_from_the_next_send_without_a_restart(sandbox: Sandbox) -> None:
    """The channel asks for the current key before each send and builds its client again when it
    changed (a key registered at run time); without a key it answers not configured."""
    keys: list[AliyunSmsConfig | None] = [None]
    sending = AliyunSmsChannel(lambda: keys[-1])
    assert (await sending.send(sms_delivery())).code == "channel_not_configured"
    first = AliyunSmsConfig(
        SANDBOX_ALIYUN_KEY[0], SecretStr(SANDBOX_ALIYUN_KEY[1]), sandbox.endpoint, "http", 1000, 1000
    )
    keys.append(first)
    assert (await sending.send(sms_delivery(recipient="13812345670"))).ok
    sandbox.state.aliyun.disabled_keys.add(SANDBOX_ALIYUN_KEY[0])  # switched off in RAM
    assert (await sending.send(sms_delivery(recipient="13812345671"))).code == "InvalidAccessKeyId.NotFound"
    keys.append(
        AliyunSmsConfig(
            "LTAI5tSandboxMallNotify02",
            SecretStr("sandbox-aliyun-secret-0002"),
            sandbox.endpoint,
            "http",
            1000,
            1000,
        )
    )
    assert (await sending.send(sms_delivery(recipient="13812345672"))).ok
