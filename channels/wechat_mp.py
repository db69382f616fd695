"""WeChat Mini Program subscribe messages (``/cgi-bin/message/subscribe/send``).

The user must have subscribed to the template (a one-time quota per subscription); without it
WeChat answers 43101, which is permanent for this message.
"""

from __future__ import annotations

from typing import Any, Literal

from channels.base import ChannelName, Delivery, SendResult
from channels.wechat import WeChatApi

SUBSCRIBE_SEND_PATH = "/cgi-bin/message/subscribe/send"
MiniProgramState = Literal["developer", "trial", "formal"]


def subscribe_message(delivery: Delivery, state: MiniProgramState) -> dict[str, Any]:
    body: dict[str, Any] = {
        "touser": delivery.recipient,
        "template_id": delivery.template_id,
        "data": {keyword: {"value": value} for keyword, value in delivery.fields.items()},
        "miniprogram_state": state,
        "lang": "zh_CN",
    }
    if delivery.link:
        body["page"] = delivery.link
    return body


class WeChatMpChannel:
    name = ChannelName.WECHAT_MP

    def __init__(self, api: WeChatApi, state: MiniProgramState = "formal") -> None:
        self._api = api
        self._state: MiniProgramState = state

    async def send(self, delivery: Delivery) -> SendResult:
        return await self._api.send(
            delivery.account, SUBSCRIBE_SEND_PATH, subscribe_message(delivery, self._state)
        )
