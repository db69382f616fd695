"""``mall-notify webhooks list|add|remove|enable``: a shop's webhook endpoints, for the platform's
operator (the admin API gives each shop the same for its own), read from and written to the
webhooks topic as the API does."""

from __future__ import annotations

from datetime import UTC, datetime
from operator import attrgetter
from typing import Annotated

import typer
from pydantic import ValidationError

from channels.webhook import UrlRefused, check_url, secret_for
from streams.core.validation import describe
from streams.core.webhooks import (
    ENDPOINTS_MOST,
    Endpoint,
    EndpointRequest,
    EndpointTable,
    enabled_again,
    endpoint_record,
    new_endpoint,
    removal,
)
from streams.ops.cli_common import (
    ExitCode,
    JsonOption,
    console,
    fail,
    kafka_topic,
    load_cli_settings,
    print_json,
    table,
)
from streams.ops.cli_history import recipient_key
from streams.ops.shop_store import publish_records, read_table
from streams.settings import Settings

webhooks_app = typer.Typer(help="Shops' webhook endpoints: list, add, remove, enable.", no_args_is_help=True)
ShopArgument = Annotated[int, typer.Argument(help="shop id", min=1)]
EndpointArgument = Annotated[str, typer.Argument(help="the endpoint's id (wh_...), see `webhooks list`")]


def _topic(settings: Settings) -> tuple[str, str]:
    return kafka_topic(settings, attrgetter("webhooks"))


def _endpoints(settings: Settings) -> EndpointTable:
    endpoints = EndpointTable()
    read_table(*_topic(settings), endpoints)
    return endpoints


def _save(settings: Settings, key: bytes, value: bytes | None) -> None:
    _write(settings, [(key, value)])


def _write(settings: Settings, records: list[tuple[bytes, bytes | None]]) -> None:
    try:
        publish_records(*_topic(settings), records, "webhook endpoint")
    except RuntimeError as exc:
        raise fail(str(exc), ExitCode.UNREACHABLE) from None


@webhooks_app.command("list")
def list_endpoints(shop_id: ShopArgument, as_json: JsonOption = False) -> None:
    """A shop's endpoints: where its outcomes are POSTed, which ones, failing or switched off."""
    endpoints = _endpoints(load_cli_settings()).of_shop(shop_id)
    if as_json:
        print_json([endpoint.model_dump(mode="json", exclude_none=True) for endpoint in endpoints])
        return
    rows = table("id", "url", "events", "state", title=f"shop {shop_id}: {len(endpoints)} webhook endpoints")
    for endpoint in endpoints:
        rows.add_row(endpoint.id, endpoint.url, ", ".join(endpoint.events), _state(endpoint))
    console.print(rows)


def _state(endpoint: Endpoint) -> str:
    if endpoint.disabled_at is not None:
        return f"off since {endpoint.disabled_at:%Y-%m-%d %H:%M} ({endpoint.disabled_reason})"
    if endpoint.failing_since is not None:
        return f"failing since {endpoint.failing_since:%Y-%m-%d %H:%M}"
    return "on"


@webhooks_app.command("add")
def add(
    shop_id: ShopArgument,
    url: Annotated[str, typer.Option("--url", help="https://... on a public host")],
    events: Annotated[
        str, typer.Option("--events", help="comma list of delivered, failed, skipped, reached, not_reached")
    ],
) -> None:
    """Register an endpoint; prints its signing secret, this once."""
    settings = load_cli_settings()
    key = recipient_key(settings)
    try:
        wanted = [event.strip() for event in events.split(",") if event.strip()]
        request = EndpointRequest.model_validate({"url": url, "events": wanted})
        check_url(request.url, frozenset(settings.webhook_allowed_hosts))
    except ValidationError as exc:
        raise fail(describe(exc)) from None
    except UrlRefused as exc:
        raise fail(f"--{exc}") from None
    if len(_endpoints(settings).of_shop(shop_id)) >= ENDPOINTS_MOST:
        raise fail(f"shop {shop_id} has {ENDPOINTS_MOST} webhook endpoints, the most: remove one first")
    endpoint = new_endpoint(shop_id, request, datetime.now(UTC))
    _save(settings, *endpoint_record(endpoint))
    console.print(
        f"shop {shop_id}: endpoint {endpoint.id} added for {', '.join(endpoint.events)}", markup=False
    )
    console.print(f"signing secret (shown once): {secret_for(key, endpoint.id)}", markup=False)


def _found(settings: Settings, shop_id: int, endpoint_id: str) -> Endpoint:
    endpoint = _endpoints(settings).get(endpoint_id)
    if endpoint is None or endpoint.shop_id != shop_id:
        raise fail(f"shop {shop_id} has no webhook endpoint {endpoint_id}", ExitCode.FAILED)
    return endpoint


@webhooks_app.command("remove")
def remove(shop_id: ShopArgument, endpoint_id: EndpointArgument) -> None:
    """Remove an endpoint: nothing more is sent to it."""
    settings = load_cli_settings()
    endpoint = _found(settings, shop_id, endpoint_id)
    _write(settings, list(removal(shop_id, endpoint.id)))
    console.print(f"shop {shop_id}: endpoint {endpoint.id} removed", markup=False)


@webhooks_app.command("enable")
def enable(shop_id: ShopArgument, endpoint_id: EndpointArgument) -> None:
    """Switch an endpoint on again after it was switched off for failing (its spell forgotten)."""
    settings = load_cli_settings()
    endpoint = enabled_again(_found(settings, shop_id, endpoint_id), datetime.now(UTC))
    _save(settings, *endpoint_record(endpoint))
    console.print(f"shop {shop_id}: endpoint {endpoint.id} on", markup=False)
