"""``mall-notify demo``: sample events through the real pipeline, and a table of what became of each.

The demo lives in a namespace of its own, whatever the environment says: topics prefixed
``demo.``, the consumer group ``mall-notify-demo``, and shops numbered 9001-9999 (its sample
events and shop files are checked for that before anything connects). Pointed at a production
cluster, it creates its own topics and never reads or writes a production topic, group or shop.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from streams.core.catalog import load_catalog
from streams.core.errors import ConfigError, MallNotifyError, TopicsError
from streams.core.outcomes import FINAL_STATUSES, Outcome, Status, settled
from streams.core.shops import ShopRules
from streams.core.topics import Topics, load_topics
from streams.devtools.demo_mp import buyer_accepts, print_fallbacks, print_mp_spending
from streams.devtools.demo_onboarding import DEMO_SECRETS_KEYS, onboard
from streams.devtools.demo_preferences import buyer_refuses_marketing, print_refusals
from streams.devtools.demo_quiet_hours import coupon_at_night, demo_day
from streams.devtools.demo_receipts import (
    DEMO_RECIPIENT_KEY,
    buyer_openid,
    print_history,
    print_receipts,
    wait_for_receipts,
)
from streams.devtools.demo_send_log import print_send_log
from streams.devtools.demo_sms import buy_package, new_signature, sms_balance
from streams.devtools.demo_webhooks import print_webhook_calls, received, register_endpoint
from streams.devtools.local_stack import running_api, running_stack
from streams.devtools.upstream import Published, publish_values
from streams.devtools.worker_pages import wait_for_endpoint, wait_for_settings
from streams.logs import mask_text, mask_value
from streams.ops.cli_common import table
from streams.ops.reading import ReadRecord, end_offsets, read_until
from streams.ops.shop_store import load_config_shops, publish_shops
from streams.ops.topic_admin import ensure_topics
from streams.runtime.clock import mall_time, set_clock
from streams.settings import PROJECT_ROOT, Settings

SETTLE_TIMEOUT_SECONDS = 60.0
DEMO_PREFIX = "demo."
DEMO_GROUP = "mall-notify-demo"
DEMO_SHOPS = range(9001, 10000)
DEMO_CLOCK = PROJECT_ROOT / ".local" / "demo" / "clock.json"
"""the clock of the demo worker's buyers and deferred lanes: noon for the samples, then a night"""
STATUS_STYLE = {Status.DELIVERED: "green", Status.SKIPPED: "yellow", Status.DEAD_LETTERED: "red"}


def source_of(published: Published) -> str:
    return f"{published.topic}[{published.partition}]@{published.offset}"


def group_outcomes(records: Iterable[ReadRecord]) -> dict[str, list[Outcome]]:
    """Outcomes by the event record they came from (``topic[partition]@offset``)."""
    grouped: dict[str, list[Outcome]] = {}
    for record in records:
        outcome = Outcome.model_validate_json(record.value or b"")
        grouped.setdefault(str(outcome.source), []).append(outcome)
    return grouped


class Settlement:
    """Whether every published event has its final outcome(s), updated record by record as the
    outcomes topic is read (so waiting for thousands of events stays linear)."""

    def __init__(self, published: list[Published]) -> None:
        self.pending = {source_of(p) for p in published}
        self._outcomes: dict[str, list[Outcome]] = {}
        self._seen = 0

    def __call__(self, records: list[ReadRecord]) -> bool:
        for record in records[self._seen :]:
            outcome = Outcome.model_validate_json(record.value or b"")
            source = str(outcome.source)
            if source in self.pending:
                outcomes = self._outcomes.setdefault(source, [])
                outcomes.append(outcome)
                if settled(outcomes):
                    self.pending.discard(source)
        self._seen = len(records)
        return not self.pending


