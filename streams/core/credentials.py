"""Merchants' WeChat AppSecrets, registered at run time and kept encrypted. Pure.

The platform registers a shop's Official Account or Mini Program (its appid and AppSecret) through
the admin API or ``mall-notify wechat register``; the secret is written to the compacted topic
``notify.credentials`` (key ``wechat/<appid>``) **encrypted with AES-256-GCM** under the platform's
secrets key (``MALL_NOTIFY_SECRETS_KEYS``: ``id:base64`` pairs, the first the one new records are
sealed with, the others only opened with), the record's key bound in as associated data so a
sealed secret cannot be moved to another appid. Every worker and the admin API follow the topic
(:class:`WeChatSecrets`): a new or rotated secret is used from the next token on, the token
cached for that appid dropped. Nothing shows a secret: records carry its last four characters,
answers and logs only those.

Rotating the key: put a new ``id:key`` first in ``MALL_NOTIFY_SECRETS_KEYS`` (keep the old one
after it), restart, run ``mall-notify wechat reseal`` (every record sealed again under the new
key), then drop the old key. ``MALL_NOTIFY_WECHAT_SECRETS`` still seeds a development setup: a
registered secret wins over it.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Literal, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import Field, SecretStr, ValidationError

from streams.core.catalog import Frozen
from streams.core.errors import MallNotifyError

AppKind = Literal["oa", "mp"]
KEY_BYTES = 32
APPID = r"^wx[0-9a-zA-Z]{8,30}$"
ACCESS_KEY_ID = r"^[A-Za-z0-9]{8,64}$"


class SecretsKeyError(MallNotifyError):
    """The secrets keys are not ``id:base64`` of 32 bytes, or a record needs a key not given."""


class SecretBox:
    """AES-256-GCM under the platform's secrets keys: the first seals, all open."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise SecretsKeyError("no secrets key: MALL_NOTIFY_SECRETS_KEYS is id:base64 of 32 bytes")
        for key_id, key in keys.items():
            if len(key) != KEY_BYTES or not key_id.isalnum():
                raise SecretsKeyError(f"secrets key {key_id!r}: an alphanumeric id and 32 bytes")
        self.current = next(iter(keys))
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}

    @classmethod
    def parse(cls, text: str) -> SecretBox:
        """``id:base64,id:base64`` (the first seals)."""
        keys: dict[str, bytes] = {}
        for pair in (p.strip() for p in text.split(",") if p.strip()):
            key_id, _, encoded = pair.partition(":")
            try:
                keys[key_id] = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise SecretsKeyError(f"secrets key {key_id!r} is not base64") from None
        return cls(keys)

    def seal(self, associated: str, secret: str) -> str:
        nonce = os.urandom(12)
        sealed = self._ciphers[self.current].encrypt(nonce, secret.encode(), associated.encode())
        return f"{self.current}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, associated: str, sealed: str) -> str:
        key_id, _, encoded = sealed.partition(":")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SecretsKeyError(f"a secret sealed with the key {key_id!r}, which is not given")
        try:
            raw = base64.b64decode(encoded, validate=True)
            return cipher.decrypt(raw[:12], raw[12:], associated.encode()).decode()
        except (binascii.Error, ValueError, InvalidTag):
            problem = f"the secret of {associated} does not open with the key {key_id!r}"
            raise SecretsKeyError(problem) from None

    def sealed_with(self, sealed: str) -> str:
        return sealed.partition(":")[0]


class Sealed(Frozen):
    """A record of ``notify.credentials``: a sealed secret, its last four characters, who changed it."""

    secret: str = Field(description="key id, colon, base64 of nonce and AES-GCM ciphertext")
    last4: str = Field(max_length=4)
    changed_at: datetime
    changed_by: str = Field(max_length=64)

    def shown(self) -> dict[str, object]:
        """What an answer or a log may say of it: never the secret."""
        return self.model_dump(mode="json", exclude={"secret"})

    def key(self) -> str:
        """Its key on the topic."""
        raise NotImplementedError

    def associated(self) -> str:
        """What its secret is bound to (a sealed secret opens only for it)."""
        return self.key()

    def record(self) -> tuple[bytes, bytes]:
        return self.key().encode(), self.model_dump_json().encode()


class WeChatApp(Sealed):
    """A WeChat app and its sealed AppSecret."""

    appid: str = Field(pattern=APPID)
    kind: AppKind
    shop_id: int = Field(ge=1)

    def key(self) -> str:
        return record_key(self.appid)


def record_key(appid: str) -> str:
    return f"wechat/{appid}"


ALIYUN_KEY = "aliyun/platform"


class AliyunKey(Sealed):
    """The platform's Aliyun AccessKey, its secret sealed."""

    access_key_id: str = Field(pattern=ACCESS_KEY_ID)

    def key(self) -> str:
        return ALIYUN_KEY

    def associated(self) -> str:
        return f"{ALIYUN_KEY}/{self.access_key_id}"


