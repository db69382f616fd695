"""SMS packages and balances: what a message costs, and what happens when the balance is used up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.base import ChannelName, Delivery, ErrorClass, SendResult
from streams.core.catalog import Catalog
from streams.core.dispatch import parse_dispatch
from streams.core.events import parse_event
from streams.core.failures import header_map
from streams.core.outcomes import Status
from streams.core.render_plan import compile_shop
from streams.core.routing import Router
from streams.core.sms_quota import (
    ORDER_HOURS,
    AccountBook,
    Charged,
    Package,
    Payment,
    PaymentRefused,
    Purchase,
    billed_text,
    charged_key,
    charged_value,
    new_purchase,
    payment_record,
    purchase_record,
    segments,
)
from streams.core.source import SourceRecord
from streams.core.topics import Topics
from streams.ops.shop_store import load_config_shops
from streams.runtime.kafka.follower import TableFollower
from streams.runtime.kafka.records import ConsumedRecord, Write
from streams.runtime.lanes.router import RouterStage
from streams.runtime.lanes.sender import SenderStage
from streams.runtime.lanes.sms_account import SmsQuota
from streams.settings import PROJECT_ROOT
from tests.factories import DEMO_SHOP, SAMPLE_EVENTS, delivery, dispatch, event, to_bytes
from tests.unit.test_stages import NOW, PARTITION, ScriptedChannel, on, outcomes, owning, record

BASIC = Package(id="basic", name="基础包", messages=1000, price_fen=4500)
TRIAL = Package(id="trial", name="体验包", messages=3, price_fen=0)
SIGNATURE = "百客商城"  # 【百客商城】 is six characters


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("验" * 64, 1),  # 6 + 64 = 70: one segment
        ("验" * 65, 2),  # 71: two segments of 67
        ("a" * 64, 1),  # letters count one each, as Chinese does
        ("a" * 65, 2),
        ("验证码a1，" * 12 + "ab" * 2, 2),  # mixed: 6 + 72 + 4 = 82
        ("验" * 128, 2),  # 134 = 2 x 67
        ("验" * 129, 3),  # 135
        ("👍" * 32, 1),  # an emoji is two characters, as carriers encode it: 6 + 64
        ("👍" * 33, 2),
        ("", 1),
    ],
)
def test_an_sms_costs_the_segments_aliyun_bills(content: str, expected: int) -> None:
    assert segments(billed_text(SIGNATURE, content)) == expected


def test_the_signature_and_its_brackets_count() -> None:
    assert segments("x" * 70) == 1
    assert segments(billed_text(SIGNATURE, "x" * 64)) == 1
    assert segments(billed_text(SIGNATURE + "旗舰", "x" * 64)) == 2  # two more characters: 72


@given(st.text(max_size=400))
def test_segments_grow_with_the_text_and_never_undercount(text: str) -> None:
    count = segments(text)
    length = len(text.encode("utf-16-le")) // 2
    assert count >= 1
    assert count * (70 if count == 1 else 67) >= length


def _book(*packages: Package) -> AccountBook:
    book = AccountBook()
    for package in packages:
        paid = new_purchase(DEMO_SHOP, package, "platform", NOW, prepaid=True)
        assert book.apply(*purchase_record(paid)) == DEMO_SHOP
    return book


def test_a_balance_is_purchases_minus_charges_whatever_the_order_and_repeats() -> None:
    purchase = purchase_record(new_purchase(DEMO_SHOP, BASIC, "platform", NOW, prepaid=True))
    charges = [
        (
            charged_key(DEMO_SHOP, "notify.send.aliyun_sms", 0),
            charged_value(Charged(shop_id=DEMO_SHOP, segments=s, messages=s, version=s)),
        )
        for s in (1, 2, 3)
    ]
    other = (
        charged_key(DEMO_SHOP, "notify.send.codes", 1),
        charged_value(Charged(shop_id=DEMO_SHOP, segments=5, messages=4, version=4)),
    )
    forward, shuffled = AccountBook(), AccountBook()
    for key, value in [purchase, *charges, other]:
        forward.apply(key, value)
    for key, value in [charges[2], other, charges[0], purchase, purchase, charges[1], other]:
        shuffled.apply(key, value)
    for book in (forward, shuffled):
        balance = book.balance(DEMO_SHOP)
        assert (balance.purchased, balance.used, balance.sent, balance.available) == (1000, 8, 7, 992)


def test_an_unreadable_account_record_is_refused_not_applied() -> None:
    book = _book(BASIC)
    assert "unknown key" in str(book.apply(b"nonsense", b"{}"))
    assert "unreadable" in str(book.apply(b"purchase/9001/x", b"not json"))
    assert book.balance(DEMO_SHOP).available == 1000


def _sms(segment_count: int = 1, shop_id: int = DEMO_SHOP) -> bytes:
    message = delivery(
        channel=ChannelName.ALIYUN_SMS, recipient="13912340000", account=SIGNATURE, template_id="SMS_1"
    )
    return dispatch(message, scene="buyer_order_paid", shop_id=shop_id, sms_segments=segment_count).to_json()


class CommitLog:
    """Stands in for the lane's transactions: what was committed before the provider was asked."""

    def __init__(self, channel: ScriptedChannel) -> None:
        self.channel = channel
        self.committed: list[tuple[int, Charged]] = []
        """(SMS the channel had sent when the charge was committed, the charge)"""

    async def __call__(self, _: ConsumedRecord, writes: list[Write]) -> None:
        for write in writes:
            self.committed.append((len(self.channel.sent), Charged.model_validate_json(write.value or b"")))


