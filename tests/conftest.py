"""Test tiers: unit tests need nothing; integration tests get one real Kafka broker per session.

The broker is, in order of preference: the cluster in KAFKA_BOOTSTRAP_SERVERS; a testcontainers
Kafka when KAFKA_TEST_BROKER=testcontainers (needs Docker); otherwise the project's own local
KRaft broker (deploy/kafka-local/kafka.sh), started here and stopped at the end if we started it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = ROOT / "deploy" / "kafka-local" / "kafka.sh"
TESTCONTAINERS_IMAGE = os.environ.get("KAFKA_TEST_IMAGE", "confluentinc/cp-kafka:8.1.0")


def _local_broker() -> Iterator[str]:
    status = subprocess.run([KAFKA_SCRIPT, "status"], capture_output=True, text=True, check=False)
    if status.returncode == 0:
        yield status.stdout.strip()
        return
    up = subprocess.run([KAFKA_SCRIPT, "up"], capture_output=True, text=True, check=False)
    if up.returncode != 0:
        pytest.fail(f"could not start the local Kafka broker:\n{up.stderr}")
    try:
        yield up.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([KAFKA_SCRIPT, "down"], capture_output=True, check=False)


def _container_broker() -> Iterator[str]:
    from testcontainers.community.kafka import KafkaContainer

    with KafkaContainer(TESTCONTAINERS_IMAGE).with_kraft() as kafka:
        yield kafka.get_bootstrap_server()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a real Kafka broker for this test session."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif os.environ.get("KAFKA_TEST_BROKER") == "testcontainers":
        yield from _container_broker()
    else:
        yield from _local_broker()
