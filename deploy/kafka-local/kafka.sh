#!/usr/bin/env bash
# A real single-node Apache Kafka (KRaft, broker+controller) for development and tests.
#
#   kafka.sh up      resolve the official jars with Maven, format storage, start, wait until ready
#   kafka.sh down    stop the broker started by `up` (SIGTERM, then SIGKILL after 30 s)
#   kafka.sh status  print the bootstrap address and exit 0 if the broker answers, 1 otherwise
#   kafka.sh address print the bootstrap address of the running broker
#
# Environment: KAFKA_LOCAL_DIR (default <repo>/.local/kafka), KAFKA_LOCAL_PORT (default: 19092,
# or a free port when that one is taken), KAFKA_LOCAL_HEAP (default 1g: the test suite leaves some
# 15,000 partitions of its topics behind, and 512m ran out).
# The address of the running broker is in $KAFKA_LOCAL_DIR/bootstrap; `mall-notify` reads it when
# KAFKA_BOOTSTRAP_SERVERS is not set, so every command finds the broker whatever port it took.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
state="${KAFKA_LOCAL_DIR:-$repo/.local/kafka}"
heap="${KAFKA_LOCAL_HEAP:-1g}"
pidfile="$state/broker.pid"
addrfile="$state/bootstrap"

log() { echo "kafka-local: $*" >&2; }

# shellcheck source=../local-ports.sh
source "$here/../local-ports.sh"

answers() {  # host:port accepts TCP connections
    python3 - "$1" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
try:
    socket.create_connection((host, int(port)), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

running() {
    [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

classpath() {
    local cp="$state/classpath.txt"
    if [[ ! -s "$cp" || "$here/pom.xml" -nt "$cp" ]]; then
        log "resolving Kafka jars from Maven Central (first run only)"
        mvn -q -B -f "$here/pom.xml" dependency:build-classpath -Dmdep.outputFile="$cp" >&2
    fi
    cat "$cp"
}

choose_ports() {
    local port cport
    if [[ -f "$state/ports" ]]; then
        read -r port cport <"$state/ports"
    fi
    port="${KAFKA_LOCAL_PORT:-${port:-19092}}"
    if ! port_free "$port"; then
        if [[ -n "${KAFKA_LOCAL_PORT:-}" ]]; then
            log "port $port (KAFKA_LOCAL_PORT) is taken"; exit 1
        fi
        port="$(free_port)"
    fi
    if [[ -z "${cport:-}" ]] || ! port_free "$cport" || [[ "$cport" == "$port" ]]; then
        cport="$(free_port)"
    fi
    echo "$port $cport"
}

format_storage() {  # $1 classpath, $2 port, $3 controller port
    local cp="$1" data="$state/data"
    # the configuration is written on every start, so a change to server.properties.in applies
    sed -e "s|@PORT@|$2|g" -e "s|@CONTROLLER_PORT@|$3|g" -e "s|@DATA_DIR@|$data|g" \
        "$here/server.properties.in" >"$state/server.properties"
    if [[ -f "$state/ports" && "$(cat "$state/ports")" == "$2 $3" && -f "$data/logs/meta.properties" ]]; then
        return
    fi
    rm -rf "$data"
    mkdir -p "$data/logs"
    local cluster_id
    cluster_id="$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    java -cp "$cp" "-Dlog4j2.configurationFile=$here/log4j2.properties" "-Dkafka.logs.dir=$state" \
        kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$state/server.properties" >&2
    echo "$2 $3" >"$state/ports"
}

up() {
    mkdir -p "$state"
    if running && answers "$(cat "$addrfile")"; then
        log "already running at $(cat "$addrfile")"
        cat "$addrfile"
        return
    fi
    local cp port cport
    cp="$(classpath)"
    read -r port cport < <(choose_ports)
    format_storage "$cp" "$port" "$cport"
    : >"$state/server.log"
    log "starting broker on 127.0.0.1:$port (heap $heap, data $state/data)"
    nohup java "-Xms128m" "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=$here/log4j2.properties" "-Dkafka.logs.dir=$state" \
        -cp "$cp" kafka.Kafka "$state/server.properties" >"$state/stdout.log" 2>&1 &
    echo $! >"$pidfile"
    echo "127.0.0.1:$port" >"$addrfile"
    for _ in $(seq 1 120); do
        if ! running; then
            log "broker exited during start; last lines of $state/server.log:"
            tail -n 30 "$state/server.log" "$state/stdout.log" >&2 || true
            exit 1
        fi
        if grep -q "Kafka Server started" "$state/server.log" 2>/dev/null && answers "127.0.0.1:$port"; then
            log "ready at 127.0.0.1:$port"
            cat "$addrfile"
            return
        fi
        sleep 0.5
    done
    log "broker did not become ready in 60 s; see $state/server.log"
    down
    exit 1
}

down() {
    if ! running; then
        rm -f "$pidfile"
        log "not running"
        return
    fi
    local pid
    pid="$(cat "$pidfile")"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile" "$addrfile"; log "stopped"; return; }
        sleep 0.5
    done
    log "broker did not stop in 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile" "$addrfile"
}

status() {
    if running && answers "$(cat "$addrfile")"; then
        cat "$addrfile"
        return 0
    fi
    log "not running"
    return 1
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    address) cat "$addrfile" ;;
    *) echo "usage: $0 up|down|status|address" >&2; exit 2 ;;
esac
