"""Registering a merchant's WeChat app (appid and AppSecret), and the platform's Aliyun
AccessKey, at run time, as the admin API and ``mall-notify wechat register`` / ``aliyun
register`` do it: the sealed secret for ``notify.credentials``; for an app, the shop's settings
naming the appid and a line of the settings history saying who changed which app's secret (its
last four characters, never more). See :mod:`streams.core.credentials`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from pydantic import SecretStr

from streams.core.credentials import (
    ACCESS_KEY_ID,
    APPID,
    AliyunKey,
    AppKind,
    SecretBox,
    WeChatApp,
    new_aliyun_key,
    new_app,
)
from streams.core.errors import MallNotifyError
from streams.core.shops import ShopRules, WeChatAccount
from streams.core.sms_signatures import Refused

FIELDS: dict[AppKind, str] = {"oa": "wechat_oa", "mp": "wechat_mp"}
KINDS = {"oa": "Official Account", "mp": "Mini Program"}


class NoSecretsKey(MallNotifyError):
    """A secret cannot be registered without MALL_NOTIFY_SECRETS_KEYS."""


def register(
    shop: ShopRules,
    kind: AppKind,
    appid: str,
    secret: SecretStr,
    registered: Iterable[WeChatApp],
    box: SecretBox | None,
    now: datetime,
    who: str,
) -> tuple[ShopRules, WeChatApp]:
    """The shop's settings naming the app, and the app's record with its secret sealed; Refused
    when another shop has the appid."""
    if box is None:
        raise NoSecretsKey(
            "MALL_NOTIFY_SECRETS_KEYS is not set: a merchant's AppSecret is never kept in clear"
        )
    if re.match(APPID, appid) is None:
        raise Refused(f"{appid!r} is not an appid (wx and 8 to 30 letters or digits)")
    if len(secret.get_secret_value()) < 8:
        raise Refused("the AppSecret is too short to be WeChat's (32 characters)")
    for app in registered:
        if app.appid == appid and app.shop_id != shop.shop_id:
            raise Refused(f"appid {appid} is registered to another shop")
    app = new_app(box, appid, kind, shop.shop_id, secret, now, who)
    named = shop.model_copy(update={FIELDS[kind]: WeChatAccount(appid=appid)})
    return named, app


def action(app: WeChatApp) -> str:
    """The settings history's line: which app's secret, by its last four characters."""
    return f"register WeChat {KINDS[app.kind]} {app.appid} (AppSecret ***{app.last4})"


def register_aliyun(
    key_id: str, secret: SecretStr, box: SecretBox | None, now: datetime, who: str
) -> AliyunKey:
    """The platform's AccessKey with its secret sealed (it replaces the one registered before)."""
    if box is None:
        raise NoSecretsKey("MALL_NOTIFY_SECRETS_KEYS is not set: the AccessKey secret is never kept in clear")
    if re.match(ACCESS_KEY_ID, key_id) is None:
        raise Refused(f"{key_id!r} is not an AccessKey id (8 to 64 letters or digits)")
    if len(secret.get_secret_value()) < 16:
        raise Refused("the AccessKey secret is too short to be Aliyun's (30 characters)")
    return new_aliyun_key(box, key_id, secret, now, who)
