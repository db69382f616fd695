"""The WeChat OA channel against the sandbox (a real HTTP server on loopback): wire format,
token handling and error classification as a user of the channel sees them."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from channels.base import ErrorClass
from channels.limits import Limits
from channels.sandbox.state import Fault
from channels.wechat import ERRCODES
from channels.wechat_oa import WeChatOaChannel
from tests.conftest import Sandbox
from tests.factories import DEMO_APPID, UNFOLLOWED_OPENID, delivery


async def test_a_delivery_is_sent_in_wechats_format(sandbox: Sandbox) -> None:
    state = sandbox.state
    channel = WeChatOaChannel(sandbox.wechat_api())
    sent = delivery()
    result = await channel.send(sent)
    assert result.ok
    assert result.provider_message_id
    [message] = state.messages
    assert message["body"] == {
        "touser": sent.recipient,
        "template_id": sent.template_id,
        "data": {key: {"value": value} for key, value in sent.fields.items()},
        "client_msg_id": sent.delivery_id,
    }


async def test_the_same_delivery_twice_is_delivered_once(sandbox: Sandbox) -> None:
    state = sandbox.state
    channel = WeChatOaChannel(sandbox.wechat_api())
    sent = delivery()
    first, second = await channel.send(sent), await channel.send(sent)
    assert first.provider_message_id == second.provider_message_id
    assert len(state.messages) == 1
    # WeChat promises it for 10 minutes only
    started = time.monotonic()
    state.clock = lambda: started + 601
    third = await channel.send(sent)
    assert third.provider_message_id != first.provider_message_id
    assert len(state.messages) == 2


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"template_id": "no-such-template"}, "40037"),
        (
            {
                "fields": {
                    "character_string1": "E1",
                    "amount2": "十二元",
                    "thing3": "T恤",
                    "time4": "2026-11-25 20:03",
                }
            },
            "47003",
        ),
        ({"recipient": "bad openid!"}, "40003"),
    ],
)
async def test_permanent_errors_are_classified(
    sandbox: Sandbox, change: dict[str, object], code: str
) -> None:
    channel = WeChatOaChannel(sandbox.wechat_api())
    result = await channel.send(delivery(**change))
    assert (result.ok, result.error_class, result.code) == (False, ErrorClass.PERMANENT, code)
    assert result.reason


async def test_the_official_account_cuts_a_long_field_and_what_follows_a_line_break(sandbox: Sandbox) -> None:
    """WeChat's 2023 rules, as the sandbox plays them: accepted, and the buyer sees less."""
    fields = {
        "character_string1": "E1",
        "amount2": "1.00元",
        "thing3": "一二三四五六七八九十一二三四五六七八九十多",
        "time4": "2026-11-25 20:03",
    }
    channel = WeChatOaChannel(sandbox.wechat_api())
    assert (await channel.send(delivery(fields=fields))).ok
    assert (await channel.send(delivery(fields=fields | {"thing3": "第一行\n第二行"}))).ok
    assert [m["shown"]["thing3"] for m in sandbox.state.messages] == [
        "一二三四五六七八九十一二三四五六七八九十",
        "第一行",
    ]


async def test_a_buyer_who_unfollowed_the_account_is_unreachable_not_a_failure(sandbox: Sandbox) -> None:
    channel = WeChatOaChannel(sandbox.wechat_api())
    result = await channel.send(delivery(recipient=UNFOLLOWED_OPENID))
    assert (result.error_class, result.code, result.reason) == (
        ErrorClass.UNREACHABLE,
        "43004",
        "not_following",
    )


async def test_an_expired_token_is_refreshed_once_and_the_send_retried(sandbox: Sandbox) -> None:
    state = sandbox.state
    api = sandbox.wechat_api()
    channel = WeChatOaChannel(api)
    assert (await channel.send(delivery())).ok
    state.expire_tokens()
    results = await asyncio.gather(*(channel.send(delivery()) for _ in range(50)))
    assert all(result.ok for result in results)
    assert api.token_fetches == 2, "one fetch at start, one refresh after expiry: never one per message"


async def test_many_concurrent_first_sends_fetch_one_token(sandbox: Sandbox) -> None:
    api = sandbox.wechat_api()
    results = await asyncio.gather(*(WeChatOaChannel(api).send(delivery()) for _ in range(200)))
    assert all(result.ok for result in results)
    assert api.token_fetches == 1


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault(target="/cgi-bin/message/template/send", errcode=-1), "-1"),
        (Fault(target="/cgi-bin/message/template/send", errcode=45047), "45047"),
        (Fault(target="/cgi-bin/message/template/send", http_status=502), "http_502"),
        (Fault(target="/cgi-bin/message/template/send", latency_ms=3000), "timeout"),
        (Fault(target="/cgi-bin/message/template/send", errcode=99999), "99999"),
    ],
)
async def test_transient_failures_are_classified(sandbox: Sandbox, fault: Fault, code: str) -> None:
    state = sandbox.state
    state.add_fault(fault)
    channel = WeChatOaChannel(sandbox.wechat_api())
    result = await channel.send(delivery())
    assert (result.error_class, result.code) == (ErrorClass.TRANSIENT, code)


