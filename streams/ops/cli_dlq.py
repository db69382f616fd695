"""Operations commands: ``mall-notify dlq list|show|replay`` and ``mall-notify stats``."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from channels.base import ChannelName
from streams.core.failures import Stage, header_map
from streams.core.moments import parse_moment
from streams.core.topics import Topics
from streams.ops.cli_common import (
    ExitCode,
    JsonOption,
    console,
    fail,
    kafka,
    load_cli_settings,
    load_cli_topics,
    print_json,
    table,
)
from streams.ops.dlq import (
    DeadLetter,
    Selection,
    latest_letters,
    read_dead_letters,
    replay,
    replay_topic,
)
from streams.ops.stats import read_accounting

dlq_app = typer.Typer(help="Read and replay the dead-letter topic.", no_args_is_help=True)
_AT = re.compile(r"\d+@\d+")


def parse_when(text: str | None) -> datetime | None:
    """``2h``, ``30m``, ``7d`` ago, or an ISO 8601 time (UTC when it has no zone)."""
    if text is None:
        return None
    try:
        return parse_moment(text, datetime.now(UTC))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


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
    rows = table(
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
        rows.add_row(
            letter.coordinates,
            failure.last_failed_at.strftime("%Y-%m-%d %H:%M:%S") if failure else "?",
            failure.stage.value if failure else "?",
            escape(failure.reason) if failure else "(no history)",
            escape(failure.provider_code or "") if failure else "",
            str(failure.attempts) if failure else "",
            str(letter.shop_id or ""),
            escape(letter.scene or ""),
            letter.channel.value if letter.channel else "",
            str(failure.replays) if failure else "",
            replay_topic(letter, topics) or "-",
        )
    return rows


def letter_document(letter: DeadLetter, topics: Topics, *, with_value: bool) -> dict[str, Any]:
    """A dead letter for ``--json``: its place, history, what it is about, and (``show``) its
    payload: the JSON it holds, else its text; null for a NULL record."""
    record = letter.record
    document: dict[str, Any] = {
        "at": letter.coordinates,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode(errors="replace") if record.key is not None else None,
        "failure": letter.failure.model_dump(mode="json") if letter.failure else None,
        "shop_id": letter.shop_id,
        "scene": letter.scene,
        "channel": letter.channel.value if letter.channel else None,
        "goes_back_to": replay_topic(letter, topics),
    }
    if with_value:
        document["headers"] = header_map(record.headers)
        document["value"] = None if record.value is None else _payload(record.value)
    return document


def _payload(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value.decode(errors="replace")


def context() -> tuple[Topics, str]:
    """The topics, and the bootstrap address of a cluster that answered and has the DLQ."""
    settings = load_cli_settings()
    topics = load_cli_topics(settings)
    return topics, kafka(settings, topics.dead_letter)


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
    as_json: JsonOption = False,
) -> None:
    """List dead letters (oldest first) with why they failed and where a replay sends them."""
    topics, bootstrap = context()
    selection = _selection(since, until, shop, scene, channel, code, stage, delivery_id, event_id)
    letters = read_dead_letters(bootstrap, topics, selection)
    if as_json:
        print_json([letter_document(letter, topics, with_value=False) for letter in letters])
    else:
        console.print(letters_table(letters, topics))


@dlq_app.command("show")
def dlq_show(
    at: Annotated[str, typer.Argument(help="PARTITION@OFFSET, as `dlq list` shows it")],
    as_json: JsonOption = False,
) -> None:
    """One dead letter: its headers (the whole history) and its payload."""
    if not _AT.fullmatch(at):
        raise fail(f"{at!r} is not PARTITION@OFFSET, e.g. 0@12")
    topics, bootstrap = context()
    found = [
        letter for letter in read_dead_letters(bootstrap, topics, Selection()) if letter.coordinates == at
    ]
    if not found:
        raise fail(f"no dead letter at {at} in {topics.dead_letter}", ExitCode.FAILED)
    if as_json:
        print_json(letter_document(found[0], topics, with_value=True))
        return
    record = found[0].record
    for name, value in header_map(record.headers).items():
        console.print(f"[bold]{escape(name)}[/]: {escape(value)}", highlight=False)
    key = "(null)" if record.key is None else record.key.decode(errors="replace")
    console.print(f"[bold]key[/]: {escape(key)}", highlight=False)
    value = "(null)" if record.value is None else record.value.decode(errors="replace")
    console.print(value, markup=False, highlight=False)


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
    yes: Annotated[
        bool, typer.Option("--yes", help="replay without asking, even failures known to be permanent")
    ] = False,
) -> None:
    """Send matching dead letters back to be processed again. Safe to repeat: a delivery that
    was delivered is never sent twice, and of a delivery dead-lettered again after a replay only
    its latest letter goes back. Asks first when nothing is filtered or when some failures are
    known to be permanent (the provider said so, or the event itself was refused)."""
    selection = _selection(since, until, shop, scene, channel, code, stage, delivery_id, event_id)
    topics, bootstrap = context()
    letters, superseded = latest_letters(read_dead_letters(bootstrap, topics, selection))
    if dry_run:
        console.print(letters_table(letters, topics))
    else:
        _confirm(letters, selection, yes)
    with Progress(console=console, transient=True, disable=dry_run) as progress:
        task = progress.add_task("replaying", total=len(letters))
        summary = replay(
            bootstrap,
            topics,
            letters,
            rate_per_second=rate,
            dry_run=dry_run,
            on_each=lambda _: progress.advance(task),
        )
    verb = "would replay" if dry_run else "replayed"
    console.print(f"{verb} {summary.total} of {len(letters)} matching dead letters")
    if superseded:
        console.print(f"  {superseded} older letters left out: their delivery failed again after a replay")
    for target, count in sorted(summary.replayed.items()):
        console.print(f"  {count} -> {target}")
    if summary.unreplayable:
        console.print(
            f"  {len(summary.unreplayable)} without a readable history: {', '.join(summary.unreplayable)}"
        )


def _confirm(letters: list[DeadLetter], selection: Selection, yes: bool) -> None:
    """Ask before a replay of everything or of failures known to be permanent; refuse without a
    terminal to ask on (``--yes`` answers yes)."""
    permanent = [letter for letter in letters if letter.known_permanent]
    questions = []
    if selection == Selection():
        questions.append(f"no filter given: replay all {len(letters)} dead letters?")
    if permanent:
        codes = sorted({(x.failure.provider_code or x.failure.reason) for x in permanent if x.failure})
        questions.append(
            f"{len(permanent)} of them failed permanently ({', '.join(codes[:5])}): they will fail again "
            "unless the cause was fixed. Replay them?"
        )
    if not questions or yes:
        return
    if not sys.stdin.isatty():
        raise fail(" ".join(questions) + " Add --yes to replay them.")
    for question in questions:
        if not typer.confirm(question):
            raise fail("nothing replayed", ExitCode.FAILED)


def stats(as_json: JsonOption = False) -> None:
    """Check the accounting: consumed = delivered + skipped + dead-lettered + in flight; and
    how many events wait unread."""
    settings = load_cli_settings()
    topics = load_cli_topics(settings)
    bootstrap = kafka(settings, *(spec.name for spec in topics.all()))
    accounting = read_accounting(bootstrap, topics, settings.topic_prefix + settings.app_id)
    if as_json:
        print_json(accounting.as_json())
        return
    rows = table("events", "count", title="events consumed by the router, by final outcome")
    for name, value in (
        ("consumed", accounting.consumed),
        ("delivered", accounting.delivered),
        ("skipped", accounting.skipped),
        ("dead-lettered", accounting.dead_lettered),
        ("in flight", accounting.in_flight),
        ("waiting unread", accounting.unread),
    ):
        rows.add_row(name, str(value))
    console.print(rows)
    deliveries = ", ".join(f"{status} {count}" for status, count in sorted(accounting.deliveries.items()))
    console.print(f"deliveries: {deliveries or 'none'}; waiting in retry topics: {accounting.retry_waiting}")
    console.print(
        f"{accounting.consumed} = {accounting.delivered} + {accounting.skipped} + "
        f"{accounting.dead_lettered} + {accounting.in_flight} (in flight)"
    )
