#!/usr/bin/env bash
# Two-hop tracing benchmark (docs/performance.md): service A -> service B, built from
# autobot-tracing's server layer and traced client, exporting OTLP/gRPC to the
# trace tool's `serve`. One run measures, under wrk -t1 -c16:
#   untraced (OTEL_SDK_DISABLED=true), traced at rate 1.0, traced at rate 0.01
#   (interleaved, RUNS rounds, medians printed), then at rate 1.0 with the sink
#   down and with a sink that accepts and never answers (FAIL_SECONDS each),
#   then metrics on and off (AUTOBOT_METRICS_ENABLED) at the production rate
#   0.1, interleaved, RUNS rounds (docs/performance.md, "Metrics").
# --python also runs the FastAPI pair (official OpenTelemetry SDK, httpx) from
# a venv this script creates under .run/bench-venv from PyPI.
# --security runs instead, at rate 1.0, RUNS rounds of: plain HTTP; A checks an
#   operator key (the backend's middleware, wrk sends it); A -> B over mutual TLS
#   (autobot-tls, test certificates from openssl); both. It prints the cost of each
#   per request and the TCP connections A and B accepted (the pool reuses them).
#
# Usage: bench/run.sh [--python] [--security] [--runs N] [--seconds S] [--fail-seconds S] [--no-failure]
#                     [--metrics-only]  (only the metrics on/off comparison)
#                     [--traced-env "K=V ..."]  (extra environment of the traced Rust modes,
#                      e.g. "OTEL_PROPAGATORS=tracecontext,baggage OTEL_BSP_MAX_QUEUE_SIZE=16384")
# Output: tables on stdout; raw rows in .run/bench/results.tsv; process logs in .run/bench/.
set -euo pipefail

RUNS=3
SECONDS_PER_RUN=10
WARMUP_SECONDS=2
FAIL_SECONDS=60
PYTHON=0
FAILURE=1
METRICS_ONLY=0
SECURITY=0
TRACED_ENV=()
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PYTHON=1 ;;
    --security) SECURITY=1 ;;
    --runs) RUNS="$2"; shift ;;
    --seconds) SECONDS_PER_RUN="$2"; shift ;;
    --fail-seconds) FAIL_SECONDS="$2"; shift ;;
    --no-failure) FAILURE=0 ;;
    --metrics-only) METRICS_ONLY=1 ;;
    --traced-env) read -r -a TRACED_ENV <<<"$2"; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/.run/bench"
mkdir -p "$OUT"
RESULTS="$OUT/results.tsv"
: >"$RESULTS"
BASE="${BENCH_PORT_BASE:-17400}"
SINK_GRPC=$((BASE + 17)); SINK_HTTP=$((BASE + 18)); SINK_QUERY=$((BASE + 86))
PORT_A=$((BASE + 1)); PORT_B=$((BASE + 2)); PORT_HOLE=$((BASE + 19)); PORT_DOWN=$((BASE + 20))
CLK_TCK="$(getconf CLK_TCK)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/autobot-bench-two-hop"
TRACE_BIN="$TARGET_DIR/release/autobot-trace"
VENV="$ROOT/.run/bench-venv"

for tool in wrk curl jq openssl sha256sum; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

echo "== building release binaries (autobot-bench-two-hop, autobot-trace)"
cargo build --release -q -p autobot-bench-two-hop -p autobot-trace

PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

