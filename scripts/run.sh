#!/usr/bin/env bash
# Runs the whole AutoBot system on this machine, traced end to end:
#   Redis, the trace tool (a Jaeger stand-in, unless AUTOBOT_JAEGER_ENDPOINT
#   points at a real Jaeger), the five services, one sshd "VM" with the PKI
#   agent, a small demo web site, and — only when no real Ollama/OpenAI is
#   configured — a STAND-IN LLM server that answers from the prompt (not a model).
# Then it sends one research request and one certificate distribution, checks
# that both traces are whole, prints them and their links in the trace UI, and
# keeps running (AutoBot's page, the trace UI) until Ctrl-C.
# Prometheus (Debian's package, with Alertmanager) scrapes every service with
# infra/prometheus's rules; a few PromQL answers are printed after the traces.
#
#   ./scripts/run.sh          run, demo, keep running (Ctrl-C stops everything, spans flushed)
#   ./scripts/run.sh --once   run the demo once and exit (status 0 when both traces are whole)
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

once=false
for arg in "$@"; do
  case "$arg" in
    --once) once=true ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

state="$repo/.run/local"
logs="$state/logs"
bin="${CARGO_TARGET_DIR:-$repo/target}/debug"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "installing what the system needs (scripts/setup.sh)"
bash scripts/setup.sh

say "building every binary"
cargo build --workspace --bins --locked

rm -rf "$state"
mkdir -p "$logs" "$state/vm/certs" "$state/pki" "$state/ssh"

