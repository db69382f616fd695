"""Mini Program subscribe messages and OA template management, against the sandbox."""

from __future__ import annotations

import aiohttp
import pytest

from channels.base import ChannelName, ErrorClass
from channels.wechat import CallFailed
from channels.wechat_mp import WeChatMpChannel
from channels.wechat_oa import WeChatOaChannel
from channels.wechat_templates import MpTemplates, OaTemplates
from tests.conftest import Sandbox
from tests.factories import DEMO_APPID, delivery

MP_APPID = "wx9c3e7a1b5d2f4e6a08"
MP_TEMPLATE = "mP-OrderPaid-4d2c9a7e1b3f5a6c8e0d2b4f6a8c"
SUBSCRIBED = "oMp1a2b3c4d5e6f7g8h9i0jKlMnO"


def mp_delivery(**changes: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "channel": ChannelName.WECHAT_MP,
        "account": MP_APPID,
        "recipient": SUBSCRIBED,
        "template_id": MP_TEMPLATE,
        "link": "pages/order/detail?order_no=E1",
    }
    return delivery(**(values | changes))


async def test_a_subscribe_message_is_sent_in_wechats_format(sandbox: Sandbox) -> None:
    sent = mp_delivery()
    result = await WeChatMpChannel(sandbox.wechat_api(), "trial").send(sent)
    assert result.ok
    [message] = sandbox.state.messages
    assert message["body"] == {
        "touser": SUBSCRIBED,
        "template_id": MP_TEMPLATE,
        "page": "pages/order/detail?order_no=E1",
        "data": {key: {"value": value} for key, value in sent.fields.items()},
        "miniprogram_state": "trial",
        "lang": "zh_CN",
    }


async def test_each_subscription_allows_one_message(sandbox: Sandbox) -> None:
    sandbox.state.wechat.subscriptions[(MP_APPID, SUBSCRIBED, MP_TEMPLATE)] = 3
    channel = WeChatMpChannel(sandbox.wechat_api())
    results = [await channel.send(mp_delivery()) for _ in range(4)]
    assert [r.ok for r in results] == [True, True, True, False]
    assert (results[-1].error_class, results[-1].code) == (ErrorClass.UNREACHABLE, "43101")
    assert results[-1].reason == "no_subscription"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"link": "pages/does/not/exist"}, "41030"),
        ({"template_id": "unknown"}, "40037"),
    ],
)
async def test_mp_refusals_are_permanent(sandbox: Sandbox, change: dict[str, object], code: str) -> None:
    result = await WeChatMpChannel(sandbox.wechat_api()).send(mp_delivery(**change))
    assert (result.error_class, result.code) == (ErrorClass.PERMANENT, code)


async def _call(sandbox: Sandbox, method: str, path: str, token: str, body: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, f"{sandbox.url}{path}", params={"access_token": token}, json=body
        ) as response,
    ):
        return await response.json()


async def _token(sandbox: Sandbox) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{sandbox.url}/cgi-bin/stable_token",
            json={"grant_type": "client_credential", "appid": DEMO_APPID, "secret": "sandbox-oa-secret-1001"},
        ) as response,
    ):
        return str((await response.json())["access_token"])


async def test_a_library_template_added_to_the_oa_can_be_used_then_deleted(sandbox: Sandbox) -> None:
    token = await _token(sandbox)
    added = await _call(
        sandbox,
        "POST",
        "/cgi-bin/template/api_add_template",
        token,
        {"template_id_short": "OPENTM417958215", "keyword_name_list": []},
    )
    template_id = added["template_id"]
    listing = await _call(sandbox, "GET", "/cgi-bin/template/get_all_private_template", token)
    assert template_id in [t["template_id"] for t in listing["template_list"]]
    channel = WeChatOaChannel(sandbox.wechat_api())
    assert (await channel.send(delivery(template_id=template_id))).ok
    deleted = await _call(
        sandbox, "POST", "/cgi-bin/template/del_private_template", token, {"template_id": template_id}
    )
    assert deleted["errcode"] == 0
    assert (await channel.send(delivery(template_id=template_id))).code == "40037"


async def test_an_oa_holds_at_most_25_templates(sandbox: Sandbox) -> None:
    token = await _token(sandbox)
    held = len(sandbox.state.wechat.templates[DEMO_APPID])
    answers = [
        await _call(
            sandbox,
            "POST",
            "/cgi-bin/template/api_add_template",
            token,
            {"template_id_short": "OPENTM411962989"},
        )
        for _ in range(26 - held)
    ]
    assert [a["errcode"] for a in answers].count(0) == 25 - held
    assert answers[-1]["errcode"] == 45026


async def test_an_oa_template_is_added_by_its_keywords_names_and_refused_when_given_their_codes(
    sandbox: Sandbox,
) -> None:
    """api_add_template takes the keywords' names in the library, in order; a category template
    (numeric id) refuses codes or no names with 40246, as WeChat documents."""
    templates = OaTemplates(sandbox.wechat_api())
    added = await templates.add(DEMO_APPID, "46213", ["订单号", "支付金额"])
    held = sandbox.state.wechat.templates[DEMO_APPID][added]
    assert held.keywords == ["character_string1", "amount2"], "only the keywords named, in that order"
    for keywords in (["character_string1", "amount2"], []):
        with pytest.raises(CallFailed) as refused:
            await templates.add(DEMO_APPID, "46213", keywords)
        assert refused.value.result.code == "40246"
    whole = await templates.add(DEMO_APPID, "OPENTM411962989", [])  # an industry template: taken whole
    assert len(sandbox.state.wechat.templates[DEMO_APPID][whole].keywords) == 5


async def test_a_subscribe_template_is_added_form_encoded_as_documented(sandbox: Sandbox) -> None:
    """wxaapi/newtmpl/addtemplate takes a form (JSON is not supported), kidList repeated."""
    added = await MpTemplates(sandbox.wechat_api()).add(MP_APPID, "1221", ["character_string1", "amount2"])
    assert sandbox.state.wechat.templates[MP_APPID][added].keywords == ["character_string1", "amount2"]
    api = sandbox.wechat_api()
    with pytest.raises(CallFailed) as as_json:  # the same body as JSON
        await api.call(MP_APPID, "POST", "/wxaapi/newtmpl/addtemplate", {"tid": "1221", "kidList": [1, 2]})
    assert as_json.value.result.code == "47001"
    for body, code in (
        ({"tid": "99999", "kidList": [1, 2]}, "200014"),
        ({"tid": "1221", "kidList": [1]}, "200020"),
        ({"tid": "1221", "kidList": [1, 2], "sceneDesc": "这是一个超过十五个字的服务场景描述文字"}, "200021"),
    ):
        with pytest.raises(CallFailed) as refused:
            await api.call(MP_APPID, "POST", "/wxaapi/newtmpl/addtemplate", body, form=True)
        assert refused.value.result.code == code
