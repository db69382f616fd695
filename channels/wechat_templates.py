"""The templates an Official Account holds (模板设置-微信模板): add from WeChat's library, list, delete."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from channels.wechat import WeChatApi

ADD_PATH = "/cgi-bin/template/api_add_template"
LIST_PATH = "/cgi-bin/template/get_all_private_template"
DELETE_PATH = "/cgi-bin/template/del_private_template"


class PrivateTemplate(BaseModel):
    template_id: str
    title: str = ""
    content: str = ""


class OaTemplates:
    """Raises :class:`~channels.wechat.CallFailed` (its ``result`` says why) when WeChat refuses."""

    def __init__(self, api: WeChatApi) -> None:
        self._api = api

    async def add(self, appid: str, library_id: str, keywords: list[str]) -> str:
        """Copy a library template into the OA; WeChat's id for it (an OA holds at most 25)."""
        reply = await self._api.call(
            appid, "POST", ADD_PATH, {"template_id_short": library_id, "keyword_name_list": keywords}
        )
        return str(reply["template_id"])

    async def list(self, appid: str) -> list[PrivateTemplate]:
        reply: dict[str, Any] = await self._api.call(appid, "GET", LIST_PATH)
        return [PrivateTemplate.model_validate(item) for item in reply.get("template_list", [])]

    async def delete(self, appid: str, template_id: str) -> None:
        await self._api.call(appid, "POST", DELETE_PATH, {"template_id": template_id})