def fresh_events(lines: list[bytes], run: str, day: date) -> list[bytes]:
    """The samples as new events: each run gets its own event ids (the pipeline is idempotent by
    event id, so re-publishing the same ids would rightly be ignored), stamped now (a verification
    code is only sent within its validity), and a coupon ends a month after the run's ``day`` in
    the mall (one that ended would be skipped as expired). Non-events stay as they are."""
    now = datetime.now(UTC).isoformat()
    coupons_end = mall_time("23:59", days=30, day=day).isoformat()
    fresh = []
    for line in lines:
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError:
            fresh.append(line)
            continue
        if isinstance(document, dict) and "id" in document:
            document["id"] = f"{document['id']}-{run}"
            if "time" in document:
                document["time"] = now
            if isinstance(document.get("data"), dict) and "expires_at" in document["data"]:
                document["data"]["expires_at"] = coupons_end
            line = orjson.dumps(document)
        fresh.append(line)
    return fresh


class DemoProblem(MallNotifyError):
    """The demo's own files are unusable; found before anything connects to Kafka."""


@dataclass(frozen=True)
class DemoSetup:
    settings: Settings
    """the caller's settings in the demo's namespace"""
    topics: Topics
    shops: list[ShopRules]
    events: list[bytes]
    """the samples, with event ids of this run"""
    samples: Path
    day: date
    """the day in the mall this run shows (each run a day of its own: the buyers' daily caps start
    afresh however often the demo runs)"""


def prepare_demo(settings: Settings, samples: Path | None) -> DemoSetup:
    """Everything the demo will use, checked offline: topics, shops, sample events."""
    demo = settings.model_copy(
        update={"topic_prefix": settings.topic_prefix + DEMO_PREFIX, "app_id": DEMO_GROUP}
    )
    samples = samples or settings.config_dir / "samples" / "demo-events.jsonl"
    try:
        topics = load_topics(demo.config_dir / "topics.yaml", demo.topic_prefix)
        shops = load_config_shops(demo.config_dir)
        lines = samples.read_bytes().splitlines()
    except (TopicsError, ConfigError) as exc:
        raise DemoProblem(str(exc)) from None
    except OSError as exc:
        raise DemoProblem(f"cannot read {samples}: {exc.strerror or exc}") from None
    foreign = sorted({shop.shop_id for shop in shops} - set(DEMO_SHOPS)) + [
        shop for shop in map(_shop_of, lines) if shop is not None and shop not in DEMO_SHOPS
    ]
    if foreign:
        raise DemoProblem(
            f"the demo only uses shops {DEMO_SHOPS.start}-{DEMO_SHOPS.stop - 1}, never a real shop; "
            f"found shop {foreign[0]} in its shop files or {samples}"
        )
    day = demo_day(DEMO_CLOCK)
    events = fresh_events(lines, run=uuid.uuid4().hex[:6], day=day)
    return DemoSetup(demo, topics, shops, events, samples, day)


def _shop_of(line: bytes) -> int | None:
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    shop = document.get("shopid") if isinstance(document, dict) else None
    return shop if isinstance(shop, int) else None


