"""The SMS part of ``make demo``: the demo shop orders a package which the mall's payment service
pays (its ``sms_package.paid`` event delivered twice, credited once), applies for a signature that
the platform approves and Aliyun (the sandbox) reviews, activates it, and later sees its balance
go down by what its SMS cost. Every step is the same code the CLI and the admin API run."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pydantic import SecretStr
from rich.console import Console

from channels.aliyun_review import AliyunSmsReview, LetterForm, QualificationForm
from channels.aliyun_sms import AliyunSmsConfig
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
from streams.devtools.worker_pages import wait_for_worker
from streams.ops import sms_reviews
from streams.ops.reading import ReadRecord, end_offsets, read_all, read_until
from streams.ops.shop_store import publish_purchases, publish_shops
from streams.settings import Settings

DEMO_SIGNATURE = "百客优选"
DEMO_PACKAGE = "basic"
WAIT = 60.0
"""how long the demo waits for the payment's outcomes"""
REVIEW_WAIT_SECONDS = 30.0
DEMO_ADMIN_PHONE = "13900009001"
DEMO_QUALIFICATION = {
    "qualification_name": "百客优选演示资质",
    "company_name": "杭州百客优选演示有限公司",
    "organization_code": "91330100DEMO00001X",
    "business_licenses": [{"type": "businessLicense", "pic": "demo/9001/license.png"}],
    "business_license_valid": "2020-01-01~2099-12-31",
    "legal_person_name": "演示法人",
    "legal_person_id_no": "330100199001010000",
    "legal_person_id_valid": "2020-01-01~2040-01-01",
    "admin_name": "演示管理员",
    "admin_id_no": "330100199202020000",
    "admin_id_valid": "2020-01-01~2040-01-01",
    "admin_id_front": "demo/9001/admin-front.png",
    "admin_id_back": "demo/9001/admin-back.png",
    "admin_phone": DEMO_ADMIN_PHONE,
}
"""the demo merchant's company, made up (the sandbox plays Aliyun's reviewers)"""
DEMO_LETTER = {
    "name": "百客优选演示授权书",
    "signatures": [DEMO_SIGNATURE],
    "valid": "2026-01-01~2036-12-31",
    "letter_pic": "demo/9001/letter.png",
    "platform_company": "百客商城演示平台有限公司",
}


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
    settings: Settings, topics: Topics, shop: ShopRules, urls: tuple[str, str, str], console: Console
) -> ShopRules:
    """The merchant's papers (qualification, authorization letter), then a signature applied for,
    approved by the platform, reviewed by Aliyun, and activated. ``urls``: the sandbox's, the
    worker's and the platform's token: Aliyun's reviews reach the shop through the worker (its
    poller, Aliyun's pushes), and the demo waits until the worker has them."""
    sandbox_url, worker_url, token = urls
    key_id, secret = SANDBOX_ALIYUN_KEY
    endpoint = sandbox_url.removeprefix("http://")
    aliyun = AliyunSmsReview(AliyunSmsConfig(key_id, SecretStr(secret), endpoint=endpoint, protocol="http"))
    saved = partial(_saved, settings, topics, worker_url, token)
    reviewed = ("approved", "rejected", "incomplete", "withdrawn")
    shop = saved(_qualified(shop, aliyun, sandbox_url), lambda s: _qualification(s) in reviewed)
    kept = shop.sms.qualification if shop.sms else None
    if kept is None or kept.status != "approved":
        raise RuntimeError(f"Aliyun's review of the demo qualification did not approve it ({kept})")
    console.print(
        f"[bold]SMS[/] the platform submitted the merchant's company {kept.company_name} for its "
        "signatures (SubmitSmsQualification): Aliyun approved it (the worker's poller asked)"
    )
    letter = LetterForm.model_validate(DEMO_LETTER)
    shop = asyncio.run(sms_reviews.create_letter(shop, letter, aliyun, datetime.now(UTC)))
    console.print(
        f"[bold]SMS[/] the merchant's authorization letter lets the platform sign 【{DEMO_SIGNATURE}】 "
        "(CreateSmsAuthorizationLetter)"
    )
    shop = sms_reviews.apply(shop, DEMO_SIGNATURE, [], datetime.now(UTC))
    console.print(f"[bold]SMS[/] shop {shop.shop_id} applied for the signature 【{DEMO_SIGNATURE}】")
    shop = asyncio.run(sms_reviews.review(shop, DEMO_SIGNATURE, True, None, aliyun, datetime.now(UTC)))
    console.print(
        "[bold]SMS[/] the platform approved it and submitted it to Aliyun with the qualification and "
        "the letter (CreateSmsSign)"
    )
    shop = saved(shop, lambda s: _signature(s) in ("approved", "rejected"))
    if (signature := _signature(shop)) != "approved":
        raise RuntimeError(f"Aliyun's review of {DEMO_SIGNATURE} did not approve it ({signature})")
    shop = activate_signature(shop, DEMO_SIGNATURE)
    publish_shops(settings.kafka_bootstrap_servers, topics.settings, [shop])
    console.print(
        f"[bold]SMS[/] Aliyun approved it (its SignSmsReport push, taken by the worker: {signature}); "
        "the shop activated it"
    )
    return shop


def _qualified(shop: ShopRules, aliyun: AliyunSmsReview, sandbox_url: str) -> ShopRules:
    """The demo merchant's qualification submitted, with the code its administrator's phone received."""
    asyncio.run(aliyun.send_phone_code(SecretStr(DEMO_ADMIN_PHONE)))
    with urllib.request.urlopen(f"{sandbox_url}/__sandbox__/aliyun/phone-codes/{DEMO_ADMIN_PHONE}") as reply:
        code = str(json.load(reply)["code"])
    form = QualificationForm.model_validate(DEMO_QUALIFICATION | {"certify_code": code})
    return asyncio.run(sms_reviews.submit_qualification(shop, form, aliyun, datetime.now(UTC)))


def _saved(
    settings: Settings,
    topics: Topics,
    worker_url: str,
    token: str,
    shop: ShopRules,
    done: Callable[[ShopRules], bool],
) -> ShopRules:
    """Save the shop's settings, then wait until the worker's reviews lane makes them ``done``."""
    shop = sealed(shop, DEMO_RECIPIENT_KEY.encode())
    publish_shops(settings.kafka_bootstrap_servers, topics.settings, [shop])
    page: dict[str, Any] = {}

    def took(current: Any) -> bool:
        page.clear()
        page.update(current)
        return done(ShopRules.model_validate(current))

    path = f"/shops/{shop.shop_id}/settings"
    wait_for_worker(worker_url, token, path, took, "Aliyun's review", REVIEW_WAIT_SECONDS)
    return ShopRules.model_validate(page)


def _qualification(shop: ShopRules) -> str | None:
    kept = shop.sms.qualification if shop.sms else None
    return kept.status if kept else None


def _signature(shop: ShopRules) -> str | None:
    signature = shop.sms.signature(DEMO_SIGNATURE) if shop.sms else None
    return signature.status if signature else None
