"""Saving and reading shops' settings from the command line (the compacted settings topic)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from streams.core.catalog import Catalog, load_catalog
from streams.core.settings_history import SettingsChange, history_record, parse_history, settings_change
from streams.core.shop_checks import load_shop_files
from streams.core.shop_records import ShopTable, sealed, settings_record
from streams.core.shops import ShopRules
from streams.core.sms_quota import (
    Payment,
    Purchase,
    load_packages,
    new_purchase,
    payment_record,
    purchase_record,
)
from streams.core.topics import Topics
from streams.ops.reading import read_all
from streams.runtime.kafka.clients import idempotent_producer
from streams.runtime.kafka.follower import Table


def _write(
    bootstrap_servers: str, records: Sequence[tuple[str, tuple[bytes, bytes | None]]], what: str
) -> None:
    """Write ``(topic, (key, value))`` records (a None value: a tombstone), acknowledged by Kafka
    (RuntimeError if not)."""
    producer = idempotent_producer(bootstrap_servers)
    for topic, (key, value) in records:
        producer.produce(topic, key=key, value=value)
    if producer.flush(30):
        raise RuntimeError(f"the {what} were not acknowledged by Kafka")


def publish_shops(
    bootstrap_servers: str, topic: str, shops: list[ShopRules], key: bytes | None = None
) -> None:
    """Save shops' rules (already validated) to the settings topic, acknowledged by Kafka (the
    seller's openid sealed with the recipient ``key``)."""
    _write(bootstrap_servers, [(topic, settings_record(sealed(shop, key))) for shop in shops], "settings")


def save_shops(
    bootstrap_servers: str,
    topics: Topics,
    shops: list[ShopRules],
    who: str,
    action: str,
    catalog: Catalog,
    key: bytes | None = None,
) -> None:
    """Save shops' rules (already validated) with a record of each change in the settings history
    (the seller's openid sealed with the recipient ``key``)."""
    before = read_shops(bootstrap_servers, topics.settings, catalog)
    now = datetime.now(UTC)
    shops = [sealed(shop, key, before.get(shop.shop_id)) for shop in shops]
    records = [
        record
        for shop in shops
        for record in (
            (topics.settings, settings_record(shop)),
            (
                topics.settings_history,
                history_record(settings_change(before.get(shop.shop_id), shop, who, action, now)),
            ),
        )
    ]
    _write(bootstrap_servers, records, "settings")


def read_settings_history(
    bootstrap_servers: str, topic: str, shop_id: int, timeout: float
) -> list[SettingsChange]:
    """Every change of a shop's settings the history topic still holds, oldest first."""
    found = (parse_history(r.key, r.value, shop_id) for r in read_all(bootstrap_servers, topic, timeout))
    return sorted((change for change in found if change is not None), key=lambda change: change.at)


def read_shops(bootstrap_servers: str, topic: str, catalog: Catalog) -> dict[int, ShopRules]:
    """The current settings of every shop, as a worker would see them."""
    table = ShopTable(catalog)
    for record in read_all(bootstrap_servers, topic, timeout=60):
        table.apply(record.key, record.value)
    return dict(table)


def publish_records(
    bootstrap_servers: str, topic: str, records: list[tuple[bytes, bytes | None]], what: str
) -> None:
    """Write records of a compacted table to ``topic``, acknowledged by Kafka."""
    _write(bootstrap_servers, [(topic, record) for record in records], f"{what} records")


def read_table(bootstrap_servers: str, topic: str, table: Table, timeout: float = 60) -> None:
    """Apply every record ``topic`` holds to ``table``, oldest first."""
    for record in read_all(bootstrap_servers, topic, timeout):
        table.apply(record.key, record.value)


def publish_purchases(bootstrap_servers: str, topic: str, purchases: list[Purchase]) -> None:
    """Save SMS purchase orders to the account topic, acknowledged by Kafka."""
    _write(bootstrap_servers, [(topic, purchase_record(purchase)) for purchase in purchases], "purchases")


def publish_payment(bootstrap_servers: str, topic: str, payment: Payment) -> None:
    """Save the payment of a purchase order to the account topic, acknowledged by Kafka."""
    _write(bootstrap_servers, [(topic, payment_record(payment))], "payment")


def save_sample_shops(
    bootstrap_servers: str, topics: Topics, config_dir: Path, package: str = "large", key: bytes | None = None
) -> None:
    """The sample shops of ``config/shops/`` saved as settings, each with an SMS package bought
    and paid (what the tests and benchmarks start from: the platform seeding a development setup)."""
    shops = load_config_shops(config_dir)
    publish_shops(bootstrap_servers, topics.settings, shops, key)
    bought = load_packages(config_dir / "sms_packages.yaml")[package]
    now = datetime.now(UTC)
    purchases = [new_purchase(shop.shop_id, bought, "platform:samples", now, prepaid=True) for shop in shops]
    publish_purchases(bootstrap_servers, topics.sms_account, purchases)


def load_config_shops(config_dir: Path) -> list[ShopRules]:
    """The sample shops of ``config/shops/`` (the demo and the tests save them as settings)."""
    catalog = load_catalog(config_dir / "catalog.yaml")
    return load_shop_files(sorted((config_dir / "shops").glob("*.yaml")), catalog)
