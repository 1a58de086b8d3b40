#!/usr/bin/env bash
# Instruction profile of the two-hop path (docs/performance.md): A, B and the trace tool
# run under valgrind --tool=callgrind; after a warm-up their counters are
# zeroed, then N sequential requests (one keep-alive connection, curl) go
# through A -> B, and the counters are dumped. Instruction counts do not
# drift with machine load, so modes compare exactly. perf is not used: this
# machine's perf has no hardware counters (`perf stat -e instructions` says
# <not supported>).
#
# Usage: bench/profile.sh [N] [MODE...]   MODE: untraced, traced-1.0, traced-0.01, w3c-1.0,
#        b3single-1.0 (W3C + baggage + the single b3 header, no X-B3-*),
#        metrics-on-0.1, metrics-off-0.1 (rate 0.1, AUTOBOT_METRICS_ENABLED true/false)
# Output: .run/bench/profile/<mode>/callgrind.<role>.out, and per mode a line
# of instructions per request for A, B and the sink, then the top functions
# (inclusive) of A at rate 1.0 (callgrind_annotate --inclusive=yes).
set -euo pipefail

N="${1:-2000}"
shift || true
MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(untraced traced-0.01 traced-1.0 w3c-1.0)
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/.run/bench/profile"
mkdir -p "$OUT"
BASE="${BENCH_PORT_BASE:-17500}"
SINK_GRPC=$((BASE + 17)); SINK_HTTP=$((BASE + 18)); SINK_QUERY=$((BASE + 86))
PORT_A=$((BASE + 1)); PORT_B=$((BASE + 2))
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/autobot-bench-two-hop"
TRACE_BIN="$TARGET_DIR/release/autobot-trace"
command -v valgrind >/dev/null || { echo "bench/profile.sh: valgrind is missing" >&2; exit 1; }

cargo build --release -q -p autobot-bench-two-hop -p autobot-trace

PIDS=()
trap 'for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; true' EXIT

wait_port() {
  local i
  for ((i = 0; i < 1200; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench/profile.sh: nothing listens on port $1" >&2
  return 1
}

# curl config: N requests over one connection, bodies discarded
URLS="$OUT/urls-$N.txt"
: >"$URLS"
for ((i = 0; i < N; i++)); do printf 'url = "http://127.0.0.1:%s/hop"\noutput = "/dev/null"\n' "$PORT_A" >>"$URLS"; done
WARM="$OUT/urls-warm.txt"
: >"$WARM"
for ((i = 0; i < 200; i++)); do printf 'url = "http://127.0.0.1:%s/hop"\noutput = "/dev/null"\n' "$PORT_A" >>"$WARM"; done

grind() { # out-file [VAR=value...] command...
  local out="$1"; shift
  env "${@:1:$(count_vars "$@")}" valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no --collect-atstart=yes \
    "${@:$(($(count_vars "$@") + 1))}" >>"${out%.out}.log" 2>&1 &
  LAST=$!
  PIDS+=("$LAST")
}

count_vars() { # how many leading VAR=value arguments
  local n=0 a
  for a in "$@"; do [[ "$a" == *=* && "$a" != /* ]] || break; n=$((n + 1)); done
  echo "$n"
}

total_ir() { # instructions in a callgrind dump (the "summary:"/"totals:" line)
  awk '/^(summary|totals):/ {print $2; exit}' "$1"
}

for mode in "${MODES[@]}"; do
  dir="$OUT/$mode"
  rm -rf "$dir"; mkdir -p "$dir"
  envs=(RUST_LOG=warn AUTOBOT_JAEGER_ENDPOINT="http://127.0.0.1:$SINK_GRPC")
  case "$mode" in
    untraced) envs+=(OTEL_SDK_DISABLED=true) ;;
    traced-1.0) envs+=(AUTOBOT_TRACE_SAMPLE_RATE=1.0) ;;
    traced-0.01) envs+=(AUTOBOT_TRACE_SAMPLE_RATE=0.01) ;;
    w3c-1.0) envs+=(AUTOBOT_TRACE_SAMPLE_RATE=1.0 OTEL_PROPAGATORS=tracecontext,baggage) ;;
    b3single-1.0) envs+=(AUTOBOT_TRACE_SAMPLE_RATE=1.0 OTEL_PROPAGATORS=tracecontext,baggage,b3) ;;
    metrics-on-0.1) envs+=(AUTOBOT_TRACE_SAMPLE_RATE=0.1 AUTOBOT_METRICS_ENABLED=true) ;;
    metrics-off-0.1) envs+=(AUTOBOT_TRACE_SAMPLE_RATE=0.1 AUTOBOT_METRICS_ENABLED=false) ;;
    *) echo "bench/profile.sh: unknown mode $mode" >&2; exit 2 ;;
  esac
  grind "$dir/callgrind.sink.out" "$TRACE_BIN" serve --otlp-grpc "127.0.0.1:$SINK_GRPC" \
    --otlp-http "127.0.0.1:$SINK_HTTP" --query "127.0.0.1:$SINK_QUERY"
  PID_SINK=$LAST
  wait_port "$SINK_QUERY"
  grind "$dir/callgrind.b.out" "${envs[@]}" TWO_HOP_LISTEN="127.0.0.1:$PORT_B" "$BIN" b
  PID_B=$LAST
  grind "$dir/callgrind.a.out" "${envs[@]}" TWO_HOP_LISTEN="127.0.0.1:$PORT_A" \
    TWO_HOP_LEAF_URL="http://127.0.0.1:$PORT_B/leaf" "$BIN" a
  PID_A=$LAST
  wait_port "$PORT_B"; wait_port "$PORT_A"
  curl -s -K "$WARM"
  sleep 3 # the warm-up's spans are exported and ingested before counting starts
  for p in "$PID_A" "$PID_B" "$PID_SINK"; do callgrind_control -z "$p" >/dev/null; done
  curl -s -K "$URLS"
  sleep 3 # one schedule delay (1 s) and the sink's ingest, under valgrind
  for p in "$PID_A" "$PID_B" "$PID_SINK"; do callgrind_control -d "$p" >/dev/null; done
  for p in "$PID_A" "$PID_B" "$PID_SINK"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  # callgrind_control -d writes <out>.1 (the dump after zeroing)
  a=$(total_ir "$dir/callgrind.a.out.1"); b=$(total_ir "$dir/callgrind.b.out.1"); s=$(total_ir "$dir/callgrind.sink.out.1")
  printf '%-12s instructions/request: A %8d  B %8d  A+B %8d  sink %8d\n' "$mode" \
    $((a / N)) $((b / N)) $(((a + b) / N)) $((s / N)) | tee "$dir/summary.txt"
done

top="$OUT/traced-1.0/callgrind.a.out.1"
if [ -f "$top" ]; then
  echo "== A at rate 1.0, top functions (inclusive), from $top"
  # sed reads everything (no early exit), so callgrind_annotate never gets SIGPIPE.
  callgrind_annotate --inclusive=yes "$top" | sed -n '1,45p'
fi
