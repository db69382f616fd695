#!/usr/bin/env bash
# Run a command with the send log's database: the one in MALL_NOTIFY_DATABASE_URL if set,
# otherwise the local server (started for the command and stopped afterwards, unless it was
# already running).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -n "${MALL_NOTIFY_DATABASE_URL:-}" ]]; then
    exec "$@"
fi
started=""
if ! address="$("$here/postgres.sh" status 2>/dev/null)"; then
    address="$("$here/postgres.sh" up)"
    started=1
fi
stop() {  # keeps the command's exit code, whether or not a server was started here
    local code=$?
    if [[ -n "$started" ]]; then "$here/postgres.sh" down || true; fi
    exit "$code"
}
trap stop EXIT
MALL_NOTIFY_DATABASE_URL="$address" "$@"
