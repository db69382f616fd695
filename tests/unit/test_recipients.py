"""Outcomes name their recipient by a keyed hash and a masked form, never by the address."""

from __future__ import annotations

import pytest

from channels.base import ChannelName, SendResult
from streams.core.catalog import Catalog
from streams.core.dispatch import parse_dispatch
from streams.core.events import parse_event
from streams.core.recipients import mask_address, recipient, recipient_hash, seal, unseal
from streams.core.render_plan import compile_shop
from streams.core.routing import Router
from streams.core.source import SourceRecord
from streams.core.topics import Topics
from streams.ops.shop_store import load_config_shops
from streams.runtime.lanes.sender import SenderStage
from streams.settings import PROJECT_ROOT
from tests.factories import BUYER, BUYER_OPENID, SAMPLE_EVENTS, to_bytes
from tests.unit.test_stages import NOW, ScriptedChannel, on, owning, record

KEY = b"platform-recipient-key-0001"


@pytest.mark.parametrize(
    "spelling", ["13912345678", "+86 139 1234 5678", "86-139-1234-5678", " 139-1234-5678 "]
)
def test_every_spelling_of_a_phone_number_has_one_hash(spelling: str) -> None:
    assert recipient_hash(KEY, "phone", spelling) == recipient_hash(KEY, "phone", "13912345678")
    assert mask_address("phone", spelling) == "139****5678"


def test_the_hash_depends_on_the_key_and_the_kind() -> None:
    assert recipient_hash(KEY, "phone", "13912345678") != recipient_hash(
        b"another-key-000000", "phone", "13912345678"
    )
    assert recipient_hash(KEY, "openid", "13912345678") != recipient_hash(KEY, "phone", "13912345678")
    assert (
        recipient(KEY, ChannelName.WECHAT_OA, BUYER_OPENID).masked
        == f"{BUYER_OPENID[:4]}***{BUYER_OPENID[-4:]}"
    )


async def test_an_outcome_carries_the_hash_and_the_masked_form_not_the_address(
    catalog: Catalog, topics: Topics
) -> None:
    shop = load_config_shops(PROJECT_ROOT / "config")[0]
    event = parse_event(to_bytes(SAMPLE_EVENTS["payment.succeeded"]))
    routing = Router(catalog, KEY).route(
        event, compile_shop(shop, catalog), SourceRecord("mall.payments", 0, 1), NOW
    )
    oa = next(
        d
        for d in routing.dispatches
        if d.delivery.channel is ChannelName.WECHAT_OA and d.scene == "buyer_order_paid"
    )
    assert oa.recipient == recipient(KEY, ChannelName.WECHAT_OA, BUYER["oa_openid"])
    assert BUYER["oa_openid"] not in oa.to_json().decode()  # the send topic carries it sealed
    channel = ScriptedChannel(SendResult.delivered("2000000001"))
    send_topic = topics.send_topic(ChannelName.WECHAT_OA)
    stage = SenderStage(topics, channel, owning(topics, [send_topic]), clock=lambda: NOW, recipient_key=KEY)
    writes = await stage.handle(record(oa.to_json(), topic=send_topic))
    [outcome] = on(writes, topics.outcomes)
    assert [sent.recipient for sent in channel.sent] == [BUYER["oa_openid"]]  # opened to call WeChat
    assert BUYER["oa_openid"].encode() not in (outcome.value or b"")
    assert oa.recipient is not None
    assert oa.recipient.hash.encode() in (outcome.value or b"")
    assert b'"provider_message_id":"2000000001"' in (outcome.value or b"")
    assert parse_dispatch(oa.to_json()).recipient == oa.recipient
    # a sender with another key cannot open it: a dead letter that says why, not a wrong send
    other = SenderStage(
        topics, channel, owning(topics, [send_topic]), clock=lambda: NOW, recipient_key=b"x" * 20
    )
    refused = await other.handle(record(oa.to_json(), topic=send_topic, offset=2))
    [dead] = on(refused, topics.dead_letter)
    assert dict(dead.headers or [])["x-notify-reason"] == b"invalid_delivery"
    assert b"does not open with this key" in dict(dead.headers or [])["x-notify-detail"]


def test_without_a_key_no_recipient_is_named(catalog: Catalog) -> None:
    shop = load_config_shops(PROJECT_ROOT / "config")[0]
    event = parse_event(to_bytes(SAMPLE_EVENTS["payment.succeeded"]))
    routing = Router(catalog).route(
        event, compile_shop(shop, catalog), SourceRecord("mall.payments", 0, 1), NOW
    )
    assert {d.recipient for d in routing.dispatches} == {None}


def test_a_sealed_address_opens_only_with_the_platforms_key() -> None:
    sealed = seal(KEY, "13912345678")
    assert "13912345678" not in sealed
    assert unseal(KEY, sealed) == "13912345678"
    with pytest.raises(ValueError, match="does not open"):
        unseal(b"another-key-000000000", sealed)
