"""The WeChat OA channel against the sandbox (a real HTTP server on loopback): wire format,
token handling and error classification as a user of the channel sees them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from channels.base import ErrorClass
from channels.sandbox.server import build_app
from channels.sandbox.state import Fault, State
from channels.wechat import WeChatApi
from channels.wechat_oa import WeChatOaChannel
from tests.factories import DEMO_APPID, ROOT, UNFOLLOWED_OPENID, delivery

SECRET = {DEMO_APPID: SecretStr("sandbox-oa-secret-1001")}


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[State, str]]:
    state = State.from_file(ROOT / "config" / "sandbox.yaml")
    server = TestServer(build_app(state), host="127.0.0.1")
    await server.start_server()
    yield state, str(server.make_url("")).rstrip("/")
    await server.close()


def _api(base: str, secrets: dict[str, SecretStr] = SECRET, total: float = 5.0) -> WeChatApi:
    return WeChatApi(base, secrets, aiohttp.ClientTimeout(total=total, connect=1))


async def test_a_delivery_is_sent_in_wechats_format(sandbox: tuple[State, str]) -> None:
    state, base = sandbox
    channel = WeChatOaChannel(_api(base))
    sent = delivery()
    result = await channel.send(sent)
    await channel.close()
    assert result.ok
    assert result.provider_message_id
    [message] = state.messages
    assert message["body"] == {
        "touser": sent.recipient,
        "template_id": sent.template_id,
        "data": {key: {"value": value} for key, value in sent.fields.items()},
        "client_msg_id": sent.delivery_id,
    }


async def test_the_same_delivery_twice_is_delivered_once(sandbox: tuple[State, str]) -> None:
    state, base = sandbox
    channel = WeChatOaChannel(_api(base))
    sent = delivery()
    first, second = await channel.send(sent), await channel.send(sent)
    await channel.close()
    assert first.provider_message_id == second.provider_message_id
    assert len(state.messages) == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"recipient": UNFOLLOWED_OPENID}, "43004"),
        ({"template_id": "no-such-template"}, "40037"),
        ({"fields": {"thing3": "这是一个超过二十个字符的非常非常长的商品名称啊"}}, "47003"),
        ({"recipient": "bad openid!"}, "40003"),
    ],
)
async def test_permanent_errors_are_classified(
    sandbox: tuple[State, str], change: dict[str, object], code: str
) -> None:
    _, base = sandbox
    channel = WeChatOaChannel(_api(base))
    result = await channel.send(delivery(**change))
    await channel.close()
    assert (result.ok, result.error_class, result.code) == (False, ErrorClass.PERMANENT, code)
    assert result.reason


async def test_an_expired_token_is_refreshed_once_and_the_send_retried(sandbox: tuple[State, str]) -> None:
    state, base = sandbox
    api = _api(base)
    channel = WeChatOaChannel(api)
    assert (await channel.send(delivery())).ok
    state.expire_tokens()
    results = await asyncio.gather(*(channel.send(delivery()) for _ in range(50)))
    await channel.close()
    assert all(result.ok for result in results)
    assert api.token_fetches == 2, "one fetch at start, one refresh after expiry: never one per message"


async def test_many_concurrent_first_sends_fetch_one_token(sandbox: tuple[State, str]) -> None:
    _, base = sandbox
    api = _api(base)
    results = await asyncio.gather(*(WeChatOaChannel(api).send(delivery()) for _ in range(200)))
    await api.close()
    assert all(result.ok for result in results)
    assert api.token_fetches == 1


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault(path="/cgi-bin/message/template/send", errcode=-1), "-1"),
        (Fault(path="/cgi-bin/message/template/send", errcode=45047), "45047"),
        (Fault(path="/cgi-bin/message/template/send", http_status=502), "http_502"),
        (Fault(path="/cgi-bin/message/template/send", latency_ms=3000), "timeout"),
        (Fault(path="/cgi-bin/message/template/send", errcode=99999), "99999"),
    ],
)
async def test_transient_failures_are_classified(sandbox: tuple[State, str], fault: Fault, code: str) -> None:
    state, base = sandbox
    state.faults.append(fault)
    channel = WeChatOaChannel(_api(base, total=1.0))
    result = await channel.send(delivery())
    await channel.close()
    assert (result.error_class, result.code) == (ErrorClass.TRANSIENT, code)


async def test_an_unreachable_provider_is_a_transient_failure() -> None:
    channel = WeChatOaChannel(_api("http://127.0.0.1:9"))
    result = await channel.send(delivery())
    await channel.close()
    assert (result.error_class, result.code) == (ErrorClass.TRANSIENT, "connection")


async def test_a_wrong_secret_is_permanent_and_a_missing_one_too(sandbox: tuple[State, str]) -> None:
    _, base = sandbox
    wrong = await WeChatOaChannel(_api(base, {DEMO_APPID: SecretStr("wrong")})).send(delivery())
    missing = await WeChatOaChannel(_api(base, {})).send(delivery())
    assert (wrong.error_class, wrong.code) == (ErrorClass.PERMANENT, "40125")
    assert (missing.error_class, missing.code) == (ErrorClass.PERMANENT, "no_secret")


async def test_sandbox_inspection_masks_secrets(sandbox: tuple[State, str]) -> None:
    _, base = sandbox
    channel = WeChatOaChannel(_api(base))
    await channel.send(delivery())
    await channel.close()
    async with aiohttp.ClientSession() as session, session.get(f"{base}/__sandbox__/requests") as response:
        requests = await response.json()
    assert "sandbox-oa-secret-1001" not in str(requests)
    assert requests[0]["body"]["secret"] == "***"
    assert requests[1]["query"]["access_token"] == "***"
