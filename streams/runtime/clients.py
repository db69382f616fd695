"""How every Kafka client of the project is configured (confluent-kafka / librdkafka)."""

from __future__ import annotations

from confluent_kafka import Producer


def idempotent_producer(bootstrap_servers: str, **extra: object) -> Producer:
    """A confluent-kafka producer as every writer of this project uses it: acks=all, idempotent,
    and murmur2 partitioning, so a key lands where the Java clients and aiokafka put it."""
    config: dict[str, object] = {
        "bootstrap.servers": bootstrap_servers,
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
        "log_level": 3,
    }
    return Producer(config | {key.replace("_", "."): value for key, value in extra.items()})
