"""Merchants' webhooks: the pipeline POSTs each outcome a shop asked for to the shop's endpoint,
signed, as a channel like the providers' (its failures retried through the retry tiers, then
dead-lettered).

The request: ``POST <url>`` with the JSON body, ``Content-Type: application/json``,
``X-MallNotify-Event`` (``message.delivered``, ...), ``X-MallNotify-Webhook-Id`` (the call's
id: the same on every attempt, so a receiver can drop a second copy) and
``X-MallNotify-Signature: t=<unix seconds>,v1=<hex>``, where ``v1`` is HMAC-SHA256 with the
endpoint's secret over ``"<t>.<body>"``. A receiver recomputes it (:func:`verify`) and refuses a
``t`` more than 5 minutes from its clock, so a captured request cannot be replayed later.

Answers: 2xx delivered; 410 Gone permanent (the receiver says the endpoint is no more); a
timeout (5 s), a connection failure and every other status transient. Only public addresses are
called: the URL's host is resolved before each call and a private, loopback, link-local or
otherwise non-global address is refused (permanent), so a webhook cannot reach into the
platform's own network (``allowed_hosts`` names the exceptions, for the demo and the tests).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from channels.base import ChannelName, Delivery, ErrorClass, SendResult
from channels.http import SharedSession
from streams.core.errors import MallNotifyError

SIGNATURE_HEADER = "X-MallNotify-Signature"
EVENT_HEADER = "X-MallNotify-Event"
ID_HEADER = "X-MallNotify-Webhook-Id"
TOLERANCE_SECONDS = 300
TIMEOUT_SECONDS = 5.0
BODY = "body"
"""the delivery field that holds the JSON body"""
URL_MOST = 2048


class UrlRefused(MallNotifyError):
    """A webhook URL the platform does not call; the message says why."""


def check_url(url: str, allowed_hosts: frozenset[str] = frozenset()) -> str:
    """The URL as it will be called, or UrlRefused: https only (http for an allowed host), a host
    name or a public address, no user or password in it. ``allowed_hosts``: ``host:port`` entries
    called whatever their address (the demo's and the tests' local receivers)."""
    _checked(url, allowed_hosts)
    return url


def _checked(url: str, allowed_hosts: frozenset[str]) -> tuple[str, int, bool]:
    """The host and port of a URL :func:`check_url` takes, and whether the host is an allowed one."""
    scheme, host, port = _parts(url)
    allowed = f"{host}:{port}" in allowed_hosts
    if scheme != "https" and not (allowed and scheme == "http"):
        raise UrlRefused("url: https only")
    if not allowed:
        _public_name(host)
    return host, port, allowed


def _parts(url: str) -> tuple[str, str, int]:
    """Scheme, host (lower case) and port of a URL with a host and no credentials."""
    if len(url) > URL_MOST:
        raise UrlRefused(f"url: at most {URL_MOST} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"url: not a URL ({exc})") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlRefused("url: no host")
    if parts.username or parts.password:
        raise UrlRefused("url: no user or password in it (the signature tells the receiver who calls)")
    return parts.scheme, host, port or default_port(parts.scheme)


def _public_name(host: str) -> None:
    """UrlRefused for a host that is a private address or a name only a local network knows."""
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise UrlRefused(f"url: {host} is not a public host")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return  # a name: its addresses are checked before each call
    if not address.is_global:
        raise UrlRefused(f"url: {host} is not a public address")


def default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def secret_for(key: bytes, endpoint_id: str) -> str:
    """An endpoint's signing secret, derived from the platform's key and the endpoint's id: the
    same whenever it is derived, so it is never stored (a new endpoint id is a new secret)."""
    derived = hashlib.sha256(b"mall-notify webhook:" + key).digest()
    digest = hmac.new(derived, endpoint_id.encode(), hashlib.sha256).digest()
    return "whsec_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """A receiver's check: the signature is the secret's over this body, made within ``tolerance``
    seconds of ``now``."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp = parts.get("t", "")
    if not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    expected = sign(secret, int(stamp), body).rpartition("v1=")[2]
    return hmac.compare_digest(expected, parts.get("v1", ""))


async def resolve(host: str, port: int) -> list[str]:
    """The addresses a host name has now."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class WebhookChannel:
    """POSTs a delivery's body to its URL (``delivery.recipient``), signed with the secret of its
    endpoint (``delivery.account``), derived from ``key`` (the platform's recipient key)."""

    name = ChannelName.WEBHOOK

    def __init__(
        self,
        session: SharedSession,
        key: bytes,
        allowed_hosts: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._key = key
        self._allowed = allowed_hosts
        self._clock = clock

    async def send(self, delivery: Delivery) -> SendResult:
        url = delivery.recipient
        try:
            host, port, allowed = _checked(url, self._allowed)
            if not allowed:
                await _resolves_public(host, port)
        except UrlRefused as exc:
            return SendResult.failed(ErrorClass.PERMANENT, "url_refused", str(exc))
        except OSError as exc:
            return SendResult.failed(ErrorClass.TRANSIENT, "dns", f"the host did not resolve: {exc}")
        body = delivery.fields.get(BODY, "").encode()
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: delivery.template_id,
            ID_HEADER: delivery.delivery_id,
            SIGNATURE_HEADER: sign(secret_for(self._key, delivery.account), int(self._clock()), body),
        }
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        try:
            session = self._session.get()
            async with session.post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                status = response.status
        except TimeoutError:
            return SendResult.failed(ErrorClass.TRANSIENT, "timeout", f"no answer in {TIMEOUT_SECONDS:.0f} s")
        except aiohttp.ClientError as exc:
            return SendResult.failed(ErrorClass.TRANSIENT, "connection", type(exc).__name__)
        if 200 <= status < 300:
            return SendResult.delivered(None)
        if status == 410:
            return SendResult.failed(ErrorClass.PERMANENT, "410", "the receiver says the endpoint is gone")
        return SendResult.failed(ErrorClass.TRANSIENT, str(status), f"the receiver answered HTTP {status}")


async def _resolves_public(host: str, port: int) -> None:
    """UrlRefused when the host resolves to an address that is not public."""
    for address in await resolve(host, port):
        if not ipaddress.ip_address(address.split("%", 1)[0]).is_global:
            raise UrlRefused(f"url: {host} resolves to {address}, not a public address")
