//! Starts the trace tool (`autobot-trace serve`) on free loopback ports: the
//! receiver in another process that tests export to, and the Jaeger query
//! API they read traces from. Killed when dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::bins::workspace_bin;

/// A running `autobot-trace serve`.
pub struct TraceTool {
    child: Child,
    grpc: SocketAddr,
    http: SocketAddr,
    query: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

impl TraceTool {
    /// Starts the tool and waits until its query API answers.
    pub fn start() -> anyhow::Result<Self> {
        let bin = workspace_bin("autobot-trace")?;
        let mut last_error = None;
        // A free port can be taken between our probe and the tool's bind: retry.
        for _ in 0..3 {
            match Self::try_start(&bin) {
                Ok(tool) => return Ok(tool),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("three attempts"))
    }

    fn try_start(bin: &std::path::Path) -> anyhow::Result<Self> {
        let (grpc, http, query) = (free_addr()?, free_addr()?, free_addr()?);
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("trace-tool.log");
        let child = Command::new(bin)
            .arg("serve")
            .args(["--otlp-grpc", &grpc.to_string()])
            .args(["--otlp-http", &http.to_string()])
            .args(["--query", &query.to_string()])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(
                dir.path().join("trace-tool.stderr.log"),
            )?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut tool = Self {
            child,
            grpc,
            http,
            query,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = tool.child.try_wait()? {
                bail!("autobot-trace serve exited with {status}");
            }
            let up = [tool.grpc, tool.http, tool.query].iter().all(|a| {
                std::net::TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok()
            });
            if up {
                return Ok(tool);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "autobot-trace serve did not listen within 15 s (log: {})",
            tool.log.display()
        )
    }

    /// `http://127.0.0.1:P`: give it to AUTOBOT_JAEGER_ENDPOINT for OTLP/gRPC.
    pub fn otlp_grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// `http://127.0.0.1:P/v1/traces`: OTLP/HTTP.
    pub fn otlp_http_endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.http)
    }

    /// Base URL of the Jaeger query API (`/api/traces/{id}` …).
    pub fn query_url(&self) -> String {
        format!("http://{}", self.query)
    }

    /// The trace as Jaeger's `GET /api/traces/{id}` gives it (`data[0]`), if stored.
    pub async fn trace(&self, trace_id: &str) -> anyhow::Result<Option<Value>> {
        let url = format!("{}/api/traces/{trace_id}", self.query_url());
        let response = reqwest::get(&url)
            .await
            .with_context(|| format!("GET {url}"))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: Value = response.error_for_status()?.json().await?;
        Ok(body["data"].get(0).cloned())
    }

    /// Polls until the trace satisfies `done` (spans arrive in batches), or
    /// fails after `timeout` with the last state seen.
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        done: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let trace = self.trace(trace_id).await?;
            if let Some(t) = &trace
                && done(t)
            {
                return Ok(t.clone());
            }
            if Instant::now() >= deadline {
                bail!(
                    "trace {trace_id} not as expected after {timeout:?}; last seen: {}",
                    trace.unwrap_or(Value::Null)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for TraceTool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The services present in a Jaeger trace (`processes[*].serviceName`).
pub fn services(trace: &Value) -> Vec<String> {
    let mut out: Vec<String> = trace["processes"]
        .as_object()
        .map(|p| {
            p.values()
                .filter_map(|v| v["serviceName"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    out
}
