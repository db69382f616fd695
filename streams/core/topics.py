"""The topics of ``config/topics.yaml`` as typed data: names, partitions, replication and config."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from channels.base import ChannelName
from streams.core.errors import TopicsError
from streams.core.validation import UnreadableFile, describe, read_yaml


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TopicSpec(Frozen):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(ge=1, le=1000)
    replication_factor: int | None = Field(default=None, ge=1)
    config: dict[str, str] = Field(default_factory=dict)


class EventTopic(TopicSpec):
    event_types: list[str] = Field(min_length=1)


class RetryTier(Frozen):
    name: str = Field(pattern=r"^[a-z0-9]+$")
    delay_seconds: float = Field(gt=0)


class RetryTopics(Frozen):
    partitions: int = Field(ge=1)
    config: dict[str, str] = Field(default_factory=dict)
    tiers: list[RetryTier] = Field(min_length=1)
    jitter: float = Field(default=0.1, ge=0, le=1, description="delays are stretched by up to this fraction")
    unknown_code_max_retries: int = Field(
        default=1, ge=0, description="tiers an unknown provider code may use"
    )


class DeferredTopics(Frozen):
    """The delay topics of quiet hours: ``notify.deferred.<bucket>``, one per bucket of waiting time."""

    partitions: int = Field(ge=1)
    config: dict[str, str] = Field(default_factory=dict)
    buckets: list[RetryTier] = Field(min_length=1, description="shortest first")

    @field_validator("buckets")
    @classmethod
    def _shortest_first(cls, buckets: list[RetryTier]) -> list[RetryTier]:
        waits = [bucket.delay_seconds for bucket in buckets]
        if waits != sorted(set(waits)):
            raise ValueError("the buckets go from the shortest wait to the longest, each once")
        return buckets


class LedgerTopics(Frozen):
    """The changelogs of the partitioned ledgers: one per consumed topic (events, sends), named
    ``notify.ledger.<topic>`` and partitioned like it, so partition p holds the state of the
    records of partition p."""

    config: dict[str, str] = Field(default_factory=dict)


class StateTopic(Frozen):
    """The changelog of a lane's own state, partitioned like the topic the lane consumes."""

    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    config: dict[str, str] = Field(default_factory=dict)


class Defaults(Frozen):
    replication_factor: int = Field(ge=1)
    config: dict[str, str] = Field(default_factory=dict)


class TopicsFile(Frozen):
    defaults: Defaults
    events: list[EventTopic] = Field(min_length=1)
    send: dict[ChannelName, TopicSpec]
    codes: TopicSpec
    """verification codes' own send topic (SMS), so no bulk backlog delays a code"""
    retry: RetryTopics
    ledger: LedgerTopics
    dead_letter: TopicSpec
    outcomes: TopicSpec
    settings: TopicSpec
    settings_history: TopicSpec
    receipts: TopicSpec
    """deliveries sent and the providers' receipts, paired by the receipts lane"""
    """who changed which shop's settings, when, and what"""
    sms_account: TopicSpec
    """SMS purchases and what each send partition's deliveries cost (compacted)"""
    mp_subscriptions: StateTopic
    """what buyers accepted on the Mini Program, partitioned like its send topic (compacted)"""
    webhooks: TopicSpec
    """merchants' webhook endpoints (compacted)"""
    sms_reviews: TopicSpec
    """Aliyun's review reports, pushed or polled, for the reviews lane"""
    credentials: TopicSpec
    """merchants' WeChat apps with their sealed AppSecrets (compacted)"""
    sms_packages: TopicSpec
    """the SMS packages created, repriced or retired at run time (compacted)"""
    buyers: TopicSpec
    """buyers' notices and choices, keyed by buyer: the buyers lane's input"""
    buyer_state: StateTopic
    """what each buyer refused and got today, partitioned like the buyers' topic (compacted)"""
    deferred: DeferredTopics
    """buyers' notices held by quiet hours, waiting to go back to the buyers' topic"""


def _retry_name(channel: ChannelName, tier: RetryTier) -> str:
    return f"notify.retry.{channel.value}.{tier.name}"


def _deferred_name(bucket: RetryTier) -> str:
    return f"notify.deferred.{bucket.name}"


def _ledger_name(source: str) -> str:
    return "notify.ledger." + source.removeprefix("notify.")