def new_aliyun_key(
    box: SecretBox, access_key_id: str, secret: SecretStr, now: datetime, who: str
) -> AliyunKey:
    plain = secret.get_secret_value()
    key = AliyunKey(access_key_id=access_key_id, secret="", last4=plain[-4:], changed_at=now, changed_by=who)
    return key.model_copy(update={"secret": box.seal(key.associated(), plain)})


def aliyun_record(key: AliyunKey) -> tuple[bytes, bytes]:
    return key.record()


def new_app(
    box: SecretBox, appid: str, kind: AppKind, shop_id: int, secret: SecretStr, now: datetime, who: str
) -> WeChatApp:
    plain = secret.get_secret_value()
    return WeChatApp(
        appid=appid,
        kind=kind,
        shop_id=shop_id,
        secret=box.seal(record_key(appid), plain),
        last4=plain[-4:],
        changed_at=now,
        changed_by=who,
    )


SealedT = TypeVar("SealedT", bound=Sealed)


def resealed(box: SecretBox, sealed: SealedT) -> SealedT:
    """The record sealed under the current key (itself when it already is)."""
    if box.sealed_with(sealed.secret) == box.current:
        return sealed
    plain = box.open(sealed.associated(), sealed.secret)
    return sealed.model_copy(update={"secret": box.seal(sealed.associated(), plain)})


def app_record(app: WeChatApp) -> tuple[bytes, bytes]:
    return app.record()


class WeChatSecrets(Mapping[str, SecretStr]):
    """The AppSecret of each appid, as the WeChat clients ask for it: the registered one (opened
    when asked), else the development seed. ``on_change(appid)`` after a record changes one."""

    def __init__(
        self,
        box: SecretBox | None,
        seed: Mapping[str, SecretStr] | None = None,
        on_change: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._box = box
        self._seed = dict(seed or {})
        self._apps: dict[str, WeChatApp] = {}
        self.on_change = on_change
        self.aliyun: AliyunKey | None = None
        """the platform's Aliyun AccessKey, when registered at run time"""
        self._opened: tuple[AliyunKey, tuple[str, SecretStr]] | None = None
        """the AccessKey record last opened, and what it opened to"""
        self.unopened: dict[str, str] = {}
        """appid -> why its registered secret could not be opened (a key missing): it has none"""

    def apply(self, key: bytes | None, value: bytes | None) -> int | str:
        if key == ALIYUN_KEY.encode():
            return self._aliyun_record(value)
        kind, _, appid = (key or b"").decode(errors="replace").partition("/")
        if kind != "wechat" or not appid:
            return f"a credentials record whose key is neither wechat/<appid> nor {ALIYUN_KEY}: {key!r}"
        if value is None:
            self._apps.pop(appid, None)
        else:
            try:
                app = WeChatApp.model_validate_json(value)
            except ValidationError as exc:
                return f"a credentials record that is not one ({str(exc).splitlines()[0]})"
            if app.appid != appid:
                return f"the record of {app.appid} under the key of {appid}"
            self._apps[appid] = app
        self.on_change(appid)
        return 0

    def _aliyun_record(self, value: bytes | None) -> int | str:
        if value is None:
            self.aliyun = None
            return 0
        try:
            self.aliyun = AliyunKey.model_validate_json(value)
        except ValidationError as exc:
            return f"an Aliyun key record that is not one ({str(exc).splitlines()[0]})"
        return 0

    def aliyun_key(self) -> tuple[str, SecretStr] | None:
        """The registered AccessKey (id, secret), or None (none registered, or it does not open).
        Opened once per record: the SMS clients ask before every call."""
        key = self.aliyun
        if key is None or self._box is None:
            return None
        if self._opened is not None and self._opened[0] is key:
            return self._opened[1]
        try:
            opened = key.access_key_id, SecretStr(self._box.open(key.associated(), key.secret))
        except SecretsKeyError as exc:
            self.unopened[ALIYUN_KEY] = str(exc)
            return None
        self._opened = (key, opened)
        return opened

    def app(self, appid: str) -> WeChatApp | None:
        return self._apps.get(appid)

    def sealed(self) -> list[Sealed]:
        """Every record with a sealed secret: the apps, and the AccessKey when registered."""
        return [*self.apps(), *([self.aliyun] if self.aliyun else [])]

    def apps(self) -> list[WeChatApp]:
        return sorted(self._apps.values(), key=lambda app: (app.shop_id, app.appid))

    def __getitem__(self, appid: str) -> SecretStr:
        app = self._apps.get(appid)
        if app is None:
            return self._seed[appid]
        if self._box is None:
            self.unopened[appid] = "MALL_NOTIFY_SECRETS_KEYS is not set"
            raise KeyError(appid)
        try:
            return SecretStr(self._box.open(record_key(appid), app.secret))
        except SecretsKeyError as exc:
            self.unopened[appid] = str(exc)
            raise KeyError(appid) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._seed.keys() | self._apps.keys())

    def __len__(self) -> int:
        return len(self._seed.keys() | self._apps.keys())
