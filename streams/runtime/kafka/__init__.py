"""The Kafka side of the runtime: clients, the transactional producer, readers and followers."""
