#!/usr/bin/env bash
# rwgi-server against the servers a Python team would otherwise run, in one run on this machine:
# gunicorn (sync workers, and gthread workers) and granian (WSGI), each hosting the WSGI twins
# of the example apps (benches/python/apps.py), and rwgi-server hosting `hello` and `echo`
# (examples/server) with its default settings, access log on (to a file).
#
# For each app and server, REPEATS rounds (servers in a rotating order within a round), each on
# a freshly started server:
#   - a warm-up of WARMUP requests, whose rate sets the request count of about DURATION
#     seconds, then
#   - the server process tree's user+sys CPU time (/proc/*/stat of the server and every
#     process descended from it: a master and its workers) before and after an h2load --h1
#     run of that many requests over CONNECTIONS connections;
#   - requests/s (h2load's) and CPU time per request (the CPU difference / requests answered).
# Every request must succeed with a 2xx. Printed: the median (min-max) of each, and the ratios
# of the medians to rwgi-server's.
#
# `hello` is a GET of /; `echo` a POST of a 1 KiB body to /echo. The server runs on CPU 0 and
# h2load on CPU 1 (taskset); everything targets 127.0.0.1; every step is bounded by `timeout`;
# every server started is stopped on exit.
#
# Workers mode (rwgi-server with 2 worker processes against 1, both CPUs for the servers):
#   SERVERS="rwgi-server rwgi-server-2w" SERVER_CPUS=0,1 CLIENT_CPUS=0,1 APPS=hello \
#     REPEATS=5 bash benches/compare.sh
#
# Usage: bash benches/compare.sh
#   (installs h2load if missing, as root; gunicorn and granian go into a venv, VENV, from PyPI
#   at the versions of benches/python/requirements.txt)
# Knobs (environment): REPEATS=3 DURATION=3 CONNECTIONS=32 WARMUP=2000 PY_WORKERS=2
#                      SERVER_CPUS=0 CLIENT_CPUS=1 RWGI_ARGS=""
#                      PY_THREADS=4 PORT=18600 APPS="hello echo"
#                      SERVERS="rwgi-server gunicorn-sync gunicorn-gthread granian"
#                      VENV=target/bench-venv
set -euo pipefail

REPEATS=${REPEATS:-3}
DURATION=${DURATION:-3}
CONNECTIONS=${CONNECTIONS:-32}
WARMUP=${WARMUP:-2000}
PY_WORKERS=${PY_WORKERS:-2}
PY_THREADS=${PY_THREADS:-4}
PORT=${PORT:-18600}
read -r -a APPS <<<"${APPS:-hello echo}"
read -r -a SERVERS <<<"${SERVERS:-rwgi-server gunicorn-sync gunicorn-gthread granian}"
HOST=127.0.0.1
# Where the servers and h2load run (taskset lists). The workers mode lets the servers use both.
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
# Extra rwgi-server flags (the workers mode: --workers 2).
read -r -a RWGI_ARGS <<<"${RWGI_ARGS:-}"
RUNS=0

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/target/bench-venv}
PYTHON_APPS="$ROOT/benches/python"
SERVER_BIN="$ROOT/target/release/examples/server"
WORK=$(mktemp -d /tmp/rwgi-compare.XXXXXX)

SCRIPT=compare.sh
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

# --- setup ----------------------------------------------------------------------------------
if ! command -v h2load >/dev/null; then
  [[ $(id -u) == 0 ]] || die "h2load missing: apt-get install nghttp2-client"
  timeout 600 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq nghttp2-client >/dev/null
fi
(($(nproc) >= 2)) || die "needs 2 CPUs: one for the servers, one for h2load"
if ! "$VENV/bin/python" -c 'import gunicorn, granian' 2>/dev/null; then
  log "installing gunicorn and granian into $VENV"
  timeout 300 python3 -m venv "$VENV"
  timeout 900 "$VENV/bin/pip" install -q -r "$PYTHON_APPS/requirements.txt"
fi
log "building the example server (release)"
(cd "$ROOT" && timeout 1800 cargo build --release --quiet --example server)
head -c 1024 /dev/urandom >"$WORK/body.bin"

# --- the servers ----------------------------------------------------------------------------
# start NAME APP PORT: starts server NAME hosting APP on the server CPUs; sets STARTED_PID once
# it answers.
start() {
  local name=$1 app=$2 port=$3
  ! (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null || die "something already listens on $port"
  case $name in
    rwgi-server)
      EXAMPLE_APP=$app exec taskset -c "$SERVER_CPUS" "$SERVER_BIN" --bind "$HOST:$port" \
        --accesslog "$WORK/access.log" "${RWGI_ARGS[@]}" ;;
    rwgi-server-2w) # the workers mode: the same with two worker processes
      EXAMPLE_APP=$app exec taskset -c "$SERVER_CPUS" "$SERVER_BIN" --bind "$HOST:$port" \
        --accesslog "$WORK/access.log" --workers 2 "${RWGI_ARGS[@]}" ;;
    gunicorn-sync)
      exec taskset -c "$SERVER_CPUS" "$VENV/bin/gunicorn" --chdir "$PYTHON_APPS" -k sync \
        -w "$PY_WORKERS" -b "$HOST:$port" "apps:$app" ;;
    gunicorn-gthread)
      exec taskset -c "$SERVER_CPUS" "$VENV/bin/gunicorn" --chdir "$PYTHON_APPS" -k gthread \
        -w "$PY_WORKERS" --threads "$PY_THREADS" -b "$HOST:$port" "apps:$app" ;;
    granian)
      exec taskset -c "$SERVER_CPUS" "$VENV/bin/granian" --interface wsgi --working-dir "$PYTHON_APPS" \
        --host "$HOST" --port "$port" --workers "$PY_WORKERS" "apps:$app" ;;
    *) die "no server named $name" ;;
  esac >>"$WORK/$name.out" 2>>"$WORK/$name.err" & # each branch execs: the job is the server
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  local deadline=$((SECONDS + 60))
  until check "$app" "$port" 2>/dev/null; do
    kill -0 "$STARTED_PID" 2>/dev/null || die "$name exited early: $(tail -5 "$WORK/$name.err")"
    ((SECONDS < deadline)) || die "$name did not answer on $port within 60 s"
    sleep 0.2
  done
}

