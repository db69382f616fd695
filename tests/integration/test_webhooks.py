"""Merchants' webhooks on the real broker, with the sandbox playing the merchants' receivers: a
shop registers endpoints, its outcomes reach them signed, a call answered 500 is retried, one that
keeps failing is dead-lettered and its endpoint switched off (the seller told), and URLs into the
platform's own network are refused."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from channels.webhook import verify
from streams.devtools.local_stack import Service
from streams.ops.cli_common import ExitCode
from streams.ops.reading import end_offsets, read_until
from tests.factories import SELLER_OPENID
from tests.integration.admin import OTHER_TOKEN, PLATFORM_TOKEN, SHOP, SHOP_TOKEN, call
from tests.integration.conftest import SETTLE_SECONDS, Pipeline, ok, run_cli
from tests.integration.test_send_log import paid

pytestmark = pytest.mark.integration
WAIT_SECONDS = 60.0
WEBHOOKS = f"/v1/shops/{SHOP}/webhooks"
NOTICE = "oa-seller-webhook-disabled-v1"
"""the template of the seller's notice that an endpoint was switched off (config/shops/demo.yaml)"""


def until(what: str, found: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while not (answer := found()):
        assert time.monotonic() < deadline, f"no {what} in {WAIT_SECONDS:.0f} s"
        time.sleep(0.5)
    return answer


def hook(pipeline: Pipeline, name: str) -> str:
    return f"{pipeline.sandbox.url}/merchant/hooks/{name}"


def calls_to(pipeline: Pipeline, name: str, at_least: int = 1) -> list[dict[str, Any]]:
    """The calls the sandbox's receiver ``name`` took, once there are ``at_least`` (else none)."""
    took = pipeline.sandbox_get(f"hooks/{name}")
    return took if len(took) >= at_least else []


def _followed(pipeline: Pipeline) -> list[dict[str, Any]]:
    status, page = call(pipeline.worker, "GET", f"/shops/{SHOP}/webhooks", PLATFORM_TOKEN)
    assert status == 200, page
    return list(page)


def register(api: Service, url: str, events: list[str]) -> dict[str, Any]:
    status, created = call(api, "POST", WEBHOOKS, SHOP_TOKEN, {"url": url, "events": events})
    assert status == 201, created
    return dict(created)


def test_private_addresses_and_plain_http_are_refused_and_a_shop_reaches_only_its_own(
    pipeline: Pipeline, api: Service
) -> None:
    for url, why in [
        ("https://10.0.0.8/in", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),
        ("http://127.0.0.1:1/in", "https only"),  # not the sandbox's port: not allowed
        ("https://localhost/in", "not a public host"),
    ]:
        status, answer = call(api, "POST", WEBHOOKS, SHOP_TOKEN, {"url": url, "events": ["failed"]})
        assert (status, why in answer["problems"][0]) == (422, True), answer
    status, answer = call(api, "POST", WEBHOOKS, SHOP_TOKEN, {"url": "https://a.example", "events": ["x"]})
    assert status == 422, answer
    assert call(api, "GET", WEBHOOKS, OTHER_TOKEN)[0] == 403
    assert (
        call(api, "POST", WEBHOOKS, OTHER_TOKEN, {"url": "https://a.example", "events": ["failed"]})[0] == 403
    )


def test_outcomes_reach_the_shops_endpoints_signed_retried_and_a_failing_one_is_switched_off(
    pipeline: Pipeline, api: Service
) -> None:
    names = {kind: f"{kind}-{uuid.uuid4().hex[:8]}" for kind in ("ok", "flaky", "down")}
    endpoints = {kind: register(api, hook(pipeline, name), ["delivered"]) for kind, name in names.items()}
    pipeline.add_fault(target=f"/merchant/hooks/{names['flaky']}", http_status=500, count=1)
    pipeline.add_fault(target=f"/merchant/hooks/{names['down']}", http_status=500)  # for good
    # the worker makes calls to an endpoint once it has read it: its page says so (ids, no URL)
    wanted = [{"id": e["id"], "enabled": True} for e in endpoints.values()]
    until("endpoints in the worker", lambda: all(e in _followed(pipeline) for e in wanted))
    assert call(pipeline.worker, "GET", f"/shops/{SHOP}/webhooks", OTHER_TOKEN)[0] == 401
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    # two orders: the first call that fails for good starts the endpoint's failing spell, the next
    # one finds it older than this pipeline's 2 s and switches the endpoint off
    orders = {published.event_id for published in pipeline.publish(paid(SHOP, 2))}
    try:
        # the shop's receiver gets each delivered message of the order, signed with its secret
        took = until("calls", lambda: calls_to(pipeline, names["ok"], at_least=2))
        for made in took:
            body = orjson.loads(made["body"])
            assert (made["event"], body["type"]) == ("message.delivered", "message.delivered")
            assert body["data"]["event_id"] in orders
            assert body["data"]["shop_id"] == SHOP
            signed, sent = made["signature"], made["body"].encode()
            assert verify(endpoints["ok"]["secret"], signed, sent, time.time())
            assert not verify(endpoints["flaky"]["secret"], signed, sent, time.time()), "another's secret"
        # the call answered 500 came again, and went through: its outcome says 2 attempts
        flaky = until("flaky calls", lambda: calls_to(pipeline, names["flaky"], at_least=2))
        ids = {made["id"] for made in flaky}
        webhook_outcomes = read_until(
            pipeline.bootstrap,
            pipeline.topics.outcomes,
            start,
            lambda rs: ids <= _webhook_calls(rs, "delivered"),
            SETTLE_SECONDS,
        )
        assert sorted(_attempts(webhook_outcomes, call_id) for call_id in ids) == [1, 2]
        # the endpoint that always answers 500: its calls dead-lettered after the last tier, and it
        # is switched off (a failing spell longer than this pipeline's 2 s), the seller told
        down = endpoints["down"]["id"]
        until("switched-off endpoint", lambda: _endpoint(api, down).get("disabled_at"))
        assert "failing for" in _endpoint(api, down)["disabled_reason"]
        assert read_until(
            pipeline.bootstrap,
            pipeline.topics.outcomes,
            start,
            lambda rs: bool(_webhook_calls(rs, "dead_lettered")),
            SETTLE_SECONDS,
        )
        told = until(
            "seller notice",
            lambda: [
                m["body"]
                for m in pipeline.sandbox_messages("wechat_oa")
                if m["body"]["template_id"] == NOTICE
            ],
        )
        assert told[0]["touser"] == SELLER_OPENID
        assert told[0]["data"]["thing2"]["value"].startswith("failing for")
        assert pipeline.metric_total("mall_notify_webhooks_disabled_total") >= 1
        # switched on again by the shop: no longer failing, no longer off
        status, enabled = call(api, "POST", f"{WEBHOOKS}/{endpoints['down']['id']}/enable", SHOP_TOKEN)
        assert status == 200, enabled
        assert "disabled_at" not in enabled
        assert "failing_since" not in enabled
    finally:
        for endpoint in endpoints.values():
            assert call(api, "DELETE", f"{WEBHOOKS}/{endpoint['id']}", SHOP_TOKEN)[0] == 204
    status, left = call(api, "GET", WEBHOOKS, SHOP_TOKEN)
    assert status == 200
    assert not {e["id"] for e in left["endpoints"]} & {e["id"] for e in endpoints.values()}
    assert call(api, "DELETE", f"{WEBHOOKS}/{endpoints['ok']['id']}", SHOP_TOKEN)[0] == 404


def _endpoint(api: Service, endpoint_id: str) -> dict[str, Any]:
    status, listed = call(api, "GET", WEBHOOKS, SHOP_TOKEN)
    assert status == 200, listed
    return next(e for e in listed["endpoints"] if e["id"] == endpoint_id)


def _webhook_calls(records: list[Any], status: str) -> set[str]:
    outcomes = (orjson.loads(record.value or b"{}") for record in records)
    return {o["delivery_id"] for o in outcomes if o.get("channel") == "webhook" and o["status"] == status}


def _attempts(records: list[Any], call_id: str) -> int:
    outcomes = (orjson.loads(record.value or b"{}") for record in records)
    return max(
        o["attempts"] for o in outcomes if o.get("delivery_id") == call_id and o["status"] == "delivered"
    )


def test_the_platform_manages_a_shops_endpoints_from_the_command_line(pipeline: Pipeline) -> None:
    refused = run_cli(
        pipeline, "webhooks", "add", "9001", "--url", "https://10.0.0.8/in", "--events", "failed"
    )
    assert refused.returncode == ExitCode.USAGE
    assert refused.stderr.strip().count("\n") == 0, "one line"
    assert "not a public address" in refused.stderr
    added = ok(
        run_cli(
            pipeline,
            "webhooks",
            "add",
            "9001",
            "--url",
            "https://hooks.example.com/in",
            "--events",
            "failed,reached",
        )
    )
    endpoint_id = added.split("endpoint ", 1)[1].split()[0]
    secret = added.rsplit("(shown once): ", 1)[1].strip()
    assert secret.startswith("whsec_")
    [listed] = [
        e
        for e in orjson.loads(ok(run_cli(pipeline, "webhooks", "list", "9001", "--json")))
        if e["id"] == endpoint_id
    ]
    assert (listed["url"], listed["events"]) == ("https://hooks.example.com/in", ["failed", "reached"])
    assert "secret" not in listed, "never shown again"
    ok(run_cli(pipeline, "webhooks", "remove", "9001", endpoint_id))
    assert endpoint_id not in ok(run_cli(pipeline, "webhooks", "list", "9001"))
    gone = run_cli(pipeline, "webhooks", "remove", "9001", endpoint_id)
    assert (gone.returncode, gone.stderr.strip()) == (
        ExitCode.FAILED,
        f"shop 9001 has no webhook endpoint {endpoint_id}",
    )
