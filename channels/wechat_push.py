"""What WeChat pushes to an account's server URL (消息推送), as far as receipts go: the URL check,
the signature of every push, the safe mode's encryption, and the two receipt events.

- Signature: ``sha1`` of the sorted token, timestamp and nonce (plain mode, query ``signature``);
  in safe mode (``encrypt_type=aes``) of the sorted token, timestamp, nonce and the ``Encrypt``
  text (query ``msg_signature``).
- Safe mode: ``Encrypt`` is base64 of AES-256-CBC (key: the base64 EncodingAESKey plus ``=``; IV:
  the key's first 16 bytes; PKCS#7 to 32 bytes) of 16 random bytes, the message's length (4 bytes,
  big-endian), the message, and the appid.
- Official Account: ``TEMPLATESENDJOBFINISH`` with ``MsgID`` and ``Status`` (``success``,
  ``failed:user block``, ``failed: system failed``).
- Mini Program: ``subscribe_msg_sent_event`` with one ``List`` per message: ``MsgID``,
  ``ErrorCode``, ``ErrorStatus``.

:func:`encrypt` and :func:`sign` are here so the sandbox pushes exactly what WeChat does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from xml.etree.ElementTree import Element

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree

from channels.base import ChannelName, PushedReceipt
from streams.core.errors import MallNotifyError

BLOCK = 32
OA_STATUS = {
    "success": "the user received it",
    "failed:user block": "the user blocked the Official Account's messages",
    "failed: system failed": "WeChat failed to deliver it",
}


class PushRefused(MallNotifyError):
    """A push that is not WeChat's: a bad signature, a broken encryption, not XML."""


class PushInvalid(MallNotifyError):
    """A verified push with a field that is not what WeChat sends (400)."""


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signed(token: str, timestamp: str, nonce: str, signature: str, *more: str) -> bool:
    return hmac.compare_digest(sign(token, timestamp, nonce, *more), signature)


def _key(encoding_aes_key: str) -> bytes:
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:
        raise ValueError("an EncodingAESKey is 43 characters of base64")
    return key


def encrypt(message: bytes, appid: str, encoding_aes_key: str) -> str:
    key = _key(encoding_aes_key)
    plain = os.urandom(16) + struct.pack(">I", len(message)) + message + appid.encode()
    pad = BLOCK - len(plain) % BLOCK
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()).decode()


def decrypt(text: str, appid: str, encoding_aes_key: str) -> bytes:
    """The message inside ``Encrypt``; PushRefused when it is not for ``appid`` or is broken."""
    try:
        key = _key(encoding_aes_key)
        decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        plain = decryptor.update(base64.b64decode(text)) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK:
            raise ValueError("bad padding")
        plain = plain[:-pad]
        (length,) = struct.unpack(">I", plain[16:20])
        message, sender = plain[20 : 20 + length], plain[20 + length :]
    except (ValueError, struct.error, IndexError) as exc:
        raise PushRefused(f"the encrypted message cannot be read ({exc})") from None
    if sender.decode(errors="replace") != appid:
        raise PushRefused("the encrypted message is for another appid")
    return message


def parse_xml(body: bytes) -> Element:
    try:
        root: Element = ElementTree.fromstring(body)
    except Exception as exc:  # defusedxml refuses entities too: never expanded
        raise PushRefused(f"not WeChat's XML ({type(exc).__name__})") from None
    return root


def _text(node: Element, name: str) -> str:
    found = node.find(name)
    return (found.text or "").strip() if found is not None else ""


def receipts(root: Element, appid: str) -> list[PushedReceipt]:
    """The receipts an event pushed to ``appid``'s server URL holds (none for other events);
    PushInvalid when a field is not what WeChat sends."""
    event = _text(root, "Event")
    if event not in ("TEMPLATESENDJOBFINISH", "subscribe_msg_sent_event"):
        return []
    created = _text(root, "CreateTime")
    if not (created.isascii() and created.isdigit() and len(created) <= 11):
        raise PushInvalid("CreateTime: seconds since the epoch")
    at = int(created)
    if event == "TEMPLATESENDJOBFINISH":
        status = _text(root, "Status")
        reason = OA_STATUS.get(status, status)
        return [
            _receipt(
                ChannelName.WECHAT_OA, _text(root, "MsgID"), status == "success", status, reason, at, appid
            )
        ]
    return [
        _receipt(
            ChannelName.WECHAT_MP,
            _text(item, "MsgID"),
            _text(item, "ErrorCode") == "0",
            _text(item, "ErrorCode"),
            _text(item, "ErrorStatus"),
            at,
            appid,
        )
        for item in root.iter("List")
    ]


def _receipt(
    channel: ChannelName, message_id: str, reached: bool, code: str, reason: str, at: int, appid: str
) -> PushedReceipt:
    if not (message_id.isascii() and message_id.isdigit() and len(message_id) <= 32):
        raise PushInvalid("MsgID: a number")
    if len(code) > 64 or len(reason) > 256:
        raise PushInvalid("Status / ErrorCode / ErrorStatus: too long")
    return PushedReceipt(channel, message_id, reached, code, reason, at, account=appid)


class ReplayGuard:
    """WeChat signs the timestamp and nonce of a push, not (in plain mode) its body: a push whose
    timestamp is outside the window, or whose nonce was seen within it, is refused, so a signed
    query copied from somewhere cannot carry another body later. Per process, bounded."""

    def __init__(self, window_seconds: float = 300.0, most: int = 100_000) -> None:
        self.window = window_seconds
        self.most = most
        self._seen: dict[str, float] = {}
        """nonce -> its timestamp, oldest first"""

    def refusal(self, timestamp: str, nonce: str, now: float) -> str | None:
        """Why the push is refused (stale, replayed), or None; a fresh one is remembered."""
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 11):
            return "timestamp: seconds since the epoch"
        at = int(timestamp)
        if abs(now - at) > self.window:
            return "stale: its timestamp is more than 5 minutes from now"
        if not nonce or len(nonce) > 64:
            return "nonce: missing or too long"
        self._forget(now)
        key = f"{timestamp}:{nonce}"
        if key in self._seen:
            return "replayed: this timestamp and nonce were seen already"
        self._seen[key] = at
        return None

    def forget(self, timestamp: str, nonce: str) -> None:
        """A push that was not kept (answered 503): WeChat's retry of it is not a replay."""
        self._seen.pop(f"{timestamp}:{nonce}", None)

    def _forget(self, now: float) -> None:
        while self._seen and (
            len(self._seen) >= self.most or now - next(iter(self._seen.values())) > self.window
        ):
            del self._seen[next(iter(self._seen))]
