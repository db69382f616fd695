"""Waiting for a worker to take what was just written (``make demo``): its pages
(``/shops/{id}/settings``, ``/shops/{id}/webhooks``, platform token) show what it routes with."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from streams.core.shops import ShopRules


def wait_for_settings(worker_url: str, token: str, shop: ShopRules) -> None:
    """Until the worker routes with ``shop``'s settings (it follows the settings topic)."""
    wanted = shop.model_dump(mode="json")
    path = f"/shops/{shop.shop_id}/settings"
    wait_for_worker(
        worker_url, token, path, lambda page: page == wanted, f"the settings of shop {shop.shop_id}"
    )


def wait_for_endpoint(worker_url: str, token: str, shop_id: int, endpoint_id: str) -> None:
    """Until the worker makes calls to the shop's new webhook endpoint (it follows the webhooks
    topic: an outcome it reads before is nobody's business yet)."""
    path = f"/shops/{shop_id}/webhooks"
    wait_for_worker(
        worker_url,
        token,
        path,
        lambda page: {"id": endpoint_id, "enabled": True} in page,
        f"endpoint {endpoint_id}",
    )


def wait_for_worker(
    worker_url: str, token: str, path: str, took: Callable[[Any], bool], what: str, seconds: float = 15.0
) -> None:
    request = urllib.request.Request(f"{worker_url}{path}", headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(urllib.error.HTTPError),
            urllib.request.urlopen(request, timeout=5) as response,
        ):
            if took(json.load(response)):
                return
        time.sleep(0.2)
    raise TimeoutError(f"the worker did not take {what} in {seconds:.0f} s")
