"""Load: 1,000 concurrent sends per app fetch one access token per app per expiry period."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp
import pytest

from channels.base import ChannelName, Delivery
from channels.limits import Limits
from channels.wechat_mp import WeChatMpChannel
from channels.wechat_oa import WeChatOaChannel
from tests.conftest import Sandbox
from tests.factories import DEMO_APPID, delivery
from tests.unit.test_wechat_mp_and_templates import MP_APPID, mp_delivery

pytestmark = pytest.mark.slow
SENDS_PER_APP = 1000


def _token_fetches(sandbox: Sandbox) -> Counter[str]:
    fetches = [r for r in sandbox.state.requests if r["path"] == "/cgi-bin/stable_token"]
    return Counter(str(r["body"]["appid"]) for r in fetches)


async def _burst(sandbox: Sandbox, oa: WeChatOaChannel, mp: WeChatMpChannel) -> float:
    deliveries: list[tuple[WeChatOaChannel | WeChatMpChannel, Delivery]] = [
        *((oa, delivery()) for _ in range(SENDS_PER_APP)),
        *((mp, mp_delivery()) for _ in range(SENDS_PER_APP)),
    ]
    started = time.perf_counter()
    results = await asyncio.gather(*(channel.send(d) for channel, d in deliveries))
    elapsed = time.perf_counter() - started
    assert all(result.ok for result in results), Counter(r.code for r in results if not r.ok)
    return elapsed


async def test_one_token_fetch_per_app_per_expiry_under_load(sandbox: Sandbox) -> None:
    async with aiohttp.ClientSession() as session:
        grant = {
            "appid": MP_APPID,
            "openid": mp_delivery().recipient,
            "template_id": mp_delivery().template_id,
            "count": 2 * SENDS_PER_APP,
        }
        await session.post(f"{sandbox.url}/__sandbox__/wechat/subscriptions", json=grant)
    sandbox.session = type(sandbox.session)(aiohttp.ClientTimeout(total=30, connect=5))
    limits = Limits(concurrency=64, rate_per_second=5000)  # the per-app limits are not under test here
    oa = WeChatOaChannel(sandbox.wechat_api(limits=limits))
    mp = WeChatMpChannel(sandbox.wechat_api(limits=limits))
    first = await _burst(sandbox, oa, mp)
    assert _token_fetches(sandbox) == {DEMO_APPID: 1, MP_APPID: 1}
    sandbox.state.expire_tokens()  # two hours later, mid-stream
    second = await _burst(sandbox, oa, mp)
    assert _token_fetches(sandbox) == {DEMO_APPID: 2, MP_APPID: 2}
    assert (
        len([m for m in sandbox.state.messages if m["channel"] == ChannelName.WECHAT_OA.value])
        == 2 * SENDS_PER_APP
    )
    print(f"\n{2 * SENDS_PER_APP} sends: {first:.2f} s; after expiry: {second:.2f} s")
    await sandbox.session.close()