class ScriptedLookup:
    """Stands in for QuerySendDetails: answers in turn whether Aliyun already took a delivery."""

    def __init__(self, *answers: SendResult | None) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, datetime, datetime]] = []

    async def took(self, delivery: Delivery, since: datetime, now: datetime) -> SendResult | None:
        self.asked.append((delivery.delivery_id, since, now))
        return self.answers.pop(0)


def _sms_sender(
    topics: Topics, book: AccountBook, channel: ScriptedChannel, lookup: ScriptedLookup | None = None
) -> tuple[SenderStage, CommitLog]:
    topic = topics.send_topic(ChannelName.ALIYUN_SMS)
    quota = SmsQuota(book, topics.sms_account, TableFollower("unused:9092", topics.sms_account, book))
    stage = SenderStage(
        topics, channel, owning(topics, [topic]), clock=lambda: NOW, quota=quota, lookup=lookup
    )
    stage.commit_first = commits = CommitLog(channel)
    return stage, commits


def _charged(writes: list[Write], topics: Topics) -> Charged:
    [charge] = on(writes, topics.sms_account)
    return Charged.model_validate_json(charge.value or b"")


async def test_an_sms_is_charged_before_aliyun_is_asked_and_skipped_when_the_balance_cannot_cover_it(
    topics: Topics,
) -> None:
    book = _book(TRIAL)  # 3 messages
    channel = ScriptedChannel(SendResult.delivered("biz-1"))
    stage, commits = _sms_sender(topics, book, channel)
    topic = topics.send_topic(ChannelName.ALIYUN_SMS)
    two = await stage.handle(record(_sms(2), topic=topic, offset=1))
    too_long = await stage.handle(record(_sms(2), topic=topic, offset=2))
    one = await stage.handle(record(_sms(1), topic=topic, offset=3))
    results = [o for writes in (two, too_long, one) for o in outcomes(writes, topics)]
    assert [(o.status, o.reason) for o in results] == [
        (Status.DELIVERED, None),
        (Status.SKIPPED, "sms_quota_exhausted"),
        (Status.DELIVERED, None),
    ]
    assert len(channel.sent) == 2
    # each charge was committed before its SMS went out, pending until its outcome settles it
    assert [(sent, charge.segments, len(charge.pending)) for sent, charge in commits.committed] == [
        (0, 2, 1),
        (1, 3, 1),
    ]
    assert on(one, topics.sms_account)[0].key == charged_key(DEMO_SHOP, topic, PARTITION)
    assert _charged(one, topics) == Charged(shop_id=DEMO_SHOP, segments=3, messages=2, refused=1, version=5)
    balance = book.balance(DEMO_SHOP)
    assert (balance.used, balance.sent, balance.refused, balance.available) == (3, 2, 1, 0)


