"""What every command shares: the consoles, loading settings and topics, refusing with a message."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from streams.core.errors import TopicsError
from streams.core.topics import Topics, load_topics
from streams.logs import configure_logging
from streams.settings import Settings, SettingsError, load_settings

console = Console(width=None if sys.stdout.isatty() else 140)
errors = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a refusal (no markup: messages quote user input) and return the exit to raise."""
    errors.print(message, style="red", markup=False, highlight=False)
    return typer.Exit(code)


def load_cli_settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise fail(str(exc)) from None
    configure_logging(settings.log_level)
    return settings


def load_cli_topics(settings: Settings) -> Topics:
    try:
        return load_topics(settings.config_dir / "topics.yaml", settings.topic_prefix)
    except TopicsError as exc:
        raise fail(str(exc)) from None