def run_demo(setup: DemoSetup, console: Console) -> int:
    """Publish the samples through a sandbox + worker on the configured broker; 0 if all settled."""
    settings, topics = setup.settings, setup.topics
    bootstrap = settings.kafka_bootstrap_servers
    reports = ensure_topics(bootstrap, topics.all())
    console.print(
        f"[bold]Kafka[/] {bootstrap}: {len(reports)} topics of the demo ensured "
        f"(prefix {escape(settings.topic_prefix)}, consumer group {settings.app_id})"
    )
    publish_shops(bootstrap, topics.settings, setup.shops, DEMO_RECIPIENT_KEY.encode())
    console.print(
        f"settings of demo shop(s) {', '.join(str(s.shop_id) for s in setup.shops)} "
        f"saved to {topics.settings}"
    )
    token = secrets.token_urlsafe(24)  # this run's: the demo reads the worker's view of its shop
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MALL_NOTIFY_TOPIC_PREFIX": settings.topic_prefix,
        "MALL_NOTIFY_APP_ID": settings.app_id,
        "MALL_NOTIFY_CONFIG_DIR": str(settings.config_dir),
        "MALL_NOTIFY_API_PLATFORM_TOKEN": token,
        "MALL_NOTIFY_RECIPIENT_KEY": DEMO_RECIPIENT_KEY,
        "MALL_NOTIFY_CLOCK_FILE": str(DEMO_CLOCK),
        "MALL_NOTIFY_SMS_REVIEW_POLL_SECONDS": "2",  # the sandbox's Aliyun reviews in 2 s
        "MALL_NOTIFY_SECRETS_KEYS": DEMO_SECRETS_KEYS,
        "MALL_NOTIFY_WECHAT_SECRETS": "{}",  # no seed: the shop's apps are registered through the API
    }
    shop = setup.shops[0]
    day = setup.day
    set_clock(DEMO_CLOCK, mall_time("12:00", day=day))  # the samples go out at noon, whenever the demo runs
    log_dir = PROJECT_ROOT / ".local" / "demo"
    with running_stack(log_dir, env) as (sandbox, worker), running_api(log_dir, env) as api:
        console.print(
            f"[bold]sandbox[/] {sandbox.url}   [bold]worker[/] {worker.url}/metrics   "
            f"[bold]admin API[/] {api.url}"
        )
        onboard(api.url, token, shop, console)
        bought = buy_package(settings, topics, shop.shop_id, console)
        signed = new_signature(settings, topics, shop, (sandbox.url, worker.url, token), console)
        wait_for_settings(worker.url, token, signed)
        buyer_accepts(bootstrap, topics, signed, load_catalog(settings.config_dir / "catalog.yaml"), console)
        buyer_refuses_marketing(bootstrap, topics, shop.shop_id, console)
        hooked = register_endpoint(bootstrap, topics, shop.shop_id, sandbox.url)
        wait_for_endpoint(worker.url, token, shop.shop_id, hooked.endpoint_id)
        start, began = end_offsets(bootstrap, topics.outcomes), datetime.now(UTC)
        published = publish_values(bootstrap, topics, setup.events)
        console.print(f"published {len(published)} sample events from {escape(str(setup.samples))}")
        records = read_until(bootstrap, topics.outcomes, start, Settlement(published), SETTLE_TIMEOUT_SECONDS)
        messages = _sandbox_messages(sandbox.url)
        everything = group_outcomes(records)  # may hold late outcomes of events published before this run
        grouped = {
            source_of(p): [o for o in everything.get(source_of(p), []) if o.status in FINAL_STATUSES]
            for p in published
        }
        delivered = {
            o.delivery_id
            for os in grouped.values()
            for o in os
            if o.status is Status.DELIVERED and o.delivery_id
        }
        receipts = wait_for_receipts(bootstrap, topics, start, delivered)
        calls = received(sandbox.url, _told(grouped, shop.shop_id))
        quiet = coupon_at_night(bootstrap, topics, DEMO_CLOCK, day, setup.events, console)
    console.print(_outcome_table(published, grouped))
    _print_summary(console, topics, grouped, messages)
    print_mp_spending(console, grouped)
    print_fallbacks(console, grouped)
    print_refusals(console, grouped)
    print_send_log(console, settings, shop.shop_id, began, _stored(grouped, shop.shop_id))
    print_receipts(console, receipts, len(delivered))
    print_webhook_calls(console, hooked, calls)
    openid = buyer_openid(setup.events)
    if openid is not None:
        print_history(console, settings, openid, began)
    spent = sms_balance(settings, topics, shop.shop_id)
    console.print(
        f"[bold]SMS[/] shop {shop.shop_id}: balance {bought.available} -> {spent.available} "
        f"({spent.sent - bought.sent} SMS sent, {spent.used - bought.used} segments)"
    )
    return 0 if quiet and all(settled(outcomes) for outcomes in grouped.values()) else 1


