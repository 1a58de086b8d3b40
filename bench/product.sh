#!/usr/bin/env bash
# The product-path benchmark (docs/performance.md, "Product path"): wrk sends
# `POST /api/chat` to autobot-backend, which calls autobot-ai-stack, which asks
# the stand-in LLM (Ollama's wire format, tools/standins, --quiet); every span
# goes over OTLP/gRPC to `autobot-trace serve`, which counts them. Release
# builds of the real binaries. In ONE run, ROUNDS interleaved rounds of:
# untraced (OTEL_SDK_DISABLED=true), traced at rate 1.0, 0.1 and 0.01, each
# with an operator key (the backend's default: AUTOBOT_API_KEYS_FILE, wrk
# sends `Authorization: Bearer`), and untraced without the key check
# (`-nokey`: AUTOBOT_AUTH=off) for the check's own cost, and traced at rate
# 1.0 over TLS (`-tls`: both hops, wrk -> backend and backend -> ai-stack
# with mutual TLS, certificates of bench/test-pki.sh) for TLS's; then
# the Python reference pair (FastAPI + httpx + OpenTelemetry SDK, pooled
# clients, bench/python/product.py) under the same load. Prints medians of
# req/s, p50/p99, CPU per request (backend + ai-stack from /proc; the
# stand-in's and the sink's apart), RSS, spans received vs expected, the
# ratios and the targets.
#
# --callgrind [N] runs instead the instruction profile: backend, ai-stack and
#   the sink under valgrind --tool=callgrind, 200 warm-up requests, counters
#   zeroed, N (default 2000) sequential requests on one keep-alive
#   connection, counters dumped; instructions per request per service, and
#   by function (self cost, per request, the modes side by side).
#
# Usage: bench/product.sh [--rounds N] [--seconds S] [--warmup S] [--no-python]
#                         [--modes "untraced traced-1.0 ..."] [--traced-env "K=V ..."]
#        bench/product.sh --callgrind [N] [--modes "untraced traced-0.1 traced-1.0"]
# MODE: untraced | traced-RATE, then `-tls` for TLS on both hops (the backend
#       serves https, calls ai-stack over mutual TLS), then `-nokey` for
#       AUTOBOT_AUTH=off and no Authorization header (e.g. untraced-nokey,
#       traced-1.0-tls, traced-0.1-tls-nokey).
# Output: tables on stdout; raw rows in .run/bench/product/results.tsv, logs
# and callgrind dumps beside them (PRODUCT_OUT moves them). BENCH_PORT_BASE
# moves the ports (17600). Binaries: built into $CARGO_TARGET_DIR (default
# target/)/release, or taken from PRODUCT_BIN_DIR unbuilt (to compare builds).
set -euo pipefail

ROUNDS=3
SECONDS_PER_RUN=10
WARMUP_SECONDS=3
PYTHON=1
CALLGRIND=0
CALLGRIND_N=2000
MODES=()
TRACED_ENV=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift ;;
    --seconds) SECONDS_PER_RUN="$2"; shift ;;
    --warmup) WARMUP_SECONDS="$2"; shift ;;
    --no-python) PYTHON=0 ;;
    --modes) read -r -a MODES <<<"$2"; shift ;;
    --traced-env) read -r -a TRACED_ENV <<<"$2"; shift ;;
    --callgrind)
      CALLGRIND=1
      if [[ "${2:-}" =~ ^[0-9]+$ ]]; then CALLGRIND_N="$2"; shift; fi ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "bench/product.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ ${#MODES[@]} -eq 0 ]; then
  if [ "$CALLGRIND" = 1 ]; then MODES=(untraced untraced-nokey traced-0.1 traced-1.0 traced-1.0-tls)
  else MODES=(untraced traced-1.0 traced-0.1 traced-0.01 untraced-nokey traced-1.0-tls); fi
fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
OUT="${PRODUCT_OUT:-$ROOT/.run/bench/product}"
mkdir -p "$OUT"
BASE="${BENCH_PORT_BASE:-17600}"
PORT_BACKEND=$((BASE + 1)); PORT_AI=$((BASE + 2)); PORT_LLM=$((BASE + 3))
SINK_GRPC=$((BASE + 17)); SINK_HTTP=$((BASE + 18)); SINK_QUERY=$((BASE + 86))
BIN_DIR="${PRODUCT_BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}"
VENV="$ROOT/.run/bench-venv"
CLK_TCK="$(getconf CLK_TCK)"
# The backend's chat URL in a mode: https with -tls.
url_of() { if tls "$1"; then echo "https://127.0.0.1:$PORT_BACKEND/api/chat"; else echo "http://127.0.0.1:$PORT_BACKEND/api/chat"; fi; }
# A short chat turn: what the frontend sends for one question.
BODY='{"messages":[{"role":"system","content":"You are AutoBot. Answer briefly."},{"role":"user","content":"Which header carries the trace context between the services?"}]}'
SPANS_PER_REQUEST=4 # backend SERVER + CLIENT, ai-stack SERVER + llm.inference

for tool in wrk curl jq python3 openssl; do
  command -v "$tool" >/dev/null || { echo "bench/product.sh: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
[ "$CALLGRIND" = 0 ] || command -v valgrind >/dev/null || { echo "bench/product.sh: valgrind is missing" >&2; exit 1; }

echo "== load average before: $(cat /proc/loadavg) ($(nproc) cores)"
if [ -n "${PRODUCT_BIN_DIR:-}" ]; then
  echo "== binaries from PRODUCT_BIN_DIR=$BIN_DIR (not built)"
else
  echo "== building release binaries in $BIN_DIR (autobot-backend, autobot-ai-stack, autobot-llm-standin, autobot-trace)"
  cargo build --release -q -p autobot-backend -p autobot-ai-stack -p autobot-standins -p autobot-trace
fi

# An operator key made by the backend itself; its line is the keys file.
# The key stays in this run's files (mode 0600) and wrk's script, never on stdout.
KEYS_FILE="$OUT/api-keys"
( umask 077
  "$BIN_DIR/autobot-backend" keygen bench user | grep -v '^#' >"$OUT/keygen.txt"
  sed -n 2p "$OUT/keygen.txt" >"$KEYS_FILE" )
API_KEY="$(sed -n 1p "$OUT/keygen.txt")"
[[ "$API_KEY" == abk_* ]] || { echo "bench/product.sh: autobot-backend keygen gave no key" >&2; exit 1; }

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
  echo "bench/product.sh: nothing listens on port $1 after $2 s" >&2
  return 1
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $PORT_BACKEND $PORT_AI $PORT_LLM $SINK_GRPC $SINK_HTTP $SINK_QUERY; do
  port_free "$p" || { echo "bench/product.sh: port $p is in use; set BENCH_PORT_BASE" >&2; exit 1; }
done

cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; } # utime + stime
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
sink_spans() { curl -fsS "http://127.0.0.1:$SINK_QUERY/api/autobot/stats" | jq '.spans + .evicted_spans'; }
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
# Spans a service says it ended and exported, from its shutdown line
# (autobot_tracing logs it at info; RUST_LOG below lets it through).
ended_spans() {
  local line
  line="$(grep -a 'telemetry shut down' "$1" | tail -1)"
  if [[ "$line" =~ ended=([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"
  elif [[ "$line" =~ exported=([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"
  else echo 0; fi
}

mode_env() { # the environment of a mode (both services; the backend's key and TLS settings apart)
  local base="${1%-nokey}"
  base="${base%-tls}"
  case "$base" in
    untraced) echo "OTEL_SDK_DISABLED=true" ;;
    traced-*) echo "AUTOBOT_TRACE_SAMPLE_RATE=${base#traced-} ${TRACED_ENV[*]:-}" ;;
    *) echo "bench/product.sh: unknown mode $1 (untraced, traced-RATE, either with -nokey)" >&2; exit 2 ;;
  esac
}
keyed() { [[ "$1" != *-nokey ]]; }
tls() { [[ "${1%-nokey}" == *-tls ]]; }
# Certificates for the -tls modes (a test CA; SAN 127.0.0.1).
PKI="$OUT/pki"
bash "$ROOT/bench/test-pki.sh" "$PKI" backend ai-stack
tls_files() { echo "AUTOBOT_TLS_CERT=$PKI/$1-cert.pem AUTOBOT_TLS_KEY=$PKI/$1-key.pem AUTOBOT_TLS_CA=$PKI/ca-cert.pem"; }
tls_env_ai() { if tls "$1"; then tls_files ai-stack; fi; }
tls_env_backend() { # after ENV_BACKEND: the https peer URLs win (chat calls only ai-stack;
  # the others must be https:// too while AUTOBOT_TLS_CERT is set, and nothing listens there)
  if tls "$1"; then
    echo "$(tls_files backend) AUTOBOT_AI_STACK_URL=https://127.0.0.1:$PORT_AI" \
      "AUTOBOT_BROWSER_URL=https://127.0.0.1:$((BASE + 4)) AUTOBOT_PKI_URL=https://127.0.0.1:$((BASE + 5))" \
      "AUTOBOT_NPU_URL=https://127.0.0.1:$((BASE + 6))"
  fi
}
# curl's arguments for the mode: the key's header (none with -nokey), the CA with -tls
curl_args() {
  if keyed "$1"; then printf '%s\n' -H "Authorization: Bearer $API_KEY"; fi
  if tls "$1"; then printf '%s\n' --cacert "$PKI/ca-cert.pem"; fi
}
auth_env() { # the backend's key settings of a mode
  if keyed "$1"; then echo "AUTOBOT_API_KEYS_FILE=$KEYS_FILE"; else echo "AUTOBOT_AUTH=off"; fi
}

ENV_COMMON=(RUST_LOG=warn,autobot_tracing=info AUTOBOT_JAEGER_ENDPOINT="http://127.0.0.1:$SINK_GRPC")
# The stand-in answers any model name; AUTOBOT_LLM_MODELS must list the one asked for.
ENV_AI=(AUTOBOT_BIND="127.0.0.1:$PORT_AI" AUTOBOT_OLLAMA_URL="http://127.0.0.1:$PORT_LLM"
  AUTOBOT_LLM_PROVIDER=ollama AUTOBOT_LLM_MODEL=llama3.2 AUTOBOT_LLM_MODELS=llama3.2)
ENV_BACKEND=(AUTOBOT_BIND="127.0.0.1:$PORT_BACKEND" AUTOBOT_AI_STACK_URL="http://127.0.0.1:$PORT_AI")

# start PREFIX LOG [VAR=value...] command...: in the background, in $OUT (no
# .env of the work tree is read), its pid in LAST
start() {
  local log="$1"; shift
  (cd "$OUT" && exec env "$@") >"$log" 2>&1 &
  LAST=$!
  PIDS+=("$LAST")
}

start_sink() { # [valgrind args...]
  start "$OUT/sink.log" "$@" "$BIN_DIR/autobot-trace" serve --otlp-grpc "127.0.0.1:$SINK_GRPC" \
    --otlp-http "127.0.0.1:$SINK_HTTP" --query "127.0.0.1:$SINK_QUERY" --max-spans 1000000
  PID_SINK=$LAST
  wait_port "$SINK_QUERY" 120
}

start_llm() {
  start "$OUT/llm.log" "$BIN_DIR/autobot-llm-standin" --bind "127.0.0.1:$PORT_LLM" --quiet
  PID_LLM=$LAST
  wait_port "$PORT_LLM" 20
}

check_chat() { # MODE
  local args
  mapfile -t args < <(curl_args "$1")
  curl -fsS "${args[@]}" -H 'Content-Type: application/json' --data-binary "$BODY" "$(url_of "$1")" >"$OUT/answer.json" || {
    echo "bench/product.sh: POST /api/chat failed; see $OUT/backend.log and $OUT/ai-stack.log" >&2
    exit 1
  }
}

# start_rust MODE [wrapper...]: ai-stack then backend with the mode's environment
start_rust() {
  local mode="$1"; shift
  local envs tls_ai tls_backend
  read -r -a envs <<<"$(mode_env "$mode")"
  read -r -a tls_ai <<<"$(tls_env_ai "$mode")"
  read -r -a tls_backend <<<"$(tls_env_backend "$mode")"
  start "$OUT/ai-stack.log" "${ENV_COMMON[@]}" "${envs[@]}" "${ENV_AI[@]}" "${tls_ai[@]}" "$@" "$BIN_DIR/autobot-ai-stack"
  PID_AI=$LAST
  start "$OUT/backend.log" "${ENV_COMMON[@]}" "${envs[@]}" "${ENV_BACKEND[@]}" "${tls_backend[@]}" "$(auth_env "$mode")" "$@" "$BIN_DIR/autobot-backend"
  PID_BACKEND=$LAST
  wait_port "$PORT_AI" 120
  wait_port "$PORT_BACKEND" 120
}

start_python() {
  local envs
  read -r -a envs <<<"$(mode_env "$1")"
  start "$OUT/py-ai-stack.log" "${ENV_COMMON[@]}" "${envs[@]}" PRODUCT_ROLE=ai-stack BENCH_SERVICE_NAME=py-ai-stack \
    PRODUCT_OLLAMA_URL="http://127.0.0.1:$PORT_LLM" \
    "$VENV/bin/python" -m uvicorn product:app --app-dir "$ROOT/bench/python" \
    --host 127.0.0.1 --port "$PORT_AI" --no-access-log --log-level warning
  PID_AI=$LAST
  start "$OUT/py-backend.log" "${ENV_COMMON[@]}" "${envs[@]}" PRODUCT_ROLE=backend BENCH_SERVICE_NAME=py-backend \
    PRODUCT_AI_STACK_URL="http://127.0.0.1:$PORT_AI" \
    "$VENV/bin/python" -m uvicorn product:app --app-dir "$ROOT/bench/python" \
    --host 127.0.0.1 --port "$PORT_BACKEND" --no-access-log --log-level warning
  PID_BACKEND=$LAST
  wait_port "$PORT_AI" 60
  wait_port "$PORT_BACKEND" 60
}

# ------------------------------------------------------------------ callgrind
if [ "$CALLGRIND" = 1 ]; then
  CG="$OUT/callgrind"
  mkdir -p "$CG"
  curl_config() { # file count url: COUNT POSTs of the body on one connection
    : >"$1"
    local i
    for ((i = 0; i < $2; i++)); do printf 'url = "%s"\noutput = "/dev/null"\n' "$3" >>"$1"; done
  }
  printf '%s' "$BODY" >"$CG/body.json"
  post_all() { # count MODE
    local args
    mapfile -t args < <(curl_args "$2")
    curl_config "$CG/posts.curl" "$1" "$(url_of "$2")"
    curl -s "${args[@]}" -H 'Content-Type: application/json' --data-binary "@$CG/body.json" -K "$CG/posts.curl"
  }
  total_ir() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }
  start_llm
  grind() { echo valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$1"; }
  printf '%-12s %14s %14s %14s %12s\n' "instructions" backend ai-stack both sink
  for mode in "${MODES[@]}"; do
    dir="$CG/$mode"
    rm -rf "$dir"; mkdir -p "$dir"
    read -r -a envs <<<"$(mode_env "$mode")"
    read -r -a tls_ai <<<"$(tls_env_ai "$mode")"
    read -r -a tls_backend <<<"$(tls_env_backend "$mode")"
    read -r -a vg <<<"$(grind "$dir/sink.out")"
    start_sink "${vg[@]}"
    read -r -a vg <<<"$(grind "$dir/ai-stack.out")"
    start "$OUT/ai-stack.log" "${ENV_COMMON[@]}" "${envs[@]}" "${ENV_AI[@]}" "${tls_ai[@]}" "${vg[@]}" "$BIN_DIR/autobot-ai-stack"
    PID_AI=$LAST
    read -r -a vg <<<"$(grind "$dir/backend.out")"
    start "$OUT/backend.log" "${ENV_COMMON[@]}" "${envs[@]}" "${ENV_BACKEND[@]}" "${tls_backend[@]}" "$(auth_env "$mode")" "${vg[@]}" "$BIN_DIR/autobot-backend"
    PID_BACKEND=$LAST
    wait_port "$PORT_AI" 120; wait_port "$PORT_BACKEND" 120
    check_chat "$mode"
    post_all 200 "$mode"
    sleep 3 # the warm-up's spans are exported and ingested before counting starts
    for p in "$PID_BACKEND" "$PID_AI" "$PID_SINK"; do callgrind_control -z "$p" >/dev/null 2>&1; done
    post_all "$CALLGRIND_N" "$mode"
    sleep 3 # one schedule delay (1 s) and the sink's ingest, under valgrind
    for p in "$PID_BACKEND" "$PID_AI" "$PID_SINK"; do callgrind_control -d "$p" >/dev/null 2>&1; done
    for p in "$PID_BACKEND" "$PID_AI" "$PID_SINK"; do stop "$p"; done
    b=$(total_ir "$dir/backend.out.1"); a=$(total_ir "$dir/ai-stack.out.1"); s=$(total_ir "$dir/sink.out.1")
    printf '%-12s %14d %14d %14d %12d\n' "$mode" $((b / CALLGRIND_N)) $((a / CALLGRIND_N)) \
      $(((a + b) / CALLGRIND_N)) $((s / CALLGRIND_N)) | tee "$dir/summary.txt"
  done
  echo "== load average after: $(cat /proc/loadavg) (instruction counts do not depend on it)"
  python3 "$ROOT/bench/callgrind_by_function.py" --per "$CALLGRIND_N" \
    $(for mode in "${MODES[@]}"; do echo "$mode=$CG/$mode"; done)
  exit 0
fi

# ------------------------------------------------------------------ wrk
RESULTS="$OUT/results.tsv"
: >"$RESULTS"
printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[%s]]\n' "$BODY" >"$OUT/chat.lua"
( umask 077
  cat "$OUT/chat.lua" >"$OUT/chat-key.lua"
  printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$API_KEY" >>"$OUT/chat-key.lua" )

# measure KIND MODE ROUND SPANS-BEFORE: warm-up, one measured wrk run, stop the
# pair; a row in results.tsv. The Python pair checks no key (its mode is sent without).
measure() {
  local kind="$1" mode="$2" round="$3" life0="$4"
  local WRK=(wrk -t1 -c16 -s "$OUT/chat.lua")
  if [ "$kind" = rust ] && keyed "$mode"; then WRK=(wrk -t1 -c16 -s "$OUT/chat-key.lua"); fi
  local url
  url="$(url_of "$mode")"
  "${WRK[@]}" -d"${WARMUP_SECONDS}s" "$url" >/dev/null
  sleep 1.5 # the batch processors export what the warm-up left (schedule delay 1 s)
  local s0 b0 a0 l0 k0
  s0="$(sink_spans)"
  b0="$(cpu_ticks "$PID_BACKEND")"; a0="$(cpu_ticks "$PID_AI")"
  l0="$(cpu_ticks "$PID_LLM")"; k0="$(cpu_ticks "$PID_SINK")"
  "${WRK[@]}" -d"${SECONDS_PER_RUN}s" --latency "$url" >"$OUT/wrk.txt"
  # Connection reuse, backend -> ai-stack: the pool's open connections, and
  # those closed in the last minute (TIME-WAIT); a handshake per request would
  # leave thousands of the latter.
  local pool_open pool_closed
  pool_open="$(ss -Htn state established "( dport = :$PORT_AI )" | wc -l)"
  pool_closed="$(ss -Htn state time-wait "( dport = :$PORT_AI )" | wc -l)"
  local b1 a1 l1 k1 rb ra
  b1="$(cpu_ticks "$PID_BACKEND")"; a1="$(cpu_ticks "$PID_AI")"
  l1="$(cpu_ticks "$PID_LLM")"; k1="$(cpu_ticks "$PID_SINK")"
  rb="$(rss_kb "$PID_BACKEND")"; ra="$(rss_kb "$PID_AI")"
  stop "$PID_BACKEND"; stop "$PID_AI"
  local s1 ended=0
  s1="$(sink_settled)"
  if [ "$kind" = rust ]; then
    ended=$(($(ended_spans "$OUT/backend.log") + $(ended_spans "$OUT/ai-stack.log")))
  fi
  local requests rps p50 p99 errors
  requests="$(awk '/requests in/ {print $1}' "$OUT/wrk.txt")"
  rps="$(awk '/^Requests\/sec:/ {print $2}' "$OUT/wrk.txt")"
  p50="$(awk '$1 == "50%" {print $2}' "$OUT/wrk.txt")"
  p99="$(awk '$1 == "99%" {print $2}' "$OUT/wrk.txt")"
  errors="$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' "$OUT/wrk.txt")"
  # kind mode round rps p50 p99 requests ticks(backend ai llm sink) rss(backend ai)
  # spans: received in the window, received over the pair's life, ended per the services
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$kind" "$mode" "$round" "$rps" "$p50" "$p99" "$requests" \
    "$((b1 - b0))" "$((a1 - a0))" "$((l1 - l0))" "$((k1 - k0))" "$rb" "$ra" \
    "$((s1 - s0))" "$((s1 - life0))" "$ended" "$SECONDS_PER_RUN" "$CLK_TCK" "${errors:-}" >>"$RESULTS"
  printf '  %-6s %-12s round %s: %8s req/s  p50 %-8s p99 %-8s spans %s (services ended %s) connections to ai-stack: %s open, %s closed %s\n' \
    "$kind" "$mode" "$round" "$rps" "$p50" "$p99" "$((s1 - life0))" "$ended" "$pool_open" "$pool_closed" "${errors:-}"
}

start_sink
start_llm
echo "== product path, Rust: $ROUNDS rounds of ${MODES[*]}, ${SECONDS_PER_RUN} s each after ${WARMUP_SECONDS} s of warm-up (wrk -t1 -c16, POST /api/chat)"
[ ${#TRACED_ENV[@]} -gt 0 ] && echo "   traced modes also get: ${TRACED_ENV[*]}"
for ((round = 1; round <= ROUNDS; round++)); do
  for mode in "${MODES[@]}"; do
    life0="$(sink_spans)"
    start_rust "$mode"
    check_chat "$mode"
    measure rust "$mode" "$round" "$life0"
  done
done

if [ "$PYTHON" = 1 ]; then
  if [ ! -x "$VENV/bin/uvicorn" ]; then
    echo "== creating $VENV and installing bench/python/requirements.txt from PyPI"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r bench/python/requirements.txt
  fi
  echo "== product path, Python (FastAPI + httpx + OpenTelemetry SDK): $ROUNDS rounds at rate 1.0, one untraced"
  for ((round = 1; round <= ROUNDS; round++)); do
    life0="$(sink_spans)"
    start_python traced-1.0
    check_chat traced-1.0-nokey
    measure python traced-1.0 "$round" "$life0"
  done
  life0="$(sink_spans)"
  start_python untraced
  check_chat untraced-nokey
  measure python untraced 1 "$life0"
fi

stop "$PID_LLM"; stop "$PID_SINK"
echo "== load average after: $(cat /proc/loadavg)"
python3 "$ROOT/bench/product_report.py" "$RESULTS" "$SPANS_PER_REQUEST"
