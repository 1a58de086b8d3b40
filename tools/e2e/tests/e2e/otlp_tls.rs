//! OTLP over TLS (docs/security.md, "OTLP to Jaeger over TLS"): a real
//! service exporting with `OTEL_EXPORTER_OTLP_CERTIFICATE`,
//! `_CLIENT_CERTIFICATE` and `_CLIENT_KEY`, over gRPC and over HTTP, to
//! `autobot-trace serve --tls-cert --tls-key --tls-client-ca`: its spans
//! arrive; a service without a client certificate, or with one from
//! another CA, is refused at the handshake and nothing of it arrives.

use std::time::Duration;

use autobot_testkit::pki::{TestCa, TestIdentity};
use autobot_testkit::process::{Launch, Process};
use autobot_testkit::trace_tool::TraceTool;

/// One exporter's trace: its own trace id, so that what arrives is told apart.
fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-00f067aa0ba902b7-01")
}

/// The browser (any service would do) exporting to `endpoint` with the
/// OTLP TLS variables `tls`.
fn exporter(endpoint: &str, tls: &[(&str, String)]) -> Process {
    Launch::workspace_bin("autobot-browser")
        .env("AUTOBOT_JAEGER_ENDPOINT", endpoint)
        .envs(tls.iter().cloned())
        .start()
}

fn otlp_variables(identity: &TestIdentity, trusted_ca: &TestCa) -> Vec<(&'static str, String)> {
    vec![
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            trusted_ca.ca_file().display().to_string(),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            identity.cert.display().to_string(),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            identity.key.display().to_string(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_arrive_over_tls_only_from_exporters_with_a_certificate_of_the_ca() {
    let ca = TestCa::new("autobot-otlp");
    let other = TestCa::new("intruder");
    let tool = TraceTool::start_tls(&ca.issue("jaeger", &["127.0.0.1"]))
        .expect("autobot-trace serve starts with TLS");
    assert!(tool.otlp_grpc_endpoint().starts_with("https://"));

    for (round, (protocol, endpoint)) in [
        ("grpc", tool.otlp_grpc_endpoint()),
        ("http", tool.otlp_http_endpoint()),
    ]
    .into_iter()
    .enumerate()
    {
        let id = |fill: &str| format!("{round:08x}{}", fill.repeat(24));
        let (allowed, without, foreign) = (id("a"), id("b"), id("c"));
        let mut exporters = [
            (
                &allowed,
                exporter(
                    &endpoint,
                    &otlp_variables(&ca.issue("vm", &["127.0.0.1"]), &ca),
                ),
            ),
            (
                &without,
                // The CA to trust the receiver, and no client certificate.
                exporter(
                    &endpoint,
                    &[(
                        "OTEL_EXPORTER_OTLP_CERTIFICATE",
                        ca.ca_file().display().to_string(),
                    )],
                ),
            ),
            (
                &foreign,
                exporter(
                    &endpoint,
                    &otlp_variables(&other.issue("stranger", &["127.0.0.1"]), &ca),
                ),
            ),
        ];
        let http = reqwest::Client::new();
        for (trace_id, service) in &exporters {
            let r = http
                .get(service.url("/health"))
                .header("traceparent", traceparent(trace_id))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        // SIGTERM flushes every exporter's spans (or its attempt to).
        for (_, service) in exporters.iter_mut() {
            service.stop();
        }
        tool.wait_for_trace(&allowed, |t| !t.spans.is_empty(), Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{protocol}: {e}\n{}", exporters[0].1.output()));
        for refused in [&without, &foreign] {
            assert!(
                tool.trace(refused).await.is_none(),
                "{protocol}: spans of an exporter the receiver must refuse arrived"
            );
        }
        // The refused exporters said they could not export.
        for (_, service) in &exporters[1..] {
            let output = service.output().to_lowercase();
            assert!(
                output.contains("export") && (output.contains("fail") || output.contains("error")),
                "{protocol}: {} does not say its export failed:\n{output}",
                service.name()
            );
        }
    }
}

/// `--otlp-http-client-cert optional` (the roles' setting: AutoBot's page
/// sends spans from users' browsers, which show no certificate): OTLP/HTTP
/// takes an exporter without a client certificate but still refuses one
/// from another CA; gRPC still requires one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_http_may_take_clients_without_a_certificate_grpc_never() {
    let ca = TestCa::new("autobot-otlp");
    let other = TestCa::new("intruder");
    let tool = TraceTool::start_tls_with(
        &ca.issue("jaeger", &["127.0.0.1"]),
        &["--otlp-http-client-cert", "optional"],
    )
    .expect("autobot-trace serve starts with TLS");
    let trust_only = || {
        vec![(
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ca.ca_file().display().to_string(),
        )]
    };
    let cases = [
        (
            "http without a certificate",
            tool.otlp_http_endpoint(),
            trust_only(),
            true,
        ),
        (
            "http with another CA's certificate",
            tool.otlp_http_endpoint(),
            otlp_variables(&other.issue("stranger", &["127.0.0.1"]), &ca),
            false,
        ),
        (
            "grpc without a certificate",
            tool.otlp_grpc_endpoint(),
            trust_only(),
            false,
        ),
    ];
    let http = reqwest::Client::new();
    let mut outcomes = Vec::new();
    for (round, (case, endpoint, variables, arrives)) in cases.into_iter().enumerate() {
        let trace_id = format!("{:08x}{}", round + 16, "d".repeat(24));
        let mut service = exporter(&endpoint, &variables);
        let r = http
            .get(service.url("/health"))
            .header("traceparent", traceparent(&trace_id))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        service.stop();
        outcomes.push((case, trace_id, arrives, service));
    }
    for (case, trace_id, arrives, service) in &outcomes {
        if *arrives {
            tool.wait_for_trace(trace_id, |t| !t.spans.is_empty(), Duration::from_secs(30))
                .await
                .unwrap_or_else(|e| panic!("{case}: {e}\n{}", service.output()));
        } else {
            assert!(
                tool.trace(trace_id).await.is_none(),
                "{case}: spans arrived that the receiver must refuse"
            );
        }
    }
}
