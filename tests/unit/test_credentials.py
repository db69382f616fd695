"""Merchants' AppSecrets sealed at rest: what the topic holds opens only with the platform's key
and only for its own appid, a rotated key still opens what the old one sealed until it is
resealed, a new or replaced secret drops the token cached for the app, and nothing shows it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from streams.core.catalog import load_catalog
from streams.core.credentials import (
    SecretBox,
    SecretsKeyError,
    WeChatSecrets,
    aliyun_record,
    app_record,
    new_aliyun_key,
    new_app,
    record_key,
    resealed,
)
from streams.core.shop_checks import load_shop_rules
from streams.core.sms_signatures import Refused
from streams.ops.wechat_apps import register, register_aliyun
from tests.factories import DEMO_SHOP, ROOT

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
OLD, NEW = b"o" * 32, b"n" * 32
SECRET = "3f1c9e7a5b2d8f6e4a0c1b9d7e5f3a2c"


def keys(*pairs: tuple[str, bytes]) -> str:
    return ",".join(f"{key_id}:{base64.b64encode(key).decode()}" for key_id, key in pairs)


def test_a_sealed_secret_opens_only_with_its_key_and_for_its_own_appid() -> None:
    box = SecretBox.parse(keys(("k1", OLD)))
    app = new_app(box, "wx5f2a9c1d8e7b6a01", "oa", 9001, SecretStr(SECRET), NOW, "platform:ops")
    _, value = app_record(app)
    assert SECRET.encode() not in value
    assert SECRET[:8].encode() not in value
    assert app.last4 == SECRET[-4:]
    assert box.open(record_key(app.appid), app.secret) == SECRET
    with pytest.raises(SecretsKeyError, match="does not open"):
        box.open(record_key("wx9c3e7a1b5d2f4e6a08"), app.secret)  # moved to another appid
    with pytest.raises(SecretsKeyError, match="does not open"):
        SecretBox.parse(keys(("k1", NEW))).open(record_key(app.appid), app.secret)
    assert SECRET not in str(app.shown())
    assert "secret" not in app.shown()


@pytest.mark.parametrize(
    "text", ["", "k1:not-base64!", f"k1:{base64.b64encode(b'short').decode()}", "k-1:" + "A" * 44]
)
def test_keys_that_are_not_id_and_32_bytes_are_refused(text: str) -> None:
    with pytest.raises(SecretsKeyError):
        SecretBox.parse(text)


def test_a_rotated_key_opens_the_old_secrets_until_they_are_resealed() -> None:
    old = SecretBox.parse(keys(("k1", OLD)))
    app = new_app(old, "wx5f2a9c1d8e7b6a01", "oa", 9001, SecretStr(SECRET), NOW, "platform:ops")
    rotated = SecretBox.parse(keys(("k2", NEW), ("k1", OLD)))
    assert rotated.open(record_key(app.appid), app.secret) == SECRET
    again = resealed(rotated, app)
    assert again.secret.startswith("k2:")
    assert resealed(rotated, again) == again
    assert SecretBox.parse(keys(("k2", NEW))).open(record_key(app.appid), again.secret) == SECRET


def test_the_table_gives_the_registered_secret_over_the_seed_and_says_which_app_changed() -> None:
    box = SecretBox.parse(keys(("k1", OLD)))
    changed: list[str] = []
    secrets = WeChatSecrets(box, {"wx5f2a9c1d8e7b6a01": SecretStr("seeded")}, changed.append)
    assert secrets["wx5f2a9c1d8e7b6a01"].get_secret_value() == "seeded"
    app = new_app(box, "wx5f2a9c1d8e7b6a01", "oa", 9001, SecretStr(SECRET), NOW, "platform:ops")
    assert secrets.apply(*app_record(app)) == 0
    assert changed == ["wx5f2a9c1d8e7b6a01"]
    assert secrets["wx5f2a9c1d8e7b6a01"].get_secret_value() == SECRET
    assert "wx5f2a9c1d8e7b6a01" in secrets
    assert len(secrets) == 1
    assert isinstance(secrets.apply(b"wechat/wx1111111111", b"{}"), str)  # not a record: refused
    unkeyed = WeChatSecrets(None)
    unkeyed.apply(*app_record(app))
    assert unkeyed.get("wx5f2a9c1d8e7b6a01") is None, "a secret that cannot be opened is no secret"
    assert "MALL_NOTIFY_SECRETS_KEYS" in unkeyed.unopened["wx5f2a9c1d8e7b6a01"]


def test_the_platforms_accesskey_is_sealed_like_an_appsecret_and_opened_for_the_clients() -> None:
    box = SecretBox.parse(keys(("k1", OLD)))
    key = new_aliyun_key(
        box, "LTAI5tSandboxMallNotify02", SecretStr("sandbox-aliyun-secret-0002"), NOW, "ops"
    )
    _, value = aliyun_record(key)
    assert b"sandbox-aliyun-secret-0002" not in value
    table = WeChatSecrets(box)
    assert table.aliyun_key() is None
    assert table.apply(*aliyun_record(key)) == 0
    registered = table.aliyun_key()
    assert registered is not None
    assert (registered[0], registered[1].get_secret_value()) == (
        "LTAI5tSandboxMallNotify02",
        "sandbox-aliyun-secret-0002",
    )
    assert WeChatSecrets(SecretBox.parse(keys(("k9", NEW)))).aliyun_key() is None


def test_a_key_rotation_reseals_the_accesskey_too() -> None:
    old = SecretBox.parse(keys(("k1", OLD)))
    key = new_aliyun_key(
        old, "LTAI5tSandboxMallNotify02", SecretStr("sandbox-aliyun-secret-0002"), NOW, "ops"
    )
    rotated = SecretBox.parse(keys(("k2", NEW), ("k1", OLD)))
    again = resealed(rotated, key)
    assert again.secret.startswith("k2:")
    table = WeChatSecrets(SecretBox.parse(keys(("k2", NEW))))
    table.apply(*aliyun_record(again))
    registered = table.aliyun_key()
    assert registered is not None
    assert registered[1].get_secret_value() == "sandbox-aliyun-secret-0002"


def test_the_accesskey_is_opened_once_per_record_and_again_after_a_new_one() -> None:
    box = SecretBox.parse(keys(("k1", OLD)))
    table = WeChatSecrets(box)
    first = new_aliyun_key(
        box, "LTAI5tSandboxMallNotify01", SecretStr("sandbox-aliyun-secret-0001"), NOW, "ops"
    )
    table.apply(*aliyun_record(first))
    assert table.aliyun_key() is table.aliyun_key()  # the same answer, not opened again
    second = new_aliyun_key(
        box, "LTAI5tSandboxMallNotify02", SecretStr("sandbox-aliyun-secret-0002"), NOW, "ops"
    )
    table.apply(*aliyun_record(second))
    registered = table.aliyun_key()
    assert registered is not None
    assert registered[0] == "LTAI5tSandboxMallNotify02"


def test_an_appid_or_accesskey_id_that_is_not_one_is_refused_in_one_line() -> None:
    box = SecretBox.parse(keys(("k1", OLD)))
    shop = load_shop_rules(ROOT / "config" / "shops", load_catalog(ROOT / "config" / "catalog.yaml"))[
        DEMO_SHOP
    ]
    with pytest.raises(Refused, match=r"^'nope' is not an appid \(wx and 8 to 30 letters or digits\)$"):
        register(shop, "oa", "nope", SecretStr("a" * 32), [], box, NOW, "ops")
    with pytest.raises(Refused, match=r"^'bad id' is not an AccessKey id \(8 to 64 letters or digits\)$"):
        register_aliyun("bad id", SecretStr("s" * 30), box, NOW, "ops")
