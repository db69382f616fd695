"""Aliyun's word on a review, pushed (SignSmsReport, TemplateSmsReport, as its pages show them) or
polled, and what the reviews lane makes of it: the shop follows the review, its history says so,
the seller is told once; a report of nothing in review changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import SecretStr

from channels.aliyun_review import AliyunSmsReview
from channels.aliyun_sms import AliyunSmsConfig
from streams.core.catalog import Catalog, load_catalog
from streams.core.events import parse_event
from streams.core.settings_history import parse_history
from streams.core.shop_records import ShopTable, settings_record
from streams.core.shops import ShopRules, SmsAccount
from streams.core.sms_review_reports import ReportRefused, ReviewReport, parse_push
from streams.core.topics import Topics
from streams.devtools.local_stack import SANDBOX_ALIYUN_KEY
from streams.ops.shop_store import load_config_shops
from streams.runtime.kafka.publisher import Publisher
from streams.runtime.kafka.records import ConsumedRecord
from streams.runtime.lanes.sms_reviews import ReviewPoller, ReviewsStage
from tests.conftest import Sandbox
from tests.factories import ROOT

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
SIGN_PUSH = [  # SignSmsReport's example (https://help.aliyun.com/document_detail/120998.html)
    {
        "sign_source": "公众号",
        "reason": "test",
        "sign_name": "百客优选",
        "orderId": "200****5184",
        "sign_status": "approved",
        "remark": "test",
        "sign_scene": "SMS_123123242",
        "create_date": "2019-05-30 19:58:25",
    }
]
TEMPLATE_PUSH = [  # TemplateSmsReport's example (https://help.aliyun.com/document_detail/120999.html)
    {
        "template_type": "验证码",
        "reason": "含有营销内容",
        "template_name": "短信测试模板1957",
        "orderId": "205101",
        "template_content": "签名测试",
        "template_status": "rejected",
        "remark": "test",
        "template_code": "SMS_480000009",
        "create_date": "2019-05-30 19:58:25",
    }
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT / "config" / "catalog.yaml")


def in_review(catalog: Catalog, code: str = "SMS_480000009") -> ShopRules:
    """The sample shop with a signature submitted to Aliyun and a template in its review."""
    shop = load_config_shops(ROOT / "config")[0]
    signatures = [*(shop.sms.signatures if shop.sms else []), {"name": "百客优选", "status": "submitted"}]
    account = (shop.sms or SmsAccount()).model_dump() | {"signatures": signatures}
    waiting = {"template_code": code, "status": "reviewing", "enabled": False}
    template = shop.sms_templates[0].model_dump() | waiting
    templates = [t.model_dump() for t in shop.sms_templates] + [template]
    return ShopRules.model_validate(shop.model_dump() | {"sms": account, "sms_templates": templates})


def table(catalog: Catalog, shop: ShopRules) -> ShopTable:
    shops = ShopTable(catalog)
    assert shops.apply(*settings_record(shop)) == shop.shop_id
    return shops


def record(topics: Topics, value: bytes, offset: int = 0) -> ConsumedRecord:
    return ConsumedRecord(topics.sms_reviews, 0, offset, b"k", value, [])


def test_the_pushes_as_aliyun_documents_them_are_reports() -> None:
    [sign] = parse_push(orjson.dumps(SIGN_PUSH), "SignSmsReport")
    assert (sign.kind, sign.name, sign.status, sign.reason, sign.order_id) == (
        "signature",
        "百客优选",
        "approved",
        "",  # a reason is Aliyun's word on a refusal only
        "200****5184",
    )
    [template] = parse_push(orjson.dumps(TEMPLATE_PUSH), "TemplateSmsReport")
    assert (template.kind, template.name, template.status, template.reason) == (
        "template",
        "SMS_480000009",
        "rejected",
        "含有营销内容",
    )
    approving = [SIGN_PUSH[0] | {"sign_status": "approving"}]
    assert parse_push(orjson.dumps(approving), "SignSmsReport")[0].status == "reviewing"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b"[]",
        b"[1]",
        orjson.dumps([{"sign_name": "x"}]),
        orjson.dumps([SIGN_PUSH[0] | {"sign_status": "ok"}]),
    ],
)
def test_a_body_that_is_no_report_is_refused(body: bytes) -> None:
    with pytest.raises(ReportRefused, match="not Aliyun's SignSmsReport"):
        parse_push(body, "SignSmsReport")


def test_a_report_makes_the_shop_follow_the_review_once(catalog: Catalog, topics: Topics) -> None:
    shop = in_review(catalog)
    stage = ReviewsStage(topics, table(catalog, shop), clock=lambda: NOW)
    [report] = parse_push(orjson.dumps(SIGN_PUSH), "SignSmsReport")
    writes = stage.handle(record(topics, report.value()))
    by_topic = {write.topic: write for write in writes}
    saved = ShopRules.model_validate_json(by_topic[topics.settings].value or b"")
    approved = saved.sms.signature("百客优选") if saved.sms else None
    assert approved is not None
    assert approved.status == "approved"
    [change] = [
        parse_history(
            by_topic[topics.settings_history].key, by_topic[topics.settings_history].value, shop.shop_id
        )
    ]
    assert change is not None
    assert (change.who, change.action) == ("aliyun", "Aliyun: signature 百客优选 approved (SignSmsReport)")
    told = parse_event(by_topic[topics.event_topic_for("sms_review.finished") or ""].value)
    assert (told.data.subject, told.data.result) == ("短信签名百客优选", "通过")  # type: ignore[union-attr]
    # the same report again (Aliyun pushes again, the poller asks too): the lane wrote it already
    assert stage.handle(record(topics, report.value(), 1)) == []


def test_a_rejected_template_keeps_aliyuns_reason(catalog: Catalog, topics: Topics) -> None:
    stage = ReviewsStage(topics, table(catalog, in_review(catalog)), clock=lambda: NOW)
    [report] = parse_push(orjson.dumps(TEMPLATE_PUSH), "TemplateSmsReport")
    [settings, _, event] = stage.handle(record(topics, report.value()))
    saved = ShopRules.model_validate_json(settings.value or b"")
    [template] = [t for t in saved.sms_templates if t.template_code == "SMS_480000009"]
    assert (template.status, template.reason) == ("rejected", "含有营销内容")
    assert parse_event(event.value).data.result == "未通过"  # type: ignore[union-attr]


def test_a_report_of_nothing_in_review_changes_nothing_and_a_broken_one_is_dead_lettered(
    catalog: Catalog, topics: Topics
) -> None:
    stage = ReviewsStage(topics, table(catalog, in_review(catalog)), clock=lambda: NOW)
    nobody = ReviewReport(kind="signature", name="别家签名", status="approved", source="poll")
    assert stage.handle(record(topics, nobody.value())) == []
    still = ReviewReport(kind="signature", name="百客优选", status="reviewing", source="SignSmsReport")
    assert stage.handle(record(topics, still.value())) == []
    writes = stage.handle(record(topics, b'{"kind": "signature"}'))
    assert [w.topic for w in writes] == [topics.dead_letter, topics.outcomes]


class Owner:
    """A lane that owns the reviews topic's partition."""

    def owns(self, _: object) -> bool:
        return True