pids=()
names=()
stop_all() {
  trap - EXIT INT TERM
  if [ ${#pids[@]} -gt 0 ]; then
    say "stopping everything (SIGTERM: every service flushes its spans)"
    for ((i=${#pids[@]}-1; i>=0; i--)); do
      kill -TERM "${pids[$i]}" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    done
  fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND... : runs in the background, output to .run/local/logs/NAME.log
start() {
  local name="$1"; shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=("$!")
  names+=("$name")
  echo "    $name (pid $!, log .run/local/logs/$name.log)"
}

# wait_http NAME URL : until URL answers 2xx, or fail after 60 s showing the log
wait_http() {
  local name="$1" url="$2"
  for _ in $(seq 1 600); do
    if curl -fs -o /dev/null --max-time 2 "$url"; then echo "    $name is up: $url"; return 0; fi
    sleep 0.1
  done
  echo "run.sh: $name did not come up at $url; its log:" >&2
  tail -n 40 "$logs/$name.log" >&2
  exit 1
}

# --- telemetry ---------------------------------------------------------------
if [ -n "${AUTOBOT_JAEGER_ENDPOINT:-}" ]; then
  say "spans go to the configured Jaeger: $AUTOBOT_JAEGER_ENDPOINT"
  query="${AUTOBOT_JAEGER_QUERY_URL:-http://127.0.0.1:16686}"
else
  say "starting the trace tool (Jaeger stand-in: OTLP 4317/4318, query API and web UI 16686)"
  # AutoBot's page (the backend, :8001) sends its browser spans to OTLP/HTTP: allow its origin.
  start trace-tool "$bin/autobot-trace" serve --cors-origin http://127.0.0.1:8001,http://localhost:8001
  export AUTOBOT_JAEGER_ENDPOINT="http://127.0.0.1:4317"
  export AUTOBOT_WEB_OTLP_URL="${AUTOBOT_WEB_OTLP_URL:-http://127.0.0.1:4318/v1/traces}"
  query="http://127.0.0.1:16686"
  wait_http trace-tool "$query/api/services"
fi
export AUTOBOT_JAEGER_QUERY_URL="$query"
export AUTOBOT_ENV="${AUTOBOT_ENV:-local}"
export OTEL_BSP_SCHEDULE_DELAY="${OTEL_BSP_SCHEDULE_DELAY:-200}"

# --- Redis ---------------------------------------------------------------------
say "starting Redis on 127.0.0.1:6390"
start redis redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no --dir "$state"
export AUTOBOT_REDIS_URL="redis://127.0.0.1:6390/0"
for _ in $(seq 1 100); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.1; done

# --- the LLM -------------------------------------------------------------------
if [ -n "${AUTOBOT_OLLAMA_URL:-}" ] || { [ -n "${AUTOBOT_OPENAI_BASE_URL:-}" ] && [ -n "${OPENAI_API_KEY:-}" ]; }; then
  say "using the configured LLM (${AUTOBOT_OLLAMA_URL:-$AUTOBOT_OPENAI_BASE_URL})"
else
  say "no Ollama/OpenAI configured: starting the STAND-IN LLM server on 127.0.0.1:11434 (answers from the prompt; not a model)"
  start llm-standin "$bin/autobot-llm-standin" --bind 127.0.0.1:11434
  export AUTOBOT_OLLAMA_URL="http://127.0.0.1:11434"
  export AUTOBOT_LLM_PROVIDER="ollama"
  export AUTOBOT_LLM_MODEL="${AUTOBOT_LLM_MODEL:-standin}"
  wait_http llm-standin "http://127.0.0.1:11434/api/tags"
fi

# --- the demo web site the research request reads ---------------------------
# On 127.0.0.2: the browser refuses loopback unless told (AUTOBOT_BROWSER_ALLOW,
# docs/browser.md), and is told about this address alone, so the services on
# 127.0.0.1 stay out of its reach.
say "starting the demo web site on 127.0.0.2:8090"
start demo-site env AUTOBOT_BIND=127.0.0.2:8090 "$bin/autobot-demo-site"
wait_http demo-site "http://127.0.0.2:8090/health"

# --- one sshd "VM" with the PKI agent -------------------------------------
say "starting an sshd 'VM' on 127.0.0.1:2222 (AcceptEnv TRACEPARENT TRACESTATE BAGGAGE)"
ssh-keygen -q -t ed25519 -N '' -f "$state/ssh/host_key" >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$state/ssh/client_key" >/dev/null
cp "$state/ssh/client_key.pub" "$state/ssh/authorized_keys"
user="$(id -un)"
cat >"$state/ssh/sshd_config" <<EOF
Port 2222
ListenAddress 127.0.0.1
HostKey $state/ssh/host_key
AuthorizedKeysFile $state/ssh/authorized_keys
StrictModes no
PidFile none
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $user
Subsystem sftp internal-sftp
AcceptEnv TRACEPARENT TRACESTATE BAGGAGE
SetEnv AUTOBOT_JAEGER_ENDPOINT=$AUTOBOT_JAEGER_ENDPOINT AUTOBOT_ENV=$AUTOBOT_ENV OTEL_BSP_SCHEDULE_DELAY=$OTEL_BSP_SCHEDULE_DELAY
EOF
mkdir -p /run/sshd 2>/dev/null || true
start sshd-vm /usr/sbin/sshd -D -e -f "$state/ssh/sshd_config"
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/2222) 2>/dev/null && break; sleep 0.1; done
echo "[127.0.0.1]:2222 $(cut -d' ' -f1,2 "$state/ssh/host_key.pub")" >"$state/ssh/known_hosts"
cat >"$state/pki/targets.toml" <<EOF
[[targets]]
name = "local-vm"
host = "127.0.0.1"
port = 2222
user = "$user"
cert_dir = "$state/vm/certs"
agent = "$bin/autobot-pki-agent"
EOF

# --- an operator key for the backend's API --------------------------------
say "making an operator key for this run (autobot-backend keygen local-operator admin)"
keygen="$("$bin/autobot-backend" keygen local-operator admin)"
api_key="$(grep -v '^#' <<<"$keygen" | sed -n 1p)"
grep -v '^#' <<<"$keygen" | sed -n 2p >"$state/api-keys"
(umask 077; printf '%s\n' "$api_key" >"$state/api-key"; printf 'Authorization: Bearer %s\n' "$api_key" >"$state/api-key.header")
echo "    keys file .run/local/api-keys (name, role, SHA-256: the backend never holds the key itself)"
echo "    the key is in .run/local/api-key; every /api/* call but /api/health needs it:"
echo "      curl -H \"Authorization: Bearer \$(cat .run/local/api-key)\" http://127.0.0.1:8001/api/health/cluster"

# --- the services ----------------------------------------------------------------
say "starting the services"
start npu-worker env AUTOBOT_BIND=127.0.0.1:8081 AUTOBOT_NPU_MODEL_DIR="$repo/.run/models/all-MiniLM-L6-v2" "$bin/autobot-npu-worker"
start ai-stack env AUTOBOT_BIND=127.0.0.1:8080 "$bin/autobot-ai-stack"
start browser env AUTOBOT_BIND=127.0.0.1:3000 AUTOBOT_BROWSER_ALLOW=127.0.0.2 "$bin/autobot-browser"
start pki-distributor env AUTOBOT_BIND=127.0.0.1:8002 AUTOBOT_PKI_DIR="$state/pki/ca" \
  AUTOBOT_PKI_TARGETS="$state/pki/targets.toml" AUTOBOT_SSH_KEY="$state/ssh/client_key" \
  AUTOBOT_SSH_KNOWN_HOSTS="$state/ssh/known_hosts" "$bin/autobot-pki-distributor"
start backend env AUTOBOT_BIND=127.0.0.1:8001 AUTOBOT_API_KEYS_FILE="$state/api-keys" AUTOBOT_AI_STACK_URL=http://127.0.0.1:8080 \
  AUTOBOT_BROWSER_URL=http://127.0.0.1:3000 AUTOBOT_PKI_URL=http://127.0.0.1:8002 \
  AUTOBOT_NPU_URL=http://127.0.0.1:8081 "$bin/autobot-backend"
wait_http npu-worker http://127.0.0.1:8081/health
wait_http ai-stack http://127.0.0.1:8080/health
wait_http browser http://127.0.0.1:3000/health
wait_http pki-distributor http://127.0.0.1:8002/health
wait_http backend http://127.0.0.1:8001/api/health

# --- Prometheus and Alertmanager (infra/prometheus, local targets) ----------------
prom_port="${AUTOBOT_PROMETHEUS_PORT:-9090}"
am_port="${AUTOBOT_ALERTMANAGER_PORT:-9093}"
prom_dir="$state/prometheus"
say "starting Prometheus on 127.0.0.1:$prom_port and Alertmanager on 127.0.0.1:$am_port (infra/prometheus, scraping every 2 s)"
mkdir -p "$prom_dir/targets" "$prom_dir/data" "$prom_dir/am-data"
# The production configuration, its rules as they are, local targets and a
# short interval so the demo's requests show at once.
sed -e 's/^  scrape_interval: 15s/  scrape_interval: 2s/' -e 's/^  evaluation_interval: 15s/  evaluation_interval: 2s/' \
  -e 's/^  scrape_timeout: 10s/  scrape_timeout: 2s/' infra/prometheus/prometheus.yml >"$prom_dir/prometheus.yml"
ln -sfn "$repo/infra/prometheus/rules" "$prom_dir/rules"
local_target() { printf -- '- targets: ["%s"]\n  labels:\n    vm: local\n' "$2" >"$prom_dir/targets/$1.yml"; }
local_target autobot-backend 127.0.0.1:8001
local_target autobot-pki-distributor 127.0.0.1:8002
local_target autobot-npu-worker 127.0.0.1:8081
local_target autobot-ai-stack 127.0.0.1:8080
local_target autobot-browser 127.0.0.1:3000
local_target prometheus "127.0.0.1:$prom_port"
local_target alertmanager "127.0.0.1:$am_port"
# No Redis exporter or Jaeger here: those jobs have no target.
printf '[]\n' >"$prom_dir/targets/redis.yml"
printf '[]\n' >"$prom_dir/targets/jaeger.yml"
start alertmanager /usr/bin/prometheus-alertmanager --config.file="$repo/infra/prometheus/alertmanager.yml" \
  --storage.path="$prom_dir/am-data" --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address=
start prometheus /usr/bin/prometheus --config.file="$prom_dir/prometheus.yml" \
  --storage.tsdb.path="$prom_dir/data" --web.listen-address="127.0.0.1:$prom_port" \
  --enable-feature=exemplar-storage
wait_http alertmanager "http://127.0.0.1:$am_port/-/ready"
wait_http prometheus "http://127.0.0.1:$prom_port/-/ready"

# --- the demo ----------------------------------------------------------------------
# post PATH JSON : prints the trace id from the traceresponse header, the body to .run/local/PATH.json
post() {
  local path="$1" body="$2" out
  out="$state/$(echo "$path" | tr '/' '_').json"
  curl -sS -D "$out.headers" -o "$out" -H 'content-type: application/json' \
    -H @"$state/api-key.header" -d "$body" "http://127.0.0.1:8001$path" >/dev/null
  tr -d '\r' <"$out.headers" | awk -F'-' 'tolower($0) ~ /^traceresponse:/ {print $2}'
}

status=0
say "research request: the demo page, embedded on the NPU worker, ranked, answered by the LLM"
research_trace="$(post /api/research '{"url":"http://127.0.0.2:8090/articles/tracing","question":"Which header carries the trace context between services?","top_k":3}')"
cat "$state/_api_research.json"; echo
say "research trace $research_trace"
"$bin/autobot-trace" check "$research_trace" --jaeger "$query" --wait 30s \
  --services autobot-backend,autobot-browser,autobot-npu-worker,autobot-ai-stack || status=1
"$bin/autobot-trace" show "$research_trace" --jaeger "$query" || status=1

say "certificate distribution to the sshd VM"
pki_trace="$(post /api/pki/distribute '{}')"
cat "$state/_api_pki_distribute.json"; echo
say "distribution trace $pki_trace"
"$bin/autobot-trace" check "$pki_trace" --jaeger "$query" --wait 30s \
  --services autobot-backend,autobot-pki-distributor,autobot-pki-agent || status=1
"$bin/autobot-trace" show "$pki_trace" --jaeger "$query" || status=1

# Links in the trace UI (serve's, or Jaeger's own: the same paths).
expect="autobot-backend,autobot-browser,autobot-npu-worker,autobot-ai-stack"
say "the trace UI: $query/"
echo "    research trace:     $query/trace/$research_trace?expect=$expect"
echo "    distribution trace: $query/trace/$pki_trace?expect=autobot-backend,autobot-pki-distributor,autobot-pki-agent"
echo "    research searches:  $query/search?service=autobot-backend&operation=POST%20%2Fapi%2Fresearch&expect=$expect"
echo "    service graph:      $query/graph"
say "AutoBot's page: http://127.0.0.1:8001/ (ask about http://127.0.0.1:8090/articles/tracing; the trace starts in your browser)"

# promql TITLE QUERY : prints each series of an instant query as `  job  value`
promql() {
  echo "    $1"
  echo "      $2"
  curl -fsS --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$2" |
    jq -r '.data.result[] | "\(.metric.job // .metric.service_name // "-")\t\(.value[1])"' |
    awk -F'\t' '{ printf "        %-26s %.4g\n", $1, $2 }' || status=1
}
say "Prometheus (http://127.0.0.1:$prom_port): every request counted, whatever the sampling"
sleep 5 # two scrapes after the demo
promql "requests per service (since start)" 'sum by (job) (http_server_request_duration_seconds_count)'
promql "error ratio per service (5xx and unanswered / all)" \
  '(sum by (job) (http_server_request_duration_seconds_count{error_type!=""}) or on (job) 0 * sum by (job) (http_server_request_duration_seconds_count)) / sum by (job) (http_server_request_duration_seconds_count)'
promql "p99 latency per service, seconds (since start)" \
  'histogram_quantile(0.99, sum by (job, le) (http_server_request_duration_seconds_bucket))'
promql "operations Jaeger's Monitor tab shows (spanmetrics calls)" \
  'sum by (service_name) (traces_span_metrics_calls_total)'
promql "scrape targets up" 'up'

if $once; then
  exit "$status"
fi
say "running until Ctrl-C (then every service stops and flushes its spans); traces in the UI above; metrics at http://127.0.0.1:$prom_port (alerts: /alerts); logs in .run/local/logs/"
say "call the API with the run's operator key: curl -H \"Authorization: Bearer \$(cat .run/local/api-key)\" http://127.0.0.1:8001/api/health/cluster"
wait
