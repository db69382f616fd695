"""Test tiers: unit tests need nothing but a provider sandbox (a real aiohttp server on loopback,
fresh per test); integration tests get one real Kafka broker per session.

The broker is, in order of preference: the cluster in KAFKA_BOOTSTRAP_SERVERS; a testcontainers
Kafka when KAFKA_TEST_BROKER=testcontainers (needs Docker); otherwise the project's own local
KRaft broker (deploy/kafka-local/kafka.sh), started here and stopped at the end if we started it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from channels.http import SharedSession
from channels.limits import Limits
from channels.sandbox.server import build_app
from channels.sandbox.state import State
from channels.wechat import WeChatApi
from streams.devtools.local_stack import SANDBOX_SECRETS

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = ROOT / "deploy" / "kafka-local" / "kafka.sh"
TESTCONTAINERS_IMAGE = os.environ.get("KAFKA_TEST_IMAGE", "confluentinc/cp-kafka:8.1.0")


def _local(script: Path, what: str) -> Iterator[str]:
    """The address of the project's local service (``script status``), started here (``up``) and
    stopped at the end if it was not running."""
    status = subprocess.run([script, "status"], capture_output=True, text=True, check=False)
    if status.returncode == 0:
        yield status.stdout.strip()
        return
    up = subprocess.run([script, "up"], capture_output=True, text=True, check=False)
    if up.returncode != 0:
        pytest.fail(f"could not start the local {what}:\n{up.stderr}")
    try:
        yield up.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([script, "down"], capture_output=True, check=False)


def _container_broker() -> Iterator[str]:
    from testcontainers.community.kafka import KafkaContainer

    with KafkaContainer(TESTCONTAINERS_IMAGE).with_kraft() as kafka:
        yield kafka.get_bootstrap_server()


POSTGRES_SCRIPT = ROOT / "deploy" / "postgres-local" / "postgres.sh"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A real PostgreSQL for this test session: MALL_NOTIFY_DATABASE_URL, a container when
    KAFKA_TEST_BROKER=testcontainers, else the project's local server (started here and stopped at
    the end if we started it)."""
    if os.environ.get("MALL_NOTIFY_DATABASE_URL"):
        yield os.environ["MALL_NOTIFY_DATABASE_URL"]
    elif os.environ.get("KAFKA_TEST_BROKER") == "testcontainers":
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer("postgres:15", driver=None) as postgres:
            yield postgres.get_connection_url()
    else:
        yield from _local(POSTGRES_SCRIPT, "PostgreSQL")


def restart_database(url: str) -> None:
    """PostgreSQL restarted under the clients (the project's local server), or, for any other,
    every other connection to the database cut: what its clients see of a restart."""
    local = subprocess.run([POSTGRES_SCRIPT, "status"], capture_output=True, text=True, check=False)
    if local.returncode == 0 and local.stdout.strip() == url:
        subprocess.run([POSTGRES_SCRIPT, "restart"], capture_output=True, check=True, timeout=90)
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a real Kafka broker for this test session."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif os.environ.get("KAFKA_TEST_BROKER") == "testcontainers":
        yield from _container_broker()
    else:
        yield from _local(KAFKA_SCRIPT, "Kafka broker")


WECHAT_SECRETS = {appid: SecretStr(secret) for appid, secret in json.loads(SANDBOX_SECRETS).items()}


@dataclass
class Sandbox:
    state: State
    url: str
    session: SharedSession

    @property
    def endpoint(self) -> str:
        return self.url.removeprefix("http://")

    def wechat_api(
        self, secrets: dict[str, SecretStr] | None = None, limits: Limits | None = None
    ) -> WeChatApi:
        return WeChatApi(self.url, WECHAT_SECRETS if secrets is None else secrets, self.session, limits)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    state = State.from_file(ROOT / "config" / "sandbox.yaml")
    server = TestServer(build_app(state), host="127.0.0.1")
    await server.start_server()
    session = SharedSession(aiohttp.ClientTimeout(total=1.0, connect=1.0))
    yield Sandbox(state, str(server.make_url("")).rstrip("/"), session)
    await session.close()
    await server.close()
    # the sandbox's own answers keep the providers' documented contracts (tests/contracts)
    assert not [b for b in state.breaches if b["by"] == "sandbox"], state.breaches
