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

# wait_port PORT: until something listens on HOST:PORT, for at most 30 s.
wait_port() {
  local deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; do
    ((SECONDS < deadline)) || die "nothing listens on port $1"
    sleep 0.1
  done
}
