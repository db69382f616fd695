"""The demo shop onboarded through the admin API, as the platform onboards a merchant: its
Official Account and Mini Program registered with their AppSecrets (sealed at rest, shown by
their last four characters). The demo's worker has no development seed of secrets: every WeChat
message of the demo goes out with a secret registered here."""

from __future__ import annotations

import json
import urllib.request

from rich.console import Console

from streams.core.shops import ShopRules
from streams.devtools.local_stack import SANDBOX_APP_SECRETS

DEMO_SECRETS_KEYS = "demo1:ZGVtby1zZWNyZXRzLWtleS1ub3QtZm9yLXJlYWwtdSE="
"""what the demo's AppSecrets are sealed with (32 bytes, made up: the demo is no real data)"""
KINDS = {"oa": ("wechat_oa", "Official Account"), "mp": ("wechat_mp", "Mini Program")}


def onboard(api_url: str, token: str, shop: ShopRules, console: Console) -> None:
    """Register the shop's apps through ``PUT /v1/shops/{id}/wechat/{oa|mp}``."""
    shown = []
    for kind, (field, name) in KINDS.items():
        account = getattr(shop, field)
        if account is None:
            continue
        body = {"appid": account.appid, "secret": SANDBOX_APP_SECRETS[account.appid]}
        request = urllib.request.Request(
            f"{api_url}/v1/shops/{shop.shop_id}/wechat/{kind}",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="PUT",
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            app = json.load(reply)
        shown.append(f"{name} {app['appid']} (AppSecret ***{app['last4']})")
    console.print(
        f"[bold]WeChat[/] the platform registered shop {shop.shop_id}'s {' and '.join(shown)} through "
        "the admin API: sealed at rest, used by the worker from its next token",
        highlight=False,
    )
