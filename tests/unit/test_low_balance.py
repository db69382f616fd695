"""A shop's SMS balance falling low: the seller told once per crossing, with the charge that
crossed it; the shops counted by band."""

from __future__ import annotations

from channels.base import ChannelName, SendResult
from streams.core.catalog import load_catalog
from streams.core.events import SmsBalanceLowEvent, parse_event
from streams.core.low_balance import band, low_balance_event, shop_bands
from streams.core.recipients import recipient_hash, unseal
from streams.core.render_plan import compile_shop
from streams.core.routing import Router
from streams.core.shop_records import sealed
from streams.core.sms_quota import AccountBook, Balance, Package, new_purchase, purchase_record
from streams.core.source import SourceRecord
from streams.core.topics import Topics
from streams.ops.shop_store import load_config_shops
from streams.runtime.kafka.follower import TableFollower
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.lanes.sender import SenderStage
from streams.runtime.lanes.sms_account import SmsQuota
from streams.settings import PROJECT_ROOT
from tests.factories import DEMO_SHOP, SELLER_OPENID
from tests.unit.test_sms_quota import _sms
from tests.unit.test_stages import NOW, ScriptedChannel, on, owning, record

SHOP = next(shop for shop in load_config_shops(PROJECT_ROOT / "config") if shop.shop_id == DEMO_SHOP)
PACK = Package(id="small", name="小包", messages=103, price_fen=500)


def balance(available: int, purchased: int = 1000) -> Balance:
    return Balance(
        shop_id=DEMO_SHOP,
        purchased=purchased,
        used=purchased - available,
        sent=0,
        refused=0,
        available=available,
    )


def test_the_seller_is_told_below_the_threshold_once_per_purchase_level() -> None:
    assert low_balance_event(SHOP, balance(100), NOW) is None, "at the threshold is not below it"
    first = low_balance_event(SHOP, balance(99), NOW)
    again = low_balance_event(SHOP, balance(12), NOW)
    assert first is not None
    assert again is not None
    assert first[0] == again[0], "the same crossing: a copy, a duplicate downstream"
    topped_up = low_balance_event(SHOP, balance(50, purchased=2000), NOW)
    assert topped_up is not None
    assert topped_up[0] != first[0], "after the shop bought more, a new crossing"
    event = parse_event(first[1])
    assert isinstance(event, SmsBalanceLowEvent)
    assert (event.shop_id, event.data.available, event.data.threshold) == (DEMO_SHOP, 99, 100)
    assert event.data.seller.oa_openid == SELLER_OPENID


def test_an_overdraft_shows_zero_left_and_a_threshold_of_zero_never_tells() -> None:
    found = low_balance_event(SHOP, balance(-3), NOW)
    assert found is not None
    assert parse_event(found[1]).data.available == 0  # type: ignore[union-attr]
    never = SHOP.model_copy(update={"sms_low_balance": 0})
    assert low_balance_event(never, balance(-3), NOW) is None


def test_shops_are_counted_by_band() -> None:
    assert [band(SHOP, balance(n)) for n in (-1, 0, 1, 99, 100)] == [
        "exhausted",
        "exhausted",
        "low",
        "low",
        "ok",
    ]
    book = AccountBook()
    book.apply(*purchase_record(new_purchase(DEMO_SHOP, PACK, "platform", NOW, prepaid=True)))
    book.apply(*purchase_record(new_purchase(42, PACK, "platform", NOW, prepaid=True)))
    shops = {DEMO_SHOP: SHOP, 42: SHOP.model_copy(update={"shop_id": 42, "sms_low_balance": 10})}
    assert shop_bands(book, shops.get) == {"exhausted": 0, "low": 0, "ok": 2}


class Commits:
    def __init__(self) -> None:
        self.writes: list[Write] = []

    async def __call__(self, _: ConsumedRecord, writes: list[Write]) -> None:
        self.writes += writes


async def test_the_sms_that_crosses_the_threshold_is_committed_with_the_sellers_notice_once(
    topics: Topics,
) -> None:
    book = AccountBook()
    book.apply(*purchase_record(new_purchase(DEMO_SHOP, PACK, "platform", NOW, prepaid=True)))
    events = topics.event_topic_for("sms_balance.low")
    assert events is not None
    quota = SmsQuota(
        book,
        topics.sms_account,
        TableFollower("unused:9092", topics.sms_account, book),
        {DEMO_SHOP: SHOP}.get,
        events,
    )
    topic = topics.send_topic(ChannelName.ALIYUN_SMS)
    stage = SenderStage(
        topics,
        ScriptedChannel(SendResult.delivered("biz")),
        owning(topics, [topic]),
        clock=lambda: NOW,
        quota=quota,
    )
    stage.commit_first = commits = Commits()
    for offset in range(1, 7):  # 103 -> 97 segments left, the threshold is 100
        await stage.handle(record(_sms(1), topic=topic, offset=offset))
    [told] = on(commits.writes, events)
    assert told.key == f"shop/{DEMO_SHOP}".encode()
    event = parse_event(told.value)
    assert isinstance(event, SmsBalanceLowEvent)
    assert event.data.available == 99, "told with the charge of the SMS that crossed it"


def test_the_sellers_openid_is_kept_sealed_and_opened_only_to_route() -> None:
    key = b"recipient-key-for-the-tests-0001"
    kept = sealed(SHOP, key)
    assert kept.seller_openid is not None
    assert kept.seller_openid.startswith("sealed:")
    assert SELLER_OPENID not in kept.model_dump_json()
    again = sealed(SHOP, key, previous=kept)
    assert again.seller_openid == kept.seller_openid, "an unchanged save changes nothing"
    assert sealed(kept, key) == kept
    assert sealed(SHOP, None) == SHOP
    found = low_balance_event(kept, balance(5), NOW)
    assert found is not None
    assert SELLER_OPENID.encode() not in found[1], "the pipeline's own event holds it sealed"
    catalog = load_catalog(PROJECT_ROOT / "config" / "catalog.yaml")
    routing = Router(catalog, key).route(
        parse_event(found[1]), compile_shop(kept, catalog), SourceRecord("notify.events", 0, 1), NOW
    )
    [notice] = routing.dispatches
    assert notice.recipient is not None
    assert notice.recipient.hash == recipient_hash(key, "openid", SELLER_OPENID)
    assert unseal(key, notice.delivery.recipient) == SELLER_OPENID
