#!/usr/bin/env bash
# Run a command against Kafka: the cluster in KAFKA_BOOTSTRAP_SERVERS if set, otherwise the local
# broker (started for the command and stopped afterwards, unless it was already running).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    exec "$@"
fi
started=""
if ! address="$("$here/kafka.sh" status 2>/dev/null)"; then
    address="$("$here/kafka.sh" up)"
    started=1
fi
stop() {  # keeps the command's exit code, whether or not a broker was started here
    local code=$?
    if [[ -n "$started" ]]; then "$here/kafka.sh" down || true; fi
    exit "$code"
}
trap stop EXIT
KAFKA_BOOTSTRAP_SERVERS="$address" "$@"
