"""Every change of a shop's settings, who made it and when: records of the settings history topic
(key: shop id), written with the settings they changed and listed by shop. Pure.

The topic is kept for a year (``config/topics.yaml``); it holds what changed (``path: old -> new``
per value), never the shops' customers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from streams.core.catalog import Frozen
from streams.core.shops import ShopRules

QUOTE_LIMIT = 64


class SettingsChange(Frozen):
    shop_id: int
    at: datetime
    who: str = Field(description="platform, platform:<user> (command line), or the shop's id (its token)")
    action: str = Field(description="what was done: put settings, enable buyer_order_paid/wechat_oa, ...")
    changes: list[str] = Field(description="path: old -> new, one per changed value")


def _quote(text: str) -> str:
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT] + "..."


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    """What differs between two JSON documents, one ``path: old -> new`` per changed value."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            change
            for key in sorted(before.keys() | after.keys(), key=str)
            for change in differences(before.get(key), after.get(key), f"{path}.{key}" if path else str(key))
        ]
    return [] if before == after else [f"{path}: {_quote(str(before))} -> {_quote(str(after))}"]


def settings_change(
    before: ShopRules | None, after: ShopRules, who: str, action: str, at: datetime
) -> SettingsChange:
    old = before.model_dump(mode="json") if before else {}
    return SettingsChange(
        shop_id=after.shop_id,
        at=at,
        who=who,
        action=action,
        changes=differences(old, after.model_dump(mode="json")),
    )


def history_record(change: SettingsChange) -> tuple[bytes, bytes]:
    return str(change.shop_id).encode(), change.model_dump_json().encode()


def parse_history(key: bytes | None, value: bytes | None, shop_id: int) -> SettingsChange | None:
    """One record of the history topic, when it is about ``shop_id`` and readable."""
    if key != str(shop_id).encode():
        return None
    try:
        return SettingsChange.model_validate_json(value or b"")
    except ValueError:
        return None
