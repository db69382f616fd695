"""The webhook part of ``make demo``: the demo shop registers an endpoint (the sandbox plays its
receiver) for its delivered and failed messages, and the demo shows the calls it took, each
checked against the endpoint's secret as the merchant's receiver would."""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from rich.console import Console

from channels.webhook import secret_for, verify
from streams.core.topics import Topics
from streams.core.webhooks import EndpointRequest, endpoint_record, new_endpoint
from streams.devtools.demo_receipts import DEMO_RECIPIENT_KEY
from streams.ops.shop_store import publish_records

RECEIVER = "demo-shop"
WAIT_SECONDS = 15.0


@dataclass(frozen=True)
class DemoEndpoint:
    endpoint_id: str
    secret: str
    url: str


def register_endpoint(bootstrap: str, topics: Topics, shop_id: int, sandbox_url: str) -> DemoEndpoint:
    """As ``mall-notify webhooks add SHOP --url ... --events delivered,failed`` does."""
    url = f"{sandbox_url}/merchant/hooks/{RECEIVER}"
    request = EndpointRequest(url=url, events=["delivered", "failed"])
    endpoint = new_endpoint(shop_id, request, datetime.now(UTC))
    publish_records(bootstrap, topics.webhooks, [endpoint_record(endpoint)], "webhook endpoint")
    return DemoEndpoint(endpoint.id, secret_for(DEMO_RECIPIENT_KEY.encode(), endpoint.id), url)


def received(sandbox_url: str, expected: int) -> list[dict[str, object]]:
    """The calls the shop's receiver took, once ``expected`` came (or the wait is over)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        with urllib.request.urlopen(f"{sandbox_url}/__sandbox__/hooks/{RECEIVER}", timeout=5) as response:
            calls: list[dict[str, object]] = orjson.loads(response.read())
        if len(calls) >= expected or time.monotonic() > deadline:
            return calls
        time.sleep(0.5)


def print_webhook_calls(console: Console, endpoint: DemoEndpoint, calls: list[dict[str, object]]) -> None:
    """How many calls the shop's receiver took, and how many carried a valid signature."""
    now = time.time()
    signed = sum(
        1
        for call in calls
        if verify(endpoint.secret, str(call["signature"]), str(call["body"]).encode(), now)
    )
    kinds = sorted({str(call["event"]) for call in calls})
    console.print(
        f"[bold]webhooks[/]: the shop's endpoint {endpoint.endpoint_id} (delivered, failed) took "
        f"{len(calls)} calls ({', '.join(kinds) or 'none'}), {signed} with a valid signature",
        highlight=False,
    )
