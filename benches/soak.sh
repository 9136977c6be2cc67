#!/usr/bin/env bash
# Soak: SECONDS of mixed traffic against rwgi-server with WORKERS worker processes — keep-alive
# and new connections, small and large bodies down and up (every byte checked), clients that
# vanish mid-upload and mid-download — with the server's memory (master plus workers, VmRSS)
# sampled every 5 s. Fails on any unexpected answer or checksum mismatch.
#
# The client is benches/peers/src/bin/soak.rs, the server benches/peers/src/bin/soak-server.rs
# (an rwgi app on `rwgi_server::run`, so the master and the workers are the shipped ones).
# Loopback only; every step is bounded by `timeout`; the server is stopped on exit.
#
# Usage: bash benches/soak.sh
# Knobs (environment): SECONDS_=60 CLIENTS=16 WORKERS=2 THREADS=1 PORT=18600
set -euo pipefail

DURATION=${SECONDS_:-60}
CLIENTS=${CLIENTS:-16}
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-1}
PORT=${PORT:-18600}
HOST=127.0.0.1

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS="$ROOT/benches/peers"

log() { printf '%s\n' "$*" >&2; }

SERVER=
cleanup() {
  if [[ -n "$SERVER" ]]; then
    kill -TERM "$SERVER" 2>/dev/null || true
    timeout 40 tail --pid="$SERVER" -f /dev/null 2>/dev/null || kill -KILL "$SERVER" 2>/dev/null || true
  fi
}
trap cleanup EXIT

log "building (release)..."
(cd "$PEERS" && timeout 1800 cargo build --release --bin soak-server --bin soak -q)

LOGS=$(mktemp -d /tmp/rwgi-soak.XXXXXX)
"$PEERS/target/release/soak-server" --bind "$HOST:$PORT" --workers "$WORKERS" \
  --threads "$THREADS" --accesslog off --errorlog "$LOGS/error.log" &
SERVER=$!
deadline=$((SECONDS + 30))
until (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; do
  ((SECONDS < deadline)) || { log "soak.sh: the server did not start"; exit 1; }
  sleep 0.1
done
sleep 1 # every worker up

status=0
timeout $((DURATION + 120)) "$PEERS/target/release/soak" --addr "$HOST:$PORT" --pid "$SERVER" \
  --seconds "$DURATION" --clients "$CLIENTS" || status=$?
echo "error_log_lines $(wc -l <"$LOGS/error.log")"
echo "error_log_errors $(grep -c ' ERROR ' "$LOGS/error.log" || true)"
# What the errors were, the client's address left out: vanished uploads make the app's read
# fail, which the server reports as `answered 500` (to nobody).
grep ' ERROR ' "$LOGS/error.log" | sed -E 's/^.*ERROR //; s/^[^ ]+:[0-9]+:? //' \
  | sort | uniq -c | sort -rn | head -5 || true
rm -rf "$LOGS"
exit "$status"
