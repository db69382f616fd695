"""The worker runtime: Kafka clients, consume loops (lanes), the router, a sender per channel, the
retry forwarder, partitioned state (ledgers), the one transactional producer, supervision.

Errors, in one place:

    KafkaException / KafkaError (confluent-kafka)   translated once, by clients.write_problem:
        record    the record cannot be written as it is   -> it ends as a dead letter that fits
        refused   a lasting refusal (authorization...)    -> a few tries, then the same
        outage    anything else                           -> tried again; the partition waits, visibly
    NotOwned (ledger)          a lane asked for the state of a partition it lost meanwhile;
                               the record is left to the partition's new owner
    RuntimeError               a lane or task that cannot go on (a delivery that raised, no
                               settings topic): the supervisor restarts it with backoff
    TimeoutError               a changelog read that takes too long: the restore is tried again

Provider errors never reach the runtime as exceptions: channels answer with a classified
SendResult, and a channel that raises anyway is treated as a transient failure.
"""
