"""The WeChat API as the OA and MP channels use it: access tokens, calls, and error classification.

Every WeChat answer and every transport failure is classified here, once, into a
:class:`~channels.base.SendResult`; nothing above this module reads an ``errcode``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from prometheus_client import Counter
from pydantic import SecretStr

from channels.base import ErrorClass, SendResult
from channels.http import SharedSession
from channels.limits import AccountLimiter, Limits
from streams.core.errors import MallNotifyError

T, R, P = ErrorClass.TRANSIENT, ErrorClass.REAUTH, ErrorClass.PERMANENT
ERRCODES: dict[int, tuple[ErrorClass, str]] = {
    -1: (T, "WeChat is busy"),
    40001: (R, "access token invalid"),
    42001: (R, "access token expired"),
    40014: (R, "access token malformed"),
    45009: (T, "API daily call limit reached"),
    45047: (T, "message frequency limit reached"),
    40003: (P, "invalid openid"),
    40013: (P, "invalid appid"),
    40125: (P, "invalid app secret"),
    40037: (P, "invalid template id"),
    41030: (P, "invalid page path"),
    47003: (P, "template data does not fit the keyword types"),
    45026: (P, "the account holds 25 templates, WeChat's limit"),
    48001: (P, "the account may not call this API (wrong kind of account, or not authorized)"),
    40102: (P, "the Official Account has not set its industry"),
    200011: (P, "the Mini Program is banned"),
    200012: (P, "the Mini Program holds 25 templates, WeChat's limit"),
    200013: (P, "this library template is banned"),
    200014: (P, "no such library template (tid)"),
    200020: (P, "invalid keyword list (kidList: 2 to 5 keywords of the template)"),
}
UNREACHABLE: dict[int, str] = {
    43004: "not_following",  # 需要接收者关注: the user does not follow the Official Account
    43101: "no_subscription",  # user refuse to accept the msg: no Mini Program subscription left
    43019: "blocked_by_user",  # require remove blacklist: the user is in the account's blacklist
}
"""WeChat's answers that the person cannot be reached (global return codes,
https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html, and the
subscribe message page): the delivery's skip reason"""
TOKEN_REFRESH_MARGIN_SECONDS = 300.0


def classify_reply(reply: Mapping[str, Any]) -> SendResult:
    return classify(int(reply.get("errcode", 0)), str(reply.get("errmsg", "")))


def classify(errcode: int, errmsg: str) -> SendResult:
    """A WeChat ``errcode`` as a send result. Unknown codes are transient: retries are bounded."""
    if errcode == 0:
        return SendResult.delivered(None)
    if errcode in UNREACHABLE:
        return SendResult.failed(ErrorClass.UNREACHABLE, str(errcode), UNREACHABLE[errcode])
    known = ERRCODES.get(errcode)
    if known is None:
        return SendResult.failed(
            ErrorClass.TRANSIENT, str(errcode), f"unknown WeChat error: {errmsg}", unknown_code=True
        )
    return SendResult.failed(known[0], str(errcode), known[1])


TOKEN_FAILURES = Counter(
    "mall_notify_token_refresh_failures_total",
    "WeChat access tokens that could not be fetched (wrong secret, IP not allow-listed, WeChat down)",
    ["error_class"],
)


