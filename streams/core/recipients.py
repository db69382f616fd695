"""Who a message went to, as our topics may say it: a keyed hash of the address (HMAC-SHA256
with the platform's recipient key) and its masked form. Pure.

The hash lets ``mall-notify history --phone ...`` find every message to one person across shops
without any topic holding the phone number or openid; without the key nobody can test a guessed
number against it. The address is normalized first (a phone number's ``+86``, spaces and dashes
dropped), so the same person gets the same hash however upstream wrote the number.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from channels.base import ChannelName

PHONE_CHANNELS = frozenset({ChannelName.ALIYUN_SMS})
_NOT_DIGIT = re.compile(r"\D")


@dataclass(frozen=True, slots=True)
class Recipient:
    hash: str
    """hex HMAC-SHA256 of ``phone:<digits>`` or ``openid:<openid>``"""
    masked: str
    """138****5678, oR8s***jKlM"""


def normalized_phone(phone: str) -> str:
    digits = _NOT_DIGIT.sub("", phone)
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits


def address_text(kind: str, address: str) -> str:
    """What is hashed: ``phone:13912345678`` or ``openid:oR8s...``."""
    return f"phone:{normalized_phone(address)}" if kind == "phone" else f"openid:{address.strip()}"


def mask_address(kind: str, address: str) -> str:
    if kind == "phone":
        digits = normalized_phone(address)
        return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 7 else "****"
    return f"{address[:4]}***{address[-4:]}" if len(address) > 8 else "***"


def kind_of(channel: ChannelName) -> str:
    return "phone" if channel in PHONE_CHANNELS else "openid"


def recipient_hash(key: bytes, kind: str, address: str) -> str:
    return hmac.new(key, address_text(kind, address).encode(), hashlib.sha256).hexdigest()


def recipient(key: bytes, channel: ChannelName, address: str) -> Recipient:
    kind = kind_of(channel)
    return Recipient(hash=recipient_hash(key, kind, address), masked=mask_address(kind, address))


SEALED = "sealed:"


@functools.lru_cache(maxsize=4)
def _cipher(key: bytes) -> AESGCM:
    """The cipher of a recipient key (built once per key: routing seals every dispatch)."""
    return AESGCM(hashlib.sha256(b"mall-notify seal:" + key).digest())


def seal(key: bytes, address: str) -> str:
    """The address encrypted (AES-256-GCM, a key derived from the platform's recipient key), as
    the send, retry and dead-letter topics carry it; only a sender opens it, to call the provider."""
    nonce = os.urandom(12)
    return (
        SEALED
        + base64.urlsafe_b64encode(nonce + _cipher(key).encrypt(nonce, address.encode(), None)).decode()
    )


def is_sealed(text: str) -> bool:
    return text.startswith(SEALED)


def unseal(key: bytes, sealed: str) -> str:
    """The address :func:`seal` encrypted; ValueError when the key or the text is not right."""
    try:
        raw = base64.urlsafe_b64decode(sealed.removeprefix(SEALED).encode())
        return _cipher(key).decrypt(raw[:12], raw[12:], None).decode()
    except (InvalidTag, ValueError, UnicodeDecodeError):
        raise ValueError("the sealed address does not open with this key") from None


def person_key(key: bytes | None, channel: ChannelName, address: str) -> bytes:
    """The Kafka key of everything about one person on a channel (their verification codes, their
    Mini Program deliveries and subscriptions), so it all lands on one partition in order: the
    keyed hash with the platform's key, else a plain digest (the topics then carry the address
    anyway)."""
    kind = kind_of(channel)
    if key is not None:
        return recipient_hash(key, kind, address).encode()
    return hashlib.blake2b(address_text(kind, address).encode(), digest_size=16).hexdigest().encode()
