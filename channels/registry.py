"""All channels of a worker, built from one configuration, sharing one HTTP session."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
from pydantic import SecretStr

from channels.aliyun_sms import NOT_CONFIGURED, AliyunKeys, AliyunSmsChannel, AliyunSmsConfig
from channels.base import Channel, ChannelName, Delivery, ErrorClass, SendResult
from channels.http import SharedSession
from channels.limits import Limits
from channels.webhook import WebhookChannel
from channels.wechat import WeChatApi
from channels.wechat_mp import MiniProgramState, WeChatMpChannel
from channels.wechat_oa import WeChatOaChannel


@dataclass(frozen=True)
class ChannelsConfig:
    wechat_oa_api_base: str
    wechat_mp_api_base: str
    wechat_secrets: Mapping[str, SecretStr]
    """each app's AppSecret, looked up when a token is fetched (the registered ones, followed)"""
    secrets_loaded: asyncio.Event | None = None
    """set once ``wechat_secrets`` holds every registered app"""
    mini_program_state: MiniProgramState = "formal"
    wechat_limits: Limits = field(default_factory=Limits)
    aliyun_sms: AliyunSmsConfig | AliyunKeys | None = None
    """the platform's AccessKey, or where the current one is found (registered at run time); None:
    SMS deliveries fail as not configured"""
    webhook_key: bytes | None = None
    """the platform's recipient key, which the webhooks' secrets derive from (None: no webhooks)"""
    webhook_allowed_hosts: frozenset[str] = frozenset()
    timeout: aiohttp.ClientTimeout = field(default_factory=lambda: aiohttp.ClientTimeout(total=10, connect=3))


class NotConfigured:
    """A channel this deployment has no credentials for. Its deliveries still end, dead-lettered
    with the code ``channel_not_configured`` (replayable once it is configured), instead of
    waiting unread until a worker that has the credentials sends them late."""

    def __init__(self, name: ChannelName) -> None:
        self.name = name

    async def send(self, delivery: Delivery) -> SendResult:
        return SendResult.failed(
            ErrorClass.PERMANENT, NOT_CONFIGURED, f"this deployment has no credentials for {self.name.value}"
        )


class Channels:
    def __init__(self, config: ChannelsConfig) -> None:
        self._session = SharedSession(config.timeout)
        oa, mp = (
            WeChatApi(
                base,
                config.wechat_secrets,
                self._session,
                config.wechat_limits,
                secrets_loaded=config.secrets_loaded,
            )
            for base in (config.wechat_oa_api_base, config.wechat_mp_api_base)
        )
        self.wechat_apis = (oa, mp)
        self.by_name: dict[ChannelName, Channel] = {
            ChannelName.WECHAT_OA: WeChatOaChannel(oa),
            ChannelName.WECHAT_MP: WeChatMpChannel(mp, config.mini_program_state),
        }
        self.by_name[ChannelName.ALIYUN_SMS] = self._sms(config)
        self.by_name[ChannelName.WEBHOOK] = (
            WebhookChannel(self._session, config.webhook_key, config.webhook_allowed_hosts)
            if config.webhook_key is not None
            else NotConfigured(ChannelName.WEBHOOK)
        )
        self.codes: Channel = self._sms(config)
        """verification codes' own SMS client: its own per-signature limits, so codes never queue
        behind bulk SMS waiting for the same signature"""

    def forget_token(self, appid: str) -> None:
        """Drop the token cached for ``appid`` (its secret changed): the next call fetches one."""
        for api in self.wechat_apis:
            api.forget(appid)

    @staticmethod
    def _sms(config: ChannelsConfig) -> Channel:
        if config.aliyun_sms is None:
            return NotConfigured(ChannelName.ALIYUN_SMS)
        return AliyunSmsChannel(config.aliyun_sms)

    @property
    def off(self) -> list[ChannelName]:
        """The channels this deployment cannot send on."""
        return [
            name
            for name, channel in self.by_name.items()
            if isinstance(channel, NotConfigured) or not getattr(channel, "configured", True)
        ]

    async def close(self) -> None:
        await self._session.close()
