"""Shop settings in Kafka: the compacted settings topic, keyed by shop id, value the shop's rules.

Writers (the admin API, ``mall-notify settings load|set``) validate before they publish; every
worker reads the whole topic into a :class:`SettingsView` and follows it, so a saved change
applies to the next event without a restart.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import orjson
import yaml

from streams.catalog import Catalog, ConfigError, ShopRules, load_catalog, parse_shop_rules
from streams.logs import fields, get_logger
from streams.publish import idempotent_producer
from streams.reading import read_all
from streams.topic_view import TopicView

log = get_logger("shop_settings")


class SettingsView(Mapping[int, ShopRules]):
    """The latest valid rules of every shop, read from the settings topic."""

    def __init__(self, bootstrap_servers: str, topic: str, catalog: Catalog) -> None:
        self._catalog = catalog
        self._shops: dict[int, ShopRules] = {}
        self.view = TopicView(bootstrap_servers, topic, self._apply)

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        if value is None:  # a tombstone: the shop's settings were deleted
            self._shops.pop(int(key), None)
            return
        try:
            shop = parse_shop_rules(orjson.loads(value), self._catalog, f"settings of shop {key.decode()}")
        except (ConfigError, orjson.JSONDecodeError, ValueError) as exc:
            log.error(
                "settings refused, the previous ones stay",
                extra=fields(shop_id=key.decode(), detail=str(exc)),
            )
            return
        self.accept(shop)

    def accept(self, shop: ShopRules) -> None:
        """Know a shop's settings this process has just saved (read your own writes)."""
        self._shops[shop.shop_id] = shop

    def __getitem__(self, shop_id: int) -> ShopRules:
        return self._shops[shop_id]

    def __iter__(self) -> Iterator[int]:
        return iter(self._shops)

    def __len__(self) -> int:
        return len(self._shops)


def settings_record(shop: ShopRules) -> tuple[bytes, bytes]:
    """Key and value of a shop's settings in the settings topic."""
    return str(shop.shop_id).encode(), shop.model_dump_json(exclude_none=True).encode()


def publish_shops(bootstrap_servers: str, topic: str, shops: list[ShopRules]) -> None:
    """Save shops' rules (already validated) to the settings topic, acknowledged by Kafka."""
    producer = idempotent_producer(bootstrap_servers)
    for shop in shops:
        key, value = settings_record(shop)
        producer.produce(topic, key=key, value=value)
    if producer.flush(30):
        raise RuntimeError("the settings were not acknowledged by Kafka")


def read_shops(bootstrap_servers: str, topic: str, catalog: Catalog) -> dict[int, ShopRules]:
    """The current settings of every shop, as a worker would see them."""
    view = SettingsView(bootstrap_servers, topic, catalog)
    for record in read_all(bootstrap_servers, topic, timeout=60):
        view._apply(record.key, record.value)
    return dict(view)


def load_shop_files(paths: list[Path], catalog: Catalog) -> list[ShopRules]:
    """Shops' rules from YAML files, every one validated (ConfigError names file and field)."""
    shops = []
    for path in paths:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(str(path), [str(exc)]) from None
        shops.append(parse_shop_rules(document, catalog, str(path)))
    return shops


def load_config_shops(config_dir: Path) -> list[ShopRules]:
    """The sample shops of ``config/shops/`` (the demo and the tests save them as settings)."""
    catalog = load_catalog(config_dir / "catalog.yaml")
    return load_shop_files(sorted((config_dir / "shops").glob("*.yaml")), catalog)
