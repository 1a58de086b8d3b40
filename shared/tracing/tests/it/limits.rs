//! Spans bounded in bytes: what a caller sends (a 400 KB Host header, a
//! huge error message) is cut to the value-length limit before the span is
//! queued, and attributes beyond the count limit are dropped.

use autobot_tracing::TracingConfig;
use autobot_tracing::http::server_layer;
use axum::Router;
use axum::routing::get;
use opentelemetry::trace::Status;

use crate::support::{attrs, find, spans};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_host_header_and_error_are_cut_to_the_value_length_limit() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let cfg = TracingConfig::from_lookup(|k| {
        (k == "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT").then(|| "100".to_owned())
    })
    .unwrap();
    let cfg = TracingConfig {
        log_filter: "warn".into(),
        ..cfg
    };
    let _guard = autobot_tracing::init_with_exporter("limits", "0.0.0", cfg, exporter.clone())
        .expect("telemetry installs");

    let router = Router::new()
        .route(
            "/fail",
            get(|| async {
                let span = tracing::info_span!("work", big = %"b".repeat(50_000));
                autobot_tracing::record_error_message(&span, "boom", &"e".repeat(50_000));
                drop(span);
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            }),
        )
        .layer(server_layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // hyper's default limit on one header is well above this.
    let host = "h".repeat(60_000);
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/fail"))
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);

    let all = spans(&exporter);
    let server = find(&all, "GET /fail");
    let a = attrs(server);
    assert_eq!(a["server.address"], "h".repeat(100));
    let work = find(&all, "work");
    assert_eq!(attrs(work)["big"], "b".repeat(100));
    match &work.status {
        Status::Error { description } => assert_eq!(description.chars().count(), 100),
        other => panic!("{other:?}"),
    }
    for event in &work.events.events {
        for kv in &event.attributes {
            assert!(kv.value.as_str().chars().count() <= 100, "{}", kv.key);
        }
    }
}