@pytest.mark.parametrize(
    ("answer", "refunded"),
    [
        (SendResult.failed(ErrorClass.PERMANENT, "isv.MOBILE_NUMBER_ILLEGAL", "bad number"), True),
        (SendResult.failed(ErrorClass.TRANSIENT, "isp.SYSTEM_ERROR", "busy"), True),
        (SendResult.failed(ErrorClass.TRANSIENT, "timeout", "no answer"), False),  # it may have gone out
    ],
)
async def test_an_sms_aliyun_did_not_send_is_refunded(
    topics: Topics, answer: SendResult, refunded: bool
) -> None:
    book = _book(TRIAL)
    stage, _ = _sms_sender(topics, book, ScriptedChannel(answer))
    writes = await stage.handle(record(_sms(2), topic=topics.send_topic(ChannelName.ALIYUN_SMS)))
    assert _charged(writes, topics).pending == []
    assert book.balance(DEMO_SHOP).available == (3 if refunded else 1)


def _charged_before_a_crash(topics: Topics) -> tuple[AccountBook, bytes]:
    """A book of the trial package and an SMS of two segments, as the partition's committed
    record has them after a crash: the SMS charged, its outcome never written."""
    book, sms = _book(TRIAL), _sms(2)
    topic = topics.send_topic(ChannelName.ALIYUN_SMS)
    delivery_id = parse_dispatch(sms).delivery.delivery_id
    before_crash = Charged(shop_id=DEMO_SHOP, segments=2, messages=1, version=1, pending=[delivery_id])
    book.apply(charged_key(DEMO_SHOP, topic, PARTITION), charged_value(before_crash))
    book.committed_only(topic, PARTITION)  # the partition assigned again after the crash
    return book, sms


async def test_a_delivery_charged_before_a_crash_is_neither_charged_again_nor_refunded(
    topics: Topics,
) -> None:
    """Read again after a crash, its charge is committed and its outcome is not: with no way to
    ask Aliyun, it may have sent it, so whatever Aliyun answers now, the shop pays for it once."""
    book, sms = _charged_before_a_crash(topics)
    topic = topics.send_topic(ChannelName.ALIYUN_SMS)
    refused = SendResult.failed(ErrorClass.PERMANENT, "isv.BUSINESS_LIMIT_CONTROL", "per-phone limit")
    stage, commits = _sms_sender(topics, book, ScriptedChannel(refused))
    writes = await stage.handle(record(sms, topic=topic))
    assert commits.committed == []  # not charged again
    assert _charged(writes, topics) == Charged(shop_id=DEMO_SHOP, segments=2, messages=1, version=2)
    assert book.balance(DEMO_SHOP).available == 1


def test_the_router_counts_the_segments_of_the_rendered_sms(router: RouterStage, topics: Topics) -> None:
    writes = router.handle(record(to_bytes(SAMPLE_EVENTS["auth.code_requested"]), topic="mall.auth"))
    [code] = on(writes, topics.codes)
    # 【百客商城】您正在注册百客商城，验证码123456，5分钟内有效。 is 32 characters
    assert parse_dispatch(code.value).sms_segments == 1