class CallFailed(MallNotifyError):
    """A WeChat call did not give a usable answer; ``result`` says how it failed."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(f"{result.code}: {result.reason}")
        self.result = result


SECRETS_WAIT_SECONDS = 30.0
"""how long a first token waits for the registered apps to be read (a worker just started)"""


@dataclass
class _Token:
    value: str
    expires_at: float


class WeChatApi:
    """One aiohttp session and one access-token cache for every WeChat app we send for."""

    def __init__(
        self,
        base_url: str,
        secrets: Mapping[str, SecretStr],
        session: SharedSession,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
        secrets_loaded: asyncio.Event | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._secrets = secrets
        self._secrets_loaded = secrets_loaded
        """set once ``secrets`` holds every registered app (a token waits for it, up to a while)"""
        self._session = session
        self._limiter = AccountLimiter(limits or Limits())
        self._clock = clock
        self._tokens: dict[str, _Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.token_fetches = 0

    async def send(self, appid: str, path: str, body: Mapping[str, Any]) -> SendResult:
        """POST a message with the app's token: the result, classified (never raises)."""
        try:
            reply = await self.call(appid, "POST", path, body)
        except CallFailed as failure:
            return failure.result
        return SendResult.delivered(str(reply["msgid"]) if "msgid" in reply else None)

    async def call(
        self, appid: str, method: str, path: str, body: Mapping[str, Any] | None = None, *, form: bool = False
    ) -> dict[str, Any]:
        """One API call with the app's token; on an invalid token, refresh it and try once more.
        ``form``: the body form-encoded (a list repeats its key), for the calls WeChat documents
        that way. Returns WeChat's answer; raises :class:`CallFailed` with the classified failure."""
        async with self._limiter.slot(appid):
            token = await self._token(appid, stale=None)
            reply = await self._request(method, path, body, form, access_token=token)
            if classify_reply(reply).error_class is ErrorClass.REAUTH:
                token = await self._token(appid, stale=token)
                reply = await self._request(method, path, body, form, access_token=token)
        result = classify_reply(reply)
        if not result.ok:
            raise CallFailed(result)
        return reply

    def forget(self, appid: str) -> None:
        """Drop the token cached for ``appid`` (its AppSecret was replaced)."""
        self._tokens.pop(appid, None)

    async def _token(self, appid: str, stale: str | None) -> str:
        """The cached token, fetched by one task at a time per app; ``stale`` forces a new one."""
        lock = self._locks.setdefault(appid, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(appid)
            usable = cached is not None and cached.value != stale and cached.expires_at > self._clock()
            if cached is not None and usable:
                return cached.value
            try:
                self._tokens[appid] = await self._fetch_token(appid, force_refresh=stale is not None)
            except CallFailed as failure:
                TOKEN_FAILURES.labels(str(failure.result.error_class)).inc()
                raise
            return self._tokens[appid].value

    async def _fetch_token(self, appid: str, force_refresh: bool) -> _Token:
        if self._secrets_loaded is not None and not self._secrets_loaded.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._secrets_loaded.wait(), SECRETS_WAIT_SECONDS)
        secret = self._secrets.get(appid)
        if secret is None:
            raise CallFailed(
                SendResult.failed(ErrorClass.PERMANENT, "no_secret", f"no secret configured for {appid}")
            )
        self.token_fetches += 1
        body = {
            "grant_type": "client_credential",
            "appid": appid,
            "secret": secret.get_secret_value(),
            "force_refresh": force_refresh,
        }
        reply = await self._request("POST", "/cgi-bin/stable_token", body)
        if "access_token" not in reply:
            raise CallFailed(classify(int(reply.get("errcode", -1)), str(reply.get("errmsg", ""))))
        lifetime = float(reply.get("expires_in", 7200))
        expires_at = self._clock() + max(lifetime - TOKEN_REFRESH_MARGIN_SECONDS, lifetime / 2)
        return _Token(str(reply["access_token"]), expires_at)

    async def _request(
        self, method: str, path: str, body: Mapping[str, Any] | None, form: bool = False, **params: str
    ) -> dict[str, Any]:
        """One HTTP call; transport failures become :class:`CallFailed` with a transient result."""
        sent: dict[str, Any] = {"data": _form(body)} if form and body is not None else {"json": body}
        try:
            session = self._session.get()
            async with session.request(method, self._base_url + path, params=params, **sent) as response:
                if response.status >= 500 or response.status == 429:
                    raise CallFailed(SendResult.failed(T, f"http_{response.status}", "WeChat HTTP error"))
                response.raise_for_status()
                reply = await response.json(content_type=None, loads=orjson.loads)
        except TimeoutError:
            raise CallFailed(SendResult.failed(T, "timeout", "WeChat did not answer in time")) from None
        except aiohttp.ClientResponseError as exc:
            raise CallFailed(
                SendResult.failed(P, f"http_{exc.status}", "WeChat refused the request")
            ) from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise CallFailed(
                SendResult.failed(T, "connection", f"WeChat call failed: {type(exc).__name__}")
            ) from None
        if not isinstance(reply, dict):
            raise CallFailed(
                SendResult.failed(T, "bad_reply", "WeChat answered with something other than an object")
            )
        return reply


def _form(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A body as form fields: a list repeats its key (``kidList=1&kidList=2``)."""
    return [
        (key, str(item))
        for key, value in body.items()
        for item in (value if isinstance(value, list) else [value])
    ]
