"""The merchants' WeChat apps from the command line (the platform's commands):
``mall-notify wechat register SHOP --kind oa|mp --appid wx...`` (the AppSecret read from standard
input or asked for, never an argument: arguments are seen by every user of the machine),
``wechat apps [SHOP]`` (each secret by its last four characters) and ``wechat reseal`` (every
secret sealed again under the first key of MALL_NOTIFY_SECRETS_KEYS, after a key rotation)."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import SecretStr

from streams.core.credentials import (
    AppKind,
    SecretsKeyError,
    WeChatSecrets,
    aliyun_record,
    app_record,
    resealed,
)
from streams.core.sms_signatures import Refused
from streams.ops.cli_common import (
    ExitCode,
    JsonOption,
    console,
    fail,
    load_cli_settings,
    load_cli_topics,
    print_json,
    table,
)
from streams.ops.cli_settings import catalog_of, save, shop_of
from streams.ops.cli_sms_changes import credentials
from streams.ops.shop_store import publish_records
from streams.ops.wechat_apps import KINDS, NoSecretsKey, action, register, register_aliyun
from streams.settings import Settings

wechat_app = typer.Typer(help="Merchants' WeChat apps: register, list, reseal.", no_args_is_help=True)
aliyun_app = typer.Typer(
    help="The platform's Aliyun AccessKey, registered at run time.", no_args_is_help=True
)


def _apps(settings: Settings) -> tuple[WeChatSecrets, str]:
    return credentials(settings), load_cli_topics(settings).credentials


def _secret(what: str = "AppSecret") -> SecretStr:
    if sys.stdin.isatty():
        return SecretStr(getpass.getpass(f"{what}: "))
    return SecretStr(sys.stdin.readline().strip())


@contextmanager
def _refusals() -> Iterator[None]:
    """A registration refused: no MALL_NOTIFY_SECRETS_KEYS (configuration), or the request itself."""
    try:
        yield
    except NoSecretsKey as exc:
        raise fail(str(exc), ExitCode.CONFIG) from None
    except Refused as exc:
        raise fail(str(exc), ExitCode.FAILED) from None


@wechat_app.command("register")
def register_app(
    shop_id: Annotated[int, typer.Argument(help="shop id", min=1)],
    kind: Annotated[str, typer.Option(help="oa (Official Account) or mp (Mini Program)")],
    appid: Annotated[str, typer.Option(help="the app's appid, wx...")],
) -> None:
    """Register the shop's app: its AppSecret (standard input, or asked for) sealed at rest, the
    shop's settings naming the appid. Workers use it from their next token on."""
    if kind not in KINDS:
        raise fail(f"--kind {kind!r}: oa or mp", ExitCode.USAGE)
    settings = load_cli_settings()
    shop = shop_of(settings, shop_id, catalog_of(settings))
    apps, topic = _apps(settings)
    app_kind: AppKind = "oa" if kind == "oa" else "mp"
    with _refusals():
        named, app = register(
            shop,
            app_kind,
            appid,
            _secret(),
            apps.apps(),
            settings.secret_box(),
            datetime.now(UTC),
            f"platform:{getpass.getuser()}",
        )
    publish_records(settings.kafka_bootstrap_servers, topic, [app_record(app)], "WeChat app")
    save(settings, [named], action(app))
    console.print(
        f"shop {shop_id}: {KINDS[app.kind]} {app.appid} registered (AppSecret ***{app.last4}, sealed)",
        markup=False,
    )


@wechat_app.command("apps")
def list_apps(
    shop_id: Annotated[int | None, typer.Argument(help="only this shop's", min=1)] = None,
    as_json: JsonOption = False,
) -> None:
    """The registered apps (each secret by its last four characters)."""
    apps = [a for a in _apps(load_cli_settings())[0].apps() if shop_id in (None, a.shop_id)]
    if as_json:
        print_json([app.shown() for app in apps])
        return
    rows = table("shop", "kind", "appid", "AppSecret", "changed", "by")
    for app in apps:
        changed = app.changed_at.isoformat(timespec="seconds")
        rows.add_row(str(app.shop_id), app.kind, app.appid, f"***{app.last4}", changed, app.changed_by)
    console.print(rows)


@wechat_app.command("reseal")
def reseal() -> None:
    """Seal every registered secret (the apps', the AccessKey's) again under the first key of
    MALL_NOTIFY_SECRETS_KEYS."""
    settings = load_cli_settings()
    box = settings.secret_box()
    if box is None:
        raise fail("MALL_NOTIFY_SECRETS_KEYS is not set", ExitCode.CONFIG)
    apps, topic = _apps(settings)
    try:
        changed = [new for record in apps.sealed() if (new := resealed(box, record)) != record]
    except SecretsKeyError as exc:
        raise fail(
            f"{exc}: keep the old key in MALL_NOTIFY_SECRETS_KEYS until every secret is resealed",
            ExitCode.CONFIG,
        ) from None
    if changed:
        publish_records(
            settings.kafka_bootstrap_servers, topic, [record.record() for record in changed], "credentials"
        )
    console.print(
        f"{len(changed)} of {len(apps.sealed())} secrets sealed again under the key {box.current!r}",
        markup=False,
    )


@aliyun_app.command("register")
def register_key(access_key_id: Annotated[str, typer.Option(help="the AccessKey's id")]) -> None:
    """Register the platform's AccessKey (its secret from standard input, or asked for), sealed at
    rest: every worker and the admin API use it from their next Aliyun call."""
    settings = load_cli_settings()
    topic = load_cli_topics(settings).credentials
    with _refusals():
        key = register_aliyun(
            access_key_id,
            _secret("AccessKey secret"),
            settings.secret_box(),
            datetime.now(UTC),
            f"platform:{getpass.getuser()}",
        )
    publish_records(settings.kafka_bootstrap_servers, topic, [aliyun_record(key)], "AccessKey")
    console.print(
        f"the platform's AccessKey {key.access_key_id} registered (secret ***{key.last4}, sealed)",
        markup=False,
    )


@aliyun_app.command("show")
def show_key(as_json: JsonOption = False) -> None:
    """The registered AccessKey (its secret by its last four characters)."""
    key = credentials(load_cli_settings()).aliyun
    if key is None:
        raise fail(
            "no AccessKey was registered (MALL_NOTIFY_ALIYUN_ACCESS_KEY_ID may be configured)",
            ExitCode.FAILED,
        )
    if as_json:
        print_json(key.shown())
        return
    console.print(
        f"AccessKey {key.access_key_id} (secret ***{key.last4}), "
        f"{key.changed_at:%Y-%m-%d %H:%M} by {key.changed_by}",
        markup=False,
    )
