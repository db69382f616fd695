"""The worker runtime: Kafka clients, consume loops, the router, senders and retry forwarder."""
