"""The SMS business from the command line: ``mall-notify sms packages|buy|balance|purchases``.

These are the platform operator's commands (the admin API gives shops the same, each its own);
they read and write the account topic as the workers do.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated

import typer

from streams.core.errors import ConfigError
from streams.core.sms_quota import AccountBook, Package, load_packages, new_purchase, purchase_record
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
from streams.ops.reading import read_all
from streams.runtime.clients import idempotent_producer
from streams.settings import Settings

sms_app = typer.Typer(help="SMS packages, balances, signatures and templates.", no_args_is_help=True)
ShopArgument = Annotated[int, typer.Argument(help="shop id", min=1)]
READ_TIMEOUT_SECONDS = 60.0


def packages_of(settings: Settings) -> dict[str, Package]:
    try:
        return load_packages(settings.config_dir / "sms_packages.yaml")
    except ConfigError as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None


def _account(settings: Settings) -> tuple[str, str]:
    topic = load_cli_topics(settings).sms_account
    return kafka(settings, topic), topic


def _book(settings: Settings) -> AccountBook:
    book = AccountBook()
    for record in read_all(*_account(settings), timeout=READ_TIMEOUT_SECONDS):
        book.apply(record.key, record.value)
    return book


def yuan(fen: int) -> str:
    return f"¥{fen / 100:.2f}"


@sms_app.command("packages")
def packages(as_json: JsonOption = False) -> None:
    """The SMS packages the platform sells."""
    offered = packages_of(load_cli_settings())
    if as_json:
        print_json([package.model_dump() for package in offered.values()])
        return
    rows = table("id", "name", "messages", "price")
    for package in offered.values():
        rows.add_row(package.id, package.name, str(package.messages), yuan(package.price_fen))
    console.print(rows)


@sms_app.command("buy")
def buy(
    shop_id: ShopArgument,
    package: Annotated[str, typer.Option("--package", help="package id, see `mall-notify sms packages`")],
) -> None:
    """Record a shop's purchase of a package: its messages are added to the shop's balance."""
    settings = load_cli_settings()
    offered = packages_of(settings).get(package)
    if offered is None:
        known = ", ".join(packages_of(settings))
        raise fail(f"--package: no package {package!r} (packages: {known})")
    bootstrap, topic = _account(settings)
    purchase = new_purchase(shop_id, offered, f"platform:{getpass.getuser()}", datetime.now(UTC))
    producer = idempotent_producer(bootstrap)
    key, value = purchase_record(purchase)
    producer.produce(topic, key=key, value=value)
    if producer.flush(30):
        raise fail("Kafka did not acknowledge the purchase; nothing was bought", ExitCode.UNREACHABLE)
    balance = _book(settings).balance(shop_id)
    console.print(
        f"shop {shop_id} bought {offered.name} ({offered.messages} messages, {yuan(offered.price_fen)}); "
        f"balance: {balance.available} messages",
        markup=False,
    )


@sms_app.command("balance")
def balance(shop_id: ShopArgument, as_json: JsonOption = False) -> None:
    """A shop's SMS balance: bought, used (segments sent), and SMS not sent for lack of balance."""
    account = _book(load_cli_settings()).balance(shop_id)
    if as_json:
        print_json(account.model_dump() | {"available": account.available})
        return
    rows = table("shop", "bought", "used", "available", "SMS sent", "not sent: balance used up")
    rows.add_row(
        str(shop_id),
        str(account.purchased),
        str(account.used),
        str(account.available),
        str(account.sent),
        str(account.refused),
    )
    console.print(rows)


@sms_app.command("purchases")
def purchases(shop_id: ShopArgument, as_json: JsonOption = False) -> None:
    """A shop's purchases, oldest first: when, which package, how many messages, who."""
    bought = _book(load_cli_settings()).purchases(shop_id)
    if as_json:
        print_json([purchase.model_dump(mode="json") for purchase in bought])
        return
    title = f"shop {shop_id}: {len(bought)} purchases"
    rows = table("time", "package", "messages", "price", "who", title=title)
    for purchase in bought:
        rows.add_row(
            purchase.at.isoformat(timespec="seconds"),
            purchase.package,
            str(purchase.messages),
            yuan(purchase.price_fen),
            purchase.who,
        )
    console.print(rows)
