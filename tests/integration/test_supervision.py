"""A background task that crashes is restarted, shown on /readyz and counted, and the record it was
handling is not lost. The worker runs in this test's process (same code as `mall-notify worker`),
on the real broker and the provider sandbox, so the crash can be injected."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from streams.core.topics import Topics
from streams.devtools.demo import Settlement
from streams.devtools.upstream import publish_values
from streams.ops.reading import end_offsets, read_until
from streams.runtime.kafka.records import ConsumedRecord
from streams.runtime.lanes.router import RouterLane
from streams.runtime.worker import Worker, run_worker
from tests.conftest import Sandbox
from tests.factories import payment_event, to_bytes
from tests.integration.in_process import prepared_worker, until

pytestmark = pytest.mark.integration
OA_SEND = "/cgi-bin/message/template/send"


def _restarts(task: str) -> float:
    return REGISTRY.get_sample_value("mall_notify_task_restarts_total", {"task": task}) or 0.0


async def test_a_crashed_lane_is_restarted_and_its_records_are_not_lost(
    kafka_bootstrap: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker: Worker = await prepared_worker(kafka_bootstrap, sandbox, "sup")
    topics: Topics = worker.topics

    handle = RouterLane.handle
    crashes: list[str] = []

    async def crash_once(lane: RouterLane, records: list[ConsumedRecord]) -> None:
        if not crashes:
            crashes.append(str(records[0].source))
            raise RuntimeError("injected crash")
        await handle(lane, records)

    monkeypatch.setattr(RouterLane, "handle", crash_once)
    restarts_before = _restarts("router")
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(worker, stop))
    try:
        await until(lambda: worker.readiness.report()[0], 60, "the worker is ready")
        start = await asyncio.to_thread(end_offsets, kafka_bootstrap, topics.outcomes)
        event = payment_event()
        published = await asyncio.to_thread(publish_values, kafka_bootstrap, topics, [to_bytes(event)])
        records = await asyncio.to_thread(
            read_until, kafka_bootstrap, topics.outcomes, start, Settlement(published), 60
        )
        assert Settlement(published)(records), "the event that met the crash has no outcome"
        router = worker.readiness.report()[1]["tasks"]["router"]
        assert crashes, "the crash was injected"
        assert router["restarts"] == 1
        assert "injected crash" in str(router["last_error"])
        assert _restarts("router") == restarts_before + 1
        sent = [r for r in sandbox.state.requests if r["path"] == OA_SEND]
        assert [r["body"]["data"]["character_string1"]["value"] for r in sent] == [event["data"]["order_no"]]
        await until(lambda: worker.readiness.report()[0], 30, "the worker is ready again")
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=60)
