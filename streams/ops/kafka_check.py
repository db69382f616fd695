"""Does the cluster answer, and does it hold the topics a command needs? Asked once, quickly and
quietly, before a command uses Kafka: a wrong address is one line after a few seconds, not
minutes of client retries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from streams.core.errors import MallNotifyError

PROBE_SECONDS = 5.0


class KafkaUnavailable(MallNotifyError):
    """The cluster did not answer at the configured address."""


class MissingTopics(MallNotifyError):
    """The cluster answered but lacks topics of the spec."""


def _ignore(_: KafkaError) -> None:
    """The probe's own verdict replaces librdkafka's connection errors."""


def check_cluster(bootstrap_servers: str, needed_topics: Iterable[str] = ()) -> None:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "log_level": 0,
        "error_cb": _ignore,
        "socket.connection.setup.timeout.ms": int(PROBE_SECONDS * 1000),
    }
    client = AdminClient(config)
    try:
        metadata = client.list_topics(timeout=PROBE_SECONDS)
    except KafkaException as exc:
        raise KafkaUnavailable(
            f"Kafka at {bootstrap_servers} did not answer within {PROBE_SECONDS:.0f} s "
            f"({exc.args[0].str() if exc.args else exc}); check KAFKA_BOOTSTRAP_SERVERS, "
            "or start the local broker with `make kafka-up`"
        ) from None
    missing = sorted(set(needed_topics) - set(metadata.topics))
    if missing:
        raise MissingTopics(
            f"topic(s) {', '.join(missing)} do not exist on {bootstrap_servers}: "
            "run `mall-notify topics ensure` first"
        )
