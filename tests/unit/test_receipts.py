"""Receipts: WeChat's and Aliyun's pushes read and checked, and paired with their deliveries in
whichever order they come."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from channels.aliyun_sms import ReportRefused, parse_reports
from channels.base import ChannelName, PushedReceipt, SendResult
from channels.wechat_push import (
    PushInvalid,
    PushRefused,
    ReplayGuard,
    decrypt,
    encrypt,
    parse_xml,
    receipts,
    sign,
    signed,
)
from streams.core.outcomes import Outcome, Status
from streams.core.receipts import receipt_record, sent_record
from streams.core.topics import Topics
from streams.runtime.kafka.records import ConsumedRecord
from streams.runtime.lanes.receipts import ReceiptsStage
from tests.factories import delivery, dispatch
from tests.unit.test_stages import NOW, PARTITION, disk

APPID = "wx9c3e7a1b5d2f4e6a08"
AES_KEY = base64.b64encode(os.urandom(32)).decode().rstrip("=")
OA_EVENT = (
    b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oR8s0001]]></FromUserName>"
    b"<CreateTime>1764230400</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    b"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID>"
    b"<Status><![CDATA[failed:user block]]></Status></xml>"
)
MP_EVENT = (
    b"<xml><CreateTime>1764230400</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    b"<Event><![CDATA[subscribe_msg_sent_event]]></Event><SubscribeMsgSentEvent><List>"
    b"<TemplateId><![CDATA[T1]]></TemplateId><MsgID>1864323726461255680</MsgID><ErrorCode>0</ErrorCode>"
    b"<ErrorStatus><![CDATA[success]]></ErrorStatus></List></SubscribeMsgSentEvent></xml>"
)


def test_a_pushs_signature_is_the_sha1_of_the_sorted_token_timestamp_and_nonce() -> None:
    signature = sign("token", "1764230400", "nonce")
    assert signed("token", "1764230400", "nonce", signature)
    assert not signed("another token", "1764230400", "nonce", signature)
    assert not signed("token", "1764230401", "nonce", signature)


def test_safe_mode_messages_decrypt_only_for_their_appid_and_key() -> None:
    encrypted = encrypt(OA_EVENT, APPID, AES_KEY)
    assert decrypt(encrypted, APPID, AES_KEY) == OA_EVENT
    with pytest.raises(PushRefused, match="for another appid"):
        decrypt(encrypted, "wx0000000000000000", AES_KEY)
    with pytest.raises(PushRefused, match=r"cannot be read|for another appid"):  # garbage either way
        decrypt(encrypted, APPID, base64.b64encode(os.urandom(32)).decode().rstrip("="))


def test_the_template_and_subscribe_send_results_are_receipts() -> None:
    [oa] = receipts(parse_xml(OA_EVENT), APPID)
    assert (oa.channel, oa.message_id, oa.reached, oa.code) == (
        ChannelName.WECHAT_OA,
        "200163836",
        False,
        "failed:user block",
    )
    assert oa.reason == "the user blocked the Official Account's messages"
    [mp] = receipts(parse_xml(MP_EVENT), APPID)
    assert (mp.channel, mp.message_id, mp.reached) == (ChannelName.WECHAT_MP, "1864323726461255680", True)
    assert receipts(parse_xml(b"<xml><Event><![CDATA[subscribe]]></Event></xml>"), APPID) == []
    assert oa.account == APPID


@pytest.mark.parametrize("created", [b"notanumber", b"9" * 400, b"", "١٧٦٤٢٣٠٤٠٠".encode()])
def test_a_receipt_whose_time_is_not_a_number_is_invalid_not_a_crash(created: bytes) -> None:
    event = OA_EVENT.replace(
        b"<CreateTime>1764230400</CreateTime>", b"<CreateTime>" + created + b"</CreateTime>"
    )
    with pytest.raises(PushInvalid, match="CreateTime"):
        receipts(parse_xml(event), APPID)


def test_a_push_outside_the_window_or_seen_before_is_refused() -> None:
    guard = ReplayGuard(window_seconds=300)
    now = 1_764_230_400.0
    assert guard.refusal("1764230400", "n-1", now) is None
    assert (
        guard.refusal("1764230400", "n-1", now + 10) == "replayed: this timestamp and nonce were seen already"
    )
    assert guard.refusal("1764230400", "n-2", now + 10) is None
    assert guard.refusal("1764229800", "n-3", now) == "stale: its timestamp is more than 5 minutes from now"
    assert guard.refusal("1764231000", "n-4", now) == "stale: its timestamp is more than 5 minutes from now"
    assert guard.refusal("notanumber", "n-5", now) == "timestamp: seconds since the epoch"
    assert guard.refusal("1764230400", "n-1", now + 301) is not None  # stale by then, never accepted again


def test_wechats_retry_of_a_push_that_was_not_kept_is_not_a_replay() -> None:
    guard = ReplayGuard(window_seconds=300)
    now = 1_764_230_400.0
    assert guard.refusal("1764230400", "n-1", now) is None
    guard.forget("1764230400", "n-1")  # answered 503: Kafka did not take it
    assert guard.refusal("1764230400", "n-1", now + 5) is None  # WeChat's retry, the same request
    assert guard.refusal("1764230400", "n-1", now + 6) is not None  # kept this time: a copy is a replay


def test_xml_with_entities_is_refused_not_expanded() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Event>&a;</Event></xml>'
    with pytest.raises(PushRefused):
        parse_xml(bomb)


def test_aliyuns_sms_report_is_read_without_the_phone_number() -> None:
    body = (
        b'[{"phone_number":"13912345678","send_time":"2026-11-27 16:00:00",'
        b'"report_time":"2026-11-27 16:00:05",'
        b'"success":false,"err_code":"MK:0001","err_msg":"\xe5\x85\xb3\xe6\x9c\xba","sms_size":"1",'
        b'"biz_id":"900000001^0","out_id":"d1"}]'
    )
    [report] = parse_reports(body)
    assert (report.message_id, report.reached, report.code, report.delivery_id) == (
        "900000001^0",
        False,
        "MK:0001",
        "d1",
    )
    assert report.at == datetime(2026, 11, 27, 8, 0, 5, tzinfo=UTC).timestamp()  # Beijing time
    assert "13912345678" not in repr(report)
    year_one = body.replace(b"2026-11-27 16:00:05", b"0001-01-01 00:00:00")
    for broken in (b"{}", b"not json", b'[{"biz_id": "1"}]', year_one):
        with pytest.raises(ReportRefused):
            parse_reports(broken)


def _delivered(channel: ChannelName, message_id: str) -> Outcome:
    sent = dispatch(delivery(channel=channel))
    return Outcome(
        status=Status.DELIVERED,
        delivery_id=sent.delivery.delivery_id,
        event_id=sent.event_id,
        shop_id=sent.shop_id,
        scene=sent.scene,
        channel=channel,
        source=sent.source,
        provider_message_id=message_id,
        at=NOW,
    )


def _stage(topics: Topics) -> ReceiptsStage:
    stage = ReceiptsStage(topics, disk(), ttl_seconds=3600, clock=lambda: NOW, now=lambda: NOW.timestamp())
    stage.store.open((topics.receipts, PARTITION))
    return stage


def _record(topics: Topics, key: bytes, value: bytes, offset: int) -> ConsumedRecord:
    return ConsumedRecord(topics.receipts, PARTITION, offset, key, value, [])


def _receipt(message_id: str, reached: bool, appid: str = APPID) -> tuple[bytes, bytes]:
    pushed = PushedReceipt(
        ChannelName.WECHAT_OA,
        message_id,
        reached,
        "success" if reached else "failed:user block",
        "r",
        NOW.timestamp() + 3,
        account=appid,
    )
    return receipt_record(pushed, NOW)


@pytest.mark.parametrize("receipt_first", [False, True])
def test_a_receipt_and_its_delivery_are_paired_in_either_order(topics: Topics, receipt_first: bool) -> None:
    stage = _stage(topics)
    sent = sent_record(_delivered(ChannelName.WECHAT_OA, "200163836"), APPID)
    assert sent is not None
    receipt = _receipt("200163836", reached=False)
    assert sent[0] == receipt[0]  # same key: same partition
    first, second = (receipt, sent) if receipt_first else (sent, receipt)
    assert [w.topic for w in stage.handle(_record(topics, *first, 1))] == [
        topics.ledger_topic(topics.receipts)
    ]
    writes = stage.handle(_record(topics, *second, 2))
    [outcome] = [Outcome.model_validate_json(w.value or b"") for w in writes if w.topic == topics.outcomes]
    assert (outcome.status, outcome.reason) == (Status.NOT_REACHED, "failed:user block: r")
    assert outcome.key().endswith(b"#receipt")  # never replaces the delivered outcome
    codes = REGISTRY.get_sample_value(
        "mall_notify_receipt_codes_total",
        {"channel": "wechat_oa", "code": "failed:user block", "reached": "false"},
    )
    assert codes is not None
    assert codes >= 1
    # the same receipt pushed again is a duplicate, not a second outcome
    assert stage.handle(_record(topics, *receipt, 3)) == []


def test_a_receipt_pushed_to_another_accounts_url_never_pairs(topics: Topics) -> None:
    stage = _stage(topics)
    sent = sent_record(_delivered(ChannelName.WECHAT_OA, "200163836"), APPID)
    assert sent is not None
    forged = _receipt("200163836", reached=False, appid="wx5f2a9c1d8e7b6a01")
    assert forged[0] != sent[0]
    stage.handle(_record(topics, *sent, 1))
    writes = stage.handle(_record(topics, *forged, 2))
    assert [w.topic for w in writes] == [topics.ledger_topic(topics.receipts)], "kept waiting, not paired"


def test_a_delivery_without_a_message_id_expects_no_receipt() -> None:
    outcome = _delivered(ChannelName.WECHAT_OA, "1").model_copy(update={"provider_message_id": None})
    assert sent_record(outcome, APPID) is None
    dead = outcome.model_copy(update={"status": Status.DEAD_LETTERED, "provider_message_id": "1"})
    assert sent_record(dead, APPID) is None
    assert SendResult.delivered("1").provider_message_id == "1"


def test_an_unreadable_receipts_record_is_counted_not_crashing(topics: Topics) -> None:
    assert _stage(topics).handle(_record(topics, b"wechat_oa:1", b"{not json", 1)) == []