# check APP PORT: the server on PORT answers APP's request as APP does.
check() {
  case $1 in
    hello) [[ $(curl -sS --max-time 5 "http://$HOST:$2/") == "Hello, World!" ]] ;;
    echo)
      curl -sS --max-time 5 --data-binary @"$WORK/body.bin" "http://$HOST:$2/echo" |
        grep -q '"body_length":1024' ;;
  esac
}

# load APP PORT ARGS...: h2load --h1 against APP's request on PORT; prints its output.
load() {
  local app=$1 port=$2
  shift 2
  local body=() path=/
  if [[ $app == echo ]]; then body=(-d "$WORK/body.bin"); path=/echo; fi
  timeout $((DURATION + 120)) taskset -c "$CLIENT_CPUS" h2load --h1 -c "$CONNECTIONS" -t 1 \
    "${body[@]}" "$@" "http://$HOST:$port$path" 2>&1
}

# measure NAME APP: one round for one server; appends to $WORK/NAME.APP.rps and .cpu.
measure() {
  local name=$1 app=$2 port=$((PORT + RUNS)) out requests before after done_ ok
  RUNS=$((RUNS + 1)) # a fresh port each time: nothing of the last server can answer
  start "$name" "$app" "$port"
  local pid=$STARTED_PID
  # The warm-up also tells how many requests make about DURATION seconds (h2load's timed mode
  # fails on servers that close every connection, as gunicorn's sync workers do).
  out=$(load "$app" "$port" -n "$WARMUP") || die "$name $app: the warm-up failed: $out"
  requests=$(awk -v d="$DURATION" -v w="$WARMUP" '/^finished in/ {
      gsub(",", "", $4); n = int($4 * d); print (n > w) ? n : w }' <<<"$out")
  before=$(tree_cpu_us "$pid")
  out=$(load "$app" "$port" -n "$requests") || die "$name $app: h2load failed: $out"
  after=$(tree_cpu_us "$pid")
  stop "$pid"
  done_=$(awk '/^requests:/ { print $8 }' <<<"$out")
  ok=$(awk '/^status codes:/ { gsub(",", "", $3); print $3 }' <<<"$out")
  [[ -n $done_ && $done_ -gt 0 && $ok == "$done_" ]] ||
    die "$name $app: not every request got a 2xx: $(grep -E '^(requests|status codes):' <<<"$out")"
  awk '/^finished in/ { gsub(",", "", $4); print $4 }' <<<"$out" >>"$WORK/$name.$app.rps"
  awk -v a="$after" -v b="$before" -v n="$done_" 'BEGIN { printf "%.2f\n", (a - b) / n }' \
    >>"$WORK/$name.$app.cpu"
  log "  $name $app: $(tail -1 "$WORK/$name.$app.rps") req/s, $(tail -1 "$WORK/$name.$app.cpu") us CPU/request"
}

# --- the rounds -----------------------------------------------------------------------------
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for app in "${APPS[@]}"; do
  for ((round = 0; round < REPEATS; round++)); do
    log "$app, round $((round + 1))/$REPEATS"
    for ((k = 0; k < ${#SERVERS[@]}; k++)); do
      measure "${SERVERS[$(((k + round) % ${#SERVERS[@]}))]}" "$app"
    done
  done
done
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- report ---------------------------------------------------------------------------------
echo "# benches/compare.sh, $(date -u +%Y-%m-%dT%H:%MZ): h2load --h1 -c $CONNECTIONS, about $DURATION s a run, median (min-max) of $REPEATS"
echo "# servers on CPUs $SERVER_CPUS, h2load on CPUs $CLIENT_CPUS; rwgi-server flags: ${RWGI_ARGS[*]:-(defaults)}; gunicorn/granian with $PY_WORKERS workers (gthread: $PY_THREADS threads each)"
for app in "${APPS[@]}"; do
  echo
  printf '%-18s %-6s %30s %12s %30s %16s\n' server app "requests/s" "rwgi-server /" \
    "CPU time/request (us)" "rwgi-server /"
  read -r base_rps _ _ < <(stats <"$WORK/rwgi-server.$app.rps")
  read -r base_cpu _ _ < <(stats <"$WORK/rwgi-server.$app.cpu")
  for name in "${SERVERS[@]}"; do
    read -r rps lo hi < <(stats <"$WORK/$name.$app.rps")
    read -r cpu clo chi < <(stats <"$WORK/$name.$app.cpu")
    printf '%-18s %-6s %30s %12s %30s %16s\n' "$name" "$app" "$rps ($lo-$hi)" \
      "$(ratio "$base_rps" "$rps")" "$cpu ($clo-$chi)" "$(ratio "$base_cpu" "$cpu")"
  done
done
