"""The packages on sale: the file's first offer under the platform's changes, a retired one sold
no more but known, a new one after the file's, a change refused when there is nothing to change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.core.sms_packages import PackageShelf, change, create, package_record, retire
from streams.core.sms_quota import Package, load_packages, new_purchase
from streams.core.sms_signatures import Refused
from tests.factories import ROOT

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def shelf() -> PackageShelf:
    return PackageShelf(load_packages(ROOT / "config" / "sms_packages.yaml"))


def test_changes_win_over_the_first_offer_and_a_purchase_keeps_its_price(shelf: PackageShelf) -> None:
    ordered = new_purchase(9001, shelf["basic"], "9001", NOW)
    repriced = change(shelf, "basic", NOW, "platform:ops", price_fen=3900)
    assert shelf.apply(*package_record(repriced)) == 0
    assert shelf["basic"].price_fen == 3900
    assert ordered.price_fen == 4500
    promo = create(
        shelf, Package(id="promo", name="促销包", messages=300, price_fen=990), NOW, "platform:ops"
    )
    shelf.apply(*package_record(promo))
    assert list(shelf)[-1] == "promo"
    with pytest.raises(Refused, match="package promo exists"):
        create(shelf, promo, NOW, "platform:ops")


def test_a_retired_package_is_sold_no_more_but_known(shelf: PackageShelf) -> None:
    shelf.apply(*package_record(retire(shelf, "trial", NOW, "platform:ops")))
    assert "trial" not in shelf
    known = shelf.known("trial")
    assert known is not None
    assert known.retired
    with pytest.raises(Refused, match="no package trial on sale"):
        change(shelf, "trial", NOW, "platform:ops", price_fen=1)
    assert isinstance(shelf.apply(b"package/x", b"{}"), str)
