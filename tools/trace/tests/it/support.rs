//! Starts `autobot-trace serve` (the binary cargo built for this test) on
//! port 0 and reads its addresses from the ready line; runs `show`/`check`.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_autobot-trace");

pub struct Serve {
    child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub query: SocketAddr,
}

impl Serve {
    pub fn start(extra: &[&str]) -> Serve {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--otlp-grpc",
                "127.0.0.1:0",
                "--otlp-http",
                "127.0.0.1:0",
            ])
            .args(["--query", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn autobot-trace serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("ready line");
        let addr = |key: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("{key} in {line:?}"))
                .parse()
                .unwrap()
        };
        let (grpc, http, query) = (addr("otlp-grpc"), addr("otlp-http"), addr("query"));
        Serve {
            child,
            grpc,
            http,
            query,
        }
    }

    pub fn query_url(&self) -> String {
        format!("http://{}", self.query)
    }

    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub fn http_endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.http)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path}", self.query_url()))
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Polls `GET /api/traces/{id}` until `done` holds (bounded).
    pub async fn wait_for_trace(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(&format!("/api/traces/{id}")).await;
            if status == 200 && done(&body["data"][0]) {
                return body["data"][0].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "trace {id} not as expected in time: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits (bounded) for serve to exit; returns its exit
    /// code (None if it did not exit in time) and what it logged.
    pub fn terminate(mut self, within: Duration) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = std::time::Instant::now() + within;
        let mut code = None;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                code = status.code();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (code, self.stop_and_logs())
    }

    /// Stops serve and returns what it logged.
    pub fn stop_and_logs(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut logs = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut logs);
        }
        logs
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `autobot-trace ARGS`; returns (exit code, stdout, stderr).
pub async fn cli(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .env_remove("AUTOBOT_JAEGER_QUERY_URL")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// A raw OTLP span: trace `trace`, id `id`, parent `parent` (0 = none).
pub fn raw_span(trace: u128, id: u64, parent: u64, name: &str) -> Span {
    let start = now_nanos();
    Span {
        trace_id: trace.to_be_bytes().to_vec(),
        span_id: id.to_be_bytes().to_vec(),
        parent_span_id: if parent == 0 {
            vec![]
        } else {
            parent.to_be_bytes().to_vec()
        },
        name: name.into(),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000_000,
        ..Default::default()
    }
}

/// One export request: spans grouped under their service.
pub fn request(services: &[(&str, Vec<Span>)]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: services
            .iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string("service.name", service)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: spans.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

pub async fn send_grpc(
    serve: &Serve,
    request: ExportTraceServiceRequest,
) -> Result<(), tonic::Status> {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    let mut client = TraceServiceClient::connect(serve.grpc_endpoint())
        .await
        .unwrap();
    client.export(request).await.map(|_| ())
}
