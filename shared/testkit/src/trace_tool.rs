//! The workspace's trace tool (`autobot-trace serve`) as a child process
//! ([`crate::process`]): OTLP in over gRPC and HTTP, Jaeger's query API
//! out, stopped on Drop. Traces read from it come as
//! `autobot_trace::model::Trace` or as flattened [`Span`]s.
//!
//! It binds port 0 for all three listeners and prints the real addresses
//! on its first stdout line, so there is no window in which another process
//! can take a port we probed.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::process::{Launch, Process};
use crate::traces::{Span, Trace, names, spans};

/// How long `serve` may take to bind and say so.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`TraceTool::wait_for_spans`] waits: generous, since spans of
/// a job that takes seconds come late on a loaded box; a test that passes
/// returns as soon as they are there.
pub const TRACE_WAIT: Duration = Duration::from_secs(60);
/// How often the waits ask.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The first line `serve` prints once it listens (autobot_trace::serve::READY_PREFIX).
const READY_PREFIX: &str = "autobot-trace ready";

/// The three addresses of serve's ready line
/// `autobot-trace ready otlp-grpc=A otlp-http=B query=C`.
fn ready_addrs(line: &str) -> Option<[SocketAddr; 3]> {
    let rest = line.strip_prefix(READY_PREFIX)?;
    let addr = |key: &str| -> Option<SocketAddr> {
        rest.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?
            .parse()
            .ok()
    };
    Some([addr("otlp-grpc")?, addr("otlp-http")?, addr("query")?])
}

#[derive(Debug)]
pub struct TraceTool {
    process: Process,
    otlp_grpc: SocketAddr,
    otlp_http: SocketAddr,
    query: SocketAddr,
    http: reqwest::Client,
    /// `https` when the OTLP listeners serve TLS ([`TraceTool::start_tls`]).
    otlp_scheme: &'static str,
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

    /// Starts it with both OTLP listeners serving TLS with `server`'s
    /// certificate and requiring a client certificate chaining to its CA
    /// (`--tls-cert --tls-key --tls-client-ca`, as Jaeger's receivers are
    /// set up in docs/security.md); the query API stays plain HTTP.
    pub fn start_tls(server: &crate::pki::TestIdentity) -> anyhow::Result<TraceTool> {
        Self::start_tls_with(server, &[])
    }

    /// [`TraceTool::start_tls`] with extra `serve` arguments.
    pub fn start_tls_with(
        server: &crate::pki::TestIdentity,
        extra: &[&str],
    ) -> anyhow::Result<TraceTool> {
        let [cert, key, ca] =
            [&server.cert, &server.key, &server.ca].map(|p| p.display().to_string());
        let mut args = vec![
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
        ];
        args.extend_from_slice(extra);
        let mut tool = Self::start_with_args(&args)?;
        tool.otlp_scheme = "https";
        Ok(tool)
    }

