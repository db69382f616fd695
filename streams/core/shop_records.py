"""Shops' settings as records of the compacted settings topic (key: shop id, value: the settings
as JSON), and the table of every shop's latest valid settings built from them. Pure.

Writers (the admin API, ``mall-notify settings load|set``) validate before they publish; readers
validate again, so a record that breaks a rule (written by hand, or under an older catalog) is
refused and the shop's previous settings stay.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import orjson

from streams.core.catalog import Catalog
from streams.core.errors import ConfigError
from streams.core.recipients import is_sealed, seal, unseal
from streams.core.shop_checks import parse_shop_rules
from streams.core.shops import ShopRules


def sealed(shop: ShopRules, key: bytes | None, previous: ShopRules | None = None) -> ShopRules:
    """The settings as the settings topic keeps them: the seller's openid sealed with the
    platform's recipient key (as the send topics carry addresses), the earlier sealed text kept
    when the address did not change (so an unchanged save changes nothing). Without a key, as given."""
    address = shop.seller_openid
    if key is None or address is None or is_sealed(address):
        return shop
    before = previous.seller_openid if previous is not None else None
    if before is not None and is_sealed(before):
        try:
            if unseal(key, before) == address:
                return shop.model_copy(update={"seller_openid": before})
        except ValueError:
            pass  # sealed with another key: seal it again with this one
    return shop.model_copy(update={"seller_openid": seal(key, address)})


def settings_record(shop: ShopRules) -> tuple[bytes, bytes]:
    """Key and value of a shop's settings in the settings topic."""
    return str(shop.shop_id).encode(), shop.model_dump_json(exclude_none=True).encode()


class ShopTable(Mapping[int, ShopRules]):
    """The latest valid settings of every shop, by shop id."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._shops: dict[int, ShopRules] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> int | str:
        """Apply one settings record: the shop id it changed, or why it was refused (the
        previous settings stay)."""
        if key is None or not key.isdigit():
            return f"a settings record whose key is not a shop id: {key!r}"
        shop_id = int(key)
        if value is None:  # a tombstone: the shop's settings were deleted
            self._shops.pop(shop_id, None)
            return shop_id
        try:
            shop = parse_shop_rules(orjson.loads(value), self._catalog, f"settings of shop {shop_id}")
        except (ConfigError, orjson.JSONDecodeError, ValueError) as exc:
            return str(exc)
        if shop.shop_id != shop_id:
            return f"settings of shop {shop.shop_id} under the key of shop {shop_id}"
        self.accept(shop)
        return shop_id

    def accept(self, shop: ShopRules) -> None:
        """Know a shop's settings this process has just saved (read your own writes)."""
        self._shops[shop.shop_id] = shop

    def __getitem__(self, shop_id: int) -> ShopRules:
        return self._shops[shop_id]

    def __iter__(self) -> Iterator[int]:
        return iter(self._shops)

    def __len__(self) -> int:
        return len(self._shops)
