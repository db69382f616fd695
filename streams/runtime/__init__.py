"""The worker runtime, in three rooms and the worker that puts them together:

- ``kafka/``: every Kafka client's configuration, the one transactional producer, the publisher,
  reading topics to their end, compacted topics followed as tables, partition ends (lag);
- ``state/``: the partitioned store on local disk, its changelog and the one restore path;
- ``lanes/``: the consume loop and what runs on it: the router, a sender per channel (ledger,
  code limits, SMS charges), the retry forwarder, the receipts' pairing;
- ``worker.py``, ``supervisor.py``, ``health.py``, ``web.py``, ``metrics.py``: one process of them.

Lanes call down (into ``state`` and ``kafka``), never back: a lane finishes a record with
:meth:`~streams.runtime.lanes.lane.Lane.finish`, and the transactions write a committed
changelog record to its store.

Errors, in one place:

    KafkaException / KafkaError (confluent-kafka)   translated once, by kafka.clients.write_problem:
        record    the record cannot be written as it is   -> it ends as a dead letter that fits
        refused   a lasting refusal (authorization...)    -> a few tries, then the same
        outage    anything else                           -> tried again; the partition waits, visibly
    NotOwned (state)           a lane asked for the state of a partition it lost meanwhile;
                               the record is left to the partition's new owner
    RuntimeError               a lane or task that cannot go on (a delivery that raised, no
                               settings topic): the supervisor restarts it with backoff
    TimeoutError               a changelog read that takes too long: the restore is tried again

Provider errors never reach the runtime as exceptions: channels answer with a classified
SendResult, and a channel that raises anyway is treated as a transient failure.
"""
