"""One partition of a store: a RocksDB on local disk, and the writes not committed yet.

Layout (raw bytes):
- column family ``default``: ``key`` -> ``tag (1 byte) | at (ms, 8 bytes) | payload``, the entry
  exactly as its changelog record carries it (a tombstone deletes it);
- column family ``index``: ``t | tag | at | key`` -> empty, the entries in time order per tag (the
  sweep that drops expired entries, and the lookup of old entries of one tag), and ``m/checkpoint``
  -> the changelog offset up to which the local files reflect the changelog.

An index key left behind by an overwrite is removed when a sweep or a lookup finds it stale, so a
write is two puts and never a read. A write is visible at once to this worker (it is kept in memory
until its transaction commits) and reaches the files only with the commit, so the files never
hold what the changelog may not.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rocksdict import ColumnFamily, Options, Rdict, WriteBatch

from streams.core.errors import MallNotifyError
from streams.runtime.kafka.records import Write

INDEX = "index"
CHECKPOINT = b"m/checkpoint"
HEAD = struct.Struct(">BQ")
"""an entry's tag and time (milliseconds since the epoch)"""
OFFSET = struct.Struct(">Q")
Clock = Callable[[], float]
Change = tuple[bytes, bytes | None]
"""a key and its new stored value (None: deleted), as its changelog record says it"""


class Unreadable(MallNotifyError, ValueError):
    """A stored value or changelog record that is not an entry."""


@dataclass(frozen=True, slots=True)
class Entry:
    tag: int
    at: float
    """seconds since the epoch: the entry lives for its tag's TTL from then"""
    payload: bytes


def encode(tag: int, at: float, payload: bytes) -> bytes:
    return HEAD.pack(tag, int(at * 1000)) + payload


def decode(value: bytes) -> Entry:
    if len(value) < HEAD.size:
        raise Unreadable(f"{len(value)} bytes, not an entry")
    tag, at_ms = HEAD.unpack_from(value)
    return Entry(tag, at_ms / 1000, value[HEAD.size :])


def _index_key(value: bytes, key: bytes) -> bytes:
    return b"t" + value[: HEAD.size] + key


