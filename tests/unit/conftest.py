"""Fixtures the stage tests share: the shipped topics, and a router over the sample shops."""

from __future__ import annotations

import pytest

from streams.core.catalog import Catalog, load_catalog
from streams.core.render_plan import compile_shop
from streams.core.routing import Router
from streams.core.shop_checks import load_shop_rules
from streams.core.topics import Topics, load_topics
from streams.runtime.lanes.buyers import BuyerStage, BuyerState
from streams.runtime.lanes.router import RouterStage
from streams.runtime.state.store import Store
from tests.factories import ROOT
from tests.unit.test_stages import NOW, PARTITION, disk, owning


@pytest.fixture
def topics() -> Topics:
    return load_topics(ROOT / "config" / "topics.yaml")


@pytest.fixture
def catalog() -> Catalog:
    return load_catalog(ROOT / "config" / "catalog.yaml")


@pytest.fixture
def router(topics: Topics, catalog: Catalog) -> RouterStage:
    plans = {
        i: compile_shop(s, catalog) for i, s in load_shop_rules(ROOT / "config" / "shops", catalog).items()
    }
    return RouterStage(topics, Router(catalog), plans, owning(topics, topics.event_topics), clock=lambda: NOW)


@pytest.fixture
def buyers(topics: Topics) -> BuyerStage:
    """The buyers lane's stage, owning partition PARTITION of the buyers' topic, nothing chosen yet."""
    store = Store(
        "buyers",
        {topics.buyers: topics.buyer_state},
        disk(),
        ttl_seconds=86400.0,
        clock=lambda: NOW.timestamp(),
    )
    store.open((topics.buyers, PARTITION))
    return BuyerStage(topics, BuyerState(store), clock=lambda: NOW)