wait_port() { # port seconds
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench/run.sh: nothing listens on port $1 after $2 s" >&2
  return 1
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

for p in $SINK_GRPC $SINK_HTTP $SINK_QUERY $PORT_A $PORT_B $PORT_HOLE $PORT_DOWN; do
  port_free "$p" || { echo "bench/run.sh: port $p is in use; set BENCH_PORT_BASE" >&2; exit 1; }
done

cpu_ticks() { # utime + stime of a pid, in clock ticks (fields 14, 15 after the comm)
  sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

stop() { # pid: SIGTERM, wait (services flush their spans at shutdown)
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

sink_spans() { # spans the trace tool received so far (kept + evicted)
  curl -fsS "http://127.0.0.1:$SINK_QUERY/api/autobot/stats" | jq '.spans + .evicted_spans'
}

sink_settled() { # waits until the sink's count stops moving (≤ 10 s), prints it
  local last now i
  last="$(sink_spans)"
  for ((i = 0; i < 20; i++)); do
    sleep 0.5
    now="$(sink_spans)"
    [ "$now" = "$last" ] && break
    last="$now"
  done
  echo "$now"
}

start_sink() {
  "$TRACE_BIN" serve --otlp-grpc "127.0.0.1:$SINK_GRPC" --otlp-http "127.0.0.1:$SINK_HTTP" \
    --query "127.0.0.1:$SINK_QUERY" --max-spans 1000000 >"$OUT/sink.log" 2>&1 &
  SINK_PID=$!
  PIDS+=("$SINK_PID")
  wait_port "$SINK_QUERY" 20
}

# The security modes set these: B's and A's extra environment, the scheme of
# A's calls to B, and wrk's extra arguments.
ENV_A=(); ENV_B=(); LEAF_SCHEME=http; WRK_ARGS=()

# start_pair rust|python ENDPOINT then KEY=VALUE... (the mode's environment)
start_pair() {
  local impl="$1" endpoint="$2"
  shift 2
  local common=(RUST_LOG=warn AUTOBOT_JAEGER_ENDPOINT="$endpoint" "$@")
  if [ "$impl" = rust ]; then
    env "${common[@]}" "${ENV_B[@]}" TWO_HOP_LISTEN="127.0.0.1:$PORT_B" "$BIN" b >"$OUT/b.log" 2>&1 &
    PID_B=$!
    env "${common[@]}" "${ENV_A[@]}" TWO_HOP_LISTEN="127.0.0.1:$PORT_A" \
      TWO_HOP_LEAF_URL="$LEAF_SCHEME://127.0.0.1:$PORT_B/leaf" "$BIN" a >"$OUT/a.log" 2>&1 &
    PID_A=$!
  else
    env "${common[@]}" TWO_HOP_ROLE=b BENCH_SERVICE_NAME=py-bench-b \
      "$VENV/bin/python" -m uvicorn two_hop:app --app-dir "$ROOT/bench/python" \
      --host 127.0.0.1 --port "$PORT_B" --no-access-log --log-level warning >"$OUT/py-b.log" 2>&1 &
    PID_B=$!
    env "${common[@]}" TWO_HOP_ROLE=a BENCH_SERVICE_NAME=py-bench-a \
      TWO_HOP_LEAF_URL="http://127.0.0.1:$PORT_B/leaf" \
      "$VENV/bin/python" -m uvicorn two_hop:app --app-dir "$ROOT/bench/python" \
      --host 127.0.0.1 --port "$PORT_A" --no-access-log --log-level warning >"$OUT/py-a.log" 2>&1 &
    PID_A=$!
  fi
  PIDS+=("$PID_A" "$PID_B")
  wait_port "$PORT_B" 30
  wait_port "$PORT_A" 30
  curl -fsS "${WRK_ARGS[@]}" "http://127.0.0.1:$PORT_A/hop" >/dev/null || {
    echo "bench/run.sh: GET /hop failed; see $OUT/a.log" >&2
    exit 1
  }
}

# measure KIND MODE RUN SECONDS: warm-up, then one wrk run; appends a row to results.tsv
measure() {
  local kind="$1" mode="$2" run="$3" secs="$4"
  wrk -t1 -c16 -d"${WARMUP_SECONDS}s" "${WRK_ARGS[@]}" "http://127.0.0.1:$PORT_A/hop" >/dev/null
  sleep 1.5 # the batch processors export what the warm-up left (schedule delay 1 s)
  local s0=0 a0 b0 ra0 rb0
  [ -n "${SINK_PID:-}" ] && s0="$(sink_spans)"
  a0="$(cpu_ticks "$PID_A")"; b0="$(cpu_ticks "$PID_B")"
  ra0="$(rss_kb "$PID_A")"; rb0="$(rss_kb "$PID_B")"
  wrk -t1 -c16 -d"${secs}s" --latency "${WRK_ARGS[@]}" "http://127.0.0.1:$PORT_A/hop" >"$OUT/wrk.txt"
  local a1 b1 ra1 rb1
  a1="$(cpu_ticks "$PID_A")"; b1="$(cpu_ticks "$PID_B")"
  ra1="$(rss_kb "$PID_A")"; rb1="$(rss_kb "$PID_B")"
  stop "$PID_A"; stop "$PID_B"
  local s1=0
  [ -n "${SINK_PID:-}" ] && s1="$(sink_settled)"
  local conn_a conn_b
  conn_a="$(awk '/connections accepted:/ {print $NF}' "$OUT/a.log")"
  conn_b="$(awk '/connections accepted:/ {print $NF}' "$OUT/b.log")"
  local requests rps p50 p99 errors
  requests="$(awk '/requests in/ {print $1}' "$OUT/wrk.txt")"
  rps="$(awk '/^Requests\/sec:/ {print $2}' "$OUT/wrk.txt")"
  p50="$(awk '$1 == "50%" {print $2}' "$OUT/wrk.txt")"
  p99="$(awk '$1 == "99%" {print $2}' "$OUT/wrk.txt")"
  errors="$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' "$OUT/wrk.txt")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$kind" "$mode" "$run" "$rps" "$p50" "$p99" "$requests" "$((a1 - a0))" "$((b1 - b0))" \
    "$ra0" "$rb0" "$ra1" "$rb1" "$((s1 - s0))" "$secs" "$CLK_TCK" "${errors:-}" "${conn_a:-0}" "${conn_b:-0}" >>"$RESULTS"
  printf '  %-8s %-16s run %s: %8s req/s  p50 %-8s p99 %-8s connections accepted A %s B %s %s\n' \
    "$kind" "$mode" "$run" "$rps" "$p50" "$p99" "${conn_a:-?}" "${conn_b:-?}" "${errors:-}"
}

GRPC="http://127.0.0.1:$SINK_GRPC"
start_sink

if [ "$SECURITY" = 1 ]; then
  # Test certificates as the pki-distributor makes them (EC P-256, SAN 127.0.0.1,
  # serverAuth + clientAuth), and an operator key with its line.
  PKI="$OUT/pki"
  rm -rf "$PKI"; mkdir -p "$PKI"
  bash "$ROOT/bench/test-pki.sh" "$PKI" a b
  KEY="abk_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  printf 'bench user %s\n' "$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)" >"$PKI/api-keys"
  tls_env() { echo "AUTOBOT_TLS_CERT=$PKI/$1-cert.pem AUTOBOT_TLS_KEY=$PKI/$1-key.pem AUTOBOT_TLS_CA=$PKI/ca-cert.pem"; }
  echo "== security, Rust traced at rate 1.0: ${RUNS} rounds of plain / key / tls / tls+key, ${SECONDS_PER_RUN} s each (wrk -t1 -c16)"
  for ((run = 1; run <= RUNS; run++)); do
    for mode in plain key tls tls+key; do
      ENV_A=(); ENV_B=(); LEAF_SCHEME=http; WRK_ARGS=()
      case "$mode" in *key*) ENV_A+=(AUTOBOT_API_KEYS_FILE="$PKI/api-keys"); WRK_ARGS=(-H "Authorization: Bearer $KEY") ;; esac
      case "$mode" in tls*) read -r -a tls_a <<<"$(tls_env a)"; read -r -a tls_b <<<"$(tls_env b)"
                            ENV_A+=("${tls_a[@]}"); ENV_B+=("${tls_b[@]}"); LEAF_SCHEME=https ;; esac
      start_pair rust "$GRPC" AUTOBOT_TRACE_SAMPLE_RATE=1.0 "${TRACED_ENV[@]}"
      measure rust "sec-$mode" "$run" "$SECONDS_PER_RUN"
    done
  done
  ENV_A=(); ENV_B=(); LEAF_SCHEME=http; WRK_ARGS=()
  stop "$SINK_PID"
  python3 "$ROOT/bench/report.py" "$RESULTS"
  exit 0
