"""``mall-notify publish FILE|-``: send events to a running pipeline, as an upstream service would."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from streams.core.errors import EventRejected
from streams.core.events import parse_event
from streams.devtools.upstream import publish_values
from streams.ops.cli_common import ExitCode, console, fail, kafka, load_cli_settings, load_cli_topics


def event_values(text: bytes) -> list[bytes]:
    """One event (a JSON object, pretty-printed or not), a JSON array of events, or JSON lines."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        return [line for line in text.splitlines() if line.strip()]
    if isinstance(document, list):
        return [orjson.dumps(item) for item in document]
    return [text.strip()]


def publish(
    source: Annotated[str, typer.Argument(help="a file of events (JSON, JSON array or JSON lines), or -")],
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="refuse events the pipeline would dead-letter (--no-check: send them, to see the DLQ)",
        ),
    ] = True,
) -> None:
    """Publish events to their topics (topics.yaml by event type; key: the order number)."""
    try:
        text = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {source}: {exc.strerror or exc}") from None
    values = event_values(text)
    if not values:
        raise fail(f"{source} holds no events")
    if check:
        for number, value in enumerate(values, start=1):
            try:
                parse_event(value)
            except EventRejected as exc:
                raise fail(f"{source}: event {number} is not one the pipeline accepts: {exc}") from None
    settings = load_cli_settings()
    topics = load_cli_topics(settings)
    published = publish_values(kafka(settings, *topics.event_topics), topics, values)
    for record in published:
        console.print(
            f"{record.event_type or '(not an event)'} {record.event_id or ''} -> "
            f"{record.topic}[{record.partition}]@{record.offset}",
            markup=False,
            highlight=False,
        )
    if len(published) != len(values):
        raise typer.Exit(ExitCode.FAILED)
