#!/usr/bin/env bash
# Run a command with a local service: with-local.sh SERVICE_SCRIPT VARIABLE command...
# The service named in $VARIABLE if it is set; otherwise the local one of SERVICE_SCRIPT (its
# `status` prints its address; `up` starts it and prints it), started for the command and stopped
# afterwards unless it was already running. The command gets the address in $VARIABLE.
set -euo pipefail
script="$1" variable="$2"
shift 2
if [[ -n "${!variable:-}" ]]; then
    exec "$@"
fi
started=""
if ! address="$("$script" status 2>/dev/null)"; then
    address="$("$script" up)"
    started=1
fi
stop() {  # keeps the command's exit code, whether or not the service was started here
    local code=$?
    if [[ -n "$started" ]]; then "$script" down || true; fi
    exit "$code"
}
trap stop EXIT
env "$variable=$address" "$@"
