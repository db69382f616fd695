"""``topics ensure``: create missing topics and report drift, with confluent-kafka's AdminClient.

Comparing the wanted specs with what the cluster has is pure (:func:`plan`); only
:func:`ensure_topics` talks to Kafka. It creates, it never alters or deletes: drift on a
running system is for a person to fix deliberately.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from streams.core.topics import TopicSpec
from streams.runtime.kafka.clients import admin_client

TIMEOUT_SECONDS = 30.0


class Action(StrEnum):
    CREATED = "created"
    OK = "ok"
    DRIFT = "drift"


@dataclass(frozen=True)
class ExistingTopic:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


@dataclass(frozen=True)
class TopicReport:
    topic: str
    action: Action
    detail: str = ""


def fit_to_cluster(spec: TopicSpec, brokers: int) -> tuple[TopicSpec, str]:
    """Cap replication (and min.insync.replicas) to the brokers there are; say so when it does."""
    wanted = spec.replication_factor or 1
    if wanted <= brokers:
        return spec, ""
    config = dict(spec.config)
    if int(config.get("min.insync.replicas", "1")) > brokers:
        config["min.insync.replicas"] = str(brokers)
    note = f"replication {wanted} capped to {brokers} (brokers in the cluster)"
    return spec.model_copy(update={"replication_factor": brokers, "config": config}), note


def drift(spec: TopicSpec, existing: ExistingTopic) -> list[str]:
    """How an existing topic differs from its spec, one phrase per difference."""
    problems = []
    if existing.partitions != spec.partitions:
        problems.append(f"partitions {existing.partitions}, want {spec.partitions}")
    if spec.replication_factor and existing.replication_factor != spec.replication_factor:
        problems.append(f"replication {existing.replication_factor}, want {spec.replication_factor}")
    for key, value in sorted(spec.config.items()):
        if existing.config.get(key) != value:
            problems.append(f"{key}={existing.config.get(key)}, want {value}")
    return problems


def ensure_topics(bootstrap_servers: str, specs: list[TopicSpec]) -> list[TopicReport]:
    admin = admin_client(bootstrap_servers)
    metadata = admin.list_topics(timeout=TIMEOUT_SECONDS)
    brokers = max(1, len(metadata.brokers))
    fitted = [fit_to_cluster(spec, brokers) for spec in specs]
    missing = [spec for spec, _ in fitted if spec.name not in metadata.topics]
    created = _create(admin, missing)
    existing = _describe(admin, [spec.name for spec, _ in fitted if spec.name not in created])
    reports = []
    for spec, note in fitted:
        if spec.name in created:
            reports.append(TopicReport(spec.name, Action.CREATED, note))
            continue
        problems = drift(spec, existing[spec.name])
        action = Action.DRIFT if problems else Action.OK
        reports.append(TopicReport(spec.name, action, "; ".join(problems) or note))
    return reports


def _create(admin: AdminClient, specs: list[TopicSpec]) -> set[str]:
    """Create the topics; returns those created here (not those that appeared meanwhile)."""
    if not specs:
        return set()
    new_topics = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=spec.replication_factor or 1,
            config=spec.config,
        )
        for spec in specs
    ]
    created = set()
    for name, future in admin.create_topics(new_topics, operation_timeout=TIMEOUT_SECONDS).items():
        try:
            future.result()
            created.add(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"could not create topic {name}: {exc}") from exc
    return created


def _metadata_with(admin: AdminClient, names: list[str], attempts: int = 25) -> dict[str, Any]:
    """Topic metadata that includes ``names``: a just-created topic can take a moment to show."""
    for _ in range(attempts):
        topics: dict[str, Any] = admin.list_topics(timeout=TIMEOUT_SECONDS).topics
        if all(name in topics for name in names):
            return topics
        time.sleep(0.2)
    raise RuntimeError(f"topics not visible in the cluster metadata: {sorted(set(names) - topics.keys())}")


def _describe(admin: AdminClient, names: list[str]) -> dict[str, ExistingTopic]:
    if not names:
        return {}
    topics = _metadata_with(admin, names)  # first: describe_configs fails for a topic not yet visible
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    configs = {
        resource.name: future.result() for resource, future in admin.describe_configs(resources).items()
    }
    existing = {}
    for name in names:
        partitions = topics[name].partitions
        replicas = len(next(iter(partitions.values())).replicas) if partitions else 0
        config = {key: entry.value for key, entry in configs[name].items()}
        existing[name] = ExistingTopic(name, len(partitions), replicas, config)
    return existing
