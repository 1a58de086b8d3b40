//! The workspace's trace tool (`autobot-trace serve`) as a child process:
//! OTLP in over gRPC and HTTP, Jaeger's query API out, killed on Drop.
//!
//! It binds port 0 for all three listeners and prints the real addresses
//! on its first stdout line, so there is no window in which another process
//! can take a port we probed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// How long `serve` may take to bind and say so.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How often [`TraceTool::wait_for_trace`] asks.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// The first line `serve` prints once it listens (autobot_trace::serve::READY_PREFIX).
const READY_PREFIX: &str = "autobot-trace ready";

#[derive(Debug)]
pub struct TraceTool {
    child: Child,
    otlp_grpc: SocketAddr,
    otlp_http: SocketAddr,
    query: SocketAddr,
    http: reqwest::Client,
}

impl TraceTool {
    /// Starts `autobot-trace serve`; panics with the reason when it cannot
    /// (a test cannot go on without it). See [`TraceTool::try_start`].
    pub fn start() -> TraceTool {
        Self::try_start().expect("starting autobot-trace serve")
    }

    pub fn try_start() -> anyhow::Result<TraceTool> {
        Self::start_with_args(&[])
    }

    /// Starts it with extra `serve` arguments, e.g. `["--max-spans", "100"]`.
    pub fn start_with_args(extra: &[&str]) -> anyhow::Result<TraceTool> {
        let binary = crate::bins::workspace_bin("autobot-trace")?;
        let mut last_error = None;
        // Port 0 leaves no race, but a start can still fail on a loaded box: retry.
        for _ in 0..3 {
            match Self::spawn(&binary, extra) {
                Ok(tool) => return Ok(tool),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("autobot-trace serve did not start")))
    }

    fn spawn(binary: &std::path::Path, extra: &[&str]) -> anyhow::Result<TraceTool> {
        let mut child = Command::new(binary)
            .args([
                "serve",
                "--otlp-grpc",
                "127.0.0.1:0",
                "--otlp-http",
                "127.0.0.1:0",
                "--query",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let stdout = child.stdout.take().context("serve's stdout")?;
        let (tx, rx) = mpsc::channel();
        // Reads the ready line, then keeps draining so serve never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            for _ in lines {}
        });
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let status = child.wait().ok();
                bail!(
                    "autobot-trace serve did not report ready within {READY_TIMEOUT:?} \
                     (exit status {status:?}, read {other:?})"
                );
            }
        };
        let addr = |key: &str| -> anyhow::Result<SocketAddr> {
            line.strip_prefix(READY_PREFIX)
                .and_then(|rest| {
                    rest.split_whitespace()
                        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                })
                .with_context(|| format!("no {key}= in serve's ready line {line:?}"))?
                .parse()
                .with_context(|| format!("bad {key} address in {line:?}"))
        };
        let (otlp_grpc, otlp_http, query) =
            match (addr("otlp-grpc"), addr("otlp-http"), addr("query")) {
                (Ok(g), Ok(h), Ok(q)) => (g, h, q),
                (g, h, q) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("{:?}", g.err().or(h.err()).or(q.err()));
                }
            };
        Ok(TraceTool {
            child,
            otlp_grpc,
            otlp_http,
            query,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    /// `http://127.0.0.1:P`: what an OTLP gRPC exporter is given.
    pub fn otlp_grpc_endpoint(&self) -> String {
        format!("http://{}", self.otlp_grpc)
    }

    /// `http://127.0.0.1:P/v1/traces`: an OTLP/HTTP exporter's full URL
    /// (the path also tells autobot-tracing to use HTTP).
    pub fn otlp_http_endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.otlp_http)
    }

    /// `http://127.0.0.1:P`: Jaeger's query API (what `--jaeger` takes).
    pub fn query_url(&self) -> String {
        format!("http://{}", self.query)
    }

    /// The trace in Jaeger's v1 JSON (`data[0]` of `GET /api/traces/{id}`),
    /// or None when it is not there (yet).
    pub async fn trace(&self, trace_id: &str) -> Option<Value> {
        let url = format!("{}/api/traces/{}", self.query_url(), trace_id.trim());
        let response = self.http.get(url).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let mut body: Value = response.json().await.ok()?;
        let first = body.get_mut("data")?.as_array_mut()?.first_mut()?.take();
        Some(first)
    }

    /// Polls until the trace is there and `done` holds for it, or `timeout`
    /// passes; the error carries what was last seen.
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        done: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let trace = self.trace(trace_id).await;
            if let Some(t) = &trace
                && done(t)
            {
                return Ok(trace.unwrap_or_default());
            }
            if tokio::time::Instant::now() >= deadline {
                match trace {
                    None => bail!("trace {trace_id} did not arrive within {timeout:?}"),
                    Some(t) => {
                        let spans: Vec<String> = t["spans"]
                            .as_array()
                            .map(|spans| {
                                spans
                                    .iter()
                                    .map(|s| {
                                        let process = s["processID"].as_str().unwrap_or("");
                                        format!(
                                            "{} {}",
                                            t["processes"][process]["serviceName"]
                                                .as_str()
                                                .unwrap_or("?"),
                                            s["operationName"].as_str().unwrap_or("?")
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        bail!(
                            "trace {trace_id} arrived but the condition did not hold within \
                             {timeout:?}; its {} spans: {}",
                            spans.len(),
                            spans.join(", ")
                        );
                    }
                }
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for TraceTool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs `cargo build --workspace --bins` (as CI does) for autobot-trace.
    #[tokio::test]
    async fn serves_otlp_in_and_jaeger_json_out_and_stops_on_drop() {
        let tool = TraceTool::start();
        let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let body = serde_json::json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "testkit"}}]},
            "scopeSpans": [{"spans": [{
                "traceId": trace_id, "spanId": "00f067aa0ba902b7", "name": "probe", "kind": 2,
                "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000001000000"
            }]}]
        }]});
        let response = reqwest::Client::new()
            .post(tool.otlp_http_endpoint())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let trace = tool
            .wait_for_trace(
                trace_id,
                |t| t["spans"].as_array().is_some_and(|s| s.len() == 1),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(trace["spans"][0]["operationName"], "probe");
        assert_eq!(trace["processes"]["p1"]["serviceName"], "testkit");
        assert!(
            tool.trace("0000000000000000000000000000abcd")
                .await
                .is_none()
        );
        let err = tool
            .wait_for_trace(trace_id, |_| false, Duration::from_millis(300))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("testkit probe"), "{err}");
        let query = tool.query;
        drop(tool);
        assert!(
            std::net::TcpStream::connect(query).is_err(),
            "killed on drop"
        );
    }
}
