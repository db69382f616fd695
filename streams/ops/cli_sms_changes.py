"""What the ``mall-notify sms`` commands that change a shop share: the Aliyun review client, and
reading, changing and saving the shop's settings with every refusal as one line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from channels.aliyun_review import AliyunSmsReview
from channels.aliyun_sms import AliyunCallFailed
from streams.core.catalog import Catalog
from streams.core.errors import ConfigError
from streams.core.shop_checks import parse_shop_rules
from streams.core.shops import ShopRules
from streams.core.sms_signatures import Refused
from streams.ops.cli_common import ExitCode, console, fail, load_cli_settings
from streams.ops.cli_settings import catalog_of, save, shop_of
from streams.settings import Settings


def review_client(settings: Settings) -> AliyunSmsReview:
    config = settings.aliyun_sms()
    if config is None:
        raise fail(
            "no Aliyun AccessKey is configured: set MALL_NOTIFY_ALIYUN_ACCESS_KEY_ID and "
            "MALL_NOTIFY_ALIYUN_ACCESS_KEY_SECRET",
            ExitCode.CONFIG,
        )
    return AliyunSmsReview(config)


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
