"""The platform's Aliyun AccessKey as every Aliyun client asks for it: the one registered at run
time (``mall-notify aliyun register``, ``PUT /v1/platform/aliyun``; sealed on
``notify.credentials``) over the one configured (``MALL_NOTIFY_ALIYUN_ACCESS_KEY_ID`` /
``_SECRET``). A client asks before each call, and builds its SDK client again when the key changed:
a rotated key is used from the next call, no restart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import SecretStr

from streams.core.credentials import WeChatSecrets
from streams.settings import Settings

if TYPE_CHECKING:
    from channels.aliyun_sms import AliyunKeys, AliyunSmsConfig


def aliyun_keys(settings: Settings, credentials: WeChatSecrets | None) -> AliyunKeys | AliyunSmsConfig | None:
    """Where the Aliyun clients find the current AccessKey: a function of the followed
    ``credentials`` when keys can be registered (MALL_NOTIFY_SECRETS_KEYS set), else the
    configured key (None without one: SMS is not configured)."""
    if credentials is None or settings.secrets_keys is None:
        return settings.aliyun_sms()

    made: dict[str, tuple[tuple[str, SecretStr] | None, AliyunSmsConfig | None]] = {}

    def current() -> AliyunSmsConfig | None:
        """The configuration of the registered key, the same object while the key is the same."""
        registered = credentials.aliyun_key()
        last = made.get("last")
        if last is None or last[0] is not registered:
            made["last"] = last = registered, settings.aliyun_sms(registered)
        return last[1]

    return current
