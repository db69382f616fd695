"""WeChat Official Account template messages (``/cgi-bin/message/template/send``)."""

from __future__ import annotations

from typing import Any

from channels.base import ChannelName, Delivery, SendResult
from channels.wechat import WeChatApi

TEMPLATE_SEND_PATH = "/cgi-bin/message/template/send"


def template_message(delivery: Delivery) -> dict[str, Any]:
    """The request body WeChat expects; ``client_msg_id`` lets WeChat drop a repeated send."""
    body: dict[str, Any] = {
        "touser": delivery.recipient,
        "template_id": delivery.template_id,
        "data": {keyword: {"value": value} for keyword, value in delivery.fields.items()},
        "client_msg_id": delivery.delivery_id,
    }
    if delivery.link:
        body["url"] = delivery.link
    return body


class WeChatOaChannel:
    name = ChannelName.WECHAT_OA

    def __init__(self, api: WeChatApi) -> None:
        self._api = api

    async def send(self, delivery: Delivery) -> SendResult:
        return await self._api.send(delivery.account, TEMPLATE_SEND_PATH, template_message(delivery))
