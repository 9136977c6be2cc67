#!/usr/bin/env bash
# User-space instructions per request of one server, independent of the machine's load:
# the server runs under `valgrind --tool=cachegrind --cache-sim=no` twice, serving N1 and then
# N2 requests from `h2load --h1 -c 16 -t 1` on loopback, is stopped with SIGTERM each time,
# and the figure is (I(N2) - I(N1)) / (N2 - N1), so start-up and shutdown cancel out.
#
# HTTP/2: H2LOAD_PROTOCOL=h2c (h2load without --h1: prior-knowledge HTTP/2 on cleartext).
#
# Usage: bash benches/icount.sh PORT N1 N2 -- SERVER-COMMAND...
# (URL_PATH=/hello/world requests that path instead of /.)
#   bash benches/icount.sh 19000 2000 12000 -- \
#     benches/peers/target/release/hyper-minimal --bind 127.0.0.1:19000 --workers 1 --app bare
set -euo pipefail
port=$1 n1=$2 n2=$3
protocol=(--h1)
[[ ${H2LOAD_PROTOCOL:-h1} == h2c ]] && protocol=()
shift 4
command=("$@")

run() {
  local n=$1
  local log
  log=$(mktemp)
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null --log-file="$log" \
    "${command[@]}" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 150); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.2
  done
  local out
  out=$(timeout 300 h2load "${protocol[@]}" -n "$n" -c 16 -t 1 "http://127.0.0.1:$port${URL_PATH:-/}" 2>&1)
  grep -q "$n succeeded" <<<"$out" || { echo "h2load: not every request succeeded" >&2; exit 1; }
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  grep "I *refs" "$log" | tail -1 | sed 's/.*refs: *//; s/,//g'
  rm -f "$log"
}

a=$(run "$n1")
b=$(run "$n2")
awk -v a="$a" -v b="$b" -v n=$((n2 - n1)) 'BEGIN { printf "%.1f\n", (b - a) / n }'
