"""Receipts on the real broker and sandbox: the providers' pushes mark their deliveries reached or
not, in whichever order they come; forged pushes are refused."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
from confluent_kafka import Producer

from channels.base import ChannelName, PushedReceipt
from channels.wechat_push import sign
from streams.core.outcomes import Outcome, Status
from streams.core.receipts import receipt_record, sent_record
from streams.devtools.demo import source_of
from streams.devtools.local_stack import SANDBOX_PUSH_ENV, Service, start_receipts
from streams.ops.reading import ReadRecord, end_offsets, read_until
from tests.factories import SAMPLE_EVENTS, event, fresh_code, to_bytes
from tests.integration.conftest import SETTLE_SECONDS, Pipeline
from tests.unit.test_wechat_mp_and_templates import MP_TEMPLATE

pytestmark = pytest.mark.integration
BLOCKED = "oBLocked00000000000000000000"  # config/sandbox.yaml: blocked the OA's messages


def receipts_for(pipeline: Pipeline, start: dict[int, int], delivery_ids: set[str]) -> dict[str, Outcome]:
    """The receipt outcome of each delivery, once all have come."""

    def found(records: list[ReadRecord]) -> dict[str, Outcome]:
        outcomes = [Outcome.model_validate_json(r.value or b"") for r in records]
        receipts = [o for o in outcomes if o.status in (Status.REACHED, Status.NOT_REACHED)]
        return {o.delivery_id: o for o in receipts if o.delivery_id in delivery_ids and o.delivery_id}

    def complete(records: list[ReadRecord]) -> bool:
        return len(found(records)) == len(delivery_ids)

    return found(read_until(pipeline.bootstrap, pipeline.topics.outcomes, start, complete, SETTLE_SECONDS))


def test_receipts_of_all_three_kinds_mark_their_deliveries(pipeline: Pipeline) -> None:
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    paid = SAMPLE_EVENTS["payment.succeeded"]
    blocked = event("payment.succeeded", paid["data"] | {"buyer": {"user_id": "u-b", "oa_openid": BLOCKED}})
    pipeline.mp_accepts([MP_TEMPLATE])  # the buyer accepted the payment notice on the Mini Program
    published, outcomes = pipeline.run([to_bytes(paid), to_bytes(blocked), to_bytes(fresh_code())])
    delivered = {
        o.delivery_id: o
        for p in published
        for o in outcomes[source_of(p)]
        if o.status is Status.DELIVERED and o.delivery_id
    }
    assert {o.channel for o in delivered.values()} == {
        ChannelName.WECHAT_OA,
        ChannelName.WECHAT_MP,
        ChannelName.ALIYUN_SMS,
    }
    receipts = receipts_for(pipeline, start, set(delivered))
    by_channel = {(o.channel, o.status) for o in receipts.values()}
    assert (ChannelName.WECHAT_OA, Status.REACHED) in by_channel
    assert (ChannelName.WECHAT_MP, Status.REACHED) in by_channel  # pushed in safe mode (encrypted)
    assert (ChannelName.ALIYUN_SMS, Status.REACHED) in by_channel
    [refused] = [o for o in receipts.values() if o.status is Status.NOT_REACHED]
    assert refused.reason == "failed:user block: the user blocked the Official Account's messages"
    assert refused.event_id == blocked["id"]
    logged = (pipeline.log_dir / "receipts.log").read_text()
    assert "/receipts/aliyun/***" in logged, "Aliyun's push is in the access log"
    secret = SANDBOX_PUSH_ENV["MALL_NOTIFY_ALIYUN_REPORT_SECRET"]
    assert secret not in logged, "the URL secret of Aliyun's reports is in the access log"


def test_a_receipt_that_comes_before_its_delivery_is_still_matched(pipeline: Pipeline) -> None:
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    now = datetime.now(UTC)
    outcome = Outcome(
        status=Status.DELIVERED,
        delivery_id="early-receipt-0001",
        event_id="evt-early",
        shop_id=9001,
        scene="buyer_order_paid",
        channel=ChannelName.WECHAT_OA,
        source={"topic": "mall.payments", "partition": 0, "offset": 1},
        provider_message_id="777000111",
        at=now,
    )
    appid = "wx5f2a9c1d8e7b6a01"
    sent = sent_record(outcome, appid)
    assert sent is not None
    pushed = PushedReceipt(
        ChannelName.WECHAT_OA, "777000111", True, "success", "ok", now.timestamp(), account=appid
    )
    receipt = receipt_record(pushed, now)
    producer = Producer({"bootstrap.servers": pipeline.bootstrap})
    for key, value in (receipt, sent):  # the receipt first, as a fast provider and a slow commit make it
        producer.produce(pipeline.topics.receipts, key=key, value=value)
        producer.flush(10)
    [matched] = receipts_for(pipeline, start, {"early-receipt-0001"}).values()
    assert matched.status is Status.REACHED


def _sandbox(pipeline: Pipeline, path: str, body: dict[str, float]) -> None:
    request = urllib.request.Request(
        f"{pipeline.sandbox.url}/__sandbox__/{path}", data=orjson.dumps(body), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert reply.status == 200


def test_a_lost_sms_report_is_recovered_by_asking_aliyun(pipeline: Pipeline) -> None:
    _sandbox(pipeline, "receipts", {"loss_rate": 1.0})  # every push lost on the way
    try:
        start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
        published, outcomes = pipeline.run([to_bytes(fresh_code())])
        [sms] = [o for p in published for o in outcomes[source_of(p)] if o.delivery_id]
        [receipt] = receipts_for(pipeline, start, {sms.delivery_id or ""}).values()
    finally:
        _sandbox(pipeline, "receipts", {"loss_rate": 0.0})
    assert (receipt.status, receipt.provider_code) == (Status.REACHED, "DELIVERED")
    assert 'mall_notify_receipts_total{channel="aliyun_sms",result="recovered"}' in pipeline.metrics()


@pytest.fixture(scope="module")
def endpoint(pipeline: Pipeline) -> Iterator[Service]:
    service = start_receipts(pipeline.log_dir, pipeline.worker_env)
    yield service
    service.stop()


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


SAFE_MODE_APPID = next(iter(orjson.loads(SANDBOX_PUSH_ENV["MALL_NOTIFY_WECHAT_AES_KEYS"])))


def test_forged_or_unsigned_pushes_are_refused_and_counted(endpoint: Service) -> None:
    now = str(int(time.time()))
    xml = (
        f"<xml><CreateTime>{now}</CreateTime><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>"
        "<MsgID>1</MsgID><Status>success</Status></xml>"
    ).encode()
    base = f"{endpoint.url}/receipts/wechat/wx5f2a9c1d8e7b6a01"

    def query(nonce: str, timestamp: str = now, token: str = "sandbox-push-token") -> str:
        return f"signature={sign(token, timestamp, nonce)}&timestamp={timestamp}&nonce={nonce}"

    assert _post(base, xml) == 401  # unsigned
    assert _post(f"{base}?{query('n1', token='not-the-token')}", xml) == 401
    assert _post(f"{base}?{query('n2')}", xml) == 200
    assert _post(f"{base}?{query('n2')}", xml) == 401, "the same signed query again: a replay"
    stale = str(int(time.time()) - 600)
    assert _post(f"{base}?{query('n3', timestamp=stale)}", xml) == 401, "ten minutes old"
    safe_mode = f"{endpoint.url}/receipts/wechat/{SAFE_MODE_APPID}?{query('n4')}"
    assert _post(safe_mode, xml) == 401, "plaintext to an account in safe mode"
    invalid = xml.replace(f"<CreateTime>{now}</CreateTime>".encode(), b"<CreateTime>notanumber</CreateTime>")
    assert _post(f"{base}?{query('n5')}", invalid) == 400
    assert _post(f"{endpoint.url}/receipts/aliyun/a-guessed-secret-000000", b"[]") == 401
    with urllib.request.urlopen(f"{base}?{query('n6')}&echostr=hello", timeout=5) as reply:
        assert reply.read() == b"hello"  # WeChat's URL check
    with urllib.request.urlopen(f"{endpoint.url}/metrics", timeout=5) as reply:
        metrics = reply.read().decode()
    assert 'mall_notify_receipts_refused_total{provider="wechat",reason="bad signature"} 2.0' in metrics
    assert "replayed: this timestamp and nonce were seen already" in metrics
    assert 'mall_notify_receipts_refused_total{provider="aliyun",reason="unknown URL secret"} 1.0' in metrics
