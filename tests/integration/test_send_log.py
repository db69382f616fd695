"""The send log on the real broker and a real PostgreSQL: every outcome stored once across a crash
of the worker and a restart of the database, and a shop's token reading only its own messages,
page by page."""

from __future__ import annotations

import signal
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from streams.devtools.demo import Settlement
from streams.devtools.local_stack import Service
from streams.ops.reading import end_offsets, read_until
from tests.conftest import restart_database
from tests.factories import BUYER_OPENID, payment_event, to_bytes, with_changes
from tests.integration.admin import OTHER_TOKEN, SHOP, SHOP_TOKEN, call
from tests.integration.conftest import PLATFORM_TOKEN, SETTLE_SECONDS, Pipeline

pytestmark = pytest.mark.integration
STORE_SECONDS = 60.0


def stored(pipeline: Pipeline, event_ids: set[str]) -> list[dict[str, Any]]:
    """The send log's rows of these events."""
    with psycopg.connect(pipeline.worker_env["MALL_NOTIFY_DATABASE_URL"]) as conn:
        rows = conn.execute(
            "SELECT id, event_id, status, channel FROM messages WHERE event_id = ANY(%s)", [list(event_ids)]
        ).fetchall()
    return [{"id": r[0], "event_id": r[1], "status": r[2], "channel": r[3]} for r in rows]


def until_stored(pipeline: Pipeline, event_ids: set[str], count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + STORE_SECONDS
    while len(rows := stored(pipeline, event_ids)) < count:
        assert time.monotonic() < deadline, f"{len(rows)} of {count} outcomes in the send log"
        time.sleep(0.5)
    return rows


def paid(shop: int, count: int) -> list[bytes]:
    buyer = {"user_id": "u-log", "oa_openid": BUYER_OPENID}
    return [to_bytes(with_changes(payment_event(buyer=buyer), shopid=shop)) for _ in range(count)]


@pytest.mark.slow
def test_every_outcome_is_stored_once_across_a_crash_of_the_worker_and_of_the_database(
    pipeline: Pipeline,
) -> None:
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    published = pipeline.publish(paid(9001, 120))
    read_until(pipeline.bootstrap, pipeline.topics.outcomes, start, lambda rs: len(rs) >= 40, SETTLE_SECONDS)
    pipeline.restart_worker(signal.SIGKILL)
    read_until(pipeline.bootstrap, pipeline.topics.outcomes, start, lambda rs: len(rs) >= 80, SETTLE_SECONDS)
    database = pipeline.worker_env["MALL_NOTIFY_DATABASE_URL"]
    failures_before = lost_database(pipeline)
    restart_database(database)
    published += pipeline.publish(paid(9001, 20))  # outcomes the lane writes after the restart
    records = read_until(
        pipeline.bootstrap, pipeline.topics.outcomes, start, Settlement(published), 3 * SETTLE_SECONDS
    )
    event_ids = {p.event_id for p in published if p.event_id}
    finals = {
        record.key.decode(): orjson.loads(record.value)["status"]
        for record in records
        if orjson.loads(record.value)["event_id"] in event_ids
        and orjson.loads(record.value)["status"] in ("delivered", "skipped", "dead_lettered")
    }
    rows = until_stored(pipeline, event_ids, len(finals))
    time.sleep(2)  # a second copy of anything would be in by now
    rows = stored(pipeline, event_ids)
    assert sorted(row["id"] for row in rows) == sorted(finals), "each outcome once, none missing"
    assert {row["id"]: row["status"] for row in rows} == finals
    assert lost_database(pipeline) > failures_before, "the send-log lane saw the database go"


def lost_database(pipeline: Pipeline) -> float:
    """How often the worker's send-log lane lost PostgreSQL and paused, as its metrics say."""
    return pipeline.metric_total("mall_notify_send_log_failures_total")


def test_a_shop_reads_its_own_send_log_page_by_page(pipeline: Pipeline, api: Service) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    published = pipeline.publish(paid(SHOP, 5) + paid(9001, 1))
    mine = {p.event_id for p in published[:5] if p.event_id}
    until_stored(pipeline, mine | {published[5].event_id or ""}, 6)  # one OA message each

    path = f"/v1/shops/{SHOP}/messages?since={since}&limit=3"
    status, first = call(api, "GET", path, SHOP_TOKEN)
    assert status == 200, first
    assert len(first["messages"]) == 3
    assert first["next"]
    status, second = call(api, "GET", f"{path}&cursor={first['next']}", SHOP_TOKEN)
    assert status == 200, second
    assert (len(second["messages"]), second["next"]) == (2, None)
    pages = first["messages"] + second["messages"]
    assert {m["event_id"] for m in pages} == mine, "the shop's own messages, each once"
    assert {m["shop_id"] for m in pages} == {SHOP}
    newest_first = [(m["finished_at"], m["id"]) for m in pages]
    assert newest_first == sorted(newest_first, reverse=True)
    assert all(m["to"] == "oR8s***jKlM" for m in pages), "recipients masked"

    assert call(api, "GET", "/v1/shops/9001/messages", SHOP_TOKEN)[0] == 403
    assert call(api, "GET", "/v1/messages", SHOP_TOKEN)[0] == 403
    assert call(api, "GET", f"/v1/shops/{SHOP}/messages?status=lost", SHOP_TOKEN)[0] == 422
    assert call(api, "GET", f"/v1/shops/{SHOP}/messages?cursor=nonsense", SHOP_TOKEN)[0] == 422
    status, everyone = call(
        api, "GET", f"/v1/messages?since={since}&shop=9001&channel=wechat_oa", PLATFORM_TOKEN
    )
    assert status == 200
    assert {m["shop_id"] for m in everyone["messages"]} == {9001}
    _, by_buyer = call(api, "GET", f"/v1/shops/{SHOP}/messages?openid={BUYER_OPENID}", SHOP_TOKEN)
    assert by_buyer["messages"]
    assert {m["to"] for m in by_buyer["messages"]} == {"oR8s***jKlM"}
    assert (
        call(api, "GET", f"/v1/shops/{SHOP}/messages?openid=nobody{uuid.uuid4().hex}", OTHER_TOKEN)[0] == 403
    )


def test_a_shop_sees_its_sms_spend_by_day_and_the_api_times_its_reads(api: Service) -> None:
    status, spend = call(api, "GET", f"/v1/shops/{SHOP}/sms/spend?days=3", SHOP_TOKEN)
    assert status == 200, spend
    assert spend["balance"]["shop_id"] == SHOP
    days = [day["day"] for day in spend["days"]]
    assert len(days) == 3
    assert days == sorted(days, reverse=True), "newest day first"
    assert call(api, "GET", f"/v1/shops/{SHOP}/sms/spend?days=91", SHOP_TOKEN)[0] == 422
    status, refused = call(api, "GET", f"/v1/shops/{SHOP}/sms/spend?days=3&day=4", SHOP_TOKEN)
    assert (status, refused["problems"]) == (
        422,
        ["day: not a query parameter of GET /v1/shops/{shop_id}/sms/spend"],
    )
    assert call(api, "GET", "/v1/shops/9001/sms/spend", SHOP_TOKEN)[0] == 403

    with urllib.request.urlopen(f"{api.url}/metrics", timeout=5) as response:
        exposed = response.read().decode()
    assert 'mall_notify_send_log_query_seconds_count{query="spend"}' in exposed