async def test_an_unreachable_provider_is_a_transient_failure(sandbox: Sandbox) -> None:
    sandbox.url = "http://127.0.0.1:9"
    channel = WeChatOaChannel(sandbox.wechat_api())
    result = await channel.send(delivery())
    assert (result.error_class, result.code) == (ErrorClass.TRANSIENT, "connection")


async def test_a_wrong_secret_is_permanent_and_a_missing_one_too(sandbox: Sandbox) -> None:
    def token_failures() -> float:
        labels = {"error_class": "permanent"}
        return REGISTRY.get_sample_value("mall_notify_token_refresh_failures_total", labels) or 0.0

    before = token_failures()
    wrong = await WeChatOaChannel(sandbox.wechat_api({DEMO_APPID: SecretStr("wrong")})).send(delivery())
    missing = await WeChatOaChannel(sandbox.wechat_api({})).send(delivery())
    assert (wrong.error_class, wrong.code) == (ErrorClass.PERMANENT, "40125")
    assert (missing.error_class, missing.code) == (ErrorClass.PERMANENT, "no_secret")
    assert token_failures() == before + 2  # what MallNotifyTokenRefreshFailing watches


async def test_sandbox_inspection_masks_secrets(sandbox: Sandbox) -> None:
    channel = WeChatOaChannel(sandbox.wechat_api())
    await channel.send(delivery())
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sandbox.url}/__sandbox__/requests") as response,
    ):
        requests = await response.json()
    assert "sandbox-oa-secret-1001" not in str(requests)
    assert requests[0]["body"]["secret"] == "***"
    assert requests[1]["query"]["access_token"] == "***"


@pytest.mark.parametrize(("errcode", "expected"), sorted(ERRCODES.items()))
async def test_every_wechat_code_is_classified(
    sandbox: Sandbox, errcode: int, expected: tuple[ErrorClass, str]
) -> None:
    sandbox.state.add_fault(Fault(target="/cgi-bin/message/template/send", errcode=errcode, count=1))
    api = sandbox.wechat_api()
    result = await WeChatOaChannel(api).send(delivery())
    if expected[0] is ErrorClass.REAUTH:
        assert result.ok, "an invalid token is refreshed and the send retried once"
        assert api.token_fetches == 2
    else:
        assert (result.error_class, result.code, result.reason) == (expected[0], str(errcode), expected[1])
        assert not result.unknown_code


async def test_a_token_that_stays_invalid_is_not_retried_forever(sandbox: Sandbox) -> None:
    sandbox.state.add_fault(Fault(target="/cgi-bin/message/template/send", errcode=40001))
    api = sandbox.wechat_api()
    result = await WeChatOaChannel(api).send(delivery())
    assert (result.error_class, result.code) == (ErrorClass.REAUTH, "40001")
    assert api.token_fetches == 2
    sends = [r for r in sandbox.state.requests if r["path"] == "/cgi-bin/message/template/send"]
    assert len(sends) == 2


async def test_an_unknown_code_is_transient_and_flagged(sandbox: Sandbox) -> None:
    sandbox.state.add_fault(Fault(target="/cgi-bin/message/template/send", errcode=48099))
    result = await WeChatOaChannel(sandbox.wechat_api()).send(delivery())
    assert (result.error_class, result.code, result.unknown_code) == (ErrorClass.TRANSIENT, "48099", True)


async def test_a_connection_reset_is_transient(sandbox: Sandbox) -> None:
    sandbox.state.add_fault(Fault(target="/cgi-bin/message/template/send", reset=True, count=1))
    result = await WeChatOaChannel(sandbox.wechat_api()).send(delivery())
    assert (result.error_class, result.code) == (ErrorClass.TRANSIENT, "connection")


async def test_an_outage_window_ends(sandbox: Sandbox) -> None:
    sandbox.state.add_fault(
        Fault(target="/cgi-bin/message/template/send", http_status=503, duration_seconds=1.0)
    )
    channel = WeChatOaChannel(sandbox.wechat_api())
    during = await channel.send(delivery())
    await asyncio.sleep(1.2)
    after = await channel.send(delivery())
    assert during.code == "http_503"
    assert after.ok


async def test_sends_per_app_are_rate_limited(sandbox: Sandbox) -> None:
    """A lower bound only: 15 sends at 10/s cannot finish before the bucket refills (about 0.5 s)."""
    api = sandbox.wechat_api(limits=Limits(concurrency=4, rate_per_second=10))
    started = time.monotonic()
    results = await asyncio.gather(*(WeChatOaChannel(api).send(delivery()) for _ in range(15)))
    assert all(result.ok for result in results)
    assert time.monotonic() - started >= 0.4
