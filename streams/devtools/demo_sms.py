"""The SMS part of ``make demo``: the demo shop orders a package whose payment the platform
confirms, applies for a signature that the platform approves and Aliyun (the sandbox) reviews,
activates it, and later sees its balance go down by what its SMS cost. Every step is the same
code the CLI and the admin API run."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from pydantic import SecretStr
from rich.console import Console

from channels.aliyun_sms import AliyunSmsConfig, AliyunSmsReview
from streams.core.shops import ShopRules
from streams.core.sms_quota import AccountBook, Balance, Payment, load_packages, new_purchase, purchase_record
from streams.core.sms_signatures import activate_signature
from streams.core.topics import Topics
from streams.devtools.local_stack import SANDBOX_ALIYUN_KEY
from streams.ops import sms_reviews
from streams.ops.reading import read_all
from streams.ops.shop_store import publish_payment, publish_purchases, publish_shops
from streams.settings import Settings

DEMO_SIGNATURE = "百客优选"
DEMO_PACKAGE = "trial"
REVIEW_WAIT_SECONDS = 15.0


def sms_balance(settings: Settings, topics: Topics, shop_id: int) -> Balance:
    book = AccountBook()
    for record in read_all(settings.kafka_bootstrap_servers, topics.sms_account, timeout=30):
        book.apply(record.key, record.value)
    return book.balance(shop_id)


def buy_package(settings: Settings, topics: Topics, shop_id: int, console: Console) -> Balance:
    """The shop orders the trial package, and the platform confirms its payment; the balance
    before the order, while it is pending, and once it is paid."""
    before = sms_balance(settings, topics, shop_id)
    package = load_packages(settings.config_dir / "sms_packages.yaml")[DEMO_PACKAGE]
    now = datetime.now(UTC)
    purchase = new_purchase(shop_id, package, f"shop {shop_id} (demo)", now)
    publish_purchases(settings.kafka_bootstrap_servers, topics.sms_account, [purchase])
    pending = sms_balance(settings, topics, shop_id)
    book = AccountBook()
    book.apply(*purchase_record(purchase))
    payment = book.pay(shop_id, purchase.purchase_id, "platform (demo)", "the demo's offline payment", now)
    assert isinstance(payment, Payment)  # an order just placed is payable
    publish_payment(settings.kafka_bootstrap_servers, topics.sms_account, payment)
    after = sms_balance(settings, topics, shop_id)
    console.print(
        f"[bold]SMS[/] shop {shop_id} ordered {package.name} ({package.messages} messages): "
        f"balance {before.available} -> {pending.available} while pending; "
        f"the platform confirmed its payment: balance {pending.available} -> {after.available}"
    )
    return after


def new_signature(
    settings: Settings, topics: Topics, shop: ShopRules, sandbox_url: str, console: Console
) -> ShopRules:
    """Apply for a signature, have the platform approve it, wait for Aliyun's review, activate it."""
    key_id, secret = SANDBOX_ALIYUN_KEY
    endpoint = sandbox_url.removeprefix("http://")
    config = AliyunSmsConfig(key_id, SecretStr(secret), endpoint=endpoint, protocol="http")
    aliyun = AliyunSmsReview(config)
    shop = sms_reviews.apply(shop, DEMO_SIGNATURE, [], datetime.now(UTC))
    console.print(f"[bold]SMS[/] shop {shop.shop_id} applied for the signature 【{DEMO_SIGNATURE}】")
    shop = asyncio.run(sms_reviews.review(shop, DEMO_SIGNATURE, True, None, aliyun, datetime.now(UTC)))
    console.print("[bold]SMS[/] the platform approved it and submitted it to Aliyun (AddSmsSign)")
    deadline = time.monotonic() + REVIEW_WAIT_SECONDS
    while (signature := _signature(shop)) != "approved":
        if signature == "rejected" or time.monotonic() > deadline:
            raise RuntimeError(f"Aliyun's review of {DEMO_SIGNATURE} did not approve it ({signature})")
        time.sleep(0.5)
        shop = asyncio.run(sms_reviews.refresh(shop, aliyun, datetime.now(UTC)))
    shop = activate_signature(shop, DEMO_SIGNATURE)
    publish_shops(settings.kafka_bootstrap_servers, topics.settings, [shop])
    console.print(f"[bold]SMS[/] Aliyun approved it (QuerySmsSign: {signature}); the shop activated it")
    return shop


def _signature(shop: ShopRules) -> str | None:
    signature = shop.sms.signature(DEMO_SIGNATURE) if shop.sms else None
    return signature.status if signature else None
