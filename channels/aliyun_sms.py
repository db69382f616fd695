"""Aliyun SMS ``SendSms`` through the official async SDK (``alibabacloud-dysmsapi20170525``).

The platform's Aliyun account sends for every shop; a delivery names the shop's approved
signature (``account``), the approved template code (``template_id``) and the template
variables (``fields``). ``OutId`` is our delivery id, so Aliyun's receipts can be traced back.
Aliyun's answers, HTTP errors and transport failures are classified here, once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeAlias

import aiohttp
import orjson
from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import utils_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from darabonba.exceptions import RetryError
from darabonba.runtime import RuntimeOptions
from pydantic import SecretStr

from channels.base import ChannelName, Delivery, ErrorClass, PushedReceipt, SendResult
from channels.limits import AccountLimiter, Limits
from streams.core.errors import MallNotifyError

T, P = ErrorClass.TRANSIENT, ErrorClass.PERMANENT
CODES: dict[str, tuple[ErrorClass, str]] = {
    "isp.SYSTEM_ERROR": (T, "Aliyun system error"),
    "isp.RAM_PERMISSION_DENY": (P, "the AccessKey may not send SMS"),
    "Throttling.User": (T, "API call rate limited"),
    "ServiceUnavailable": (T, "Aliyun is unavailable"),
    "InternalError": (T, "Aliyun internal error"),
    # per-phone throttles exist to protect the recipient: hammering them again does not help
    "isv.BUSINESS_LIMIT_CONTROL": (P, "per-phone limit reached (1/min, 5/hour, 10/day)"),
    "isv.DAY_LIMIT_CONTROL": (P, "daily sending limit reached"),
    "isv.MOBILE_NUMBER_ILLEGAL": (P, "invalid mobile number"),
    "isv.TEMPLATE_MISSING_PARAMETERS": (P, "template variables missing"),
    "isv.INVALID_PARAMETERS": (P, "invalid parameters"),
    "isv.SMS_SIGNATURE_ILLEGAL": (P, "signature not approved or unknown"),
    "isv.SMS_TEMPLATE_ILLEGAL": (P, "template not approved or unknown"),
    "isv.PARAM_LENGTH_LIMIT": (P, "a template variable is too long"),
    "isv.AMOUNT_NOT_ENOUGH": (P, "the Aliyun account balance is used up"),
    "isv.OUT_OF_SERVICE": (P, "the Aliyun account is suspended"),
    "InvalidAccessKeyId.NotFound": (P, "unknown AccessKey id"),
    "SignatureDoesNotMatch": (P, "AccessKey secret does not match"),
    "isv.INTERFACE_OFFLINE": (P, "Aliyun took this API offline (see its successor)"),
}


UNREADABLE_REPLY = "Failed to parse the value as json"
"""What the SDK raises (a RuntimeError) when a reply is not JSON: Aliyun always answers JSON, so
this is a proxy's or load balancer's page during an outage."""


def classify(code: str, message: str, biz_id: str | None = None) -> SendResult:
    if code == "OK":
        return SendResult.delivered(biz_id)
    known = CODES.get(code)
    if known is None:
        return SendResult.failed(T, code, f"unknown Aliyun code: {message}", unknown_code=True)
    return SendResult.failed(known[0], code, known[1])


def classify_exception(exc: BaseException) -> SendResult:
    """An SDK or transport exception as a send result. The SDK wraps transport failures in
    ``UnretryableException(inner_exception=RetryError(message))``."""
    inner = getattr(exc, "inner_exception", None)
    if isinstance(inner, BaseException):
        return classify_exception(inner)
    if isinstance(exc, AlibabaCloudException):
        code = str(exc.code or f"http_{exc.status_code}")
        if code in CODES:
            return classify(code, str(exc.message))
        outage = (exc.status_code or 500) >= 500
        error_class = T if outage or exc.status_code == 429 else P
        # an HTTP 5xx is an outage whatever its code says: every retry tier, like WeChat's
        return SendResult.failed(
            error_class, code, f"Aliyun refused the call: {exc.message}", unknown_code=not outage
        )
    if isinstance(exc, RuntimeError) and UNREADABLE_REPLY in str(exc):
        return SendResult.failed(T, "unreadable_reply", "Aliyun's reply was not JSON (an outage page?)")
    if isinstance(exc, TimeoutError) or (isinstance(exc, RetryError) and "timeout" in str(exc).lower()):
        return SendResult.failed(T, "timeout", "Aliyun did not answer in time")
    if isinstance(exc, RetryError | aiohttp.ClientError | OSError):
        return SendResult.failed(T, "connection", f"Aliyun call failed: {type(exc).__name__}")
    return SendResult.failed(T, "sdk_error", f"{type(exc).__name__}: {exc}", unknown_code=True)


@dataclass(frozen=True)
class AliyunSmsConfig:
    access_key_id: str
    access_key_secret: SecretStr
    endpoint: str = "dysmsapi.aliyuncs.com"
    protocol: str = "https"
    connect_timeout_ms: int = 3000
    read_timeout_ms: int = 10000


def send_request(delivery: Delivery) -> sms_models.SendSmsRequest:
    return sms_models.SendSmsRequest(
        phone_numbers=delivery.recipient,
        sign_name=delivery.account,
        template_code=delivery.template_id,
        template_param=orjson.dumps(delivery.fields).decode(),
        out_id=delivery.delivery_id,
    )


def sdk_client(config: AliyunSmsConfig) -> tuple[Client, RuntimeOptions]:
    client = Client(
        utils_models.Config(
            access_key_id=config.access_key_id,
            access_key_secret=config.access_key_secret.get_secret_value(),
            endpoint=config.endpoint,
            protocol=config.protocol,
        )
    )
    runtime = RuntimeOptions(
        connect_timeout=config.connect_timeout_ms, read_timeout=config.read_timeout_ms, autoretry=False
    )
    return client, runtime


AliyunKeys = Callable[[], AliyunSmsConfig | None]
"""the platform's current AccessKey (registered at run time, or configured), None without one"""
NOT_CONFIGURED = "channel_not_configured"


