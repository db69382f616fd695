"""Prometheus metrics of the worker, served at ``/metrics`` on the worker's web port."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "mall_notify_events_consumed_total", "Records read from the event topics", ["topic"]
)
DELIVERIES = Counter(
    "mall_notify_deliveries_total",
    "Deliveries handled by a channel sender, by outcome (delivered, or the error class)",
    ["channel", "outcome"],
)
DEAD_LETTERED = Counter(
    "mall_notify_dead_lettered_total", "Records written to the dead-letter topic", ["stage", "reason"]
)
OUTCOMES = Counter(
    "mall_notify_outcomes_total",
    "Final outcome records written (delivered, skipped, dead_lettered)",
    ["status"],
)
UNKNOWN_PROVIDER_CODES = Counter(
    "mall_notify_unknown_provider_codes_total",
    "Provider answers not in our classification tables (treated as transient); add them to the table",
    ["channel", "code"],
)
HANDLER_RETRIES = Counter(
    "mall_notify_handler_retries_total",
    "Records whose handling failed unexpectedly (e.g. Kafka unavailable) and is being retried",
    ["stage"],
)
SEND_SECONDS = Histogram(
    "mall_notify_send_seconds",
    "Time a provider call took, retries of an expired token included",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RETRIES_SCHEDULED = Counter(
    "mall_notify_retries_scheduled_total",
    "Deliveries sent to a retry tier after a transient failure",
    ["channel", "tier"],
)
RETRIES_FORWARDED = Counter(
    "mall_notify_retries_forwarded_total",
    "Retry records that came due and went back to their send topic",
    ["topic"],
)
RETRY_WAITING = Gauge(
    "mall_notify_retry_partitions_waiting", "Retry-topic partitions paused until their next record is due"
)
RETRY_LATENESS = Histogram(
    "mall_notify_retry_lateness_seconds",
    "How long after its due time a retry record was forwarded",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
DUPLICATES_SUPPRESSED = Counter(
    "mall_notify_duplicates_suppressed_total",
    "Deliveries not sent because the ledger shows them delivered (redelivery after a crash, replay)",
    ["channel"],
)
