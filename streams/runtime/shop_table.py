"""The shops' settings as every worker and the admin API see them: the whole compacted settings
topic, read and then followed, so a saved change applies to the next event without a restart."""

from __future__ import annotations

from streams.core.catalog import Catalog
from streams.core.shop_records import ShopTable
from streams.logs import fields, get_logger
from streams.runtime.topic_view import TopicView

log = get_logger("shop_table")


class SettingsView(ShopTable):
    """A :class:`ShopTable` that follows the settings topic."""

    def __init__(self, bootstrap_servers: str, topic: str, catalog: Catalog) -> None:
        super().__init__(catalog)
        self.view = TopicView(bootstrap_servers, topic, self._follow)

    def _follow(self, key: bytes | None, value: bytes | None) -> None:
        refused = self.apply(key, value)
        if refused:
            log.error("settings refused, the previous ones stay", extra=fields(detail=refused))