async def test_the_poller_reports_what_ended_and_only_that(
    catalog: Catalog, topics: Topics, sandbox: Sandbox
) -> None:
    key = SANDBOX_ALIYUN_KEY
    aliyun = AliyunSmsReview(AliyunSmsConfig(key[0], SecretStr(key[1]), sandbox.endpoint, "http", 1000, 1000))
    rule = {"order_no": "other_number2"}
    code = await aliyun.create_template(
        "发货通知", "您的订单${order_no}已发货。", "notice", "百客商城", rule, "r"
    )
    shop = in_review(catalog, code)

    def poller(shops: ShopTable) -> ReviewPoller:
        return ReviewPoller(Owner(), topics, shops, aliyun, Publisher("unused:1"), 1.0, pages=2)  # type: ignore[arg-type]

    assert await poller(table(catalog, shop)).poll() == []  # nothing ended yet (百客优选 is not Aliyun's)
    now = sandbox.state.clock()
    sandbox.state.clock = lambda: now + 5
    [report] = await poller(table(catalog, shop)).poll() or []
    assert (report.kind, report.name, report.status, report.source) == ("template", code, "approved", "poll")
    nothing = load_config_shops(ROOT / "config")[0]
    assert await poller(table(catalog, nothing)).poll() is None  # nothing in review: Aliyun is not asked