class SdkClient:
    """The SDK client of the platform's current AccessKey, built again when the key changes."""

    def __init__(self, keys: AliyunSmsConfig | AliyunKeys) -> None:
        self._keys: AliyunKeys = keys if callable(keys) else (lambda: keys)
        self._built: tuple[AliyunSmsConfig, Client, RuntimeOptions] | None = None

    def current(self) -> tuple[Client, RuntimeOptions] | None:
        config = self._keys()
        if config is None:
            return None
        if self._built is None or (self._built[0] is not config and self._built[0] != config):
            self._built = (config, *sdk_client(config))
        return self._built[1], self._built[2]

    async def call(self, method: str, request: object) -> Any:
        """The body of an answer ``OK`` of the SDK's ``method``; AliyunCallFailed otherwise."""
        current = self.current()
        if current is None:
            raise AliyunCallFailed(not_configured())
        client, runtime = current
        return await answered(getattr(client, method)(request, runtime))


def not_configured() -> SendResult:
    return SendResult.failed(P, NOT_CONFIGURED, "no Aliyun AccessKey is configured or registered")


class AliyunSmsChannel:
    name = ChannelName.ALIYUN_SMS

    def __init__(self, config: AliyunSmsConfig | AliyunKeys, limits: Limits | None = None) -> None:
        self._sdk = SdkClient(config)
        self._limiter = AccountLimiter(limits or Limits(concurrency=16, rate_per_second=50))

    @property
    def configured(self) -> bool:
        """Whether there is an AccessKey now (one may be registered later)."""
        return self._sdk.current() is not None

    async def send(self, delivery: Delivery) -> SendResult:
        current = self._sdk.current()
        if current is None:
            return not_configured()
        client, runtime = current
        try:
            async with self._limiter.slot(delivery.account):
                response = await client.send_sms_with_options_async(send_request(delivery), runtime)
        except Exception as exc:  # the SDK raises many kinds; all are classified in one place
            return classify_exception(exc)
        body = response.body
        if body is None:
            return SendResult.failed(T, "bad_reply", "Aliyun answered without a body", unknown_code=True)
        return classify(str(body.code), str(body.message), body.biz_id)


class AliyunCallFailed(MallNotifyError):
    """Aliyun refused a call other than SendSms (signatures, templates, send details), or could not
    be reached (classified)."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(f"{result.code}: {result.reason}")
        self.result = result


async def answered(call: Awaitable[Any]) -> Any:
    """The body of an Aliyun answer ``OK``; AliyunCallFailed (classified) otherwise."""
    try:
        response = await call
    except Exception as exc:  # the SDK raises many kinds; classified in one place
        raise AliyunCallFailed(classify_exception(exc)) from None
    body = response.body
    if body is None:
        raise AliyunCallFailed(SendResult.failed(T, "bad_reply", "Aliyun answered without a body"))
    if body.code != "OK":
        known = CODES.get(str(body.code))
        error_class = known[0] if known else P
        raise AliyunCallFailed(SendResult.failed(error_class, str(body.code), str(body.message)))
    return body


SEND_STATUS = {2: False, 3: True}
"""QuerySendDetails' SendStatus: 1 waiting for the carrier, 2 failed, 3 delivered"""
DETAILS_PAGE_SIZE = 50
"""QuerySendDetails' PageSize: 1 to 50"""
DETAILS_PAGES = 10
"""pages of one phone's day read at most, looking for one delivery (500 SMS)"""
KEPT_DAYS = 30
"""QuerySendDetails answers for the last 30 days"""
Detail: TypeAlias = sms_models.QuerySendDetailsResponseBodySmsSendDetailDTOsSmsSendDetailDTO


