//! `serve`'s API v3 answers, over HTTP, against the answers Jaeger recorded
//! for the same data (`fixtures/jaeger/apiv3/`, Jaeger's gateway snapshots),
//! compared field by field as JSON; and its errors in Jaeger's shape.

use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use serde_json::{Value, json};

use autobot_testkit::trace_tool::TraceTool;

use crate::support::{raw_span, request, send_grpc};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/fixtures/jaeger/apiv3/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Jaeger's `makeTestTrace`: trace …01, span …02, `foobar`, SERVER, ERROR,
/// empty resource and scope, no times.
fn snapshot_request() -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest
{
    let mut r = request(&[(
        "unused",
        vec![Span {
            trace_id: 1u128.to_be_bytes().to_vec(),
            span_id: 2u64.to_be_bytes().to_vec(),
            name: "foobar".into(),
            kind: 2,
            status: Some(Status {
                code: 2,
                message: String::new(),
            }),
            ..Default::default()
        }],
    )]);
    r.resource_spans[0].resource = None;
    r
}

async fn get_text(serve: &TraceTool, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("{}{path}", serve.query_url()))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn get_trace_and_find_traces_match_jaegers_snapshots() {
    let serve = TraceTool::start();
    send_grpc(&serve, snapshot_request()).await.unwrap();

    for id in [
        "00000000000000000000000000000001",
        "1",
        "AAAAAAAAAAAAAAAAAAAAAQ==",
    ] {
        let (status, content_type, body) = get_text(&serve, &format!("/api/v3/traces/{id}")).await;
        assert_eq!(status, 200, "{id}: {body}");
        assert_eq!(content_type, "application/json");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body, fixture("GetTrace"), "{id}");
    }
    let (status, body) = serve
        .get("/api/v3/traces?query.start_time_min=1970-01-01T00:00:00Z&query.start_time_max=2100-01-01T00:00:00Z")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, fixture("FindTraces"));
    let (_, camel) = serve
        .get("/api/v3/traces?query.startTimeMin=1970-01-01T00:00:00Z&query.startTimeMax=2100-01-01T00:00:00Z&query.searchDepth=1")
        .await;
    assert_eq!(camel, fixture("FindTraces"), "camelCase names too");
}

#[tokio::test]
async fn services_and_operations_match_jaegers_snapshots() {
    let serve = TraceTool::start();
    let (status, body) = serve.get("/api/v3/services").await;
    assert_eq!(
        (status, body),
        (200, json!({})),
        "jsonpb leaves an empty list out"
    );

    send_grpc(
        &serve,
        request(&[("foo", vec![raw_span(9, 1, 0, "get_users")])]),
    )
    .await
    .unwrap();
    let (status, body) = serve.get("/api/v3/services").await;
    assert_eq!(status, 200);
    assert_eq!(body, fixture("GetServices"));
    for query in [
        "service=foo&spanKind=server",
        "service=foo&span_kind=server",
    ] {
        let (status, body) = serve.get(&format!("/api/v3/operations?{query}")).await;
        assert_eq!(status, 200);
        assert_eq!(body, fixture("GetOperations"), "{query}");
    }
    let (_, none) = serve
        .get("/api/v3/operations?service=foo&spanKind=client")
        .await;
    assert_eq!(none, json!({}));
}

#[tokio::test]
async fn summaries_and_errors_as_jaeger() {
    let serve = TraceTool::start();
    let root = raw_span(5, 1, 0, "HTTP GET /");
    let mut child = raw_span(5, 2, 1, "child");
    child.status = Some(Status {
        code: 2,
        message: "boom".into(),
    });
    let orphan = raw_span(5, 3, 0xdead, "lost");
    send_grpc(
        &serve,
        request(&[("frontend", vec![root.clone(), child, orphan])]),
    )
    .await
    .unwrap();
    let (status, body) = serve
        .get("/api/v3/trace-summaries?query.service_name=frontend&query.start_time_min=1970-01-01T00:00:00Z&query.start_time_max=2100-01-01T00:00:00Z")
        .await;
    assert_eq!(status, 200, "{body}");
    let summary = &body["summaries"][0];
    assert_eq!(summary["traceId"], "00000000000000000000000000000005");
    assert_eq!(summary["rootServiceName"], "frontend");
    assert_eq!(summary["rootOperationName"], "HTTP GET /");
    assert_eq!(summary["spanCount"], 3);
    assert_eq!(summary["errorSpanCount"], 1);
    assert_eq!(summary["orphanSpanCount"], 1);
    assert_eq!(
        summary["minStartTimeUnixNano"],
        root.start_time_unix_nano.to_string(),
        "fixed64 as a string"
    );
    assert_eq!(
        summary["services"],
        json!([{"name": "frontend", "spanCount": 3, "errorSpanCount": 1}])
    );

    // The orphan carries Jaeger's warning (and v1 shows it as a warning).
    let (_, trace) = serve.get("/api/v3/traces/5").await;
    let spans = &trace["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"];
    let lost = spans
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "lost")
        .unwrap();
    assert_eq!(
        lost["attributes"][0],
        json!({"key": "@jaeger@warnings", "value": {"arrayValue": {"values": [
            {"stringValue": "parent span ID=000000000000dead is not in the trace; skipping clock skew adjustment"}
        ]}}})
    );
    let (_, raw) = serve.get("/api/v3/traces/5?rawTraces=true").await;
    assert!(
        !raw.to_string().contains("@jaeger@warnings"),
        "rawTraces skips the adjusters"
    );
    let (_, v1) = serve.get("/api/traces/5").await;
    let lost_v1 = v1["data"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operationName"] == "lost")
        .unwrap()
        .clone();
    assert_eq!(
        lost_v1["warnings"][0],
        "parent span ID=000000000000dead is not in the trace; skipping clock skew adjustment"
    );

    // Errors: Go's http.Error with a GRPCGatewayError body.
    for (path, status, message) in [
        (
            "/api/v3/traces/00000000000000000000000000000abc",
            404,
            "No traces found",
        ),
        (
            "/api/v3/traces?query.service_name=nobody&query.start_time_min=1970-01-01T00:00:00Z&query.start_time_max=2100-01-01T00:00:00Z",
            404,
            "No traces found",
        ),
        (
            "/api/v3/traces?query.service_name=frontend",
            400,
            "query.startTimeMin and query.startTimeMax are required",
        ),
    ] {
        let (got, content_type, body) = get_text(&serve, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(content_type, "text/plain; charset=utf-8");
        assert!(body.ends_with('\n'));
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"error": {"httpCode": status, "message": message}}),
            "{path}"
        );
    }
    let (status, _, body) = get_text(&serve, "/api/v3/traces/not-an-id!").await;
    assert_eq!(status, 400);
    assert!(body.contains("malformed parameter trace_id"), "{body}");
}
