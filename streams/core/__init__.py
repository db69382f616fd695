"""The pure core: no Kafka, no HTTP, no clock of its own. Its exceptions are in ``errors``."""