class StorePartition:
    """The entries of one source partition (``changelog``: its changelog topic, same number)."""

    def __init__(
        self,
        path: Path,
        changelog: str,
        number: int,
        options: Options,
        ttls: Callable[[int], float],
        clock: Clock,
    ) -> None:
        self.path = path
        self.changelog = changelog
        self.number = number
        self._options = options
        self._ttl = ttls
        self._clock = clock
        self._pending: dict[bytes, bytes | None] = {}
        """writes whose transaction has not committed yet, by key"""
        self._db, self._index, self._index_cf = self._open()

    def _open(self) -> tuple[Rdict, Rdict, ColumnFamily]:
        self.path.mkdir(parents=True, exist_ok=True)
        db = Rdict(str(self.path), self._options, column_families={INDEX: self._options})
        return db, db.get_column_family(INDEX), db.get_column_family_handle(INDEX)

    # -- reads and writes of the lane ----------------------------------------------------------------
    def get(self, key: bytes) -> Entry | None:
        """The live entry of ``key``: written (committed or not), not deleted, not expired."""
        value = self._pending[key] if key in self._pending else self._db.get(key)
        if value is None:
            return None
        entry = decode(value)
        return entry if self.fresh(entry.tag, entry.at) else None

    def fresh(self, tag: int, at: float) -> bool:
        """Whether an entry of ``tag`` written at ``at`` is within its TTL now."""
        return at > self._clock() - self._ttl(tag)

    def put(self, key: bytes, payload: bytes, at: float, tag: int = 0) -> Write:
        """Keep ``payload`` under ``key``; the changelog record to write in the same transaction."""
        value = encode(tag, at, payload)
        self._pending[key] = value
        return Write(self.changelog, key, value, partition=self.number)

    def delete(self, key: bytes) -> Write:
        self._pending[key] = None
        return Write(self.changelog, key, None, partition=self.number)

    def older(self, tag: int, before: float, limit: int) -> list[tuple[bytes, Entry]]:
        """Up to ``limit`` committed live entries of ``tag`` written before ``before``, oldest first."""
        found: list[tuple[bytes, Entry]] = []
        stale = WriteBatch(raw_mode=True)
        for index_key, key, entry in self._indexed(bytes([tag]), before):
            if len(found) >= limit or len(stale) >= limit:
                break
            if entry is None:
                stale.delete(index_key, self._index_cf)
            else:
                found.append((key, entry))
        self._db.write(stale)
        return [(key, entry) for key, entry in found if self.fresh(tag, entry.at)]

    # -- what the transactions and the restore write ------------------------------------------------
    def committed(self, changes: Iterable[Change], offset: int | None) -> None:
        """Changes whose transaction committed, ``offset``: the last of their changelog records."""
        changes = list(changes)
        self.write(changes, None if offset is None else offset + 1)
        for key, value in changes:
            if key in self._pending and self._pending[key] is value:
                del self._pending[key]

    def write(self, changes: Iterable[Change], checkpoint: int | None) -> None:
        """Write changes to disk in one batch, with the changelog offset they bring the files to."""
        batch = WriteBatch(raw_mode=True)
        for key, value in changes:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
                batch.put(_index_key(value, key), b"", self._index_cf)
        if checkpoint is not None:
            batch.put(CHECKPOINT, OFFSET.pack(checkpoint), self._index_cf)
        self._db.write(batch)

    def checkpoint(self) -> int | None:
        """The changelog offset the files reflect everything before (None: nothing restored here yet)."""
        value = self._index.get(CHECKPOINT)
        return OFFSET.unpack(value)[0] if isinstance(value, bytes) else None

    def wipe(self) -> None:
        """Drop the local files (they are behind what the changelog still holds): restore from scratch."""
        self._close_files()
        shutil.rmtree(self.path, ignore_errors=True)
        self._db, self._index, self._index_cf = self._open()

    # -- upkeep -----------------------------------------------------------------------------------------
    def sweep(self, tags: Iterable[int], limit: int) -> list[tuple[bytes, Entry]]:
        """Delete up to ``limit`` expired entries from disk; what they were."""
        expired: list[tuple[bytes, Entry]] = []
        batch = WriteBatch(raw_mode=True)
        now = self._clock()
        for tag in tags:
            for index_key, key, entry in self._indexed(bytes([tag]), now - self._ttl(tag)):
                if len(batch) >= limit:
                    break
                batch.delete(index_key, self._index_cf)
                if entry is not None and key not in self._pending:
                    batch.delete(key)
                    expired.append((key, entry))
        self._db.write(batch)
        return expired

    def _indexed(self, tag: bytes, before: float) -> Iterable[tuple[bytes, bytes, Entry | None]]:
        """Index entries of ``tag`` before ``before``, each with its key and the entry it names
        (None when the key was overwritten or deleted since: a stale index entry)."""
        prefix = b"t" + tag
        bound = prefix + OFFSET.pack(max(int(before * 1000), 0))
        cursor = self._index.iter()
        cursor.seek(prefix)
        while cursor.valid():
            index_key = cursor.key()
            if not isinstance(index_key, bytes) or index_key >= bound:
                return
            key = index_key[HEAD.size + 1 :]
            value = self._db.get(key)
            live = isinstance(value, bytes) and value[: HEAD.size] == index_key[1 : HEAD.size + 1]
            yield index_key, key, decode(value) if live and isinstance(value, bytes) else None
            cursor.next()

    # -- size -------------------------------------------------------------------------------------------
    def entries(self) -> int:
        """RocksDB's estimate of the keys on disk, plus the writes not committed yet."""
        return (self._db.property_int_value("rocksdb.estimate-num-keys") or 0) + len(self._pending)

    def disk_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.path.glob("*.sst"))

    def close(self) -> None:
        """Close the files; what was not committed is forgotten (the changelog never got it)."""
        self._pending.clear()
        self._close_files()

    def _close_files(self) -> None:
        """Close the database; every handle on it goes, or RocksDB's lock stays held."""
        del self._index_cf
        self._index.close()
        self._db.close()
