"""A loop that runs as a task of the worker until asked to stop, and finishes its round first."""

from __future__ import annotations

import asyncio


class BackgroundLoop:
    def __init__(self) -> None:
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def started(self) -> None:
        self._running = True

    def finished(self) -> None:
        self._stopped.set()

    async def stop(self) -> None:
        """Ask the loop to stop and wait until it has (at once if it never started)."""
        self._stopping.set()
        if self._running:
            await self._stopped.wait()
