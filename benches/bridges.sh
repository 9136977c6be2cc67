#!/usr/bin/env bash
# What the tower bridges (crate `rwgi-tower`) cost, in user-space instructions per request,
# each bridged server measured side by side with its baseline in one run:
#   axum-bridge        axum's hello router hosted through ServiceApp on rwgi-server
#     vs axum          the same router on axum::serve                      (budget: <= 1.10x)
#     and axum-hyper   the same router on hyper + hyper-util with hyper's header-read timer:
#                      axum with the slow-client protection rwgi-server has and axum::serve
#                      has not
#   rwgi-hyper-bridge  the rwgi hello app through AppService on hyper + hyper-util
#     vs rwgi-hello    the same app on rwgi-server                         (budget: <= 1.05x)
#   tower-bridge       a hand-written hello tower service through ServiceApp on rwgi-server:
#                      next to rwgi-hello, the cost of the Service -> App bridge alone
#
# Method (as in benches/load.sh and BENCHMARKS.md): the server runs under
# `valgrind --tool=cachegrind --cache-sim=no` with one worker, h2load sends two fixed request
# counts over HTTP/1.1 (16 connections), the server is stopped with SIGTERM, and the difference
# of the two totals divided by the difference of the counts is the cost of one request, so
# start-up cancels. Servers are measured in interleaved rounds. Loopback only; every step is
# bounded by `timeout`; every server started here is stopped on exit.
#
# Usage: bash benches/bridges.sh
# Knobs (environment): ROUNDS=3 ICOUNT_REQUESTS="2000 12000" CONNECTIONS=16 PORT=18500
#   SERVERS="axum axum-hyper axum-bridge rwgi-hello rwgi-hyper-bridge tower-bridge"
#   APP=hello (or json: the axum servers' realistic route, requested as URL_PATH=/hello/world)
set -euo pipefail

ROUNDS=${ROUNDS:-3}
read -r N1 N2 <<<"${ICOUNT_REQUESTS:-2000 12000}"
CONNECTIONS=${CONNECTIONS:-16}
PORT=${PORT:-18500}
HOST=127.0.0.1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS="$ROOT/benches/peers"
BIN="$PEERS/target/release"
WORK=$(mktemp -d /tmp/rwgi-bridges.XXXXXX)
read -r -a SERVERS <<<"${SERVERS:-axum axum-hyper axum-bridge rwgi-hello rwgi-hyper-bridge tower-bridge}"
APP=${APP:-hello}
URL_PATH=${URL_PATH:-/}

SCRIPT=bridges.sh
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

binary() {
  case $1 in
    axum) echo "$BIN/axum-hello" ;;
    *) echo "$BIN/$1" ;;
  esac
}

# count NAME REQUESTS: the server's instruction total after serving REQUESTS; sets ICOUNT.
count() {
  local name=$1 requests=$2 vglog="$WORK/$1.$2.log" out pid waited=0 flags=(--workers 1)
  # The axum servers serve APP.
  [[ $name == axum* ]] && flags+=(--app "$APP")
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
    --log-file="$vglog" "$(binary "$name")" --bind "$HOST:$PORT" "${flags[@]}" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  pid=$!
  PIDS+=("$pid")
  until timeout 1 bash -c "exec 3<>/dev/tcp/$HOST/$PORT" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || die "$name exited early: $(tail -5 "$WORK/$name.err")"
    waited=$((waited + 1))
    ((waited < 600)) || die "$name did not listen within 60 s"
    sleep 0.1
  done
  out=$(timeout 300 h2load --h1 -n "$requests" -c "$CONNECTIONS" -t 1 "http://$HOST:$PORT$URL_PATH" 2>&1) ||
    die "h2load failed: $out"
  grep -q "requests: $requests total, $requests started, $requests done, $requests succeeded" \
    <<<"$out" || die "$name: not every request succeeded: $(grep 'requests:' <<<"$out")"
  kill -TERM "$pid"
  timeout 60 tail --pid="$pid" -f /dev/null || die "$name did not stop on SIGTERM"
  ICOUNT=$(awk '/I *refs:/ { gsub(",", "", $NF); print $NF }' "$vglog")
  [[ -n $ICOUNT ]] || die "no instruction count in $vglog"
}

command -v h2load >/dev/null || die "h2load missing: apt-get install nghttp2-client"
command -v valgrind >/dev/null || die "valgrind missing: apt-get install valgrind"
log "building the peers (release)"
(cd "$PEERS" && timeout 1800 cargo build --release --quiet)

for ((round = 1; round <= ROUNDS; round++)); do
  for name in "${SERVERS[@]}"; do
    log "round $round/$ROUNDS: $name"
    count "$name" "$N1"
    first=$ICOUNT
    count "$name" "$N2"
    awk -v a="$ICOUNT" -v b="$first" -v n=$((N2 - N1)) 'BEGIN { printf "%.1f\n", (a - b) / n }' \
      >>"$WORK/$name.instr"
  done
done

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A MEDIAN
echo "# rwgi-tower bridges, $(date -u +%Y-%m-%dT%H:%MZ), $ROUNDS rounds, h2load --h1 -c $CONNECTIONS, ($N2 - $N1) requests of $URL_PATH, axum app $APP"
printf '%-20s %12s   %s\n' server "instr/req" "each round"
for name in "${SERVERS[@]}"; do
  MEDIAN[$name]=$(median <"$WORK/$name.instr")
  printf '%-20s %12s   %s\n' "$name" "${MEDIAN[$name]}" "$(tr '\n' ' ' <"$WORK/$name.instr")"
done
# ratio A B TEXT: prints TEXT with A's median over B's, when both were measured.
ratio() {
  [[ -n ${MEDIAN[$1]:-} && -n ${MEDIAN[$2]:-} ]] || return 0
  awk -v a="${MEDIAN[$1]}" -v b="${MEDIAN[$2]}" -v t="$3" \
    'BEGIN { printf "%s: %.3fx (%+.0f instructions)\n", t, a / b, a - b }'
}
ratio axum-bridge axum "axum through the bridge on rwgi-server / axum::serve (budget 1.10x)"
ratio axum-bridge axum-hyper "axum through the bridge on rwgi-server / axum on hyper with its header timer"
ratio rwgi-hyper-bridge rwgi-hello "rwgi hello through the bridge on hyper / on rwgi-server (budget 1.05x)"
ratio tower-bridge rwgi-hello "a hello tower service through ServiceApp on rwgi-server / rwgi hello on rwgi-server"
