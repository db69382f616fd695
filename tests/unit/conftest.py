"""Fixtures the stage tests share: the shipped topics, and a router over the sample shops."""

from __future__ import annotations

import pytest

from streams.core.catalog import Catalog, load_catalog
from streams.core.render_plan import compile_shop
from streams.core.routing import Router
from streams.core.shop_checks import load_shop_rules
from streams.core.topics import Topics, load_topics
from streams.runtime.lanes.router import RouterStage
from tests.factories import ROOT
from tests.unit.test_stages import NOW, owning


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