    /// Starts it with extra `serve` arguments, e.g. `["--max-spans", "100"]`.
    pub fn start_with_args(extra: &[&str]) -> anyhow::Result<TraceTool> {
        let launch = Launch::workspace_bin("autobot-trace")
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
            .within(READY_TIMEOUT);
        let mut last_error = None;
        // Port 0 leaves no race, but a start can still fail on a loaded box: retry.
        for _ in 0..3 {
            match launch.clone().start_when(ready_addrs) {
                Ok((process, [otlp_grpc, otlp_http, query])) => {
                    return Ok(TraceTool {
                        process,
                        otlp_grpc,
                        otlp_http,
                        query,
                        http: reqwest::Client::builder()
                            .timeout(Duration::from_secs(10))
                            .build()?,
                        otlp_scheme: "http",
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("autobot-trace serve did not start")))
    }

    /// `http://127.0.0.1:P` (`https` with TLS): what an OTLP gRPC exporter is given.
    pub fn otlp_grpc_endpoint(&self) -> String {
        format!("{}://{}", self.otlp_scheme, self.otlp_grpc)
    }

    /// `http://127.0.0.1:P/v1/traces` (`https` with TLS): an OTLP/HTTP
    /// exporter's full URL (the path also tells autobot-tracing to use HTTP).
    pub fn otlp_http_endpoint(&self) -> String {
        format!("{}://{}/v1/traces", self.otlp_scheme, self.otlp_http)
    }

    /// `http://127.0.0.1:P`: Jaeger's query API (what `--jaeger` takes).
    pub fn query_url(&self) -> String {
        format!("http://{}", self.query)
    }

    /// The `serve` process: its output, SIGTERM, its exit.
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    /// `GET {query API}{path}`: the status and the JSON body (Null when the
    /// body is not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.query_url());
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The trace in Jaeger's v1 JSON (`data[0]` of `GET /api/traces/{id}`),
    /// or None when it is not there (yet).
    pub async fn trace_json(&self, trace_id: &str) -> Option<Value> {
        let url = format!("{}/api/traces/{}", self.query_url(), trace_id.trim());
        let response = self.http.get(url).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let mut body: Value = response.json().await.ok()?;
        let first = body.get_mut("data")?.as_array_mut()?.first_mut()?.take();
        Some(first)
    }

    /// The trace, parsed; None when it is not there (yet). Panics when
    /// the tool answers JSON that is not Jaeger's trace.
    pub async fn trace(&self, trace_id: &str) -> Option<Trace> {
        let json = self.trace_json(trace_id).await?;
        Some(
            serde_json::from_value(json)
                .unwrap_or_else(|e| panic!("trace {trace_id} is not Jaeger's JSON: {e}")),
        )
    }

    /// Polls until the trace is there and `done` holds for it, or `timeout`
    /// passes; the error carries what was last seen.
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        done: impl Fn(&Trace) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Trace> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let trace = self.trace(trace_id).await;
            match trace {
                Some(t) if done(&t) => return Ok(t),
                _ if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(POLL_INTERVAL).await
                }
                None => bail!("trace {trace_id} did not arrive within {timeout:?}"),
                Some(t) => {
                    let spans = spans(&t);
                    bail!(
                        "trace {trace_id} arrived but the condition did not hold within \
                         {timeout:?}; its {} spans: {}",
                        spans.len(),
                        names(&spans).join(", ")
                    );
                }
            }
        }
    }

    /// The spans of the trace once `done` holds for them; panics, listing
    /// what arrived, when it does not within [`TRACE_WAIT`].
    pub async fn wait_for_spans(
        &self,
        trace_id: &str,
        done: impl Fn(&[Span]) -> bool,
    ) -> Vec<Span> {
        self.wait_for_trace(trace_id, |t| done(&spans(t)), TRACE_WAIT)
            .await
            .map(|t| spans(&t))
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Every span the tool holds, of every service and trace.
    pub async fn all_spans(&self) -> Vec<Span> {
        let (_, services) = self.get("/api/services").await;
        let mut all = Vec::new();
        for service in services["data"].as_array().into_iter().flatten() {
            let service = service.as_str().unwrap_or_default();
            // start=0: every span held, not only the last 48 hours (Jaeger's default).
            let path = format!("/api/traces?service={service}&limit=10000&start=0");
            let (status, found) = self.get(&path).await;
            assert_eq!(status, 200, "GET {path}: {found}");
            let traces: Vec<Trace> = serde_json::from_value(found["data"].clone())
                .with_context(|| format!("GET {path}"))
                .unwrap_or_else(|e| panic!("{e:#}"));
            all.extend(traces.iter().flat_map(spans));
        }
        // A trace with several services is found once per service.
        all.sort_by(|a, b| a.span_id.cmp(&b.span_id));
        all.dedup_by(|a, b| a.span_id == b.span_id);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_gives_three_addresses() {
        let [g, h, q] = ready_addrs(
            "autobot-trace ready otlp-grpc=127.0.0.1:1 otlp-http=127.0.0.1:2 query=127.0.0.1:3",
        )
        .unwrap();
        assert_eq!((g.port(), h.port(), q.port()), (1, 2, 3));
        assert!(ready_addrs("autobot-trace ready otlp-grpc=127.0.0.1:1").is_none());
        assert!(ready_addrs("something else").is_none());
    }

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
            .wait_for_trace(trace_id, |t| t.spans.len() == 1, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(trace.spans[0].operation_name, "probe");
        assert_eq!(trace.service_of(&trace.spans[0]), "testkit");
        let json = tool.trace_json(trace_id).await.unwrap();
        assert_eq!(json["processes"]["p1"]["serviceName"], "testkit");
        let all = tool.all_spans().await;
        assert_eq!(crate::traces::names(&all), ["testkit:probe"]);
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
        assert!(err.contains("testkit:probe"), "{err}");
        let query = tool.query;
        drop(tool);
        assert!(
            std::net::TcpStream::connect(query).is_err(),
            "stopped on drop"
        );
    }
}
