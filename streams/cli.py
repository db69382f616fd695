"""``mall-notify``: the command line of the notification pipeline."""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import orjson
import typer
from confluent_kafka import KafkaException
from rich.markup import escape

from streams.core.errors import ConfigError, TopicsError
from streams.core.events import json_schemas
from streams.core.tokens import MIN_TOKEN_LENGTH, hash_token
from streams.core.validation import UnreadableFile, describe, read_yaml
from streams.ops import (
    cli_buyer_rules,
    cli_dlq,
    cli_history,
    cli_messages,
    cli_preferences,
    cli_publish,
    cli_settings,
    cli_sms,
    cli_webhooks,
    cli_wechat,
)
from streams.ops.cli_common import (
    ExitCode,
    JsonOption,
    console,
    errors,
    fail,
    kafka,
    load_cli_settings,
    load_cli_topics,
    print_json,
    table,
)
from streams.ops.k8s_export import as_yaml, prometheus_rule, strimzi_topics
from streams.ops.topic_admin import Action, ensure_topics
from streams.settings import PROJECT_ROOT, configuration_reference

DEBUG = "--debug"

app = typer.Typer(
    help="Notification pipeline of a multi-merchant mall.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="Kafka topics of config/topics.yaml.", no_args_is_help=True)
schemas_app = typer.Typer(help="Published JSON Schemas of the events.", no_args_is_help=True)
alerts_app = typer.Typer(help="The alert rules of deploy/prometheus/alerts.yaml.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(alerts_app, name="alerts")
app.add_typer(schemas_app, name="schemas")
app.add_typer(cli_dlq.dlq_app, name="dlq")
app.add_typer(cli_buyer_rules.settings_app, name="settings")  # cli_settings' commands and the buyer rules'
app.add_typer(cli_sms.sms_app, name="sms")
app.add_typer(cli_messages.db_app, name="db")
app.add_typer(cli_webhooks.webhooks_app, name="webhooks")
app.add_typer(cli_preferences.preferences_app, name="preferences")
app.add_typer(cli_wechat.wechat_app, name="wechat")
app.add_typer(cli_wechat.aliyun_app, name="aliyun")
app.command("messages")(cli_messages.messages_command)
app.command("history")(cli_history.history_command)
app.command()(cli_dlq.stats)
app.command()(cli_settings.catalog)
app.command()(cli_settings.explain)
app.command()(cli_publish.publish)


def _print_version(wanted: bool) -> None:
    if wanted:
        console.print(f"mall-notify {version('mall-notify')}", highlight=False)
        raise typer.Exit()


@app.callback()
def options(
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
    _debug: Annotated[bool, typer.Option(DEBUG, help="print a traceback when a command fails")] = False,
) -> None:
    """Notification pipeline of a multi-merchant mall. Exit codes: 1 problem found, 2 usage,
    3 configuration, 4 Kafka did not answer."""


@app.command()
def worker() -> None:
    """Run the pipeline: router, a sender per channel, retry forwarder; /metrics and /readyz on
    MALL_NOTIFY_WEB_PORT. Stops on SIGTERM or SIGINT."""
    from streams.runtime.state.store import StateDirInUse
    from streams.runtime.worker import PortInUse, serve  # heavy imports: other commands don't need them

    settings = load_cli_settings()
    try:
        code = serve(settings)
    except (ConfigError, TopicsError, StateDirInUse, PortInUse) as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None
    raise typer.Exit(code)


@app.command("config-reference")
def config_reference() -> None:
    """Print every setting (variable, default, meaning) as Markdown: docs/CONFIGURATION.md."""
    sys.stdout.write(configuration_reference())


@app.command("hash-token")
def hash_token_command() -> None:
    """Read a bearer token on stdin and print the `sha256:<hex>` to configure instead of it
    (MALL_NOTIFY_API_PLATFORM_TOKEN, MALL_NOTIFY_API_SHOP_TOKENS): `mall-notify hash-token < file`."""
    token = sys.stdin.readline().strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise fail(f"a token has at least {MIN_TOKEN_LENGTH} characters; got {len(token)} on stdin")
    console.print(hash_token(token), highlight=False)


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
    receipts_url: Annotated[
        str | None,
        typer.Option(
            help="push receipts here, as the providers do (the receipts endpoint, http://host:port)"
        ),
    ] = None,
) -> None:
    """Run the provider sandbox (WeChat and Aliyun SMS wire formats, receipts, fault injection,
    inspection)."""
    from aiohttp import web
    from pydantic import ValidationError

    from channels.sandbox.server import build_app
    from channels.sandbox.state import Fault, State

    settings = load_cli_settings()
    try:
        faults = [Fault.model_validate_json(text) for text in fault or []]
    except ValidationError as exc:
        raise fail(f"--fault: {exc}") from None
    seed_file = seed or settings.config_dir / "sandbox.yaml"
    try:
        state = State.from_document(read_yaml(seed_file))
    except UnreadableFile as exc:
        raise fail(f"--seed {exc}", ExitCode.CONFIG) from None
    except ValidationError as exc:
        raise fail(f"--seed {seed_file}: {describe(exc)}", ExitCode.CONFIG) from None
    state.receipts_url = receipts_url.rstrip("/") if receipts_url else None
    try:
        web.run_app(
            build_app(state, faults),
            host=host,
            port=port,
            access_log=None,
            print=lambda _: console.print(
                f"sandbox listening on http://{host}:{port} with {len(faults)} fault(s)", highlight=False
            ),
        )
    except OSError as exc:
        raise fail(f"sandbox cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@app.command()
def demo(
    samples: Annotated[Path | None, typer.Option(help="JSON lines of events to publish")] = None,
) -> None:
    """Start the sandbox and a worker, publish sample events, show what became of each, stop both.
    Runs in its own namespace: topics prefixed `demo.`, consumer group `mall-notify-demo`, and the
    demo shops (ids 9001-9999); it never touches a production topic, group or shop."""
    from streams.devtools.demo import DemoProblem, prepare_demo, run_demo

    settings = load_cli_settings()
    try:
        prepared = prepare_demo(settings, samples)
    except DemoProblem as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None
    kafka(prepared.settings)
    interrupted = threading.Event()

    def interrupt(signum: int, _: object) -> None:
        interrupted.set()
        for again in (signal.SIGINT, signal.SIGTERM):  # a second one must not cut the clean-up short
            signal.signal(again, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)
    try:
        code = run_demo(prepared, console)
    except BaseException:  # whatever the interrupt surfaced as (a provider call's retry, say)
        if interrupted.is_set():
            raise fail("interrupted: the demo's sandbox and worker are stopped", 130) from None
        raise
    raise typer.Exit(code)


@app.command()
def api() -> None:
    """Run the admin API (catalog, shops' settings, OA templates); /openapi.json describes it.
    Until Kafka answers and the settings are loaded, /healthz answers 503."""
    from streams.api.app import build_app, context_from, serve_api

    settings = load_cli_settings()
    try:
        context = context_from(settings, load_cli_topics(settings))
    except ConfigError as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None
    try:
        serve_api(build_app(context), settings)
    except OSError as exc:
        raise fail(
            f"the admin API cannot listen on {settings.api_host}:{settings.api_port}: {exc.strerror or exc}"
        ) from None


@app.command()
def receipts() -> None:
    """Run the receipts endpoint, where WeChat and Aliyun push what became of the messages they
    accepted (on MALL_NOTIFY_RECEIPTS_PORT); the receipts lane of the workers pairs them."""
    from streams.api.receipts import build_receipts_app, serve_receipts

    settings = load_cli_settings()
    topics = load_cli_topics(settings)
    try:
        serve_receipts(build_receipts_app(settings, topics.receipts, topics.sms_reviews), settings)
    except OSError as exc:
        raise fail(
            f"the receipts endpoint cannot listen on {settings.api_host}:{settings.receipts_port}: "
            f"{exc.strerror or exc}"
        ) from None


@topics_app.command("ensure")
def topics_ensure() -> None:
    """Create missing topics and report drift; exit 3 when an existing topic differs from its spec."""
    settings = load_cli_settings()
    specs = load_cli_topics(settings).all()
    reports = ensure_topics(kafka(settings), specs)
    rows = table("topic", "action", "detail", title=f"topics on {settings.kafka_bootstrap_servers}")
    colours = {Action.CREATED: "green", Action.OK: "dim", Action.DRIFT: "red"}
    for report in reports:
        rows.add_row(
            report.topic, f"[{colours[report.action]}]{report.action.value}[/]", escape(report.detail)
        )
    console.print(rows)
    if any(report.action is Action.DRIFT for report in reports):
        errors.print(
            "a topic differs from config/topics.yaml: partitions can only grow (kafka-topics --alter), "
            "and a topic created by auto-create (wrong partitions, not compacted) must be deleted and "
            "created again by `mall-notify topics ensure`; its records are lost, so save what you need first",
            markup=False,
        )
        raise typer.Exit(ExitCode.CONFIG)


@topics_app.command("list")
def topics_list(as_json: JsonOption = False) -> None:
    """Print every topic of the spec (prefix applied)."""
    settings = load_cli_settings()
    specs = load_cli_topics(settings).all()
    if as_json:
        print_json(
            [
                {
                    "name": spec.name,
                    "partitions": spec.partitions,
                    "replication_factor": spec.replication_factor,
                    "config": spec.config,
                }
                for spec in specs
            ]
        )
        return
    rows = table("topic", "partitions", "replication", "config")
    for spec in specs:
        config = ", ".join(f"{k}={v}" for k, v in spec.config.items())
        rows.add_row(spec.name, str(spec.partitions), str(spec.replication_factor), config)
    console.print(rows)


@topics_app.command("export")
def topics_export(
    strimzi: Annotated[bool, typer.Option("--strimzi", help="as Strimzi KafkaTopic resources")] = False,
    cluster: Annotated[
        str, typer.Option(help="the Strimzi Kafka cluster (strimzi.io/cluster)")
    ] = "mall-kafka",
) -> None:
    """Print the topics of config/topics.yaml as Kubernetes resources (deploy/k8s/kafka-topics.yaml)."""
    if not strimzi:
        raise fail("say which format: --strimzi")
    specs = load_cli_topics(load_cli_settings()).all()
    sys.stdout.write(as_yaml(strimzi_topics(specs, cluster), "topics export --strimzi"))


@alerts_app.command("export")
def alerts_export(
    prometheus_rule_format: Annotated[
        bool, typer.Option("--prometheus-rule", help="as a Prometheus Operator PrometheusRule")
    ] = False,
) -> None:
    """Print the alert rules as a Kubernetes resource (deploy/k8s/prometheus-rule.yaml)."""
    if not prometheus_rule_format:
        raise fail("say which format: --prometheus-rule")
    path = PROJECT_ROOT / "deploy" / "prometheus" / "alerts.yaml"
    try:
        rules = read_yaml(path)
    except UnreadableFile as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None
    if not isinstance(rules, dict) or "groups" not in rules:
        raise fail(f"{path}: no groups of rules", ExitCode.CONFIG)
    sys.stdout.write(as_yaml([prometheus_rule(rules)], "alerts export --prometheus-rule"))


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[Path | None, typer.Argument(help="where to write them")] = None,
) -> None:
    """Write the JSON Schema of every event type (config/schemas/ by default)."""
    target = directory or load_cli_settings().config_dir / "schemas"
    try:
        target.mkdir(parents=True, exist_ok=True)
        for event_type, schema in json_schemas().items():
            path = target / f"{event_type}.schema.json"
            path.write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
            console.print(f"wrote {path}", markup=False, highlight=False)
    except OSError as exc:
        raise fail(f"cannot write the schemas to {target}: {exc.strerror or exc}") from None


def main() -> None:
    """The command line, with every failure a single line: a known problem names what to fix; a
    failure nobody foresaw says what it was, and ``--debug`` shows its traceback."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except KafkaException as exc:
        errors.print(f"Kafka: {exc.args[0].str() if exc.args else exc}", style="red", markup=False)
        sys.exit(ExitCode.UNREACHABLE)
    except Exception as exc:  # the last resort: one line, not a traceback
        if DEBUG in sys.argv:
            traceback.print_exc()
        else:
            errors.print(
                f"failed: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                style="red",
                markup=False,
            )
        sys.exit(ExitCode.FAILED)