def test_a_long_sms_template_costs_more_segments(catalog: Catalog) -> None:
    shop = load_config_shops(PROJECT_ROOT / "config")[0]
    [register, *others] = shop.sms_templates
    content = "您正在注册百客商城，验证码${code}。" + "请勿泄露。" * 10
    long_template = register.model_copy(update={"content": content})
    longer = shop.model_copy(update={"sms_templates": [long_template, *others]})
    routing = Router(catalog).route(
        parse_event(to_bytes(SAMPLE_EVENTS["auth.code_requested"])),
        compile_shop(longer, catalog),
        SourceRecord("mall.auth", 0, 1),
        NOW,
    )
    [code] = routing.dispatches
    # 6 + 19 (with a 6-digit code) + 50 = 75 characters: two segments of 67
    assert code.sms_segments == 2


def _paid(payment: Payment | PaymentRefused) -> Payment:
    assert isinstance(payment, Payment), payment
    return payment


def test_an_order_credits_its_messages_only_once_paid_and_once_however_often_paid() -> None:
    book = AccountBook()
    order = new_purchase(DEMO_SHOP, BASIC, "shop:9001", NOW)
    book.apply(*purchase_record(order))
    assert (book.status(order, NOW), book.balance(DEMO_SHOP).available) == ("pending", 0)
    payment = _paid(book.pay(DEMO_SHOP, order.purchase_id, "platform", "transfer 20261127-01", NOW))
    for _ in range(3):  # the same confirmation delivered three times
        book.apply(*payment_record(_paid(book.pay(DEMO_SHOP, order.purchase_id, "platform", "again", NOW))))
        book.apply(*payment_record(payment))
    assert (book.status(order, NOW), book.balance(DEMO_SHOP).available) == ("paid", 1000)
    [shown] = book.orders(DEMO_SHOP, NOW)
    assert shown.payment is not None
    assert shown.payment.reason == "transfer 20261127-01"


def test_an_unpaid_order_expires_and_cannot_be_paid_then() -> None:
    book = AccountBook()
    order = new_purchase(DEMO_SHOP, BASIC, "shop:9001", NOW)
    book.apply(*purchase_record(order))
    later = NOW + timedelta(hours=ORDER_HOURS)
    assert book.status(order, later) == "expired"
    refused = book.pay(DEMO_SHOP, order.purchase_id, "platform", "late", later)
    assert isinstance(refused, PaymentRefused)
    assert "expired unpaid" in refused.detail
    assert isinstance(book.pay(DEMO_SHOP, order.purchase_id, "platform", "in time", NOW), Payment)


def test_the_trial_package_is_sold_once_per_shop_unless_its_order_expired() -> None:
    book = AccountBook()
    assert book.purchase_refusal(DEMO_SHOP, TRIAL.id, NOW) is None
    book.apply(*purchase_record(new_purchase(DEMO_SHOP, TRIAL, "shop:9001", NOW)))
    assert "buys once" in (book.purchase_refusal(DEMO_SHOP, TRIAL.id, NOW) or "")
    assert book.purchase_refusal(DEMO_SHOP, BASIC.id, NOW) is None
    assert book.purchase_refusal(DEMO_SHOP, TRIAL.id, NOW + timedelta(hours=ORDER_HOURS)) is None


def test_a_purchase_records_when_what_and_who() -> None:
    at = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    bought = new_purchase(DEMO_SHOP, BASIC, "shop:9001", at)
    book = AccountBook()
    book.apply(*purchase_record(bought))
    [kept] = book.purchases(DEMO_SHOP)
    recorded = (kept.package, kept.messages, kept.price_fen, kept.at, kept.who)
    assert recorded == ("basic", 1000, 4500, at, "shop:9001")


TAKEN = SendResult(ok=True, reason="Aliyun already had it (sent on 20261127)")


