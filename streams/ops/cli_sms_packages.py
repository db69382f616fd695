"""The SMS packages from the command line: what is on sale (``mall-notify sms packages``, in
``cli_sms``) and the platform's changes to it, ``mall-notify sms package create|price|retire``,
each written to ``notify.sms.packages`` as the admin API writes it."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import typer

from streams.core.errors import ConfigError
from streams.core.sms_packages import PackageShelf, change, create, package_record, retire
from streams.core.sms_quota import Package, load_packages
from streams.core.sms_signatures import Refused
from streams.ops.cli_common import ExitCode, console, fail, load_cli_settings, load_cli_topics
from streams.ops.shop_store import publish_records, read_table
from streams.settings import Settings

package_app = typer.Typer(help="The platform's SMS packages: create, price, retire.", no_args_is_help=True)
IdArgument = Annotated[str, typer.Argument(help="the package's id, e.g. basic")]
READ_SECONDS = 30.0


def packages_of(settings: Settings) -> PackageShelf:
    """What is on sale: the first offer of config/sms_packages.yaml under the saved changes."""
    try:
        shelf = PackageShelf(load_packages(settings.config_dir / "sms_packages.yaml"))
    except ConfigError as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None
    read_table(settings.kafka_bootstrap_servers, load_cli_topics(settings).sms_packages, shelf, READ_SECONDS)
    return shelf


def _saved(made: Callable[[PackageShelf, str], Package], what: str) -> None:
    settings = load_cli_settings()
    shelf = packages_of(settings)
    try:
        package = made(shelf, f"platform:{getpass.getuser()}")
    except Refused as exc:
        raise fail(str(exc), ExitCode.FAILED) from None
    topic = load_cli_topics(settings).sms_packages
    publish_records(settings.kafka_bootstrap_servers, topic, [package_record(package)], "SMS package")
    console.print(
        f"package {package.id} {what}: {package.name}, {package.messages} messages, "
        f"{package.price_fen / 100:.2f} yuan{' (retired)' if package.retired else ''}",
        markup=False,
    )


@package_app.command("create")
def create_package(
    package_id: IdArgument,
    name: Annotated[str, typer.Option(help="what shops see, e.g. 基础包")],
    messages: Annotated[int, typer.Option(help="segments it adds to a balance", min=1)],
    price_fen: Annotated[int, typer.Option(help="its price in fen (1/100 yuan)", min=0)],
) -> None:
    """Put a new package on sale."""
    try:
        draft = Package(id=package_id, name=name, messages=messages, price_fen=price_fen)
    except ValueError as exc:
        raise fail(f"package {package_id!r}: {str(exc).splitlines()[-1].strip()}", ExitCode.USAGE) from None
    _saved(lambda shelf, who: create(shelf, draft, datetime.now(UTC), who), "created")


@package_app.command("price")
def price_package(
    package_id: IdArgument,
    price_fen: Annotated[int, typer.Option(help="the new price in fen", min=0)],
) -> None:
    """Change a package's price; purchases already ordered keep theirs."""
    _saved(
        lambda shelf, who: change(shelf, package_id, datetime.now(UTC), who, price_fen=price_fen), "repriced"
    )


@package_app.command("retire")
def retire_package(package_id: IdArgument) -> None:
    """Sell a package no more; its purchases stand."""
    _saved(lambda shelf, who: retire(shelf, package_id, datetime.now(UTC), who), "retired")
