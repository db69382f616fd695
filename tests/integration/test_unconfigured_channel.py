"""A channel this deployment has no credentials for is an outcome, not a silence: its deliveries
end dead-lettered as channel_not_configured (to replay once it is configured), and /readyz says
the channel is off. In-process worker without an Aliyun AccessKey, on the real broker."""

from __future__ import annotations

import asyncio

import pytest

from streams.core.failures import header_map
from streams.devtools.demo import Settlement, group_outcomes, source_of
from streams.devtools.upstream import publish_values
from streams.ops.reading import end_offsets, read_until
from streams.runtime.worker import run_worker
from tests.conftest import Sandbox
from tests.factories import fresh_code, to_bytes
from tests.integration.in_process import prepared_worker, until

pytestmark = pytest.mark.integration


async def test_a_code_for_a_channel_without_credentials_is_dead_lettered_and_said(
    kafka_bootstrap: str, sandbox: Sandbox
) -> None:
    worker = await prepared_worker(kafka_bootstrap, sandbox, "nosms")
    topics = worker.topics
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(worker, stop))
    try:
        await until(lambda: worker.readiness.report()[0], 60, "the worker is ready")
        # no AccessKey: no SMS; no recipient key: no webhooks (their secrets derive from it)
        assert worker.readiness.report()[1]["channels_off"] == ["aliyun_sms", "webhook"]
        outcomes_start = await asyncio.to_thread(end_offsets, kafka_bootstrap, topics.outcomes)
        letters_start = await asyncio.to_thread(end_offsets, kafka_bootstrap, topics.dead_letter)
        published = await asyncio.to_thread(publish_values, kafka_bootstrap, topics, [to_bytes(fresh_code())])
        records = await asyncio.to_thread(
            read_until, kafka_bootstrap, topics.outcomes, outcomes_start, Settlement(published), 60
        )
        [outcome] = group_outcomes(records)[source_of(published[0])]
        assert (outcome.status.value, outcome.provider_code, outcome.channel) == (
            "dead_lettered",
            "channel_not_configured",
            "aliyun_sms",
        )
        [letter] = await asyncio.to_thread(
            read_until, kafka_bootstrap, topics.dead_letter, letters_start, lambda rs: len(rs) >= 1, 30
        )
        history = header_map(letter.headers)
        assert history["x-notify-provider-code"] == "channel_not_configured"
        assert history["x-notify-stage"] == "send"  # replayable to notify.send.aliyun_sms once configured
        assert not sandbox.state.messages
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=60)
