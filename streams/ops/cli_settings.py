"""Product commands: ``mall-notify catalog``, ``settings show|load|set`` and ``explain``."""

from __future__ import annotations

import asyncio
import getpass
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import Annotated

import aiohttp
import typer
import yaml
from rich.markup import escape
from rich.table import Table

from channels.base import ChannelName
from channels.http import SharedSession
from channels.wechat import CallFailed
from streams.core.catalog import Catalog, load_catalog
from streams.core.errors import ConfigError, EventRejected
from streams.core.events import Event, parse_event
from streams.core.render_plan import compile_shop
from streams.core.routing import Router, Routing
from streams.core.shop_checks import load_shop_files
from streams.core.shops import ShopRules
from streams.core.sms_signatures import Refused
from streams.core.source import SourceRecord
from streams.logs import mask_identifier
from streams.ops.cli_common import (
    ExitCode,
    JsonOption,
    console,
    fail,
    kafka,
    kafka_topic,
    load_cli_settings,
    load_cli_topics,
    print_json,
    table,
)
from streams.ops.cli_preferences import with_buyers_choices
from streams.ops.scene_switch import RuleChange, switch, wechat_accounts
from streams.ops.shop_store import read_settings_history, read_shops, save_shops
from streams.settings import Settings

settings_app = typer.Typer(
    help="Shops' notification settings (the compacted settings topic).", no_args_is_help=True
)


def catalog_of(settings: Settings) -> Catalog:
    try:
        return load_catalog(settings.config_dir / "catalog.yaml")
    except ConfigError as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None


def catalog(as_json: JsonOption = False) -> None:
    """The scenes: trigger, audience, category, channels and variable library."""
    loaded = catalog_of(load_cli_settings())
    if as_json:
        print_json(loaded.model_dump(mode="json"))
        return
    scenes = loaded.scenes
    rows = table(
        "scene", "title", "trigger", "to", "category", "channels", "variables", title=f"{len(scenes)} scenes"
    )
    for scene_id, scene in scenes.items():
        trigger = scene.trigger + "".join(f"\n{path}={value}" for path, value in scene.when.items())
        rows.add_row(
            scene_id,
            scene.title,
            trigger,
            scene.audience,
            scene.category,
            ", ".join(c.value for c in scene.channels),
            escape(", ".join(f"{{{name}}} {v.label}" for name, v in scene.variables.items())),
        )
    console.print(rows)


def settings_topic(settings: Settings) -> tuple[str, str]:
    """The bootstrap address of a cluster that answered, and the settings topic it holds."""
    return kafka_topic(settings, attrgetter("settings"))


def save(settings: Settings, shops: list[ShopRules], action: str) -> None:
    """Save shops' settings from the command line, each change kept in the settings history as
    the platform operator's (``platform:<user>``)."""
    topics = load_cli_topics(settings)
    bootstrap = kafka(settings, topics.settings, topics.settings_history)
    key = settings.recipient_key.get_secret_value().encode() if settings.recipient_key else None
    save_shops(bootstrap, topics, shops, f"platform:{getpass.getuser()}", action, catalog_of(settings), key)


def shop_of(settings: Settings, shop_id: int, catalog: Catalog) -> ShopRules:
    shop = read_shops(*settings_topic(settings), catalog).get(shop_id)
    if shop is None:
        raise fail(
            f"shop {shop_id} has no settings yet: `mall-notify settings load FILE` first", ExitCode.FAILED
        )
    return shop


def _as_yaml(document: object) -> str:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


@settings_app.command("show")
def settings_show(
    shop_id: Annotated[int, typer.Argument(help="shop id")], as_json: JsonOption = False
) -> None:
    """Print a shop's current settings as YAML (what `settings load` takes), or JSON."""
    settings = load_cli_settings()
    shop = shop_of(settings, shop_id, catalog_of(settings))
    if as_json:
        print_json(shop.model_dump(mode="json"))
        return
    console.print(_as_yaml(shop.model_dump(mode="json", exclude_none=True)), markup=False, highlight=False)


@settings_app.command("load")
def settings_load(files: Annotated[list[Path], typer.Argument(help="shop settings YAML files")]) -> None:
    """Validate shops' settings files and save them; workers apply them to the next event."""
    settings = load_cli_settings()
    try:
        shops = load_shop_files(files, catalog_of(settings))
    except ConfigError as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None
    save(settings, shops, "settings load")
    console.print(f"saved the settings of shop(s) {', '.join(str(shop.shop_id) for shop in shops)}")


@settings_app.command("set")
def settings_set(
    shop_id: Annotated[int, typer.Argument(help="shop id")],
    scene: Annotated[str, typer.Argument(help="scene, see `mall-notify catalog`")],
    channel: Annotated[ChannelName, typer.Argument(help="channel")],
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="turn it on or off")] = None,
    template: Annotated[str | None, typer.Option(help="default or custom")] = None,
    template_id: Annotated[
        str | None, typer.Option(help="a WeChat template id (without it, one is added when needed)")
    ] = None,
    library_id: Annotated[
        str | None, typer.Option(help="custom: the library template to build on (see `catalog --json`)")
    ] = None,
    field: Annotated[
        list[str] | None, typer.Option(help="custom content, KEYWORD=TEXT with {variables}")
    ] = None,
) -> None:
    """Change one scene x channel of a shop, validated like the admin API does."""
    settings = load_cli_settings()
    catalog = catalog_of(settings)
    known = catalog.scenes.get(scene)
    if known is None:
        raise fail(f"{scene!r} is not a scene of the catalog (`mall-notify catalog` lists them)")
    if channel not in known.channels:
        allowed = ", ".join(c.value for c in known.channels)
        raise fail(f"{scene} is not sent on {channel.value}; its channels: {allowed}")
    malformed = [item for item in field or [] if "=" not in item]
    if malformed:
        raise fail(f"--field {malformed[0]!r}: write KEYWORD=TEXT")
    fields = {keyword: text for keyword, _, text in (item.partition("=") for item in field or [])}
    change = RuleChange(enabled, template, library_id, template_id, fields)
    current = shop_of(settings, shop_id, catalog)
    try:
        shop = asyncio.run(_switch_and_save(settings, current, catalog, scene, channel, change))
    except ConfigError as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None
    except Refused as exc:
        raise fail(str(exc), ExitCode.FAILED) from None
    except CallFailed as exc:
        raise fail(f"WeChat refused it ({exc.result.code}: {exc.result.reason})", ExitCode.FAILED) from None
    saved = shop.scenes[scene][channel].model_dump(mode="json", exclude_none=True)
    console.print(f"saved: shop {shop_id} {scene} {channel.value}", markup=False, highlight=False)
    console.print(_as_yaml(saved), markup=False, highlight=False)


