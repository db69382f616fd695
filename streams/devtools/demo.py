"""``mall-notify demo``: sample events through the real pipeline, and a table of what became of each."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from streams.core.outcomes import Outcome, Status, settled
from streams.core.topics import Topics, load_topics
from streams.devtools.local_stack import running_stack
from streams.devtools.upstream import Published, publish_values
from streams.ops.reading import ReadRecord, end_offsets, read_until
from streams.ops.shop_store import load_config_shops, publish_shops
from streams.ops.topic_admin import ensure_topics
from streams.settings import PROJECT_ROOT, Settings

SETTLE_TIMEOUT_SECONDS = 60.0
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


def fresh_events(lines: list[bytes], run: str) -> list[bytes]:
    """The samples as new events: each run gets its own event ids (the pipeline is idempotent by
    event id, so re-publishing the same ids would rightly be ignored). Non-events stay as they are."""
    fresh = []
    for line in lines:
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError:
            fresh.append(line)
            continue
        if isinstance(document, dict) and "id" in document:
            document["id"] = f"{document['id']}-{run}"
            line = orjson.dumps(document)
        fresh.append(line)
    return fresh


def run_demo(settings: Settings, samples: Path, console: Console) -> int:
    """Publish the samples through a sandbox + worker on the configured broker; 0 if all settled."""
    topics = load_topics(settings.config_dir / "topics.yaml", settings.topic_prefix)
    bootstrap = settings.kafka_bootstrap_servers
    reports = ensure_topics(bootstrap, topics.all())
    console.print(f"[bold]Kafka[/] {bootstrap}: {len(reports)} topics ensured")
    shops = load_config_shops(settings.config_dir)
    publish_shops(bootstrap, topics.settings, shops)
    console.print(
        f"settings of shop(s) {', '.join(str(s.shop_id) for s in shops)} saved to {topics.settings}"
    )
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "MALL_NOTIFY_TOPIC_PREFIX": settings.topic_prefix}
    with running_stack(PROJECT_ROOT / ".local" / "demo", env) as (sandbox, worker):
        console.print(f"[bold]sandbox[/] {sandbox.url}   [bold]worker[/] {worker.url}/metrics")
        start = end_offsets(bootstrap, topics.outcomes)
        events = fresh_events(samples.read_bytes().splitlines(), run=uuid.uuid4().hex[:6])
        published = publish_values(bootstrap, topics, events)
        console.print(f"published {len(published)} sample events from {samples.relative_to(PROJECT_ROOT)}")
        records = read_until(bootstrap, topics.outcomes, start, Settlement(published), SETTLE_TIMEOUT_SECONDS)
        messages = _sandbox_messages(sandbox.url)
    everything = group_outcomes(records)  # may hold late outcomes of events published before this run
    grouped = {source_of(p): everything.get(source_of(p), []) for p in published}
    console.print(_outcome_table(published, grouped))
    _print_summary(console, topics, grouped, messages)
    return 0 if all(settled(outcomes) for outcomes in grouped.values()) else 1


def _sandbox_messages(url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{url}/__sandbox__/messages", timeout=5) as response:
        messages: list[dict[str, object]] = json.load(response)
        return messages


def _outcome_table(published: list[Published], grouped: dict[str, list[Outcome]]) -> Table:
    table = Table(
        "#",
        "event",
        "shop",
        "outcome",
        "scene / channel",
        "why / provider answer",
        title="What happened to each event",
    )
    for number, event in enumerate(published, start=1):
        name = f"{event.event_type}\n{event.event_id}" if event.event_id else "(not an event)"
        outcomes = grouped.get(source_of(event)) or []
        if not outcomes:
            table.add_row(str(number), name, "", "[red]no outcome (timed out)[/]", "", source_of(event))
        for index, outcome in enumerate(outcomes):
            detail = outcome.reason or ("sent" if outcome.status is Status.DELIVERED else "")
            if outcome.provider_code:
                detail = f"{outcome.provider_code} {detail}"
            where = f"{outcome.scene}\n{outcome.channel.value}" if outcome.scene and outcome.channel else ""
            table.add_row(
                str(number) if index == 0 else "",
                name if index == 0 else "",
                str(outcome.shop_id or ""),
                f"[{STATUS_STYLE[outcome.status]}]{outcome.status.value}[/]",
                where,
                detail,
            )
    return table


def _print_summary(
    console: Console, topics: Topics, grouped: dict[str, list[Outcome]], messages: list[dict[str, object]]
) -> None:
    counts = Counter(outcome.status.value for outcomes in grouped.values() for outcome in outcomes)
    console.print("outcomes: " + ", ".join(f"{status} {counts[status.value]}" for status in Status))
    console.print(
        f"dead letters are in [bold]{topics.dead_letter}[/], outcomes in [bold]{topics.outcomes}[/]"
    )
    by_channel = Counter(str(message["channel"]) for message in messages)
    console.print(
        "the sandbox accepted: " + ", ".join(f"{n} {channel}" for channel, n in sorted(by_channel.items()))
    )
    for channel, payload in (("wechat_oa", "body"), ("aliyun_sms", "query")):
        first = next((message for message in messages if message["channel"] == channel), None)
        if first is not None:
            console.print(f"the first {channel} request it received:")
            console.print_json(data=first[payload])
