"""The faust baseline of `make bench`: one agent that passes each record through (`await
topic.send`), as a faust pipeline stage does at the least. Run as `python bench/faust_passthrough.py
worker`; configured by the BENCH_* environment variables the bench sets."""

from __future__ import annotations

import os
from typing import Any

import faust

app = faust.App(
    os.environ["BENCH_FAUST_APP"],
    broker=f"kafka://{os.environ['KAFKA_BOOTSTRAP_SERVERS']}",
    store="memory://",
    datadir=os.environ["BENCH_FAUST_DATADIR"],
    web_enabled=False,
    topic_allow_declare=False,
    topic_disable_leader=True,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
)
source = app.topic(os.environ["BENCH_SOURCE"], key_serializer="raw", value_serializer="raw")
target = app.topic(os.environ["BENCH_TARGET"], key_serializer="raw", value_serializer="raw")


@app.agent(source)
async def passthrough(stream: Any) -> None:
    async for event in stream.events():
        await target.send(key=event.key, value=event.value)


if __name__ == "__main__":
    app.main()
