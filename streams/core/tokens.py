"""Who a bearer token is: the platform, a shop, or nobody. Pure.

Tokens are configured as SHA-256 hashes (``sha256:<64 hex>``, printed by ``mall-notify
hash-token``) or in plain text, which is hashed at start and never kept. A presented token is
hashed and its hash looked up, so the time a check takes says nothing about any stored token,
and no stored token is compared character by character with what a caller sent. A shop may
hold several tokens (a rotation: the new one is given out while the old one still works); no
token may belong to two identities.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from pydantic import SecretStr

from streams.core.errors import ConfigError

PLATFORM = "platform"
MIN_TOKEN_LENGTH = 16
HASH_PREFIX = "sha256:"
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


def hash_token(token: str) -> str:
    """``sha256:<hex>`` of a token: what to put in the configuration instead of the token."""
    return HASH_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def _stored(secret: SecretStr) -> str:
    value = secret.get_secret_value()
    if value.startswith(HASH_PREFIX):
        if not _HASH.fullmatch(value):
            raise ValueError("a hash must be sha256: and 64 lowercase hex digits")
        return value
    if len(value) < MIN_TOKEN_LENGTH:
        raise ValueError(f"a token must be at least {MIN_TOKEN_LENGTH} characters")
    return hash_token(value)


class Tokens:
    """Hash of a token -> ``platform`` or a shop id (canonical decimal text)."""

    def __init__(self, owners: dict[str, str]) -> None:
        self._owners = owners

    @classmethod
    def configured(
        cls, platform: SecretStr | None, shops: Mapping[str, SecretStr | list[SecretStr]]
    ) -> Tokens:
        """The configured tokens; ConfigError names the variable of a bad or shared token."""
        given: list[tuple[str, str, SecretStr]] = []
        if platform is not None:
            given.append(("MALL_NOTIFY_API_PLATFORM_TOKEN", PLATFORM, platform))
        for shop, secrets in shops.items():
            if not re.fullmatch(r"[1-9][0-9]{0,17}", shop):
                raise ConfigError(
                    "MALL_NOTIFY_API_SHOP_TOKENS", [f"{shop!r}: a shop id is digits, no zero first"]
                )
            for secret in secrets if isinstance(secrets, list) else [secrets]:
                given.append(("MALL_NOTIFY_API_SHOP_TOKENS", shop, secret))
        owners: dict[str, str] = {}
        for variable, owner, secret in given:
            try:
                digest = _stored(secret)
            except ValueError as exc:
                raise ConfigError(variable, [f"{owner}: {exc}"]) from None
            if owners.setdefault(digest, owner) != owner:
                raise ConfigError(
                    variable, [f"one token is given to both {owners[digest]} and {owner}; each needs its own"]
                )
        return cls(owners)

    def __len__(self) -> int:
        return len(self._owners)

    def identity(self, token: str) -> str | None:
        """``platform``, a shop id, or None for an unknown token."""
        return self._owners.get(hash_token(token))
