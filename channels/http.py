"""The one aiohttp session the channels share (connection pooling), created inside the running loop.
JSON bodies are written with orjson (the stdlib encoder was a visible share of a send's CPU)."""

from __future__ import annotations

import aiohttp
import orjson

POOL_SIZE = 100


def _json_text(value: object) -> str:
    return orjson.dumps(value).decode()


class SharedSession:
    def __init__(self, timeout: aiohttp.ClientTimeout) -> None:
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=POOL_SIZE, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=connector, json_serialize=_json_text
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
