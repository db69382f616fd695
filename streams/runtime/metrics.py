"""Prometheus metrics of the worker, served at ``/metrics`` on the worker's web port.

Every label has a bounded set of values: lanes, channels, topics and partitions of the spec,
stages, reasons and statuses of the code, and provider codes folded into a bounded set
(:func:`unknown_code_label`).
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge, Histogram

LANE_LABELS = ["lane"]
MAX_UNKNOWN_CODES = 20
"""distinct unknown provider codes kept as labels per channel; the rest are counted as ``other``"""

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
    "Final outcome records written (delivered, skipped, dead_lettered); replayed: true for records "
    "replayed from the dead-letter topic",
    ["status", "replayed"],
)
UNKNOWN_PROVIDER_CODES = Counter(
    "mall_notify_unknown_provider_codes_total",
    "Provider answers not in our classification tables (treated as transient); add them to the table",
    ["channel", "code"],
)
SEND_SECONDS = Histogram(
    "mall_notify_send_duration_seconds",
    "Time a provider call took, retries of an expired token included",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
END_TO_END_SECONDS = Histogram(
    "mall_notify_end_to_end_seconds",
    "From the event's time (as upstream stamped it) to the provider accepting its delivery",
    ["channel"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
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
SMS_QUOTA_EXHAUSTED = Counter(
    "mall_notify_sms_quota_exhausted_total",
    "SMS not sent because the shop's balance could not cover them (skipped: sms_quota_exhausted)",
)
RECEIPTS = Counter(
    "mall_notify_receipts_total",
    "Providers' receipts by result: reached, not_reached, duplicate, unmatched (no delivery came "
    "within the TTL), unreadable",
    ["channel", "result"],
)
RECEIPT_CODES = Counter(
    "mall_notify_receipt_codes_total",
    "Receipts paired with their delivery, by the provider's code (20 codes per channel at most, "
    "then other): the reach ratio per code",
    ["channel", "code", "reached"],
)
RECEIPT_LAG_SECONDS = Histogram(
    "mall_notify_receipt_lag_seconds",
    "From a message's delivered outcome to the provider's receipt",
    ["channel"],
    buckets=(1, 5, 15, 30, 60, 300, 900, 3600, 21600, 86400),
)
RECEIPTS_OVERDUE = Gauge(
    "mall_notify_receipts_overdue",
    "Delivered messages of this worker's receipt partitions still without a receipt after "
    "MALL_NOTIFY_RECEIPT_OVERDUE_MINUTES",
    ["channel"],
)
RECEIPTS_REFUSED = Counter(
    "mall_notify_receipts_refused_total",
    "Pushes to the receipts endpoint refused: unsigned, forged, unreadable",
    ["provider", "reason"],
)
CODES_NOT_SENT = Counter(
    "mall_notify_codes_not_sent_total",
    "Verification codes skipped before Aliyun was asked: expired, or over a phone's limit",
    ["reason"],
)
UNREACHABLE = Counter(
    "mall_notify_unreachable_total",
    "Deliveries skipped because the provider cannot reach the person on that channel: "
    "not_following (unfollowed the OA), no_subscription (no MP subscription), blocked_by_user",
    ["channel", "reason"],
)
SEND_LOG_ROWS = Counter(
    "mall_notify_send_log_rows_total", "Outcomes written to the send log (PostgreSQL), each exactly once"
)
SEND_LOG_SKIPPED = Counter(
    "mall_notify_send_log_skipped_total", "Records of the outcomes topic that are not outcomes (not stored)"
)
SEND_LOG_FAILURES = Counter(
    "mall_notify_send_log_failures_total",
    "Times the send-log lane lost PostgreSQL and paused (it goes on from the offsets it stored)",
)
SEND_LOG_BEHIND = Gauge(
    "mall_notify_send_log_behind",
    "Outcomes of the partitions this worker's send-log lane owns not in PostgreSQL yet, per partition",
    ["partition"],
)
SEND_LOG_QUERY_SECONDS = Histogram(
    "mall_notify_send_log_query_seconds",
    "Time the admin API took to read the send log, per read: messages, history, spend",
    ["query"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BUYER_DECISIONS = Counter(
    "mall_notify_buyer_decisions_total",
    "Buyers' deliveries the buyers lane decided on: sent (on to their send topic), opted_out (the "
    "buyer refuses the category or the channel), frequency_cap (the shop's daily cap reached), "
    "deferred (held by quiet hours, counted once), expired (its scene ended before the quiet hours did)",
    ["decision"],
)
DEFERRED_RELEASED = Counter(
    "mall_notify_deferred_released_total",
    "Notices held by quiet hours that the deferred lane gave back to the buyers' topic (every hop "
    "between delay buckets counts)",
    ["topic"],
)
DEFERRED_WAITING = Gauge(
    "mall_notify_deferred_partitions_waiting",
    "Delay-topic partitions paused until their next held notice is read again",
)
SMS_REVIEW_REPORTS = Counter(
    "mall_notify_sms_review_reports_total",
    "Aliyun's word on SMS reviews taken: pushed (SignSmsReport, TemplateSmsReport) or polled (poll)",
    ["source"],
)
SMS_REVIEWS_APPLIED = Counter(
    "mall_notify_sms_reviews_applied_total",
    "Review reports the reviews lane applied to a shop (changed: what was in review ended), or not",
    ["result"],
)
SMS_REVIEW_POLLS = Counter(
    "mall_notify_sms_review_polls_total",
    "The reviews poller's rounds: ok, failed (Aliyun refused or did not answer: it backs off), idle",
    ["result"],
)
WEBHOOK_CALLS = Counter(
    "mall_notify_webhook_calls_total",
    "Webhook calls made from outcomes (one per outcome and endpoint that wants it); how they went: "
    'mall_notify_deliveries_total{channel="webhook"}',
)
WEBHOOKS_DISABLED = Counter(
    "mall_notify_webhooks_disabled_total",
    "Webhook endpoints switched off after their calls failed for MALL_NOTIFY_WEBHOOK_DISABLE_AFTER_SECONDS",
)
SMS_SHOPS = Gauge(
    "mall_notify_sms_shops",
    "Shops with SMS bought, by the band of their balance now: exhausted (0 or below), low (below "
    "the shop's threshold), ok",
    ["band"],
)
SMS_LOW_BALANCE = Counter(
    "mall_notify_sms_low_balance_total",
    "Shops' SMS balances that fell below their threshold, each told to its seller once",
)
MP_ANSWERS = Counter(
    "mall_notify_mp_subscription_answers_total",
    "Buyers' answers to the Mini Program's subscription panel kept by its sender, per template: "
    "accept (and its variants), reject, ban, filter",
    ["answer"],
)
MP_NOT_ASKED = Counter(
    "mall_notify_mp_not_asked_total",
    "Mini Program deliveries skipped as no_subscription before any call: the buyer had no "
    "acceptance left for the template (a subset of mall_notify_unreachable_total)",
)
SENDS_IN_DOUBT = Counter(
    "mall_notify_sends_in_doubt_total",
    "Deliveries whose earlier attempt may have gone out unseen, by what the provider answered when "
    "asked: taken (not sent again), not_taken (sent), unknown (asked again later)",
    ["channel", "answer"],
)
DUPLICATES_SUPPRESSED = Counter(
    "mall_notify_duplicates_suppressed_total",
    "Deliveries not sent because the ledger shows them delivered (redelivery after a crash, replay)",
    ["channel"],
)
WRITES_DROPPED = Counter(
    "mall_notify_writes_dropped_total",
    "Writes of records whose partition the lane lost before they were committed (its new owner "
    "reads the records again)",
    LANE_LABELS,
)
WRITE_FAILURES = Counter(
    "mall_notify_kafka_write_failures_total",
    "Writes Kafka did not take, by what they mean: outage (written again), record (too large: "
    "dead-lettered as a reference), refused (retried a few times, then the same)",
    ["lane", "problem"],
)
PARTITIONS_ASSIGNED = Gauge(
    "mall_notify_partitions_assigned", "Partitions this worker owns, per lane", LANE_LABELS
)
PARTITIONS_STALLED = Gauge(
    "mall_notify_partitions_stalled",
    "Owned partitions stalled for longer than MALL_NOTIFY_STALL_SECONDS: a record unfinished, or "
    "records waiting while the partition does not move",
    LANE_LABELS,
)
CONSUMER_LAG = Gauge(
    "mall_notify_consumer_lag",
    "Records of an owned partition not finished yet: its end (last stable offset) minus the "
    "position before which everything is finished",
    ["lane", "topic", "partition"],
)
READY = Gauge("mall_notify_ready", "1 while /readyz answers 200, 0 while it answers 503")
IN_FLIGHT = Gauge("mall_notify_records_in_flight", "Records read and not finished yet, per lane", LANE_LABELS)
STATE_RESTORED = Counter(
    "mall_notify_state_restored_records_total",
    "Changelog records read to restore the state of newly assigned partitions",
    ["store"],
)
STATE_UNREADABLE = Counter(
    "mall_notify_state_unreadable_records_total",
    "Changelog records that are not entries of the store, skipped by a restore",
    ["store"],
)
STATE_RESTORE_SECONDS = Counter(
    "mall_notify_state_restore_seconds_total", "Time spent restoring partitions from changelogs", ["store"]
)
STATE_ENTRIES = Gauge(
    "mall_notify_state_entries",
    "Keys of a store partition on local disk (RocksDB's estimate) and not committed yet",
    ["store", "partition"],
)
STATE_DISK_BYTES = Gauge(
    "mall_notify_state_disk_bytes",
    "Bytes of a store partition's table files on local disk",
    ["store", "partition"],
)
STATE_CACHE_BYTES = Gauge(
    "mall_notify_state_cache_bytes", "Bytes held by the block cache every store of the worker shares"
)
STATE_CACHE_HIT_RATIO = Gauge(
    "mall_notify_state_cache_hit_ratio",
    "Block cache hits per lookup of the worker's stores, since it started",
)
TASK_RESTARTS = Counter(
    "mall_notify_task_restarts_total", "Background tasks that crashed and were restarted", ["task"]
)
KAFKA_REACHABLE = Gauge("mall_notify_kafka_reachable", "1 while the Kafka cluster answers, 0 while not")
TRANSACTIONS = Counter(
    "mall_notify_transactions_total",
    "Kafka transactions of the worker (its writes and consumed offsets, committed together), by result",
    ["result"],
)
UNCOMMITTED_SECONDS = Gauge(
    "mall_notify_oldest_uncommitted_seconds",
    "How long the oldest write not committed to Kafka yet has waited (0: everything is committed)",
)


_unknown_codes: dict[str, set[str]] = {}
_unknown_lock = threading.Lock()


def unknown_code_label(channel: str, code: str) -> str:
    """``code`` itself for the first :data:`MAX_UNKNOWN_CODES` unknown codes of a channel,
    ``other`` after that: a provider inventing codes cannot grow the series without bound."""
    return _bounded("unknown", channel, code)


def receipt_code_label(channel: str, code: str) -> str:
    """A receipt's provider code as a label, bounded like :func:`unknown_code_label`."""
    return _bounded("receipt", channel, code)


def _bounded(kind: str, channel: str, code: str) -> str:
    with _unknown_lock:
        known = _unknown_codes.setdefault(f"{kind}:{channel}", set())
        if code in known or len(known) < MAX_UNKNOWN_CODES:
            known.add(code)
            return code
    return "other"
