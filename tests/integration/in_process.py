"""A worker run in the test's own process (same code as `mall-notify worker`), on the real broker
and the provider sandbox, so a test can reach into it: inject a crash, freeze a lane."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from streams.devtools.local_stack import free_port
from streams.ops.shop_store import save_sample_shops
from streams.ops.topic_admin import ensure_topics
from streams.runtime.worker import Worker, build_worker
from streams.settings import PROJECT_ROOT, Settings
from tests.conftest import WECHAT_SECRETS, Sandbox

STATE_ROOT = PROJECT_ROOT / ".local" / "test-state"


async def prepared_worker(kafka_bootstrap: str, sandbox: Sandbox, name: str, **settings: Any) -> Worker:
    """A worker with topics of its own (prefix ``<name><random>.`` unless ``topic_prefix`` is
    given) and the sample shops saved."""
    prefix = settings.pop("topic_prefix", f"{name}{uuid.uuid4().hex[:6]}.")
    worker = build_worker(
        Settings(
            kafka_bootstrap_servers=kafka_bootstrap,
            topic_prefix=prefix,
            web_port=free_port(),
            wechat_oa_api_base=sandbox.url,
            wechat_mp_api_base=sandbox.url,
            wechat_secrets=WECHAT_SECRETS,
            kafka_session_timeout=6,
            **{"state_dir": STATE_ROOT / f"{name}-{uuid.uuid4().hex[:6]}", **settings},
        )
    )
    topics = worker.topics
    await asyncio.to_thread(ensure_topics, kafka_bootstrap, topics.all())
    await asyncio.to_thread(save_sample_shops, kafka_bootstrap, topics, PROJECT_ROOT / "config")
    return worker


async def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.1)