fi

[ ${#TRACED_ENV[@]} -gt 0 ] && echo "== traced modes also get: ${TRACED_ENV[*]}"
if [ "$METRICS_ONLY" = 1 ]; then
  FAILURE=0; PYTHON=0
else
echo "== two-hop, Rust: ${RUNS} rounds of untraced / rate 1.0 / rate 0.01, ${SECONDS_PER_RUN} s each (wrk -t1 -c16)"
for ((run = 1; run <= RUNS; run++)); do
  start_pair rust "$GRPC" OTEL_SDK_DISABLED=true
  measure rust untraced "$run" "$SECONDS_PER_RUN"
  start_pair rust "$GRPC" AUTOBOT_TRACE_SAMPLE_RATE=1.0 "${TRACED_ENV[@]}"
  measure rust traced-1.0 "$run" "$SECONDS_PER_RUN"
  grep -h telemetry: "$OUT/a.log" "$OUT/b.log" | sed 's/^/    /'
  start_pair rust "$GRPC" AUTOBOT_TRACE_SAMPLE_RATE=0.01 "${TRACED_ENV[@]}"
  measure rust traced-0.01 "$run" "$SECONDS_PER_RUN"
done

fi

if [ "$FAILURE" = 1 ]; then
  echo "== failure cases at rate 1.0, ${FAIL_SECONDS} s each"
  start_pair rust "http://127.0.0.1:$PORT_DOWN" AUTOBOT_TRACE_SAMPLE_RATE=1.0 "${TRACED_ENV[@]}"
  measure rust sink-down 1 "$FAIL_SECONDS"
  TWO_HOP_LISTEN="127.0.0.1:$PORT_HOLE" "$BIN" black-hole >"$OUT/black-hole.log" 2>&1 &
  HOLE_PID=$!
  PIDS+=("$HOLE_PID")
  wait_port "$PORT_HOLE" 10
  start_pair rust "http://127.0.0.1:$PORT_HOLE" AUTOBOT_TRACE_SAMPLE_RATE=1.0 "${TRACED_ENV[@]}"
  measure rust sink-black-hole 1 "$FAIL_SECONDS"
  stop "$HOLE_PID"
fi

echo "== metrics on and off, rate 0.1: ${RUNS} rounds, ${SECONDS_PER_RUN} s each (wrk -t1 -c16)"
for ((run = 1; run <= RUNS; run++)); do
  start_pair rust "$GRPC" AUTOBOT_TRACE_SAMPLE_RATE=0.1 AUTOBOT_METRICS_ENABLED=true "${TRACED_ENV[@]}"
  measure rust metrics-on "$run" "$SECONDS_PER_RUN"
  start_pair rust "$GRPC" AUTOBOT_TRACE_SAMPLE_RATE=0.1 AUTOBOT_METRICS_ENABLED=false "${TRACED_ENV[@]}"
  measure rust metrics-off "$run" "$SECONDS_PER_RUN"
done

if [ "$PYTHON" = 1 ]; then
  if [ ! -x "$VENV/bin/uvicorn" ]; then
    echo "== creating $VENV and installing bench/python/requirements.txt from PyPI"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r bench/python/requirements.txt
  fi
  echo "== two-hop, Python (FastAPI + httpx + OpenTelemetry SDK, OTLP/gRPC): ${RUNS} runs at rate 1.0"
  for ((run = 1; run <= RUNS; run++)); do
    start_pair python "$GRPC" AUTOBOT_TRACE_SAMPLE_RATE=1.0
    measure python traced-1.0 "$run" "$SECONDS_PER_RUN"
  done
  start_pair python "$GRPC" OTEL_SDK_DISABLED=true
  measure python untraced 1 "$SECONDS_PER_RUN"
fi

stop "$SINK_PID"
python3 "$ROOT/bench/report.py" "$RESULTS"
