"""Operations commands: ``mall-notify dlq list|show|replay`` and ``mall-notify stats``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from channels.base import ChannelName
from streams.core.failures import Stage, header_map
from streams.core.topics import Topics
from streams.ops.cli_common import console, load_cli_settings, load_cli_topics
from streams.ops.dlq import DeadLetter, Selection, read_dead_letters, replay, replay_topic
from streams.ops.stats import read_accounting
from streams.settings import Settings

dlq_app = typer.Typer(help="Read and replay the dead-letter topic.", no_args_is_help=True)
_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_when(text: str | None) -> datetime | None:
    """``2h``, ``30m``, ``7d`` ago, or an ISO 8601 time (UTC when it has no zone)."""
    if text is None:
        return None
    match = _AGO.match(text)
    if match:
        return datetime.now(UTC) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither like 2h / 30m / 7d nor an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


Since = Annotated[str | None, typer.Option(help="failed at or after: 2h, 30m, 7d, or ISO time")]
Until = Annotated[str | None, typer.Option(help="failed at or before: 2h, 30m, 7d, or ISO time")]
Shop = Annotated[int | None, typer.Option(help="shop id")]
Scene = Annotated[str | None, typer.Option(help="scene, e.g. buyer_order_paid")]
ChannelOption = Annotated[ChannelName | None, typer.Option(help="channel")]
Code = Annotated[
    str | None, typer.Option(help="provider code (43004) or reason (invalid_json, retries_exhausted)")
]
StageOption = Annotated[Stage | None, typer.Option(help="parse, route or send")]
DeliveryId = Annotated[str | None, typer.Option(help="one delivery id")]
EventId = Annotated[str | None, typer.Option(help="one event id")]


def _selection(
    since: str | None,
    until: str | None,
    shop: int | None,
    scene: str | None,
    channel: ChannelName | None,
    code: str | None,
    stage: Stage | None,
    delivery_id: str | None,
    event_id: str | None,
) -> Selection:
    return Selection(
        parse_when(since), parse_when(until), shop, scene, channel, code, stage, delivery_id, event_id
    )


def letters_table(letters: list[DeadLetter], topics: Topics) -> Table:
    table = Table(
        "at",
        "failed at",
        "stage",
        "reason",
        "code",
        "attempts",
        "shop",
        "scene",
        "channel",
        "replays",
        "goes back to",
        title=f"{len(letters)} dead letters in {topics.dead_letter}",
    )
    for letter in letters:
        failure = letter.failure
        table.add_row(
            letter.coordinates,
            failure.last_failed_at.strftime("%Y-%m-%d %H:%M:%S") if failure else "?",
            failure.stage.value if failure else "?",
            failure.reason if failure else "(no history)",
            (failure.provider_code or "") if failure else "",
            str(failure.attempts) if failure else "",
            str(letter.shop_id or ""),
            letter.scene or "",
            letter.channel.value if letter.channel else "",
            str(failure.replays) if failure else "",
            replay_topic(letter, topics) or "-",
        )
    return table


def context() -> tuple[Settings, Topics]:
    settings = load_cli_settings()
    return settings, load_cli_topics(settings)


@dlq_app.command("list")
def dlq_list(
    since: Since = None,
    until: Until = None,
    shop: Shop = None,
    scene: Scene = None,
    channel: ChannelOption = None,
    code: Code = None,
    stage: StageOption = None,
    delivery_id: DeliveryId = None,
    event_id: EventId = None,
) -> None:
    """List dead letters (oldest first) with why they failed and where a replay sends them."""
    settings, topics = context()
    selection = _selection(since, until, shop, scene, channel, code, stage, delivery_id, event_id)
    console.print(
        letters_table(read_dead_letters(settings.kafka_bootstrap_servers, topics, selection), topics)
    )


@dlq_app.command("show")
def dlq_show(at: Annotated[str, typer.Argument(help="PARTITION@OFFSET, as `dlq list` shows it")]) -> None:
    """One dead letter: its headers (the whole history) and its payload."""
    settings, topics = context()
    found = [
        letter
        for letter in read_dead_letters(settings.kafka_bootstrap_servers, topics, Selection())
        if letter.coordinates == at
    ]
    if not found:
        console.print(f"no dead letter at {at}")
        raise typer.Exit(1)
    record = found[0].record
    for name, value in header_map(record.headers).items():
        console.print(f"[bold]{name}[/]: {value}", highlight=False, markup=True)
    console.print(f"[bold]key[/]: {(record.key or b'').decode(errors='replace')}")
    console.print((record.value or b"").decode(errors="replace"), markup=False, highlight=False)


@dlq_app.command("replay")
def dlq_replay(
    since: Since = None,
    until: Until = None,
    shop: Shop = None,
    scene: Scene = None,
    channel: ChannelOption = None,
    code: Code = None,
    stage: StageOption = None,
    delivery_id: DeliveryId = None,
    event_id: EventId = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be replayed")] = False,
    rate: Annotated[float, typer.Option(help="records per second", min=0.1)] = 50.0,
) -> None:
    """Send matching dead letters back to be processed again. Safe to repeat: a delivery that
    was delivered is never sent twice."""
    settings, topics = context()
    selection = _selection(since, until, shop, scene, channel, code, stage, delivery_id, event_id)
    letters = read_dead_letters(settings.kafka_bootstrap_servers, topics, selection)
    if dry_run:
        console.print(letters_table(letters, topics))
    with Progress(console=console, transient=True, disable=dry_run) as progress:
        task = progress.add_task("replaying", total=len(letters))
        summary = replay(
            settings.kafka_bootstrap_servers,
            topics,
            letters,
            rate_per_second=rate,
            dry_run=dry_run,
            on_each=lambda _: progress.advance(task),
        )
    verb = "would replay" if dry_run else "replayed"
    console.print(f"{verb} {summary.total} of {len(letters)} matching dead letters")
    for target, count in sorted(summary.replayed.items()):
        console.print(f"  {count} -> {target}")
    if summary.unreplayable:
        console.print(
            f"  {len(summary.unreplayable)} without a readable history: {', '.join(summary.unreplayable)}"
        )


def stats() -> None:
    """Check the accounting: consumed = delivered + skipped + dead-lettered + in flight."""
    settings, topics = context()
    accounting = read_accounting(
        settings.kafka_bootstrap_servers, topics, settings.topic_prefix + settings.app_id
    )
    table = Table("events", "count", title="events consumed by the router, by final outcome")
    for name, value in (
        ("consumed", accounting.consumed),
        ("delivered", accounting.delivered),
        ("skipped", accounting.skipped),
        ("dead-lettered", accounting.dead_lettered),
        ("in flight", accounting.in_flight),
    ):
        table.add_row(name, str(value))
    console.print(table)
    deliveries = ", ".join(f"{status} {count}" for status, count in sorted(accounting.deliveries.items()))
    console.print(f"deliveries: {deliveries or 'none'}; waiting in retry topics: {accounting.retry_waiting}")
    console.print(
        f"{accounting.consumed} = {accounting.delivered} + {accounting.skipped} + "
        f"{accounting.dead_lettered} + {accounting.in_flight} (in flight)"
    )
