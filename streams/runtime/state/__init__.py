"""Partitioned state on local disk: one :class:`~streams.runtime.state.store.Store` per lane, a
:class:`~streams.runtime.state.partition.StorePartition` (a RocksDB) per owned partition, a
compacted changelog topic partitioned like the source, and one restore path
(:mod:`~streams.runtime.state.recovery`).

How it keeps its promises (the model: Kafka Streams' RocksDB stores and quixstreams' ``state/``):
- a write is kept in memory only until the Kafka transaction that carries its changelog record
  commits; then it is written to RocksDB with the changelog offset it reflects (the checkpoint),
  in one atomic batch. So the local files hold committed state only, and a crash loses nothing
  that a restart does not read back from the changelog's tail;
- memory is a bounded block cache and write buffers shared by every partition of the worker,
  whatever the number of entries;
- entries live for the store's TTL, counted from the time in each entry (a restore skips older
  ones, a sweep deletes them from disk).
"""
