"""``mall-notify``: the command line of the notification pipeline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from streams.core.errors import ConfigError, TopicsError
from streams.core.events import json_schemas
from streams.ops import cli_dlq, cli_settings
from streams.ops.cli_common import console, fail, load_cli_settings, load_cli_topics
from streams.ops.topic_admin import Action, ensure_topics

app = typer.Typer(
    help="Notification pipeline of a multi-merchant mall.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="Kafka topics of config/topics.yaml.", no_args_is_help=True)
schemas_app = typer.Typer(help="Published JSON Schemas of the events.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(cli_dlq.dlq_app, name="dlq")
app.add_typer(cli_settings.settings_app, name="settings")
app.command()(cli_dlq.stats)
app.command()(cli_settings.catalog)
app.command()(cli_settings.explain)


@app.command()
def worker() -> None:
    """Run the pipeline: router, a sender per channel, retry forwarder; /metrics and /readyz on
    MALL_NOTIFY_WEB_PORT. Stops on SIGTERM or SIGINT."""
    from streams.runtime.worker import serve  # the worker's imports are heavy; other commands don't need them

    settings = load_cli_settings()
    try:
        code = serve(settings)
    except (ConfigError, TopicsError) as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8780,
    seed: Annotated[Path | None, typer.Option(help="state to start with")] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help='a fault as JSON (repeatable), e.g. {"target": "SendSms", "http_status": 503, "rate": 0.1}'
        ),
    ] = None,
) -> None:
    """Run the provider sandbox (WeChat and Aliyun SMS wire formats, fault injection, inspection)."""
    from pydantic import ValidationError

    from channels.sandbox.server import serve
    from channels.sandbox.state import Fault

    settings = load_cli_settings()
    try:
        faults = [Fault.model_validate_json(text) for text in fault or []]
    except ValidationError as exc:
        raise fail(f"--fault: {exc}") from None
    console.print(f"sandbox listening on http://{host}:{port} with {len(faults)} fault(s)")
    serve(seed or settings.config_dir / "sandbox.yaml", host, port, faults)


@app.command()
def demo(
    samples: Annotated[Path | None, typer.Option(help="JSON lines of events to publish")] = None,
) -> None:
    """Start the sandbox and a worker, publish sample events, show what became of each, stop both."""
    from streams.devtools.demo import run_demo

    settings = load_cli_settings()
    code = run_demo(settings, samples or settings.config_dir / "samples" / "demo-events.jsonl", console)
    raise typer.Exit(code)


@app.command()
def api() -> None:
    """Run the admin API (catalog, shops' settings, OA templates); /openapi.json describes it."""
    from aiohttp import web

    from streams.api.app import build_app, context_from

    settings = load_cli_settings()
    try:
        context = context_from(settings, load_cli_topics(settings))
    except ConfigError as exc:
        raise fail(str(exc)) from None
    web.run_app(
        build_app(context), host=settings.api_host, port=settings.api_port, print=None, access_log=None
    )


@topics_app.command("ensure")
def topics_ensure() -> None:
    """Create missing topics and report drift; exit 3 when an existing topic differs from its spec."""
    settings = load_cli_settings()
    reports = ensure_topics(settings.kafka_bootstrap_servers, load_cli_topics(settings).all())
    table = Table("topic", "action", "detail", title=f"topics on {settings.kafka_bootstrap_servers}")
    colours = {Action.CREATED: "green", Action.OK: "dim", Action.DRIFT: "red"}
    for report in reports:
        table.add_row(report.topic, f"[{colours[report.action]}]{report.action.value}[/]", report.detail)
    console.print(table)
    if any(report.action is Action.DRIFT for report in reports):
        raise typer.Exit(3)


@topics_app.command("list")
def topics_list() -> None:
    """Print every topic of the spec (prefix applied)."""
    settings = load_cli_settings()
    table = Table("topic", "partitions", "replication", "config")
    for spec in load_cli_topics(settings).all():
        config = ", ".join(f"{k}={v}" for k, v in spec.config.items())
        table.add_row(spec.name, str(spec.partitions), str(spec.replication_factor), config)
    console.print(table)


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[Path | None, typer.Argument(help="where to write them")] = None,
) -> None:
    """Write the JSON Schema of every event type (config/schemas/ by default)."""
    target = directory or load_cli_settings().config_dir / "schemas"
    target.mkdir(parents=True, exist_ok=True)
    for event_type, schema in json_schemas().items():
        path = target / f"{event_type}.schema.json"
        path.write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        console.print(f"wrote {path}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
