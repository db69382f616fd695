"""A worker killed with SIGKILL mid-stream loses nothing and duplicates no final outcome."""

from __future__ import annotations

import signal
from collections import Counter

import orjson
import pytest

from streams.devtools.demo import Settlement, source_of
from streams.ops.reading import ReadRecord, end_offsets, read_until
from tests.factories import payment_event, to_bytes
from tests.integration.conftest import SETTLE_SECONDS, Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EVENTS = 300


def test_a_crash_mid_stream_ends_with_exactly_one_outcome_per_event(pipeline: Pipeline) -> None:
    pipeline.add_fault(
        target="/cgi-bin/message/template/send", latency_ms=20, count=EVENTS
    )  # a slower WeChat
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    published = pipeline.publish([to_bytes(payment_event()) for _ in range(EVENTS)])
    sources = {source_of(p) for p in published}

    # let part of the stream through, then pull the plug
    read_until(
        pipeline.bootstrap, pipeline.topics.outcomes, start, lambda rs: len(rs) >= EVENTS // 4, SETTLE_SECONDS
    )
    pipeline.restart_worker(signal.SIGKILL)

    records = read_until(
        pipeline.bootstrap,
        pipeline.topics.outcomes,
        start,
        Settlement(published),
        3 * SETTLE_SECONDS,
    )
    assert Settlement(published)(records), "some events have no final outcome after the restart"
    mine = [r for r in records if _source(r) in sources and _status(r) not in ("reached", "not_reached")]
    per_key = Counter(r.key for r in mine)
    assert len(per_key) == EVENTS
    assert set(per_key.values()) == {1}, (
        f"duplicated outcomes: {[k for k, n in per_key.items() if n > 1][:5]}"
    )
    statuses = Counter(_status(r) for r in mine)
    assert statuses == {"delivered": EVENTS}


def _source(record: ReadRecord) -> str:
    source = orjson.loads(record.value)["source"]
    return f"{source['topic']}[{source['partition']}]@{source['offset']}"


def _status(record: ReadRecord) -> str:
    return str(orjson.loads(record.value)["status"])
