#!/usr/bin/env bash
# Connection storm: CONNECTIONS connections opened at once against raw hyper and against
# rwgi-server (single process, hello app, access log off), in the same run.
#
# For each server, `storm` (benches/peers/src/bin/storm.rs) reports the time for the kernel to
# complete every handshake, the time until every storm connection has been answered once (an
# upper bound on the time the server took to accept them all), a request on a new connection
# while the storm is being accepted and, with the storm open and idle, PROBES more; and the
# server's VmRSS before, with the storm open, and idle after one request each, per connection.
#
# The server runs on CPU 0, the client on CPU 1; loopback only; every step is bounded by
# `timeout` and the servers are stopped on exit.
#
# Usage: bash benches/storm.sh
# Knobs (environment): CONNECTIONS=2000 PROBES=50 ROUNDS=3 PORT=18500 THREADS=1
set -euo pipefail

CONNECTIONS=${CONNECTIONS:-2000}
PROBES=${PROBES:-50}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18500}
THREADS=${THREADS:-1}
HOST=127.0.0.1

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS="$ROOT/benches/peers"
SERVER_BIN="$ROOT/target/release/examples/server"

SCRIPT=storm.sh
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

log "building (release)..."
(cd "$ROOT" && timeout 1800 cargo build --release --example server -q)
(cd "$PEERS" && timeout 1800 cargo build --release --bin raw-hyper --bin storm -q)
ulimit -n "$((CONNECTIONS * 2 + 1024))" 2>/dev/null || true

run_one() { # name command...
  local name=$1
  shift
  taskset -c 0 "$@" >/dev/null 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_port "$PORT"
  log "== $name (pid $pid)"
  taskset -c 1 timeout 300 "$PEERS/target/release/storm" --addr "$HOST:$PORT" --pid "$pid" \
    --connections "$CONNECTIONS" --probes "$PROBES" | sed "s/^/$name /"
  kill -TERM "$pid"
  timeout 30 tail --pid="$pid" -f /dev/null || kill -KILL "$pid"
}

for round in $(seq 1 "$ROUNDS"); do
  log "-- round $round"
  run_one raw-hyper "$PEERS/target/release/raw-hyper" --bind "$HOST:$PORT" --workers "$THREADS"
  # worker_connections above the storm, so that every connection is served at once (with the
  # default 1000, the rest wait in the listen queue until connections close); keep-alive long
  # enough to measure the idle storm.
  EXAMPLE_APP=hello run_one rwgi-server "$SERVER_BIN" --bind "$HOST:$PORT" --single-process \
    --threads "$THREADS" --accesslog off --keepalive 60 \
    --worker-connections "$((CONNECTIONS + PROBES + 16))"
done
