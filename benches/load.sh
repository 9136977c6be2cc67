#!/usr/bin/env bash
# Load benchmark: what the rwgi reference server costs over raw hyper, over real sockets.
#
# One run measures, for raw hyper's service_fn hello world, the reference server hosting
# `hello`, the same behind three pass-through middleware (`hello-stack`) and axum's hello world:
#   - requests/s and p99 latency (wrk, REPEATS runs of DURATION seconds, interleaved),
#   - server CPU time per request (the server's threads' on-CPU time, from
#     /proc/PID/task/*/schedstat, over a fixed request count sent by h2load),
#   - user-space instructions per request (cachegrind, two fixed request counts, difference),
# and the 1 GiB streamed download and upload (throughput, server CPU time and peak RSS).
# Every figure is printed as median and min-max. Requests/s, latency and CPU time are compared
# round by round: each round measures every server back to back, the ratio to raw hyper is taken
# within the round, and the median (min-max) of those ratios is printed, because conditions on a
# shared machine drift between rounds far more than within one.
#
# The server runs on CPU 0 and the load generator on CPU 1 (taskset); everything targets
# 127.0.0.1 only, every step is bounded by `timeout`, and the servers are stopped on exit.
#
# Usage: bash benches/load.sh            (as root, installs wrk, h2load and valgrind if missing)
# Knobs (environment): REPEATS=9 DURATION=3 CONNECTIONS=16 WORKERS=1 CPU_REQUESTS=100000
#                      ICOUNT_REQUESTS="2000 12000" STREAM_REPEATS=5 SKIP_STREAM=0
#                      STREAM_KINDS="download upload"
#                      SKIP_REQUESTS=0 PORT=18400
set -euo pipefail

REPEATS=${REPEATS:-9}
DURATION=${DURATION:-3}
CONNECTIONS=${CONNECTIONS:-16}
WORKERS=${WORKERS:-1}
CPU_REQUESTS=${CPU_REQUESTS:-100000}
read -r ICOUNT_N1 ICOUNT_N2 <<<"${ICOUNT_REQUESTS:-2000 12000}"
STREAM_REPEATS=${STREAM_REPEATS:-5}
SKIP_STREAM=${SKIP_STREAM:-0}
read -r -a STREAM_KINDS <<<"${STREAM_KINDS:-download upload}"
SKIP_REQUESTS=${SKIP_REQUESTS:-0}
PORT=${PORT:-18400}
HOST=127.0.0.1
SERVER_CPU=0
CLIENT_CPU=1

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS="$ROOT/benches/peers"
WORK=$(mktemp -d /tmp/rwgi-load.XXXXXX)
SERVER_BIN="$ROOT/target/release/examples/server"
PEER_BIN="$PEERS/target/release"

SCRIPT=load.sh
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

# The command line of each server; $1 = name, $2 = port.
server_cmd() {
  local bind="$HOST:$2"
  case $1 in
    raw-hyper) echo "$PEER_BIN/raw-hyper --bind $bind --workers $WORKERS" ;;
    rwgi-hello) echo "$SERVER_BIN --bind $bind --threads $WORKERS --single-process --accesslog off" ;;
    rwgi-hello-stack) echo "$SERVER_BIN --bind $bind --threads $WORKERS --single-process --accesslog off" ;;
    axum) echo "$PEER_BIN/axum-hello --bind $bind --workers $WORKERS" ;;
    raw-hyper-stream) echo "$PEER_BIN/raw-hyper --bind $bind --workers $WORKERS --app stream" ;;
    rwgi-echo) echo "$SERVER_BIN --bind $bind --threads $WORKERS --single-process --accesslog off" ;;
    rwgi-download) echo "$PEER_BIN/rwgi-download --bind $bind --workers $WORKERS" ;;
    *) die "no server named $1" ;;
  esac
}
SERVERS=(raw-hyper rwgi-hello rwgi-hello-stack axum)

# The environment a server needs: which example app the rwgi server hosts. Set outside any
# wrapper, since valgrind follows the program it starts, not a program `env` starts.
server_env() {
  case $1 in
    rwgi-hello) echo "EXAMPLE_APP=hello" ;;
    rwgi-hello-stack) echo "EXAMPLE_APP=hello-stack" ;;
    rwgi-echo) echo "EXAMPLE_APP=echo" ;;
  esac
}

# start NAME PORT [WRAPPER...]: starts a server pinned to the server CPU; sets STARTED_PID.
start() {
  local name=$1 port=$2
  shift 2
  # shellcheck disable=SC2046
  env $(server_env "$name") taskset -c "$SERVER_CPU" "$@" $(server_cmd "$name" "$port") \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  local waited=0
  until timeout 1 bash -c "exec 3<>/dev/tcp/$HOST/$port" 2>/dev/null; do
    kill -0 "$STARTED_PID" 2>/dev/null || die "$name exited early: $(tail -5 "$WORK/$name.err")"
    waited=$((waited + 1))
    ((waited < 600)) || die "$name did not listen on $port within 60 s"
    sleep 0.1
  done
}

