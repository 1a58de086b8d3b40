//! What goes in: malformed exports are refused whole over both transports,
//! OTLP/JSON is accepted, and the bound evicts whole old traces.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use autobot_testkit::trace_tool::TraceTool;

use crate::support::{raw_span, request, send_grpc};

#[tokio::test]
async fn a_malformed_export_is_refused_and_nothing_of_it_is_stored() {
    let serve = TraceTool::start();
    let good = raw_span(0xabc, 1, 0, "good");
    let bad = Span {
        span_id: vec![0; 8],
        ..raw_span(0xabc, 2, 1, "bad")
    };
    let mixed = request(&[("svc", vec![good.clone(), bad])]);

    let refused = send_grpc(&serve, mixed.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("span id"),
        "{}",
        refused.message()
    );

    let http = reqwest::Client::new();
    let post = |content_type: &'static str, body: Vec<u8>| {
        http.post(serve.otlp_http_endpoint())
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = post("application/x-protobuf", mixed.encode_to_vec())
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("span id"));
    let response = post("application/x-protobuf", b"\xff\xff\xff".to_vec())
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let bad_json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"00f067aa0ba902b7","name":"x"}]}]}]}"#;
    let response = post("application/json", bad_json.into()).await.unwrap();
    assert_eq!(response.status(), 400);
    let response = post("text/plain", b"hello".to_vec()).await.unwrap();
    assert_eq!(response.status(), 415);

    let (status, body) = serve.get("/api/traces/0000000000000abc").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["errors"][0]["code"], 404);
    assert_eq!(body["errors"][0]["msg"], "trace not found");
    assert!(body["data"].is_null());
    let (_, stats) = serve.get("/api/autobot/stats").await;
    assert_eq!(stats["spans"], 0, "{stats}");
    let (_, services) = serve.get("/api/services").await;
    assert_eq!(
        services["data"],
        serde_json::json!([]),
        "[] not null, as Jaeger"
    );

    // The same good span alone is taken.
    send_grpc(&serve, request(&[("svc", vec![good])]))
        .await
        .unwrap();
    let (status, _) = serve.get("/api/traces/0000000000000abc").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn otlp_json_over_http_is_stored() {
    let serve = TraceTool::start();
    let body = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
        "scopeSpans": [{"scope": {"name": "js"}, "spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "GET /x", "kind": 3,
            "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712660300000000",
            "attributes": [{"key": "http.response.status_code", "value": {"intValue": "503"}}],
            "status": {"code": 2}
        }]}]
    }]});
    let response = reqwest::Client::new()
        .post(serve.otlp_http_endpoint())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = "5b8efff798038103d269b633813fc60c";
    serve
        .wait_for_trace(id, |_| true, Duration::from_secs(20))
        .await
        .unwrap();
    // Jaeger's JSON as it came, not as a parser reads it.
    let trace = serve.trace_json(id).await.expect("the trace");
    let span = &trace["spans"][0];
    assert_eq!(span["duration"], 300_000);
    let tags = span["tags"].as_array().unwrap();
    assert!(tags.contains(
        &serde_json::json!({"key": "http.response.status_code", "type": "int64", "value": 503})
    ));
    assert!(
        tags.contains(
            &serde_json::json!({"key": "span.kind", "type": "string", "value": "client"})
        )
    );
    assert_eq!(trace["processes"]["p1"]["serviceName"], "json-svc");
}

#[tokio::test]
async fn the_bound_evicts_whole_old_traces() {
    let serve = TraceTool::start_with_args(&["--max-spans", "5"]).expect("serve starts");
    let trace = |t: u128, n: u64| -> Vec<Span> {
        (1..=n)
            .map(|i| raw_span(t, i, if i == 1 { 0 } else { 1 }, "op"))
            .collect()
    };
    send_grpc(&serve, request(&[("svc", trace(0xa, 3))]))
        .await
        .unwrap();
    send_grpc(&serve, request(&[("svc", trace(0xb, 2))]))
        .await
        .unwrap();
    send_grpc(&serve, request(&[("svc", trace(0xc, 2))]))
        .await
        .unwrap();

    let (status, _) = serve.get("/api/traces/000000000000000a").await;
    assert_eq!(status, 404, "the oldest trace went whole");
    for id in ["000000000000000b", "000000000000000c"] {
        let (status, body) = serve.get(&format!("/api/traces/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            body["data"][0]["spans"].as_array().unwrap().len(),
            2,
            "nothing of it went"
        );
    }
    let (_, stats) = serve.get("/api/autobot/stats").await;
    assert_eq!(stats["spans"], 4);
    assert_eq!(stats["evicted_traces"], 1);
    assert_eq!(stats["evicted_spans"], 3);
    let mut serve = serve;
    serve.process().kill();
    let logs = serve.process().output();
    assert!(
        logs.contains("store full: evicted the oldest trace")
            && logs.contains("0000000000000000000000000000000a"),
        "{logs}"
    );
}

#[tokio::test]
async fn sigterm_stops_serve_even_with_an_exporter_connected() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    let serve = TraceTool::start();
    // An exporter keeps its gRPC connection open between exports.
    let mut client = TraceServiceClient::connect(serve.otlp_grpc_endpoint())
        .await
        .unwrap();
    client
        .export(request(&[("svc", vec![raw_span(0x5, 1, 0, "op")])]))
        .await
        .unwrap();
    let (code, logs) = tokio::task::spawn_blocking(move || {
        let mut serve = serve;
        let process = serve.process();
        process.send_sigterm();
        let status = process.wait_exit(Duration::from_secs(20));
        (status.code(), process.output())
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        logs.contains("stopping") && logs.contains("spans=1"),
        "{logs}"
    );
    drop(client);
}
