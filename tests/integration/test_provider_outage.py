"""A 12 s outage of every provider while codes and orders keep coming (50 events a second): the
codes it met are all sent once it ends (a send the outage refused does not count against a
phone's limits), and the worker says so in a few summary lines, not one per failed send."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator

import orjson
import pytest

from streams.devtools.demo import Settlement, source_of
from streams.devtools.local_stack import config_with_tiers
from streams.ops.reading import end_offsets, read_until
from tests.factories import fresh_code, payment_event, to_bytes
from tests.integration.conftest import Pipeline, pipeline_on

pytestmark = [pytest.mark.integration, pytest.mark.slow]
OUTAGE_SECONDS = 12
CODES = 300
EVENTS_PER_SECOND = 50
TIERS = (3, 5, 10)
"""retries at about 3, 8 and 18 s: the last one after the outage"""
PROVIDERS = ("SendSms", "/cgi-bin/message/template/send", "/cgi-bin/message/subscribe/send")


@pytest.fixture(scope="module")
def outage_pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    config = config_with_tiers(tmp_path_factory.mktemp("outage-config") / "config", TIERS)
    prefix = f"po{uuid.uuid4().hex[:8]}."
    with pipeline_on(kafka_bootstrap, prefix, config, tmp_path_factory.mktemp("outage")) as running:
        yield running


def _lines(pipeline: Pipeline) -> int:
    return len(pipeline.worker.log_path.read_bytes().splitlines())


def test_codes_met_by_a_12_s_outage_are_all_sent_after_it_and_the_log_stays_short(
    outage_pipeline: Pipeline,
) -> None:
    pipeline = outage_pipeline
    start = end_offsets(pipeline.bootstrap, pipeline.topics.outcomes)
    lines_before = _lines(pipeline)
    for target in PROVIDERS:
        pipeline.add_fault(target=target, http_status=503, duration_seconds=OUTAGE_SECONDS)
    began = time.monotonic()
    codes = pipeline.publish([to_bytes(fresh_code()) for _ in range(CODES)])
    orders = 0
    while (elapsed := time.monotonic() - began) < OUTAGE_SECONDS:
        pipeline.publish([to_bytes(payment_event()) for _ in range(EVENTS_PER_SECOND)])
        orders += EVENTS_PER_SECOND
        time.sleep(max(0.0, orders / EVENTS_PER_SECOND - (time.monotonic() - began)))
    assert elapsed < OUTAGE_SECONDS + 5
    records = read_until(
        pipeline.bootstrap, pipeline.topics.outcomes, start, Settlement(codes), OUTAGE_SECONDS + 90
    )
    logged = _lines(pipeline) - lines_before  # the outage, and the retries and give-ups after it
    sources = {source_of(p) for p in codes}
    outcomes = [orjson.loads(r.value or b"") for r in records]
    mine = [o for o in outcomes if "{topic}[{partition}]@{offset}".format(**o["source"]) in sources]
    statuses = Counter((o["status"], o.get("reason")) for o in mine if o["status"] != "reached")
    assert statuses == {("delivered", None): CODES}, statuses
    assert logged < 100, pipeline.worker.log_tail(logged)
