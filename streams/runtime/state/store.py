"""A lane's store: the partitions it owns, each a :class:`StorePartition` under
``<state dir>/<store>/<topic>-<partition>``, and the changelog topic of each consumed topic.

Every store of a worker shares one :class:`Disk`: one block cache and one budget for the write
buffers, so the worker's memory stays the same however many entries and partitions it holds.
"""

from __future__ import annotations

import fcntl
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rocksdict import BlockBasedOptions, Cache, DBCompressionType, Options, WriteBufferManager

from streams.core.errors import MallNotifyError
from streams.runtime.state.partition import Change, Entry, StorePartition

Partition = tuple[str, int]
"""(topic, partition) of the records the entries are about"""
SWEEP_EVERY_SECONDS = 1.0
SWEEP_LIMIT = 5_000
"""index entries a sweep of one partition looks at, at most (it goes on at the next)"""


class NotOwned(MallNotifyError):
    """The state of a partition this lane does not own (any more) was asked for."""


class StateDirInUse(MallNotifyError):
    """Another worker keeps its state in the same directory."""


def identity(directory: Path) -> str:
    """The worker's identity, kept in its state directory (made on first use): one worker, one
    directory, whatever host or process it runs as."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "worker-id"
    if not path.exists():
        path.write_text(uuid.uuid4().hex[:16] + "\n")
    return path.read_text().strip()


def lock_directory(directory: Path) -> TextIO:
    """Hold the state directory for this process (released when it exits); StateDirInUse when
    another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = (directory / ".lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StateDirInUse(
            f"MALL_NOTIFY_STATE_DIR={directory} is used by another worker: give each worker its own"
        ) from None
    return handle


@dataclass
class Disk:
    """RocksDB's memory, shared by every partition of every store of a worker."""

    directory: Path
    cache_bytes: int = 32 << 20
    write_buffer_bytes: int = 32 << 20
    options: Options = field(init=False)

    def __post_init__(self) -> None:
        cache = Cache(self.cache_bytes)
        table = BlockBasedOptions()
        table.set_block_cache(cache)
        table.set_bloom_filter(10, False)
        table.set_cache_index_and_filter_blocks(True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.create_missing_column_families(True)
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(
            WriteBufferManager.new_write_buffer_manager_with_cache(self.write_buffer_bytes, False, cache)
        )
        options.set_write_buffer_size(4 << 20)
        options.set_max_write_buffer_number(2)
        options.set_compression_type(DBCompressionType.lz4())
        options.set_max_open_files(64)
        options.set_keep_log_file_num(2)
        options.set_max_log_file_size(1 << 20)
        options.set_max_total_wal_size(16 << 20)
        options.enable_statistics()  # one Statistics for every database opened with these options
        self.options = options
        self.cache = cache

    def cache_hit_ratio(self) -> float | None:
        """Block cache hits / lookups since the worker started (None before any lookup)."""
        counts = dict.fromkeys(("rocksdb.block.cache.hit", "rocksdb.block.cache.miss"), 0)
        for line in (self.options.get_statistics() or "").splitlines():
            name, _, rest = line.partition(" COUNT : ")
            if name in counts:
                counts[name] = int(rest.split()[0])
        lookups = sum(counts.values())
        return counts["rocksdb.block.cache.hit"] / lookups if lookups else None


class Store:
    """The keyed entries of the partitions a lane owns, for the topics it consumes."""

    def __init__(
        self,
        name: str,
        changelogs: Mapping[str, str],
        disk: Disk,
        ttl_seconds: float,
        ttls: Mapping[int, float] | None = None,
        clock: Callable[[], float] = time.time,
        tags: tuple[int, ...] = (0,),
    ) -> None:
        self.name = name
        self.changelogs = dict(changelogs)
        """consumed topic -> its changelog topic"""
        self._sources = {changelog: topic for topic, changelog in self.changelogs.items()}
        self.disk = disk
        self.ttl = ttl_seconds
        self._ttls = dict(ttls or {})
        """per tag, when it differs from ``ttl_seconds``"""
        self.tags = tags
        """the tags of the entries its users write"""
        self.clock = clock
        self._partitions: dict[Partition, StorePartition] = {}
        self._swept_at = 0.0
        STORES.add(self)

    def ttl_of(self, tag: int) -> float:
        return self._ttls.get(tag, self.ttl)

    def covers(self, topic: str) -> bool:
        """Whether records of ``topic`` have state here."""
        return topic in self.changelogs

    def partition(self, source: Partition) -> StorePartition:
        """The state of an owned partition; NotOwned when this lane does not own it."""
        state = self._partitions.get(source)
        if state is None:
            raise NotOwned(source)
        return state

    def owned(self) -> Iterator[tuple[Partition, StorePartition]]:
        yield from list(self._partitions.items())

    def open(self, source: Partition) -> StorePartition:
        """The partition's files, opened (created when missing); not restored yet."""
        state = self._partitions.get(source)
        if state is None:
            topic, number = source
            path = self.disk.directory / self.name / f"{topic}-{number}"
            state = StorePartition(
                path, self.changelogs[topic], number, self.disk.options, self.ttl_of, self.clock
            )
            self._partitions[source] = state
        return state

    def close(self, sources: Iterable[Partition]) -> None:
        """Close the partitions' files (kept on disk: a later owner here restores only the tail)."""
        for source in sources:
            state = self._partitions.pop(source, None)
            if state is not None:
                state.close()

    def close_all(self) -> None:
        self.close(list(self._partitions))

    def committed(self, changelog: str, number: int, changes: Iterable[Change], offset: int | None) -> None:
        """A transaction carrying these changelog records committed: write them to disk."""
        state = self._partitions.get((self._sources[changelog], number))
        if state is not None:  # else lost or revoked meanwhile: its next owner reads the changelog
            state.committed(changes, offset)

    def sweep(self) -> list[tuple[Partition, bytes, Entry]]:
        """Drop expired entries from disk (at most once a second); what was dropped."""
        now = time.monotonic()
        if now - self._swept_at < SWEEP_EVERY_SECONDS:
            return []
        self._swept_at = now
        return [
            (source, key, entry)
            for source, state in self.owned()
            for key, entry in state.sweep(self.tags, SWEEP_LIMIT)
        ]

    def entries(self) -> int:
        return sum(state.entries() for state in self._partitions.values())


STORES: weakref.WeakSet[Store] = weakref.WeakSet()
"""every store of the process, for the metrics"""