async def test_an_sms_aliyun_took_before_a_crash_is_delivered_without_a_second_send_or_charge(
    topics: Topics,
) -> None:
    book, sms = _charged_before_a_crash(topics)
    channel, lookup = ScriptedChannel(SendResult.delivered("biz-2")), ScriptedLookup(TAKEN)
    stage, commits = _sms_sender(topics, book, channel, lookup)
    writes = await stage.handle(record(sms, topic=topics.send_topic(ChannelName.ALIYUN_SMS)))
    assert channel.sent == []
    assert [lookup_id for lookup_id, _, _ in lookup.asked] == [parse_dispatch(sms).delivery.delivery_id]
    [outcome] = outcomes(writes, topics)
    assert (outcome.status, outcome.reason) == (Status.DELIVERED, TAKEN.reason)
    assert commits.committed == []
    assert _charged(writes, topics) == Charged(shop_id=DEMO_SHOP, segments=2, messages=1, version=2)
    assert book.balance(DEMO_SHOP).available == 1  # charged once


@pytest.mark.parametrize(
    ("answer", "available"),
    [
        (SendResult.delivered("biz-2"), 1),  # sent now, paid by the charge before the crash
        (SendResult.failed(ErrorClass.PERMANENT, "isv.MOBILE_NUMBER_ILLEGAL", "bad number"), 3),
    ],
)
async def test_an_sms_aliyun_never_took_is_sent_after_the_crash_on_the_charge_it_had(
    topics: Topics, answer: SendResult, available: int
) -> None:
    book, sms = _charged_before_a_crash(topics)
    channel = ScriptedChannel(answer)
    stage, commits = _sms_sender(topics, book, channel, ScriptedLookup(None))
    writes = await stage.handle(record(sms, topic=topics.send_topic(ChannelName.ALIYUN_SMS)))
    assert len(channel.sent) == 1
    assert commits.committed == []  # not charged twice
    assert _charged(writes, topics).pending == []
    assert book.balance(DEMO_SHOP).available == available  # refunded only what Aliyun refused


async def test_an_sms_in_doubt_that_aliyun_cannot_be_asked_about_waits_for_a_retry_unsent(
    topics: Topics,
) -> None:
    book, sms = _charged_before_a_crash(topics)
    unreachable = SendResult.failed(ErrorClass.TRANSIENT, "connection", "Aliyun call failed")
    channel, lookup = ScriptedChannel(SendResult.delivered("biz-2")), ScriptedLookup(unreachable, TAKEN)
    stage, _ = _sms_sender(topics, book, channel, lookup)
    topic = topics.send_topic(ChannelName.ALIYUN_SMS)
    writes = await stage.handle(record(sms, topic=topic))
    assert channel.sent == []
    assert outcomes(writes, topics) == []
    [retry] = [w for w in writes if w.topic.startswith(topics.name("notify.retry"))]
    assert header_map(retry.headers)["x-notify-provider-code"] == "in_doubt"
    assert book.balance(DEMO_SHOP).available == 1  # the charge stands while in doubt
    # the retry is still in doubt: asked again, and this time Aliyun has it
    again = await stage.handle(record(sms, topic=topic, headers=retry.headers, offset=121))
    assert channel.sent == []
    [outcome] = outcomes(again, topics)
    assert outcome.status is Status.DELIVERED
    assert book.balance(DEMO_SHOP).available == 1


async def test_the_retry_of_a_timed_out_sms_asks_aliyun_first_and_is_not_charged_again(
    topics: Topics,
) -> None:
    book = _book(TRIAL)
    sms = _sms(1)
    timeout = SendResult.failed(ErrorClass.TRANSIENT, "timeout", "Aliyun did not answer in time")
    channel, lookup = ScriptedChannel(timeout), ScriptedLookup(TAKEN)
    stage, commits = _sms_sender(topics, book, channel, lookup)
    topic = topics.send_topic(ChannelName.ALIYUN_SMS)
    first = await stage.handle(record(sms, topic=topic))
    [retry] = [w for w in first if w.topic.startswith(topics.name("notify.retry"))]
    assert lookup.asked == []  # a first attempt is not in doubt
    assert book.balance(DEMO_SHOP).available == 2  # the timeout may have gone out: charged
    again = await stage.handle(record(sms, topic=topic, headers=retry.headers, offset=121))
    assert len(channel.sent) == 1
    assert len(lookup.asked) == 1
    [outcome] = outcomes(again, topics)
    assert outcome.status is Status.DELIVERED
    assert len(commits.committed) == 1
    assert book.balance(DEMO_SHOP).available == 2  # one SMS, one charge


