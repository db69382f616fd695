"""What every command shares: the consoles, loading settings and topics, checking that Kafka
answers before using it, and refusing with one line and an exit code by class.

Exit codes: 1 the command ran and found a problem (a dead letter not found, events not settled),
2 usage (a bad argument or option), 3 configuration (settings, catalog, shop files, topics), 4
Kafka did not answer. A traceback is printed only with ``--debug``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import IntEnum
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Column, Table

from streams.core.errors import TopicsError
from streams.core.topics import Topics, load_topics
from streams.logs import configure_logging, redact
from streams.ops.kafka_check import KafkaUnavailable, MissingTopics, check_cluster
from streams.settings import Settings, SettingsError, load_settings

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
"""Never wraps a long line of text (a payload stays one line for ``grep``); tables are 160
columns wide when the output is not a terminal."""
errors = Console(stderr=True, soft_wrap=True)


class ExitCode(IntEnum):
    FAILED = 1
    USAGE = 2
    CONFIG = 3
    UNREACHABLE = 4


def fail(message: str, code: int = ExitCode.USAGE) -> typer.Exit:
    """Print a refusal (no markup: messages quote user input) and return the exit to raise."""
    errors.print(message, style="red", markup=False, highlight=False)
    return typer.Exit(int(code))


def table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells fold onto more lines rather than cut an identifier short."""
    return Table(*(Column(header, overflow="fold") for header in headers), title=title)


def print_json(value: Any) -> None:
    """Machine-readable output of a ``--json`` command: one JSON document on stdout."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
    sys.stdout.write("\n")


def load_cli_settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None
    configure_logging(settings.log_level)
    redact(*settings.secrets())
    return settings


def load_cli_topics(settings: Settings) -> Topics:
    try:
        return load_topics(settings.config_dir / "topics.yaml", settings.topic_prefix)
    except TopicsError as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None


def kafka(settings: Settings, *needed_topics: str) -> str:
    """The bootstrap address, once the cluster answered and holds ``needed_topics`` (a write to a
    missing topic would let a broker auto-create it with the wrong partitions and config)."""
    try:
        check_cluster(settings.kafka_bootstrap_servers, needed_topics)
    except KafkaUnavailable as exc:
        raise fail(str(exc), ExitCode.UNREACHABLE) from None
    except MissingTopics as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None
    return settings.kafka_bootstrap_servers


def kafka_topic(settings: Settings, topic_of: Callable[[Topics], str]) -> tuple[str, str]:
    """The bootstrap address of a cluster that answered and holds one topic of the spec (picked by
    ``topic_of``, e.g. ``attrgetter("settings")``), and that topic's name."""
    topic = topic_of(load_cli_topics(settings))
    return kafka(settings, topic), topic


def database_url(settings: Settings) -> str:
    """The send log's database, or a refusal saying how to have one."""
    if settings.database_url is None:
        raise fail(
            "no database: set MALL_NOTIFY_DATABASE_URL, or start the local one "
            "(deploy/postgres-local/postgres.sh up)",
            ExitCode.CONFIG,
        )
    return settings.database_url.get_secret_value()