class Topics:
    """Topic names with the environment's prefix applied, and every topic's full spec."""

    def __init__(self, spec: TopicsFile, prefix: str = "") -> None:
        self.spec = spec
        self.prefix = prefix

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def event_topics(self) -> list[str]:
        return [self.name(topic.name) for topic in self.spec.events]

    def event_topic_for(self, event_type: str) -> str | None:
        for topic in self.spec.events:
            if event_type in topic.event_types:
                return self.name(topic.name)
        return None

    def send_topic(self, channel: ChannelName) -> str:
        return self.name(self.spec.send[channel].name)

    @property
    def codes(self) -> str:
        return self.name(self.spec.codes.name)

    def send_topic_for(self, channel: ChannelName, code: bool) -> str:
        """Where a delivery waits for its sender: verification codes on their own topic."""
        return self.codes if code else self.send_topic(channel)

    @property
    def send_topics(self) -> frozenset[str]:
        """Every topic a sender reads (the channels' and the codes')."""
        return frozenset([*map(self.send_topic, self.spec.send), self.codes])

    def retry_topic(self, channel: ChannelName, tier: RetryTier) -> str:
        return self.name(_retry_name(channel, tier))

    def ledger_topic(self, source_topic: str) -> str:
        """The changelog of the ledger of a consumed topic (prefix applied to both)."""
        return self.name(_ledger_name(source_topic.removeprefix(self.prefix)))

    def ledgers(self, source_topics: list[str]) -> dict[str, str]:
        """Consumed topic -> its ledger's changelog."""
        return {topic: self.ledger_topic(topic) for topic in source_topics}

    @property
    def dead_letter(self) -> str:
        return self.name(self.spec.dead_letter.name)

    @property
    def outcomes(self) -> str:
        return self.name(self.spec.outcomes.name)

    @property
    def settings(self) -> str:
        return self.name(self.spec.settings.name)

    @property
    def receipts(self) -> str:
        return self.name(self.spec.receipts.name)

    @property
    def settings_history(self) -> str:
        return self.name(self.spec.settings_history.name)

    @property
    def sms_account(self) -> str:
        return self.name(self.spec.sms_account.name)

    @property
    def mp_subscriptions(self) -> str:
        return self.name(self.spec.mp_subscriptions.name)

    @property
    def webhooks(self) -> str:
        return self.name(self.spec.webhooks.name)

    @property
    def sms_packages(self) -> str:
        return self.name(self.spec.sms_packages.name)

    @property
    def credentials(self) -> str:
        return self.name(self.spec.credentials.name)

    @property
    def sms_reviews(self) -> str:
        return self.name(self.spec.sms_reviews.name)

    @property
    def buyers(self) -> str:
        return self.name(self.spec.buyers.name)

    @property
    def buyer_state(self) -> str:
        return self.name(self.spec.buyer_state.name)

    @property
    def deferred(self) -> list[str]:
        """The delay topics of quiet hours, the shortest wait first."""
        return [self.name(_deferred_name(bucket)) for bucket in self.spec.deferred.buckets]

    @property
    def deferred_waits(self) -> list[float]:
        return [bucket.delay_seconds for bucket in self.spec.deferred.buckets]

    def all(self) -> list[TopicSpec]:
        """Every topic with defaults filled in and the prefix applied."""
        senders = [*self.spec.send.values(), self.spec.codes]
        specs: list[TopicSpec] = [*self.spec.events, *senders]
        retry = self.spec.retry
        specs += [
            TopicSpec(name=_retry_name(channel, tier), partitions=retry.partitions, config=retry.config)
            for channel in self.spec.send
            for tier in retry.tiers
        ]
        deferred = self.spec.deferred
        specs += [
            TopicSpec(name=_deferred_name(bucket), partitions=deferred.partitions, config=deferred.config)
            for bucket in deferred.buckets
        ]
        ledger = self.spec.ledger
        specs += [
            TopicSpec(name=_ledger_name(source.name), partitions=source.partitions, config=ledger.config)
            for source in [*self.spec.events, *senders, self.spec.receipts]
        ]
        mp = self.spec.mp_subscriptions
        mp_send = self.spec.send[ChannelName.WECHAT_MP]
        buyers, buyer_state = self.spec.buyers, self.spec.buyer_state
        specs += [
            TopicSpec(name=mp.name, partitions=mp_send.partitions, config=mp.config),
            buyers,
            TopicSpec(name=buyer_state.name, partitions=buyers.partitions, config=buyer_state.config),
            self.spec.dead_letter,
            self.spec.outcomes,
            self.spec.settings,
            self.spec.settings_history,
            self.spec.sms_account,
            self.spec.receipts,
            self.spec.webhooks,
            self.spec.sms_reviews,
            self.spec.credentials,
            self.spec.sms_packages,
        ]
        defaults = self.spec.defaults
        return [
            TopicSpec(
                name=self.name(spec.name),
                partitions=spec.partitions,
                replication_factor=spec.replication_factor or defaults.replication_factor,
                config={**defaults.config, **spec.config},
            )
            for spec in specs
        ]


def load_topics(path: Path, prefix: str = "") -> Topics:
    try:
        return Topics(TopicsFile.model_validate(read_yaml(path)), prefix)
    except UnreadableFile as exc:
        raise TopicsError(str(exc)) from None
    except ValidationError as exc:
        raise TopicsError(f"{path}: {describe(exc)}") from None
