"""What the ``mall-notify sms`` commands that change a shop share: the Aliyun review client, and
reading, changing and saving the shop's settings with every refusal as one line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from channels.aliyun_review import AliyunSmsReview
from channels.aliyun_sms import AliyunCallFailed
from streams.core.catalog import Catalog
from streams.core.credentials import WeChatSecrets
from streams.core.errors import ConfigError
from streams.core.shop_checks import parse_shop_rules
from streams.core.shops import ShopRules
from streams.core.sms_signatures import Refused
from streams.ops.cli_common import ExitCode, console, fail, load_cli_settings, load_cli_topics
from streams.ops.cli_settings import catalog_of, save, shop_of
from streams.ops.shop_store import read_table
from streams.settings import Settings

READ_SECONDS = 30.0


def review_client(settings: Settings) -> AliyunSmsReview:
    """Aliyun with the platform's AccessKey: the registered one, else the configured one."""
    config = settings.aliyun_sms(credentials(settings).aliyun_key() if settings.secrets_keys else None)
    if config is None:
        raise fail(
            "no Aliyun AccessKey: register one (mall-notify aliyun register) or set "
            "MALL_NOTIFY_ALIYUN_ACCESS_KEY_ID and MALL_NOTIFY_ALIYUN_ACCESS_KEY_SECRET",
            ExitCode.CONFIG,
        )
    return AliyunSmsReview(config)


def credentials(settings: Settings) -> WeChatSecrets:
    """Every registered WeChat app and the platform's AccessKey, as ``notify.credentials`` holds them."""
    table = WeChatSecrets(settings.secret_box())
    read_table(settings.kafka_bootstrap_servers, load_cli_topics(settings).credentials, table, READ_SECONDS)
    return table


def change_shop(
    shop_id: int,
    change: Callable[[Settings, ShopRules, Catalog], Coroutine[Any, Any, ShopRules]],
    action: str,
    done: str = "",
) -> ShopRules:
    """Read the shop's settings, change them, save them; every refusal is one line."""
    settings = load_cli_settings()
    catalog = catalog_of(settings)
    shop = shop_of(settings, shop_id, catalog)
    try:
        changed = asyncio.run(change(settings, shop, catalog))
        parse_shop_rules(changed.model_dump(mode="json"), catalog, f"shop {shop_id}")
    except Refused as exc:
        raise fail(str(exc), ExitCode.FAILED) from None
    except ConfigError as exc:
        raise fail(str(exc), ExitCode.FAILED) from None
    except AliyunCallFailed as exc:
        raise fail(f"Aliyun: {exc.result.code}: {exc.result.reason}", ExitCode.FAILED) from None
    if changed != shop:
        save(settings, [changed], action)
    if done:
        console.print(done, markup=False)
    return changed
