"""All channels of a worker, built from one configuration, sharing one HTTP session."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from pydantic import SecretStr

from channels.aliyun_sms import AliyunSmsChannel, AliyunSmsConfig
from channels.base import Channel, ChannelName
from channels.http import SharedSession
from channels.limits import Limits
from channels.wechat import WeChatApi
from channels.wechat_mp import MiniProgramState, WeChatMpChannel
from channels.wechat_oa import WeChatOaChannel


@dataclass(frozen=True)
class ChannelsConfig:
    wechat_oa_api_base: str
    wechat_mp_api_base: str
    wechat_secrets: dict[str, SecretStr]
    mini_program_state: MiniProgramState = "formal"
    wechat_limits: Limits = field(default_factory=Limits)
    aliyun_sms: AliyunSmsConfig | None = None
    """None when no Aliyun AccessKey is configured: SMS deliveries then fail as not configured."""
    timeout: aiohttp.ClientTimeout = field(default_factory=lambda: aiohttp.ClientTimeout(total=10, connect=3))


class Channels:
    def __init__(self, config: ChannelsConfig) -> None:
        self._session = SharedSession(config.timeout)
        oa = WeChatApi(config.wechat_oa_api_base, config.wechat_secrets, self._session, config.wechat_limits)
        mp = WeChatApi(config.wechat_mp_api_base, config.wechat_secrets, self._session, config.wechat_limits)
        self.by_name: dict[ChannelName, Channel] = {
            ChannelName.WECHAT_OA: WeChatOaChannel(oa),
            ChannelName.WECHAT_MP: WeChatMpChannel(mp, config.mini_program_state),
        }
        if config.aliyun_sms is not None:
            self.by_name[ChannelName.ALIYUN_SMS] = AliyunSmsChannel(config.aliyun_sms)

    async def close(self) -> None:
        await self._session.close()
