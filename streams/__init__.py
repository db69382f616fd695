"""Kafka side of mall-notify: events in, routing, sending, outcomes and dead letters out."""