# --- measurements ---------------------------------------------------------------------------
# h2load over HTTP/1.1 with a fixed request count; fails unless every request succeeded.
drive() {
  local port=$1 requests=$2 out
  out=$(timeout 300 taskset -c "$CLIENT_CPU" h2load --h1 -n "$requests" -c "$CONNECTIONS" -t 1 \
    "http://$HOST:$port/" 2>&1) || die "h2load failed: $out"
  grep -q "requests: $requests total, $requests started, $requests done, $requests succeeded" \
    <<<"$out" || die "not every request succeeded: $(grep 'requests:' <<<"$out")"
}

# Nanoseconds on CPU of all threads of a process.
cpu_ns() {
  cat /proc/"$1"/task/*/schedstat | awk '{ sum += $1 } END { printf "%.0f\n", sum }'
}

# wrk for DURATION seconds against server NAME; appends to $WORK/NAME.rps and NAME.p99 (us).
wrk_run() {
  local name=$1 out
  out=$(timeout $((DURATION + 30)) taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" \
    -d"${DURATION}s" --latency "http://$HOST:${PORT_OF[$name]}/" 2>&1) || die "wrk failed: $out"
  if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then die "wrk saw errors: $out"; fi
  awk '/Requests\/sec:/ { print $2 }' <<<"$out" >>"$WORK/$name.rps"
  awk '$1 == "99%" {
      v = $2
      if (v ~ /us$/) print v + 0
      else if (v ~ /ms$/) print (v + 0) * 1000
      else if (v ~ /s$/) print (v + 0) * 1000000
    }' <<<"$out" >>"$WORK/$name.p99"
}

# Instructions of server NAME under cachegrind that served $2 requests; sets ICOUNT.
instructions() {
  local name=$1 requests=$2 vglog="$WORK/$1.cachegrind.$2"
  start "$name" "${PORT_OF[$name]}" valgrind --tool=cachegrind --cache-sim=no \
    --cachegrind-out-file=/dev/null --log-file="$vglog"
  local pid=$STARTED_PID
  drive "${PORT_OF[$name]}" "$requests"
  stop "$pid"
  ICOUNT=$(awk '/I *refs:/ { gsub(",", "", $NF); print $NF }' "$vglog")
  [[ -n $ICOUNT ]] || die "no instruction count in $vglog"
}

# paired NAME METRIC: the ratio of NAME's METRIC to raw hyper's in each round (line by line),
# printed as "median (min-max)".
paired() {
  paste -d' ' "$WORK/$1.$2" "$WORK/raw-hyper.$2" | awk '{ printf "%.6f\n", $1 / $2 }' | stats |
    awk '{ printf "%.3f (%.3f-%.3f)", $1, $2, $3 }'
}

declare -A PORT_OF PID_OF

# --- setup ----------------------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v valgrind >/dev/null || need+=(valgrind)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
  [[ $(id -u) == 0 ]] || die "missing ${need[*]}: run as root or install them"
  log "installing ${need[*]}"
  timeout 600 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "${need[@]}" >/dev/null
fi
(($(nproc) >= 2)) || die "needs 2 CPUs: one for the server, one for the load generator"

log "building the reference server and the peers (release)"
(cd "$ROOT" && timeout 1800 cargo build --release --quiet --example server)
(cd "$PEERS" && timeout 1800 cargo build --release --quiet)

cat <<EOF
# rwgi load benchmark, $(date -u +%Y-%m-%dT%H:%MZ)
machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r)
rustc: $(rustc --version)
server on CPU $SERVER_CPU with --workers $WORKERS, load on CPU $CLIENT_CPU, $CONNECTIONS connections
wrk: $REPEATS x ${DURATION}s; CPU: $REPEATS x $CPU_REQUESTS requests (h2load); instructions: $ICOUNT_N1 and $ICOUNT_N2 requests under cachegrind
EOF

if [[ $SKIP_REQUESTS != 1 ]]; then
# --- throughput, latency and CPU time: all servers up at once, runs interleaved -------------
i=0
for name in "${SERVERS[@]}"; do
  PORT_OF[$name]=$((PORT + i))
  i=$((i + 1))
  start "$name" "${PORT_OF[$name]}"
  PID_OF[$name]=$STARTED_PID
  drive "${PORT_OF[$name]}" 2000 # warm-up
done

for ((rep = 1; rep <= REPEATS; rep++)); do
  log "round $rep/$REPEATS"
  # Each round starts with a different server, so that no server always runs first.
  for ((k = 0; k < ${#SERVERS[@]}; k++)); do
    name=${SERVERS[$(((k + rep) % ${#SERVERS[@]}))]}
    wrk_run "$name"
    before=$(cpu_ns "${PID_OF[$name]}")
    drive "${PORT_OF[$name]}" "$CPU_REQUESTS"
    after=$(cpu_ns "${PID_OF[$name]}")
    awk -v a="$after" -v b="$before" -v n="$CPU_REQUESTS" \
      'BEGIN { printf "%.4f\n", (a - b) / n / 1000 }' >>"$WORK/$name.cpu"
  done
done
for name in "${SERVERS[@]}"; do stop "${PID_OF[$name]}"; done

# --- instructions per request ---------------------------------------------------------------
for name in "${SERVERS[@]}"; do
  log "cachegrind: $name"
  for ((rep = 1; rep <= 3; rep++)); do
    instructions "$name" "$ICOUNT_N1"
    i1=$ICOUNT
    instructions "$name" "$ICOUNT_N2"
    awk -v a="$ICOUNT" -v b="$i1" -v n=$((ICOUNT_N2 - ICOUNT_N1)) \
      'BEGIN { printf "%.1f\n", (a - b) / n }' >>"$WORK/$name.instr"
  done
done

# --- report ---------------------------------------------------------------------------------
echo
echo "## Per request (median, min-max over the runs; ratio = median (min-max) of the per-round ratios to raw hyper)"
printf '%-18s %26s %22s %20s %22s %24s %22s %26s %8s\n' server "requests/s" ratio \
  "p99 latency (us)" ratio "CPU time/request (us)" ratio "instructions/request" ratio
read -r base_ins _ _ < <(stats <"$WORK/raw-hyper.instr")
for name in "${SERVERS[@]}"; do
  read -r rps rps_lo rps_hi < <(stats <"$WORK/$name.rps")
  read -r p99 p99_lo p99_hi < <(stats <"$WORK/$name.p99")
  read -r cpu cpu_lo cpu_hi < <(stats <"$WORK/$name.cpu")
  read -r ins ins_lo ins_hi < <(stats <"$WORK/$name.instr")
  printf '%-18s %26s %22s %20s %22s %24s %22s %26s %8s\n' "$name" \
    "$rps ($rps_lo-$rps_hi)" "$(paired "$name" rps)" \
    "$p99 ($p99_lo-$p99_hi)" "$(paired "$name" p99)" \
    "$cpu ($cpu_lo-$cpu_hi)" "$(paired "$name" cpu)" \
    "$ins ($ins_lo-$ins_hi)" "$(ratio "$ins" "$base_ins")"
done
fi

# --- streaming: 1 GiB down and up ------------------------------------------------------------
if [[ $SKIP_STREAM == 1 ]]; then exit 0; fi
UPLOAD="$WORK/upload.bin"
truncate -s 1G "$UPLOAD" # sparse: reading it costs no disk
# stream_once NAME PATH KIND: one transfer (KIND is download or upload) on a freshly started
# server; appends "MB/s peak_rss_kib server_cpu_ms user_ticks system_ticks writes" to
# $WORK/NAME.KIND (the server's utime and stime from /proc/PID/stat, its write calls from
# /proc/PID/io, over the transfer).
stream_once() {
  local name=$1 path=$2 kind=$3 port=$((PORT + 10)) out
  start "$name" "$port"
  local pid=$STARTED_PID before ticks_before writes_before
  before=$(cpu_ns "$pid")
  ticks_before=$(ticks "$pid")
  writes_before=$(awk '/^syscw:/ { print $2 }' /proc/"$pid"/io)
  if [[ $kind == download ]]; then
    out=$(timeout 300 taskset -c "$CLIENT_CPU" curl -sS -o /dev/null \
      -w '%{http_code} %{size_download} %{speed_download}' "http://$HOST:$port$path")
    [[ $out == "200 1073741824 "* ]] || die "$name download: $out"
  else
    out=$(timeout 300 taskset -c "$CLIENT_CPU" curl -sS -o "$WORK/reply" \
      -w '%{http_code} %{size_upload} %{speed_upload}' -T "$UPLOAD" "http://$HOST:$port$path")
    [[ $out == "200 1073741824 "* ]] || die "$name upload: $out"
    grep -q '"body_length":1073741824' "$WORK/reply" || die "$name upload reply: $(cat "$WORK/reply")"
  fi
  local rss cpu ticks_after writes
  cpu=$(($(cpu_ns "$pid") - before))
  ticks_after=$(ticks "$pid")
  writes=$(($(awk '/^syscw:/ { print $2 }' /proc/"$pid"/io) - writes_before))
  rss=$(awk '/VmHWM/ { print $2 }' /proc/"$pid"/status)
  stop "$pid"
  awk -v s="${out##* }" -v r="$rss" -v c="$cpu" -v t0="$ticks_before" -v t1="$ticks_after" \
    -v w="$writes" 'BEGIN { split(t0, a, " "); split(t1, b, " ")
      printf "%.1f %d %.1f %d %d %d\n", s / 1e6, r, c / 1e6, b[1] - a[1], b[2] - a[2], w }' \
    >>"$WORK/$name.$kind"
}

# ticks PID: "utime stime" of the process, in clock ticks.
ticks() { sed 's/^.*) //' /proc/"$1"/stat | awk '{ print $12, $13 }'; }
log "streaming 1 GiB"
# Raw hyper and rwgi alternate run by run, so that a slow period of the machine hits both.
for ((rep = 1; rep <= STREAM_REPEATS; rep++)); do
  for kind in "${STREAM_KINDS[@]}"; do
    if [[ $kind == download ]]; then
      stream_once raw-hyper-stream /download download
      stream_once rwgi-download /download download
    else
      stream_once raw-hyper-stream /upload upload
      stream_once rwgi-echo /upload upload
    fi
  done
done

# User-space instructions of one 1 GiB download under cachegrind (start-up included: it is
# small next to 16 384 chunks); sets ICOUNT.
download_instructions() {
  local name=$1 port=$((PORT + 10)) vglog="$WORK/$1.cachegrind.download"
  start "$name" "$port" valgrind --tool=cachegrind --cache-sim=no \
    --cachegrind-out-file=/dev/null --log-file="$vglog"
  local pid=$STARTED_PID out
  out=$(timeout 600 taskset -c "$CLIENT_CPU" curl -sS -o /dev/null -w '%{size_download}' \
    "http://$HOST:$port/download")
  [[ $out == 1073741824 ]] || die "$name download under cachegrind: $out"
  stop "$pid"
  ICOUNT=$(awk '/I *refs:/ { gsub(",", "", $NF); print $NF }' "$vglog")
  [[ -n $ICOUNT ]] || die "no instruction count in $vglog"
}
download_instructions raw-hyper-stream
raw_download=$ICOUNT
download_instructions rwgi-download

echo
echo "## 1 GiB streamed (median, min-max of $STREAM_REPEATS runs, raw hyper and rwgi alternating; ratio = median / raw hyper's)"
printf '%-18s %-9s %24s %8s %26s %8s %18s\n' server direction "MB/s" ratio \
  "server CPU (ms/GiB)" ratio "peak RSS (MiB)"
for kind in "${STREAM_KINDS[@]}"; do
  read -r base _ _ < <(cut -d' ' -f1 "$WORK/raw-hyper-stream.$kind" | stats)
  read -r base_cpu _ _ < <(cut -d' ' -f3 "$WORK/raw-hyper-stream.$kind" | stats)
  for name in raw-hyper-stream rwgi-download rwgi-echo; do
    [[ -f $WORK/$name.$kind ]] || continue
    read -r mbs lo hi < <(cut -d' ' -f1 "$WORK/$name.$kind" | stats)
    read -r cpu cpu_lo cpu_hi < <(cut -d' ' -f3 "$WORK/$name.$kind" | stats)
    read -r rss _ rss_hi < <(cut -d' ' -f2 "$WORK/$name.$kind" | stats)
    printf '%-18s %-9s %24s %8s %26s %8s %18s\n' "$name" "$kind" "$mbs ($lo-$hi)" \
      "$(ratio "$mbs" "$base")" "$cpu ($cpu_lo-$cpu_hi)" "$(ratio "$cpu" "$base_cpu")" \
      "$(awk -v a="$rss" -v b="$rss_hi" 'BEGIN { printf "%.1f (max %.1f)", a / 1024, b / 1024 }')"
  done
done
printf '\nuser-space instructions for one 1 GiB download: raw hyper %s, rwgi %s (%s per 64 KiB chunk more)\n' \
  "$raw_download" "$ICOUNT" "$(awk -v a="$ICOUNT" -v b="$raw_download" 'BEGIN { printf "%.0f", (a - b) / 16384 }')"
echo
echo "## Each 1 GiB run, in order: MB/s/server utime/stime (ticks of 1/$(getconf CLK_TCK) s)/write calls"
for kind in "${STREAM_KINDS[@]}"; do
  for name in raw-hyper-stream rwgi-download rwgi-echo; do
    [[ -f $WORK/$name.$kind ]] || continue
    printf '%-18s %-9s %s\n' "$name" "$kind" \
      "$(awk '{ printf "%s/%s/%s/%s ", $1, $4, $5, $6 }' "$WORK/$name.$kind")"
  done
done
