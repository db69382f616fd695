#!/usr/bin/env bash
# Run a command against Kafka: the cluster in KAFKA_BOOTSTRAP_SERVERS if set, otherwise the local
# broker (started for the command and stopped afterwards, unless it was already running).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../with-local.sh" "$here/kafka.sh" KAFKA_BOOTSTRAP_SERVERS "$@"