def send_dates(since: datetime, now: datetime) -> list[str]:
    """The days (yyyyMMdd, Beijing time, newest first) an SMS sent between ``since`` and ``now`` is
    filed under, within the 30 days QuerySendDetails keeps."""
    last = now.astimezone(CHINA).date()
    first = max(since.astimezone(CHINA).date(), last - timedelta(days=KEPT_DAYS - 1))
    return [(last - timedelta(days=back)).strftime("%Y%m%d") for back in range((last - first).days + 1)]


class AliyunSmsDetails:
    """``QuerySendDetails`` (https://help.aliyun.com/document_detail/419277.html): the SMS sent to
    one phone on one day, or one of them by BizId. Answers what became of an SMS whose report never
    came, and whether a send in doubt was already taken (:class:`~channels.base.SentLookup`)."""

    def __init__(self, config: AliyunSmsConfig | AliyunKeys) -> None:
        self._sdk = SdkClient(config)

    async def _details(self, phone: str, day: str, page: int = 1, biz_id: str | None = None) -> list[Detail]:
        request = sms_models.QuerySendDetailsRequest(
            phone_number=phone,
            send_date=day,
            page_size=DETAILS_PAGE_SIZE,
            current_page=page,
            biz_id=biz_id,
        )
        body = await self._sdk.call("query_send_details_with_options_async", request)
        found = body.sms_send_detail_dtos.sms_send_detail_dto if body.sms_send_detail_dtos else None
        return list(found or [])

    async def report(self, phone: str, sent_on: datetime, biz_id: str) -> PushedReceipt | None:
        """The SMS's fate as a receipt, or None while the carrier has not answered."""
        day = sent_on.astimezone(CHINA).strftime("%Y%m%d")
        for detail in await self._details(phone, day, biz_id=biz_id):
            reached = SEND_STATUS.get(int(detail.send_status or 1))
            if reached is None:
                return None
            received = detail.receive_date or detail.send_date
            at = datetime.strptime(str(received), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA).timestamp()
            code = str(detail.err_code or "")
            reason = "the user received it" if reached else f"the carrier answered {code}"
            return PushedReceipt(
                ChannelName.ALIYUN_SMS, biz_id, reached, code, reason, at, detail.out_id or None
            )
        return None

    async def took(self, delivery: Delivery, since: datetime, now: datetime) -> SendResult | None:
        """Whether Aliyun has an SMS of this delivery: the phone's SMS of each day since ``since``,
        matched by ``OutId`` (our delivery id). Its details carry no BizId, so the result has none."""
        try:
            for day in send_dates(since, now):
                for page in range(1, DETAILS_PAGES + 1):
                    details = await self._details(delivery.recipient, day, page)
                    if any(detail.out_id == delivery.delivery_id for detail in details):
                        return SendResult(ok=True, reason=f"Aliyun already had it (sent on {day})")
                    if len(details) < DETAILS_PAGE_SIZE:
                        break
        except AliyunCallFailed as failed:
            return failed.result
        return None


CHINA = timezone(timedelta(hours=8))


class ReportRefused(MallNotifyError):
    """A body that is not Aliyun's SmsReport (a JSON array of reports)."""


def parse_reports(body: bytes) -> list[PushedReceipt]:
    """Aliyun's SmsReport push (HTTP batch mode): a JSON array, one report per SMS with
    ``biz_id``, ``out_id`` (our delivery id), ``success``, ``err_code``, ``err_msg`` and
    ``report_time`` (Beijing time). The phone number in it is not kept."""
    try:
        reports = orjson.loads(body)
        if not isinstance(reports, list):
            raise ValueError("not a JSON array")
        return [_report(report) for report in reports]
    except (orjson.JSONDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReportRefused(f"not Aliyun's SmsReport ({exc})") from None


def _report(report: object) -> PushedReceipt:
    if not isinstance(report, dict):
        raise ValueError("each report is a JSON object")
    biz_id, out_id, success = report["biz_id"], report.get("out_id"), report["success"]
    if not (isinstance(biz_id, str) and 1 <= len(biz_id) <= 64):
        raise ValueError("biz_id: the BizId SendSms answered")
    if not (out_id is None or (isinstance(out_id, str) and len(out_id) <= 256)):
        raise ValueError("out_id: the OutId the SMS was sent with")
    if not isinstance(success, bool):
        raise ValueError("success: true or false")
    code, message = report.get("err_code"), report.get("err_msg")
    if not all(value is None or (isinstance(value, str) and len(value) <= 256) for value in (code, message)):
        raise ValueError("err_code / err_msg: short texts")
    reported = datetime.strptime(str(report["report_time"]), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    if not 2000 <= reported.year <= 2100:
        raise ValueError(f"report_time {report['report_time']!r} is not a time an SMS was reported")
    return PushedReceipt(
        channel=ChannelName.ALIYUN_SMS,
        message_id=biz_id,
        reached=success,
        code=code or "",
        reason=message or "",
        at=reported.timestamp(),
        delivery_id=out_id or None,
    )
