#!/usr/bin/env bash
# A real local PostgreSQL (Debian's packages) for development and tests: the send log's store.
#
#   postgres.sh up       initialise the data directory (first run), start, wait until it answers
#   postgres.sh down     stop the server started by `up` (fast shutdown)
#   postgres.sh restart  stop it (fast: every connection is cut) and start it again, same port
#   postgres.sh status   print the connection URL and exit 0 if the server answers, 1 otherwise
#   postgres.sh address  print the connection URL of the running server
#
# Environment: POSTGRES_LOCAL_DIR (default <repo>/.local/postgres), POSTGRES_LOCAL_PORT (default:
# 15432, or a free port when that one is taken). The URL of the running server is in
# $POSTGRES_LOCAL_DIR/address; `mall-notify` reads it when MALL_NOTIFY_DATABASE_URL is not set.
# The binaries: pg_ctl and initdb of Debian's postgresql package (/usr/lib/postgresql/*/bin),
# else unpacked from it with apt-get download under .local/tools/postgresql (no root needed).
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
state="${POSTGRES_LOCAL_DIR:-$repo/.local/postgres}"
data="$state/data"
addrfile="$state/address"
database="mall_notify"

log() { echo "postgres-local: $*" >&2; }

# shellcheck source=../local-ports.sh
source "$here/../local-ports.sh"

bindir() {
    local found
    for found in /usr/lib/postgresql/*/bin "$repo"/.local/tools/postgresql/usr/lib/postgresql/*/bin; do
        if [[ -x "$found/pg_ctl" && -x "$found/initdb" ]]; then
            echo "$found"
            return 0
        fi
    done
    log "no PostgreSQL binaries: unpacking Debian's postgresql package under .local/tools/postgresql"
    command -v apt-get >/dev/null && command -v dpkg >/dev/null || {
        log "needs apt-get and dpkg (Debian or Ubuntu), or PostgreSQL installed"
        return 1
    }
    local work
    work="$(mktemp -d)"
    (cd "$work" && { apt-get download postgresql-15 >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null 2>&1 || true
        apt-get download postgresql-15 >/dev/null
    }; })
    mkdir -p "$repo/.local/tools/postgresql"
    dpkg -x "$work"/postgresql-15_*.deb "$repo/.local/tools/postgresql"
    rm -rf "$work"
    echo "$repo"/.local/tools/postgresql/usr/lib/postgresql/15/bin
}

as_owner() {  # PostgreSQL's programs, as the user that owns the data (not root)
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url() { echo "postgresql://mall_notify@127.0.0.1:$1/$database"; }

answers() {
    local bin="$1" port="$2"
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -d "$database" -U mall_notify 2>/dev/null
}

status() {
    [[ -f "$addrfile" ]] || return 1
    local address port bin
    address="$(cat "$addrfile")"
    port="${address##*:}"
    port="${port%%/*}"
    bin="$(bindir)" || return 1
    answers "$bin" "$port" && echo "$address"
}

up() {
    if address="$(status 2>/dev/null)"; then
        echo "$address"
        return 0
    fi
    local bin port
    bin="$(bindir)"
    mkdir -p "$state"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres "$state"
        as_owner test -w "$state" || {
            log "the postgres user cannot write $state (a parent directory closed to it): set POSTGRES_LOCAL_DIR"
            return 1
        }
    fi
    if [[ ! -s "$data/PG_VERSION" ]]; then
        log "initialising $data"
        as_owner "$bin/initdb" -D "$data" -U mall_notify --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    port="${POSTGRES_LOCAL_PORT:-15432}"
    if ! port_free "$port"; then
        port="$(free_port)"
    fi
    as_owner "$bin/pg_ctl" -D "$data" -l "$state/server.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $state -c max_connections=200 -c fsync=off" start >/dev/null
    as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U mall_notify -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1 \
        || as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U mall_notify "$database"
    url "$port" >"$addrfile"
    log "ready at $(cat "$addrfile")"
    cat "$addrfile"
}

restart() {
    local bin
    bin="$(bindir)"
    status >/dev/null || {
        log "not running: start it with postgres.sh up"
        return 1
    }
    as_owner "$bin/pg_ctl" -D "$data" -l "$state/server.log" -m fast -w -t 60 restart >/dev/null
    status
}

down() {
    local bin
    bin="$(bindir)"
    if [[ -s "$data/postmaster.pid" ]]; then
        as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null || true
    fi
    rm -f "$addrfile"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    restart) restart ;;
    status) status ;;
    address) cat "$addrfile" ;;
    *)
        echo "usage: postgres.sh up|down|restart|status|address" >&2
        exit 2
        ;;
esac
