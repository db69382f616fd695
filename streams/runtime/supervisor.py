"""Background tasks that never take the process down: a task that raises is logged, counted
(``mall_notify_task_restarts_total``), shown on ``/readyz`` and started again with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from streams.logs import fields, get_logger
from streams.runtime import metrics

log = get_logger("supervisor")
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
STABLE_SECONDS = 60.0
"""A task that ran this long before it crashed starts again from the first backoff."""
Run = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class TaskState:
    running: bool = False
    restarts: int = 0
    last_error: str | None = None


class Supervisor:
    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.tasks: dict[str, TaskState] = {}
        self._handles: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, run: Run) -> None:
        """Run ``run(stopping)`` until it returns after ``stopping`` is set."""
        self.tasks[name] = TaskState()
        self._handles[name] = asyncio.create_task(self._keep_running(name, run), name=name)

    async def _keep_running(self, name: str, run: Run) -> None:
        state = self.tasks[name]
        backoff = FIRST_BACKOFF_SECONDS
        while not self.stopping.is_set():
            began = time.monotonic()
            state.running = True
            try:
                await run(self.stopping)
                state.running = False
                if self.stopping.is_set():
                    return
                raise RuntimeError("the task returned without being asked to stop")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state.running = False
                state.restarts += 1
                state.last_error = repr(exc)
                metrics.TASK_RESTARTS.labels(name).inc()
                if time.monotonic() - began > STABLE_SECONDS:
                    backoff = FIRST_BACKOFF_SECONDS
                log.error(
                    "task crashed, starting it again",
                    exc_info=exc,
                    extra=fields(task=name, restarts=state.restarts, backoff_seconds=backoff),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def stop(self, grace_seconds: float) -> list[str]:
        """Ask every task to stop and wait up to ``grace_seconds``; the names of those cancelled then."""
        self.stopping.set()
        if not self._handles:
            return []
        _, late = await asyncio.wait(self._handles.values(), timeout=grace_seconds)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=1.0)
        return sorted(task.get_name() for task in late)
