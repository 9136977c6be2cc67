# Helpers the benchmark scripts share; sourced, not run. A script sets `SCRIPT` (its name, for
# messages), `HOST`, and optionally `WORK` (a scratch folder removed on exit) before sourcing.

log() { printf '%s\n' "$*" >&2; }
die() { log "$SCRIPT: $*"; exit 1; }

# Every server pid a script starts goes in PIDS; all are stopped (TERM, then KILL after 30 s)
# when the script exits, however it exits.
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    timeout 30 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done
  if [[ -n "${WORK:-}" ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop PID: SIGTERM, then wait (bounded) for the process to exit; SIGKILL after 60 s.
stop() {
  kill -TERM "$1" 2>/dev/null || true
  timeout 60 tail --pid="$1" -f /dev/null || { kill -KILL "$1" 2>/dev/null || true; }
}

# wait_port PORT: until something listens on HOST:PORT, for at most 30 s.
wait_port() {
  local deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; do
    ((SECONDS < deadline)) || die "nothing listens on port $1"
    sleep 0.1
  done
}

# stats: the median and min-max of the numbers on stdin; prints "median min max".
stats() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan nan nan"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.6g %.6g %.6g\n", m, v[1], v[NR] }'
}

# ratio A B: A / B to three places ("-" when B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.3f", a / b }'; }

# tree_cpu_us PID: the user+sys CPU time, in microseconds, that PID and every live process
# descended from it have used, with their reaped children's (utime + stime + cutime + cstime of
# /proc/*/stat, in clock ticks). Taken before and after a load, the difference is what the
# whole server (a master and its workers, say) spent on it.
tree_cpu_us() {
  # cat skips the processes that end while it reads (and says so in its status: ignored)
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v root="$1" -v hz="$(getconf CLK_TCK)" '
    {
      pid = $1
      rest = $0
      sub(/^[0-9]+ \(.*\) /, "", rest) # the name may hold spaces and parentheses
      split(rest, f, " ")
      parent[pid] = f[2]
      ticks[pid] = f[12] + f[13] + f[14] + f[15]
    }
    END {
      inside[root] = 1
      do {
        grown = 0
        for (p in parent) if (!(p in inside) && (parent[p] in inside)) { inside[p] = 1; grown = 1 }
      } while (grown)
      for (p in inside) sum += ticks[p]
      printf "%.0f\n", sum * 1e6 / hz
    }'
}
