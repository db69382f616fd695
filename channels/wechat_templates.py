"""The templates a shop's WeChat accounts hold (模板设置-微信模板), and the account settings the
manual requires before they can be used.

- Official Account: ``api_add_template`` (a library template with its keywords' names, in
  order: https://developers.weixin.qq.com/doc/service/api/notify/template/api_addtemplate),
  ``get_all_private_template``, ``del_private_template``; ``template/get_industry``.
- Mini Program: ``wxaapi/newtmpl/addtemplate`` (a title ``tid`` with keyword ids: ``thing2`` is
  id 2; form-encoded, as its page says JSON is not supported:
  https://developers.weixin.qq.com/miniprogram/dev/api-backend/open-api/subscribe-message/subscribeMessage.addTemplate.html),
  ``newtmpl/gettemplate``, ``newtmpl/deltemplate``; ``newtmpl/getcategory``.

Each raises :class:`~channels.wechat.CallFailed` (its ``result`` says why) when WeChat refuses.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from pydantic import BaseModel

from channels.wechat import WeChatApi

OA_INDUSTRY = (("IT科技", "互联网|电子商务"), ("其他", "其他"))
"""公众号模板消息行业仅支持选择 IT科技/互联网|电子商务 其他|其他"""
MP_CATEGORY = "服装/鞋/箱包"
"""小程序服务类目: 商家自营 - 服装/鞋/箱包"""
OA_ADVICE = (
    "set the Official Account's industries to IT科技/互联网|电子商务 and 其他/其他 in the WeChat "
    "console (模板消息 - 所在行业): with another industry the template messages cannot be used"
)
MP_ADVICE = (
    "add the service category 商家自营 - 服装/鞋/箱包 to the Mini Program and turn subscribe "
    "messages on in its console: without it the subscribe messages cannot be used"
)


class PrivateTemplate(BaseModel):
    template_id: str
    title: str = ""
    content: str = ""


class AccountTemplates(Protocol):
    """What the shops' settings need of one kind of WeChat account."""

    async def add(self, appid: str, library_id: str, keywords: list[str]) -> str:
        """Add a library template to the account; WeChat's id for it. ``keywords``: on the
        Official Account their names in the library, on the Mini Program their codes."""
        ...

    async def list(self, appid: str) -> list[PrivateTemplate]: ...

    async def delete(self, appid: str, template_id: str) -> None: ...

    async def misconfigured(self, appid: str) -> str | None:
        """What the manual says is wrong with the account's setup, or None."""
        ...


class OaTemplates:
    def __init__(self, api: WeChatApi) -> None:
        self._api = api

    async def add(self, appid: str, library_id: str, keywords: list[str]) -> str:
        reply = await self._api.call(
            appid,
            "POST",
            "/cgi-bin/template/api_add_template",
            {"template_id_short": library_id, "keyword_name_list": keywords},
        )
        return str(reply["template_id"])

    async def list(self, appid: str) -> list[PrivateTemplate]:
        reply: dict[str, Any] = await self._api.call(
            appid, "GET", "/cgi-bin/template/get_all_private_template"
        )
        return [PrivateTemplate.model_validate(item) for item in reply.get("template_list", [])]

    async def delete(self, appid: str, template_id: str) -> None:
        await self._api.call(
            appid, "POST", "/cgi-bin/template/del_private_template", {"template_id": template_id}
        )

    async def misconfigured(self, appid: str) -> str | None:
        reply: dict[str, Any] = await self._api.call(appid, "GET", "/cgi-bin/template/get_industry")
        found = tuple(
            (str(industry.get("first_class")), str(industry.get("second_class")))
            for industry in (reply.get("primary_industry") or {}, reply.get("secondary_industry") or {})
        )
        if found == OA_INDUSTRY:
            return None
        shown = " and ".join("/".join(pair) for pair in found)
        return f"the Official Account's industries are {shown}: {OA_ADVICE}"


KEYWORD_ID = re.compile(r"(\d+)$")


class MpTemplates:
    def __init__(self, api: WeChatApi) -> None:
        self._api = api

    async def add(self, appid: str, library_id: str, keywords: list[str]) -> str:
        kids = [int(match[1]) for keyword in keywords if (match := KEYWORD_ID.search(keyword))]
        reply = await self._api.call(
            appid,
            "POST",
            "/wxaapi/newtmpl/addtemplate",
            {"tid": library_id, "kidList": kids, "sceneDesc": "订单与账户通知"},
            form=True,
        )
        return str(reply["priTmplId"])

    async def list(self, appid: str) -> list[PrivateTemplate]:
        reply: dict[str, Any] = await self._api.call(appid, "GET", "/wxaapi/newtmpl/gettemplate")
        return [
            PrivateTemplate(
                template_id=str(item["priTmplId"]),
                title=item.get("title", ""),
                content=item.get("content", ""),
            )
            for item in reply.get("data", [])
        ]

    async def delete(self, appid: str, template_id: str) -> None:
        await self._api.call(appid, "POST", "/wxaapi/newtmpl/deltemplate", {"priTmplId": template_id})

    async def misconfigured(self, appid: str) -> str | None:
        reply: dict[str, Any] = await self._api.call(appid, "GET", "/wxaapi/newtmpl/getcategory")
        names = [str(category.get("name")) for category in reply.get("data", [])]
        if MP_CATEGORY in names:
            return None
        return f"the Mini Program's categories are {', '.join(names) or 'none'}: {MP_ADVICE}"
