#!/usr/bin/env bash
# Run a command with the send log's database: the one in MALL_NOTIFY_DATABASE_URL if set,
# otherwise the local server (started for the command and stopped afterwards, unless it was
# already running).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../with-local.sh" "$here/postgres.sh" MALL_NOTIFY_DATABASE_URL "$@"