@pytest.mark.parametrize(("answer", "status"), [(TAKEN, Status.DELIVERED), (None, Status.DEAD_LETTERED)])
async def test_aliyuns_flow_control_answer_is_checked_against_what_aliyun_already_took(
    topics: Topics, answer: SendResult | None, status: Status
) -> None:
    """BUSINESS_LIMIT_CONTROL is also Aliyun's answer to a copy of a code it took moments ago."""
    book = _book(TRIAL)
    limited = SendResult.failed(ErrorClass.PERMANENT, "isv.BUSINESS_LIMIT_CONTROL", "per-phone limit")
    stage, _ = _sms_sender(topics, book, ScriptedChannel(limited), ScriptedLookup(answer))
    writes = await stage.handle(record(_sms(1), topic=topics.send_topic(ChannelName.ALIYUN_SMS)))
    [outcome] = outcomes(writes, topics)
    assert outcome.status is status
    assert book.balance(DEMO_SHOP).available == (2 if status is Status.DELIVERED else 3)


def _package_paid(order: Purchase, amount_fen: int | None = None, at: datetime = NOW) -> bytes:
    data = {
        "purchase_id": order.purchase_id,
        "amount_fen": order.price_fen if amount_fen is None else amount_fen,
        "payment_no": "PAY-20261127-0001",
        "paid_at": at.isoformat(),
    }
    return to_bytes(event("sms_package.paid", data))


def _paid_router(router: RouterStage, book: AccountBook) -> RouterStage:
    router.book = book
    return router


def test_the_payment_services_event_credits_an_order_once_however_often_delivered(
    router: RouterStage, topics: Topics
) -> None:
    book = AccountBook()
    order = new_purchase(DEMO_SHOP, BASIC, "shop:9001", NOW)
    book.apply(*purchase_record(order))
    stage = _paid_router(router, book)
    for offset in range(2):  # the payment service delivers it twice, as two events
        writes = stage.handle(record(_package_paid(order), topic="mall.payments", offset=offset))
        [credit] = on(writes, topics.sms_account)
        book.apply(credit.key, credit.value)
        [outcome] = outcomes(writes, topics)
        assert (outcome.status, outcome.reason) == (
            Status.SKIPPED,
            "sms_purchase_paid: 1000 messages credited",
        )
    assert book.balance(DEMO_SHOP).available == 1000


@pytest.mark.parametrize(
    ("amount", "late", "reason"),
    [(1, False, "payment_mismatch"), (None, True, "purchase_expired")],
)
def test_a_payment_that_does_not_match_its_order_is_dead_lettered_for_an_operator(
    router: RouterStage, topics: Topics, amount: int | None, late: bool, reason: str
) -> None:
    book = AccountBook()
    order = new_purchase(DEMO_SHOP, BASIC, "shop:9001", NOW)
    book.apply(*purchase_record(order))
    at = NOW + timedelta(hours=ORDER_HOURS + 1) if late else NOW
    writes = _paid_router(router, book).handle(
        record(_package_paid(order, amount, at), topic="mall.payments")
    )
    assert on(writes, topics.sms_account) == []
    [letter] = on(writes, topics.dead_letter)
    assert header_map(letter.headers)["x-notify-reason"] == reason
    assert book.balance(DEMO_SHOP).available == 0
