"""The receipts endpoint fuzzed on the real broker, as the admin API is: WeChat pushes signed with
the right Token or not, in plain and safe mode, to known and unknown appids; Aliyun reports to the
right URL secret or not; fields of every type and size, times and ids that are not numbers. Every
answer is a 2xx or a 4xx with ``{"problems": [...]}`` (503 when Kafka did not take a receipt in
time), never a 5xx of ours."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.wechat_push import encrypt, sign
from streams.devtools.local_stack import SANDBOX_PUSH_ENV, Service, start_receipts
from tests.factories import DEMO_APPID
from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration
TOKEN = SANDBOX_PUSH_ENV["MALL_NOTIFY_WECHAT_PUSH_TOKEN"]
AES_KEYS: dict[str, str] = json.loads(SANDBOX_PUSH_ENV["MALL_NOTIFY_WECHAT_AES_KEYS"])
SECRET = SANDBOX_PUSH_ENV["MALL_NOTIFY_ALIYUN_REPORT_SECRET"]
SAFE_APPID = next(iter(AES_KEYS))


@pytest.fixture(scope="module")
def endpoint(pipeline: Pipeline) -> Iterator[Service]:
    service = start_receipts(pipeline.log_dir, pipeline.worker_env)
    yield service
    service.stop()


def post(endpoint: Service, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
    url = f"{endpoint.url}{path}?{urllib.parse.urlencode(query)}"
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=15) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as refused:
        return refused.code, orjson.loads(refused.read())


texts = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"[0-9]{1,400}", fullmatch=True),
    st.sampled_from(["", "notanumber", "0", "-1", "1e9", "²", "١٠٠١", "success", "failed:user block"]),
)
JSONS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def wechat_push(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes]:
    appid = draw(st.sampled_from([DEMO_APPID, SAFE_APPID, "wxunknown00000000", "../x", "wx" + "9" * 40]))
    event = draw(st.sampled_from(["TEMPLATESENDJOBFINISH", "subscribe_msg_sent_event", "subscribe", ""]))
    fields = {name: draw(texts) for name in ("CreateTime", "MsgID", "Status", "ErrorCode", "ErrorStatus")}
    entries = "".join(f"<{name}>{_cdata(value)}</{name}>" for name, value in fields.items())
    xml = draw(
        st.sampled_from(
            [
                f"<xml><Event>{_cdata(event)}</Event>{entries}</xml>",
                f"<xml><Event>{_cdata(event)}</Event><CreateTime>{fields['CreateTime']}</CreateTime>"
                f"<SubscribeMsgSentEvent><List>{entries}</List></SubscribeMsgSentEvent></xml>",
                "not xml at all",
                '<!DOCTYPE x [<!ENTITY e "boom">]><xml>&e;</xml>',
            ]
        )
    ).encode()
    timestamp = draw(st.sampled_from([str(int(time.time())), str(int(time.time()) - 3600), "x", ""]))
    nonce = draw(st.sampled_from([secrets.token_hex(8), "", "n" * 100]))
    mode = draw(st.sampled_from(["plain", "safe", "unsigned"]))
    if mode == "unsigned":
        return appid, {"signature": "0" * 40, "timestamp": timestamp, "nonce": nonce}, xml
    if mode == "plain":
        return (
            appid,
            {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce},
            xml,
        )
    encrypted = encrypt(xml, appid, AES_KEYS.get(appid, AES_KEYS[SAFE_APPID]))
    query = {
        "encrypt_type": "aes",
        "msg_signature": sign(TOKEN, timestamp, nonce, encrypted),
        "timestamp": timestamp,
        "nonce": nonce,
    }
    return appid, query, f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()


def _cdata(value: str) -> str:
    return f"<![CDATA[{value.replace(']]>', '')}]]>"


@st.composite
def aliyun_report(draw: st.DrawFn) -> tuple[str, bytes]:
    secret = draw(st.sampled_from([SECRET, SECRET + "x", "%2e%2e", ""]))
    report = {
        "biz_id": draw(st.one_of(texts, JSONS)),
        "out_id": draw(st.one_of(texts, JSONS)),
        "success": draw(st.one_of(st.booleans(), JSONS)),
        "err_code": draw(st.one_of(texts, JSONS)),
        "err_msg": draw(texts),
        "report_time": draw(
            st.one_of(
                texts, st.sampled_from(["0001-01-01 00:00:00", "2026-12-04 10:00:00", "9999-12-31 23:59:59"])
            )
        ),
    }
    dropped = draw(st.sets(st.sampled_from(sorted(report))))
    body = draw(
        st.sampled_from(
            [
                json.dumps([{k: v for k, v in report.items() if k not in dropped}]).encode(),
                json.dumps({k: v for k, v in report.items() if k not in dropped}).encode(),
                json.dumps(draw(JSONS)).encode(),
                b"\xff\xfe not json",
            ]
        )
    )
    return secret, body


def _answered_without_fault(status: int, body: Any) -> None:
    assert status < 500 or status == 503, (status, body)
    if status >= 400:
        assert isinstance(body, dict), body
        assert body.get("problems"), body


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(push=wechat_push())
def test_wechat_pushes_of_any_shape_never_get_a_5xx(
    endpoint: Service, push: tuple[str, dict[str, str], bytes]
) -> None:
    appid, query, body = push
    status, answer = post(endpoint, f"/receipts/wechat/{urllib.parse.quote(appid, safe='')}", query, body)
    _answered_without_fault(status, answer)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(report=aliyun_report())
def test_aliyun_reports_of_any_shape_never_get_a_5xx(endpoint: Service, report: tuple[str, bytes]) -> None:
    secret, body = report
    status, answer = post(endpoint, f"/receipts/aliyun/{secret}", {}, body)
    _answered_without_fault(status, answer)
    if status == 200:
        assert orjson.loads(answer) == {"code": 0, "msg": "接收成功"}


@pytest.mark.parametrize(
    ("path", "status"),
    [("/receipts/wechat/" + "x" * 10_000, 414), ("/receipts/elsewhere", 404), ("/receipts/aliyun/", 404)],
)
def test_refusals_before_any_handler_are_json_too(endpoint: Service, path: str, status: int) -> None:
    code, answer = post(endpoint, path, {}, b"")
    assert (code, bool(answer["problems"])) == (status, True)