async def _switch_and_save(
    settings: Settings,
    shop: ShopRules,
    catalog: Catalog,
    scene: str,
    channel: ChannelName,
    change: RuleChange,
) -> ShopRules:
    """The same switch as the admin API's (a template added when needed), saved; the template
    is deleted again when the save fails."""
    timeout = aiohttp.ClientTimeout(total=settings.http_total_timeout, connect=settings.http_connect_timeout)
    session = SharedSession(timeout)
    try:
        switched = await switch(
            shop, catalog, scene, channel, change, wechat_accounts(settings, session).__getitem__
        )
        try:
            action = f"settings set {scene}/{channel.value}"
            await asyncio.to_thread(save, settings, [switched.shop], action)
        except Exception:
            if switched.undo is not None:
                await switched.undo()
            raise
        if switched.added:
            console.print(
                f"added template {switched.added} to the shop's {channel.value} account", markup=False
            )
        return switched.shop
    finally:
        await session.close()


@settings_app.command("history")
def settings_history(
    shop_id: Annotated[int, typer.Argument(help="shop id")], as_json: JsonOption = False
) -> None:
    """Every change of a shop's settings kept (a year), oldest first: when, who, what."""
    settings = load_cli_settings()
    topics = load_cli_topics(settings)
    history = read_settings_history(
        kafka(settings, topics.settings_history), topics.settings_history, shop_id, 60
    )
    if as_json:
        print_json([change.model_dump(mode="json") for change in history])
        return
    rows = table("time", "who", "action", "changes", title=f"shop {shop_id}: {len(history)} changes")
    for change in history:
        rows.add_row(
            change.at.isoformat(timespec="seconds"),
            change.who,
            change.action,
            escape("\n".join(change.changes)),
        )
    console.print(rows)


def explain(
    event_file: Annotated[Path, typer.Argument(help="one event as JSON (config/samples/event.json)")],
    shop: Annotated[int, typer.Option(help="the shop whose settings to use")],
    settings_file: Annotated[
        Path | None, typer.Option("--settings", help="use this file, not the topic")
    ] = None,
    buyer: Annotated[
        bool,
        typer.Option("--buyer", help="apply what the event's buyer refuses (from the send log's database)"),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """For every scene x channel the event triggers: would it send, and why not."""
    settings = load_cli_settings()
    catalog = catalog_of(settings)
    try:
        event = parse_event(event_file.read_bytes())
    except OSError as exc:
        raise fail(f"cannot read {event_file}: {exc.strerror or exc}") from None
    except EventRejected as exc:
        raise fail(f"not an event the pipeline accepts: {exc}", ExitCode.FAILED) from None
    try:
        if settings_file:
            rules = load_shop_files([settings_file], catalog)[0]
        else:
            rules = shop_of(settings, shop, catalog)
    except ConfigError as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None
    routing = Router(catalog).route(
        event, compile_shop(rules, catalog), SourceRecord(str(event_file), 0, 0), datetime.now(UTC)
    )
    if buyer:
        routing = with_buyers_choices(settings, routing, rules.shop_id)
    if as_json:
        print_json(_routing_json(event, rules.shop_id, routing))
    else:
        console.print(_routing_table(event, rules.shop_id, routing))


def _routing_json(event: Event, shop_id: int, routing: Routing) -> dict[str, object]:
    return {
        "event": {"type": event.type, "id": event.id, "shop_id": shop_id},
        "sends": [
            {
                "scene": d.scene,
                "channel": d.delivery.channel.value,
                "to": mask_identifier(d.delivery.recipient),
                "template_id": d.delivery.template_id,
                "fields": d.delivery.fields,
            }
            for d in routing.dispatches
        ],
        "skips": [
            {"scene": k.scene, "channel": k.channel.value if k.channel else None, "reason": k.reason}
            for k in routing.skips
        ],
    }


def _routing_table(event: Event, shop_id: int, routing: Routing) -> Table:
    rows = table(
        "scene",
        "channel",
        "sends?",
        "to / why not",
        "template",
        "content",
        title=escape(f"{event.type} {event.id} for shop {shop_id}"),
    )
    for dispatch in routing.dispatches:
        delivery = dispatch.delivery
        content = "\n".join(f"{k}: {v}" for k, v in delivery.fields.items())
        rows.add_row(
            dispatch.scene,
            delivery.channel.value,
            "[green]yes[/]",
            escape(mask_identifier(delivery.recipient)),
            escape(delivery.template_id),
            escape(content),
        )
    for skip in routing.skips:
        rows.add_row(
            skip.scene or "-",
            skip.channel.value if skip.channel else "-",
            "[yellow]no[/]",
            escape(skip.reason),
            "",
            "",
        )
    return rows
