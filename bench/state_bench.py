"""The state store's part of `make bench`: each measurement runs in a process of its own (so its
memory is its own) and prints one JSON line, which `pipeline_bench.py` reads.

    python bench/state_bench.py store DIR ENTRIES
        writes ENTRIES ledger-sized entries to one partition, committed in batches as a worker
        does: writes/s, RSS before and after, bytes on disk per entry
    python bench/state_bench.py restore DIR CHANGELOG
        restores partition 0 of CHANGELOG into DIR through the worker's restore path: the records
        read and the seconds (run it on an empty DIR for a restore from the changelog alone, then
        again on the same DIR for a restart with the entries on local disk)

The changelog is filled by :func:`fill_changelog` (ledger-shaped records: a 16-byte key, a status
and an origin digest).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Producer

from streams.core.outcomes import Status
from streams.runtime.lanes.ledger import STATUS_CODES, ledger_key, origin_digest
from streams.runtime.state.partition import encode
from streams.runtime.state.recovery import restore
from streams.runtime.state.store import Disk, Store

BATCH = 5_000
"""writes per commit in the store benchmark (a busy worker commits about as many at a time)"""
SOURCE = "bench.source"


def rss_mib(field: str = "VmRSS") -> float:
    """This process's resident memory now (``VmHWM``: its peak; unlike ``ru_maxrss``, which Linux
    carries over from the parent that started it, this is the process's own)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def ledger_entry(number: int, at: float) -> tuple[bytes, bytes]:
    """A ledger entry as the ledger writes it: a delivered delivery of an event record."""
    payload = bytes([STATUS_CODES[Status.DELIVERED]]) + origin_digest(f"mall.orders[0]@{number}")
    return ledger_key(f"delivery-{number}"), encode(0, at, payload)


def store_run(directory: Path, entries: int) -> dict[str, float]:
    store = Store("bench", {SOURCE: "bench.changelog"}, Disk(directory), ttl_seconds=14 * 86400)
    partition = store.open((SOURCE, 0))
    before = rss_mib()
    now = time.time()
    began = time.perf_counter()
    for first in range(0, entries, BATCH):
        changes = []
        for number in range(first, min(first + BATCH, entries)):
            key, value = ledger_entry(number, now)
            write = partition.put(key, value[9:], now)
            changes.append((key, write.value))
        store.committed("bench.changelog", 0, changes, offset=first + len(changes) - 1)
    seconds = time.perf_counter() - began
    assert partition.get(ledger_entry(entries - 1, now)[0]) is not None, "the last entry is not there"
    after = rss_mib()
    store.close_all()
    disk = sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
    return {
        "entries": entries,
        "writes_per_second": entries / seconds,
        "rss_before_mib": before,
        "rss_after_mib": after,
        "peak_rss_mib": rss_mib("VmHWM"),
        "disk_bytes": disk,
        "bytes_per_entry": disk / entries,
    }


def restore_run(directory: Path, changelog: str, bootstrap: str) -> dict[str, float]:
    store = Store("bench", {SOURCE: changelog}, Disk(directory), ttl_seconds=14 * 86400)
    began = time.perf_counter()
    counts = asyncio.run(restore(store, bootstrap, [(SOURCE, 0)]))
    seconds = time.perf_counter() - began
    entries = store.partition((SOURCE, 0)).entries()
    store.close_all()
    return {"records": counts["records"], "seconds": seconds, "entries": entries, "rss_mib": rss_mib()}


def fill_changelog(bootstrap: str, changelog: str, entries: int) -> None:
    """ENTRIES ledger-shaped records on partition 0 of ``changelog`` (created by the caller)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000})
    now = time.time()
    for number in range(entries):
        key, value = ledger_entry(number, now)
        while True:
            try:
                producer.produce(changelog, key=key, value=value, partition=0)
                break
            except BufferError:
                producer.poll(0.1)
        if number % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0, "the changelog was not written"


def measure(*args: str) -> dict[str, float]:
    """Run one measurement in a fresh process; its JSON."""
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, timeout=1800
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    kind, directory = sys.argv[1], Path(sys.argv[2])
    if kind == "store":
        result = store_run(directory, int(sys.argv[3]))
    else:
        result = restore_run(directory, sys.argv[3], sys.argv[4])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
