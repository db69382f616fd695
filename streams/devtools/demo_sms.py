"""The SMS part of ``make demo``: the demo shop orders a package which the mall's payment service
pays (its ``sms_package.paid`` event delivered twice, credited once), applies for a signature that
the platform approves and Aliyun (the sandbox) reviews, activates it, and later sees its balance
go down by what its SMS cost. Every step is the same code the CLI and the admin API run."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from pydantic import SecretStr
from rich.console import Console

from channels.aliyun_sms import AliyunSmsConfig, AliyunSmsReview
from streams.core.events import envelope
from streams.core.outcomes import Outcome
from streams.core.shop_records import sealed
from streams.core.shops import ShopRules
from streams.core.sms_quota import AccountBook, Balance, Purchase, load_packages, new_purchase
from streams.core.sms_signatures import activate_signature
from streams.core.topics import Topics
from streams.devtools.demo_receipts import DEMO_RECIPIENT_KEY
from streams.devtools.local_stack import SANDBOX_ALIYUN_KEY
from streams.devtools.upstream import publish_values
from streams.ops import sms_reviews
from streams.ops.reading import ReadRecord, end_offsets, read_all, read_until
from streams.ops.shop_store import publish_purchases, publish_shops
from streams.settings import Settings

DEMO_SIGNATURE = "百客优选"
DEMO_PACKAGE = "basic"
WAIT = 60.0
"""how long the demo waits for the payment's outcomes"""
REVIEW_WAIT_SECONDS = 15.0


def sms_balance(settings: Settings, topics: Topics, shop_id: int) -> Balance:
    book = AccountBook()
    for record in read_all(settings.kafka_bootstrap_servers, topics.sms_account, timeout=30):
        book.apply(record.key, record.value)
    return book.balance(shop_id)


def buy_package(settings: Settings, topics: Topics, shop_id: int, console: Console) -> Balance:
    """The shop orders a package, and the mall's payment service pays it: its payment event comes
    twice (as an at-least-once publisher may send it) and is credited once. The balance before the
    order, while it is pending, and once it is paid."""
    bootstrap = settings.kafka_bootstrap_servers
    before = sms_balance(settings, topics, shop_id)
    package = load_packages(settings.config_dir / "sms_packages.yaml")[DEMO_PACKAGE]
    now = datetime.now(UTC)
    purchase = new_purchase(shop_id, package, f"shop {shop_id} (demo)", now)
    publish_purchases(bootstrap, topics.sms_account, [purchase])
    pending = sms_balance(settings, topics, shop_id)
    event_id, paid = _paid_event(purchase, now)
    start = end_offsets(bootstrap, topics.outcomes)
    publish_values(bootstrap, topics, [paid, paid])

    def reasons(records: list[ReadRecord]) -> list[str]:
        outcomes = (Outcome.model_validate_json(record.value or b"") for record in records)
        return [str(o.reason) for o in outcomes if o.event_id == event_id]

    copies = reasons(read_until(bootstrap, topics.outcomes, start, lambda rs: len(reasons(rs)) >= 2, WAIT))
    after = sms_balance(settings, topics, shop_id)
    console.print(
        f"[bold]SMS[/] shop {shop_id} ordered {package.name} ({package.messages} messages, "
        f"{package.price_fen / 100:.2f} yuan): balance {before.available} -> {pending.available} while "
        f"pending; the mall's payment service paid it (sms_package.paid, delivered twice: "
        f"{'; '.join(sorted(copies, reverse=True))}): balance {pending.available} -> {after.available}"
    )
    return after


def _paid_event(purchase: Purchase, now: datetime) -> tuple[str, bytes]:
    """The payment service's event for a purchase order, as it publishes it on the payments topic:
    its id, and the record's value."""
    data = {
        "purchase_id": purchase.purchase_id,
        "amount_fen": purchase.price_fen,
        "payment_no": f"WX{purchase.purchase_id[:20]}",
        "paid_at": now.isoformat(),
    }
    event_id = f"evt-smspay-{purchase.purchase_id}"
    return event_id, envelope(event_id, "sms_package.paid", "/mall/payment", purchase.shop_id, data, now)


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
    shop = sealed(activate_signature(shop, DEMO_SIGNATURE), DEMO_RECIPIENT_KEY.encode())
    publish_shops(settings.kafka_bootstrap_servers, topics.settings, [shop])
    console.print(f"[bold]SMS[/] Aliyun approved it (QuerySmsSign: {signature}); the shop activated it")
    return shop


def _signature(shop: ShopRules) -> str | None:
    signature = shop.sms.signature(DEMO_SIGNATURE) if shop.sms else None
    return signature.status if signature else None