def _told(grouped: dict[str, list[Outcome]], shop_id: int) -> int:
    """How many of this run's outcomes the shop's endpoint wants (delivered and failed)."""
    wanted = (Status.DELIVERED, Status.DEAD_LETTERED)
    return sum(
        1 for outcomes in grouped.values() for o in outcomes if o.shop_id == shop_id and o.status in wanted
    )


def _stored(grouped: dict[str, list[Outcome]], shop_id: int) -> int:
    """How many rows the send log gets for the shop's outcomes of this run."""
    return sum(1 for outcomes in grouped.values() for o in outcomes if o.shop_id == shop_id and o.delivery_id)


def _sandbox_messages(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/__sandbox__/messages", timeout=5) as response:
        messages: list[dict[str, Any]] = json.load(response)
        return messages


def _outcome_table(published: list[Published], grouped: dict[str, list[Outcome]]) -> Table:
    rows = table(
        "#",
        "event",
        "shop",
        "outcome",
        "scene / channel",
        "why / provider answer",
        title="What happened to each event",
    )
    for number, event in enumerate(published, start=1):
        name = escape(f"{event.event_type}\n{event.event_id}") if event.event_id else "(not an event)"
        outcomes = grouped.get(source_of(event)) or []
        if not outcomes:
            rows.add_row(str(number), name, "", "[red]no outcome (timed out)[/]", "", source_of(event))
        for index, outcome in enumerate(outcomes):
            detail = outcome.reason or ("sent" if outcome.status is Status.DELIVERED else "")
            if outcome.provider_code:
                detail = f"{outcome.provider_code} {detail}"
            detail = escape(mask_text(detail))
            where = f"{outcome.scene}\n{outcome.channel.value}" if outcome.scene and outcome.channel else ""
            rows.add_row(
                str(number) if index == 0 else "",
                name if index == 0 else "",
                str(outcome.shop_id or ""),
                f"[{STATUS_STYLE[outcome.status]}]{outcome.status.value}[/]",
                where,
                detail,
            )
    return rows


def delivery_of(message: dict[str, Any]) -> str | None:
    """The delivery id a sandbox message carries: OA's ``client_msg_id``, Aliyun's ``OutId``."""
    for payload, name in (("body", "client_msg_id"), ("query", "OutId")):
        values = message.get(payload)
        if isinstance(values, dict) and isinstance(values.get(name), str):
            return str(values[name])
    return None


def _print_summary(
    console: Console, topics: Topics, grouped: dict[str, list[Outcome]], messages: list[dict[str, Any]]
) -> None:
    """Counts of this run's outcomes, and the first OA and SMS request of this run (masked)."""
    outcomes = [outcome for event_outcomes in grouped.values() for outcome in event_outcomes]
    counts = Counter(outcome.status.value for outcome in outcomes)
    console.print("outcomes: " + ", ".join(f"{status} {counts[status.value]}" for status in FINAL_STATUSES))
    console.print(
        f"dead letters are in [bold]{topics.dead_letter}[/], outcomes in [bold]{topics.outcomes}[/]"
    )
    by_channel = Counter(o.channel.value for o in outcomes if o.status is Status.DELIVERED and o.channel)
    console.print(
        "the sandbox accepted: " + ", ".join(f"{n} {channel}" for channel, n in sorted(by_channel.items()))
    )
    ours = {outcome.delivery_id for outcome in outcomes if outcome.delivery_id}
    for channel, payload in (("wechat_oa", "body"), ("aliyun_sms", "query")):
        first = next((m for m in messages if m["channel"] == channel and delivery_of(m) in ours), None)
        if first is not None:
            console.print(f"the first {channel} request it received (phone numbers and openids masked):")
            console.print_json(data=mask_value(first[payload]))
