"""Merchants' webhooks: which URLs are called, how a call is signed and checked, which outcomes
make calls (once, whatever rereads them), and when a failing endpoint is switched off; the
channel against the sandbox playing a merchant's receiver."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from channels.base import ChannelName, Delivery, ErrorClass
from channels.sandbox.state import Fault
from channels.webhook import BODY, UrlRefused, WebhookChannel, check_url, secret_for, sign, verify
from streams.core.outcomes import Outcome, Status
from streams.core.recipients import Recipient
from streams.core.source import SourceRecord
from streams.core.webhooks import (
    Endpoint,
    EndpointRequest,
    EndpointTable,
    after_call,
    calls,
    enabled_again,
    endpoint_record,
    health_record,
    new_endpoint,
    removal,
)
from tests.conftest import Sandbox

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
KEY = b"k" * 32
DAY = timedelta(hours=24)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/in", "https only"),
        ("ftp://hooks.example.com/in", "https only"),
        ("https://127.0.0.1/in", "not a public address"),
        ("https://10.1.2.3/in", "not a public address"),
        ("https://192.168.0.10:8443/in", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),  # cloud metadata
        ("https://[::1]/in", "not a public address"),
        ("https://[fd00::1]/in", "not a public address"),
        ("https://localhost/in", "not a public host"),
        ("https://db.internal/in", "not a public host"),
        ("https://user:pw@hooks.example.com/in", "no user or password"),
        ("https:///in", "no host"),
        ("https://hooks.example.com:99999/in", "not a URL"),
    ],
)
def test_a_url_that_could_reach_the_platforms_own_network_is_refused_saying_why(url: str, why: str) -> None:
    with pytest.raises(UrlRefused, match=why):
        check_url(url)


def test_a_public_https_url_is_taken_and_an_allowed_local_receiver_over_http_too() -> None:
    assert check_url("https://hooks.example.com/mall?shop=1") == "https://hooks.example.com/mall?shop=1"
    assert check_url("https://8.8.8.8/in") == "https://8.8.8.8/in"
    assert check_url("http://127.0.0.1:8780/merchant/hooks/a", frozenset({"127.0.0.1:8780"}))
    with pytest.raises(UrlRefused):
        check_url("http://127.0.0.1:8781/other", frozenset({"127.0.0.1:8780"}))  # another port


def test_a_signature_checks_only_for_its_body_its_secret_and_a_recent_time() -> None:
    secret, body, at = secret_for(KEY, "wh_0123456789abcdef"), b'{"id":"whc_1"}', 1_796_000_000
    header = sign(secret, at, body)
    assert verify(secret, header, body, now=at + 60)
    assert not verify(secret, header, body + b" ", now=at + 60), "another body"
    assert not verify(secret_for(KEY, "wh_fedcba9876543210"), header, body, now=at), "another endpoint's"
    assert not verify(secret, header, body, now=at + 301), "older than 5 minutes: a replay"
    assert not verify(secret, "v1=" + header.rpartition("v1=")[2], body, now=at), "no time"
    assert secret == secret_for(KEY, "wh_0123456789abcdef"), "derived, the same every time"
    assert secret != secret_for(b"other-key" * 4, "wh_0123456789abcdef")


def endpoint(*events: str, shop: int = 1001, **more: object) -> Endpoint:
    request = EndpointRequest(url="https://hooks.example.com/in", events=list(events))  # type: ignore[arg-type]
    return new_endpoint(shop, request, NOW).model_copy(update=more)


def outcome(status: Status, shop: int = 1001, channel: ChannelName = ChannelName.ALIYUN_SMS) -> Outcome:
    return Outcome(
        status=status,
        delivery_id="d-1",
        event_id="evt-1",
        shop_id=shop,
        scene="buyer_order_paid",
        channel=channel,
        source=SourceRecord("mall.payments", 0, 7),
        at=NOW,
        recipient=Recipient(hash="h", masked="138****5678"),
    )


def test_an_outcome_calls_each_endpoint_of_its_shop_that_wants_it_once_whatever_rereads_it() -> None:
    wants_all = endpoint("delivered", "failed")
    only_failed = endpoint("failed")
    switched_off = endpoint("delivered", disabled_at=NOW)
    source = SourceRecord("notify.outcomes", 2, 40)
    made = calls(outcome(Status.DELIVERED), [wants_all, only_failed, switched_off], source, NOW)

    assert [d.delivery.account for d in made] == [wants_all.id]
    [call] = made
    again = calls(outcome(Status.DELIVERED), [wants_all], source, NOW + timedelta(minutes=3))
    assert again[0].delivery.delivery_id == call.delivery.delivery_id, "the same call: the sender dedupes it"
    body = orjson.loads(call.delivery.fields[BODY])
    assert body["type"] == call.delivery.template_id == "message.delivered"
    assert body["id"] == call.delivery.delivery_id
    assert body["data"]["to"] == "138****5678", "the masked address, never the address"
    assert (body["data"]["shop_id"], body["data"]["scene"]) == (1001, "buyer_order_paid")


def test_a_webhook_calls_outcome_or_another_shops_makes_no_call() -> None:
    wants = [endpoint("delivered", "failed")]
    source = SourceRecord("notify.outcomes", 0, 1)
    assert calls(outcome(Status.DELIVERED, channel=ChannelName.WEBHOOK), wants, source, NOW) == []
    assert calls(outcome(Status.DELIVERED, shop=1002), [endpoint("delivered", shop=1002)], source, NOW)
    assert calls(outcome(Status.REACHED), wants, source, NOW) == [], "reached was not asked for"


def test_an_endpoint_is_not_told_about_messages_older_than_itself() -> None:
    """The webhook lane catching up on a backlog reads outcomes from before a registration."""
    registered_later = endpoint("delivered", created_at=NOW + timedelta(seconds=1))
    source = SourceRecord("notify.outcomes", 0, 1)
    assert calls(outcome(Status.DELIVERED), [registered_later], source, NOW) == []
    assert calls(outcome(Status.DELIVERED), [endpoint("delivered", created_at=NOW)], source, NOW)


def after(endpoint: Endpoint, ok: bool, now: datetime, failing_from: datetime = NOW) -> Endpoint | None:
    return after_call(endpoint, ok, failing_from, now, disable_after=DAY)


def test_an_endpoint_is_switched_off_after_a_day_of_failures_and_a_success_ends_the_spell() -> None:
    fresh = endpoint("delivered")
    failing = after(fresh, ok=False, now=NOW, failing_from=NOW - timedelta(minutes=11))
    assert failing is not None
    assert failing.failing_since == NOW - timedelta(minutes=11)
    assert after(failing, ok=False, now=NOW + timedelta(hours=23)) is None
    off = after(failing, ok=False, now=NOW + DAY)
    assert off is not None
    assert not off.enabled
    assert "failing for 24 hours" in (off.disabled_reason or "")
    healed = after(failing, ok=True, now=NOW + timedelta(hours=2))
    assert healed is not None
    assert healed.failing_since is None
    assert after_call(fresh, ok=True, failing_from=NOW, now=NOW, disable_after=DAY) is None, (
        "nothing to write"
    )


def test_the_table_keeps_each_endpoints_newest_record_and_forgets_a_removed_one() -> None:
    table = EndpointTable()
    first = endpoint("delivered")
    later = first.model_copy(update={"failing_since": NOW, "updated_at": NOW + timedelta(minutes=1)})
    for record in (endpoint_record(later), endpoint_record(first)):  # the older one read last
        assert table.apply(*record) == 1001
    assert table[first.id].failing_since == NOW
    assert [e.id for e in table.of_shop(1001)] == [first.id]
    assert table.apply(endpoint_record(first)[0], None) == 1001
    assert table.of_shop(1001) == []
    assert isinstance(table.apply(b"not-a-key", b"{}"), str)
    assert isinstance(table.apply(b"1001/wh_0123456789abcdef", b"{}"), str)
    assert isinstance(table.apply(b"1001/wh_0123456789abcdef#health", b"[]"), str)


def test_the_senders_late_word_on_a_removed_endpoint_never_brings_it_back() -> None:
    """The webhook sender may switch an endpoint off (or mark it failing) after the shop removed
    it, from a view of the table that has not read the removal yet."""
    table = EndpointTable()
    registered = endpoint("delivered")
    table.apply(*endpoint_record(registered))
    switched_off = registered.model_copy(
        update={"disabled_at": NOW, "disabled_reason": "failing for 24 hours", "updated_at": NOW + DAY}
    )
    for key, value in removal(1001, registered.id):
        table.apply(key, value)
    table.apply(*health_record(switched_off))  # written after the removal, read after it
    assert table.of_shop(1001) == []
    assert registered.id not in table


def test_the_senders_switch_off_holds_until_the_shop_switches_the_endpoint_on_again() -> None:
    table = EndpointTable()
    registered = endpoint("delivered")
    table.apply(*endpoint_record(registered))
    off = after(
        registered.model_copy(update={"failing_since": NOW - DAY}), ok=False, now=NOW + timedelta(seconds=1)
    )
    assert off is not None
    table.apply(*health_record(off))
    assert not table[registered.id].enabled
    assert table[registered.id].url == registered.url, "the shop's record, with the sender's health"
    table.apply(*endpoint_record(enabled_again(table[registered.id], NOW + timedelta(minutes=5))))
    assert table[registered.id].enabled
    assert table[registered.id].failing_since is None


def call_to(sandbox: Sandbox, name: str) -> Delivery:
    return Delivery(
        delivery_id="whc_0123456789abcdef01234567",
        channel=ChannelName.WEBHOOK,
        account="wh_0123456789abcdef",
        recipient=f"{sandbox.url}/merchant/hooks/{name}",
        template_id="message.delivered",
        fields={BODY: '{"id":"whc_0123456789abcdef01234567","type":"message.delivered"}'},
    )


async def test_a_call_reaches_the_merchant_signed_and_its_answers_are_classified(sandbox: Sandbox) -> None:
    channel = WebhookChannel(sandbox.session, KEY, frozenset({sandbox.endpoint}))
    result = await channel.send(call_to(sandbox, "shop-a"))
    assert result.ok
    [took] = sandbox.state.hooks
    assert (took["event"], took["id"], took["content_type"]) == (
        "message.delivered",
        "whc_0123456789abcdef01234567",
        "application/json",
    )
    secret = secret_for(KEY, "wh_0123456789abcdef")
    assert verify(secret, took["signature"], took["body"].encode(), now=time.time())

    sandbox.state.add_fault(Fault(target="/merchant/hooks/shop-a", http_status=500, count=1))
    failed = await channel.send(call_to(sandbox, "shop-a"))
    assert (failed.error_class, failed.code) == (ErrorClass.TRANSIENT, "500")
    sandbox.state.add_fault(Fault(target="/merchant/hooks/shop-a", http_status=410, count=1))
    gone = await channel.send(call_to(sandbox, "shop-a"))
    assert (gone.error_class, gone.code) == (ErrorClass.PERMANENT, "410")


async def test_a_receiver_on_a_private_address_is_not_called(sandbox: Sandbox) -> None:
    channel = WebhookChannel(sandbox.session, KEY)  # the sandbox's loopback address not allowed
    result = await channel.send(call_to(sandbox, "shop-a"))
    assert (result.error_class, result.code) == (ErrorClass.PERMANENT, "url_refused")
    assert sandbox.state.hooks == [], "not called at all"
