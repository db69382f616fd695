"""``mall-notify settings quiet-hours``, ``settings daily-cap`` and ``settings fallback``: a shop's
rules for what its buyers get, when and where, changed from the command line and saved like every
settings change (in the settings history as the platform operator's)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from streams.core.errors import ConfigError
from streams.core.shop_checks import parse_shop_rules
from streams.core.shops import FALLBACK_ORDER, ShopRules
from streams.ops.cli_common import ExitCode, console, fail, load_cli_settings
from streams.ops.cli_settings import catalog_of, save, settings_app, shop_of
from streams.settings import Settings

OFF = "off"


def _current(shop_id: int) -> tuple[Settings, ShopRules]:
    settings = load_cli_settings()
    return settings, shop_of(settings, shop_id, catalog_of(settings))


def _changed(settings: Settings, current: ShopRules, action: str, **change: Any) -> ShopRules:
    """The shop's settings with ``change``, checked as a settings file is and saved (one line
    naming the field if not)."""
    document = current.model_dump(mode="json") | change
    try:
        shop = parse_shop_rules(document, catalog_of(settings), f"shop {current.shop_id}")
    except ConfigError as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None
    save(settings, [shop], action)
    return shop


@settings_app.command("quiet-hours")
def quiet_hours(
    shop_id: Annotated[int, typer.Argument(help="shop id", min=1)],
    window: Annotated[str, typer.Argument(help="START-END in the time zone (22:00-08:00), or off")],
    zone: Annotated[str, typer.Option("--zone", help="an IANA time zone")] = "Asia/Shanghai",
    hold: Annotated[
        list[str] | None,
        typer.Option("--hold", help="a category held in the window (marketing, transactional); repeat it"),
    ] = None,
) -> None:
    """Set when a shop's buyers get no marketing (or what --hold names): held until the window ends."""
    if window == OFF:
        quiet = None
    else:
        start, dash, end = window.partition("-")
        if not dash:
            raise fail(f"{window!r}: write START-END (22:00-08:00) or off", ExitCode.CONFIG)
        quiet = {"start": start, "end": end, "time_zone": zone, "categories": hold or ["marketing"]}
    shop = _changed(*_current(shop_id), "settings quiet-hours", quiet_hours=quiet)
    saved = shop.quiet_hours
    if saved is None:
        console.print(f"saved: shop {shop_id} has no quiet hours", markup=False)
        return
    held = ", ".join(saved.categories) or "nothing"
    console.print(
        f"saved: shop {shop_id} holds {held} from {saved.start} to {saved.end} ({saved.time_zone})",
        markup=False,
        highlight=False,
    )


@settings_app.command("daily-cap")
def daily_cap(
    shop_id: Annotated[int, typer.Argument(help="shop id", min=1)],
    category: Annotated[str, typer.Argument(help="marketing or transactional")],
    limit: Annotated[str, typer.Argument(help="notices of it a buyer gets a day, 1 to 100, or off")],
) -> None:
    """Cap how many notices of a category one buyer gets from the shop a day."""
    settings, current = _current(shop_id)
    caps: dict[str, Any] = {str(name): cap for name, cap in current.daily_caps.items()}
    if limit == OFF:
        caps.pop(category, None)
    else:
        caps[category] = limit
    shop = _changed(settings, current, "settings daily-cap", daily_caps=caps)
    now = {str(name): cap for name, cap in shop.daily_caps.items()}.get(category)
    said = f"at most {now} {category} notices a buyer a day" if now else f"no cap on {category} notices"
    console.print(f"saved: shop {shop_id}: {said}", markup=False, highlight=False)


@settings_app.command("fallback")
def fallback(
    shop_id: Annotated[int, typer.Argument(help="shop id", min=1)],
    scene: Annotated[str, typer.Argument(help="a buyer's scene, see `mall-notify catalog`")],
    policy: Annotated[str, typer.Argument(help="first_reachable, or all (every enabled channel at once)")],
    order: Annotated[
        list[str] | None,
        typer.Option("--order", help="first_reachable: a channel, in the order they are tried; repeat it"),
    ] = None,
) -> None:
    """Send a buyer's notice on every channel the shop enabled, or on the first that reaches them."""
    settings, current = _current(shop_id)
    chosen: dict[str, Any] = {"policy": policy} | ({"order": order} if order else {})
    rules = {scene_id: rule.model_dump(exclude_unset=True) for scene_id, rule in current.fallback.items()}
    rules[scene] = chosen
    shop = _changed(settings, current, "settings fallback", fallback=rules)
    saved = shop.fallback[scene]
    said = (
        "every channel it enabled at once"
        if saved.policy == "all"
        else "the first that reaches the buyer: "
        + " > ".join(channel.value for channel in saved.order or FALLBACK_ORDER)
        + ("" if saved.order else " (those it enabled)")
    )
    console.print(f"saved: shop {shop_id} {scene}: {said}", markup=False, highlight=False)


__all__ = ["daily_cap", "fallback", "quiet_hours", "settings_app"]
"""``settings_app`` with these commands on it, as the CLI mounts it"""
