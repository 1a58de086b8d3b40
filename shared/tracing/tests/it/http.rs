//! The server layer and the traced client, over real sockets: the caller's
//! context is continued, the downstream SERVER span is the child of the
//! CLIENT span, and every response carries `traceresponse`.

use std::net::SocketAddr;

use autobot_tracing::http::{NoPropagation, client, server_layer};
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::SpanData;

use crate::support::{attrs, find, in_memory, spans};

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Service B: reports the trace headers it received.
fn downstream() -> Router {
    async fn echo(headers: HeaderMap) -> String {
        let h = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        format!("{}|{}|{}", h("traceparent"), h("b3"), h("authorization"))
    }
    Router::new()
        .route("/echo/{id}", get(echo))
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route("/health", get(|| async { "ok" }))
        .layer(server_layer().untraced_paths(["/health"]))
}

/// Service A: calls B with the traced client.
fn upstream(b: SocketAddr) -> Router {
    let http = client().unwrap();
    let call = move |path: &'static str| {
        let http = http.clone();
        move || async move {
            let r = http
                .get(format!("http://{b}{path}?api_key=s3cr3t&q=1"))
                .header("authorization", "Bearer s3cr3t")
                .send()
                .await
                .unwrap();
            (
                StatusCode::from_u16(r.status().as_u16()).unwrap(),
                r.text().await.unwrap(),
            )
        }
    };
    Router::new()
        .route("/call", get(call("/echo/7")))
        .route("/call-fail", get(call("/fail")))
        .layer(server_layer())
}

fn by_kind<'a>(spans: &'a [SpanData], kind: SpanKind, name: &str) -> Vec<&'a SpanData> {
    spans
        .iter()
        .filter(|s| s.span_kind == kind && s.name == name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_crosses_two_services_with_correct_parents() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, exporter) = in_memory(1.0);
    let b = serve(downstream()).await;
    let a = serve(upstream(b)).await;

    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = reqwest::Client::new()
        .get(format!("http://{a}/call"))
        .header("traceparent", caller)
        .send()
        .await
        .unwrap();
    let traceresponse = response.headers()["traceresponse"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();

    let done = spans(&exporter);
    let a_server = by_kind(&done, SpanKind::Server, "GET /call")[0];
    let client = by_kind(&done, SpanKind::Client, "GET")[0];
    let b_server = by_kind(&done, SpanKind::Server, "GET /echo/{id}")[0];
    for s in [a_server, client, b_server] {
        assert_eq!(
            s.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "{}",
            s.name
        );
    }
    assert_eq!(
        a_server.parent_span_id.to_string(),
        "00f067aa0ba902b7",
        "A continues the caller"
    );
    assert!(a_server.parent_span_is_remote);
    assert_eq!(
        client.parent_span_id,
        a_server.span_context.span_id(),
        "the CLIENT span is inside A's SERVER span"
    );
    assert_eq!(
        b_server.parent_span_id,
        client.span_context.span_id(),
        "B's SERVER span is the child of the CLIENT span"
    );

    assert_eq!(
        traceresponse,
        format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
            a_server.span_context.span_id()
        )
    );
    // B saw the CLIENT span as its parent, in both formats; the Authorization header reached B but no span.
    let client_id = client.span_context.span_id().to_string();
    assert!(body.starts_with(&format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{client_id}-01|4bf92f3577b34da6a3ce929d0e0e4736-{client_id}-1|Bearer s3cr3t")), "{body}");

    let b_attrs = attrs(b_server);
    assert_eq!(b_attrs["http.route"], "/echo/{id}");
    assert_eq!(b_attrs["http.request.method"], "GET");
    assert_eq!(b_attrs["url.path"], "/echo/7");
    assert_eq!(b_attrs["url.query"], "api_key=REDACTED&q=1");
    assert_eq!(b_attrs["http.response.status_code"], "200");
    let c_attrs = attrs(client);
    assert_eq!(
        c_attrs["url.full"],
        format!("http://{b}/echo/7?api_key=REDACTED&q=1")
    );
    assert_eq!(c_attrs["server.address"], "127.0.0.1");
    assert_eq!(c_attrs["server.port"], b.port().to_string());
    assert_eq!(c_attrs["http.response.status_code"], "200");
    for s in &done {
        let text = format!("{:?}", s.attributes) + &format!("{:?}", s.events);
        assert!(
            !text.contains("s3cr3t"),
            "secret in span {}: {text}",
            s.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_b3_only_caller_is_continued() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, exporter) = in_memory(1.0);
    let b = serve(downstream()).await;
    let r = reqwest::Client::new()
        .get(format!("http://{b}/echo/1"))
        .header("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124")
        .header("x-b3-spanid", "a2fb4a1d1a96d312")
        .header("x-b3-sampled", "1")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["traceresponse"]
            .to_str()
            .unwrap()
            .starts_with("00-463ac35c9f6413ad48485a3953bb6124-")
    );
    let done = spans(&exporter);
    let server = find(&done, "GET /echo/{id}");
    assert_eq!(
        server.span_context.trace_id().to_string(),
        "463ac35c9f6413ad48485a3953bb6124"
    );
    assert_eq!(server.parent_span_id.to_string(), "a2fb4a1d1a96d312");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_context_headers_change_nothing_but_the_trace_id() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, exporter) = in_memory(1.0);
    let b = serve(downstream()).await;
    let http = reqwest::Client::new();
    for (name, value) in [
        ("traceparent", "00-not-hex-01"),
        ("b3", "🙃"),
        ("baggage", "=;=;=,,,"),
        ("tracestate", "k=v,k=v,=="),
    ] {
        let r = http
            .get(format!("http://{b}/echo/1"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}: {value}");
        assert!(r.headers().contains_key("traceresponse"));
    }
    let done = spans(&exporter);
    assert_eq!(done.len(), 4);
    for s in &done {
        assert_eq!(
            s.parent_span_id,
            opentelemetry::trace::SpanId::INVALID,
            "each is a new root"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_mark_the_span_and_client_errors_do_not() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, exporter) = in_memory(1.0);
    let b = serve(downstream()).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("http://{b}/fail"))
            .send()
            .await
            .unwrap()
            .status(),
        500
    );
    let r = http
        .get(format!("http://{b}/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers().contains_key("traceresponse"),
        "error responses carry traceresponse too"
    );
    let r = http
        .get(format!("http://{b}/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let done = spans(&exporter);
    let fail = find(&done, "GET /fail");
    assert!(matches!(fail.status, Status::Error { .. }));
    assert_eq!(attrs(fail)["error.type"], "500");
    let missing = find(&done, "GET /missing");
    assert_eq!(
        missing.status,
        Status::Unset,
        "4xx is the caller's error, not the server's"
    );
    assert!(!attrs(missing).contains_key("error.type"));
    let unrouted = find(&done, "GET");
    assert!(
        !attrs(unrouted).contains_key("http.route"),
        "no route, no http.route"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_span_is_an_error_on_4xx_5xx_and_failures() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, exporter) = in_memory(1.0);
    let b = serve(downstream()).await;
    let a = serve(upstream(b)).await;
    reqwest::get(format!("http://{a}/call-fail")).await.unwrap();

    // A connection that is refused: a port nobody listens on.
    let closed = autobot_testkit::ports::free_addr();
    let err = client()
        .unwrap()
        .get(format!("http://{closed}/x?token=abc"))
        .send()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("error sending request"));

    let done = spans(&exporter);
    let clients = by_kind(&done, SpanKind::Client, "GET");
    let failed_status = clients
        .iter()
        .find(|s| {
            attrs(s)
                .get("http.response.status_code")
                .map(String::as_str)
                == Some("500")
        })
        .unwrap();
    assert!(matches!(failed_status.status, Status::Error { .. }));
    assert_eq!(attrs(failed_status)["error.type"], "500");
    let refused = clients
        .iter()
        .find(|s| attrs(s)["url.full"].contains(&closed.port().to_string()))
        .unwrap();
    assert_eq!(attrs(refused)["error.type"], "connect_error");
    assert_eq!(
        attrs(refused)["url.full"],
        format!("http://{closed}/x?token=REDACTED")
    );
    let exception = refused
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("an exception event");
    let message = exception
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "exception.message")
        .unwrap()
        .value
        .to_string();
    assert!(
        !message.contains("abc"),
        "no URL (and no token) in the message: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untraced_paths_and_no_propagation() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, exporter) = in_memory(1.0);
    let b = serve(downstream()).await;
    let r = reqwest::get(format!("http://{b}/health")).await.unwrap();
    assert!(!r.headers().contains_key("traceresponse"));
    assert!(spans(&exporter).is_empty(), "/health is not traced");

    let body = client()
        .unwrap()
        .get(format!("http://{b}/echo/1"))
        .with_extension(NoPropagation)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.starts_with("-|-|"), "no trace header was sent: {body}");
    let done = spans(&exporter);
    let server = find(&done, "GET /echo/{id}");
    assert_eq!(
        server.parent_span_id,
        opentelemetry::trace::SpanId::INVALID,
        "B starts its own trace"
    );
}

/// An untraced path starts no trace, but a trace its caller brings runs through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untraced_path_joins_a_callers_trace() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, exporter) = in_memory(1.0);
    let b = serve(downstream()).await;
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = reqwest::Client::new()
        .get(format!("http://{b}/health"))
        .header("traceparent", caller)
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("traceresponse"));
    let done = spans(&exporter);
    let server = find(&done, "GET /health");
    assert_eq!(server.parent_span_id.to_string(), "00f067aa0ba902b7");
}

/// The attributes of a span, by key.
fn keys(span: &SpanData) -> Vec<String> {
    let mut k: Vec<String> = attrs(span).into_keys().collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_span_contract() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    use tracing::Instrument as _;
    let (_g, exporter) = in_memory(1.0);
    let b = serve(downstream()).await;

    // Inside a `tracing` span: the CLIENT span is its child.
    let caller = tracing::info_span!("caller.operation");
    let body = async {
        client()
            .unwrap()
            .get(format!("http://{b}/echo/3?q=1"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
    .instrument(caller)
    .await;
    let missing = client()
        .unwrap()
        .get(format!("http://{b}/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let purge = client()
        .unwrap()
        .request(
            reqwest::Method::from_bytes(b"PURGE").unwrap(),
            format!("http://{b}/echo/3"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(purge.status(), 405);

    let done = spans(&exporter);
    let caller = find(&done, "caller.operation");
    let clients = by_kind(&done, SpanKind::Client, "GET");
    assert_eq!(clients.len(), 2, "{done:#?}");
    let ok = clients
        .iter()
        .find(|s| attrs(s)["http.response.status_code"] == "200")
        .unwrap();
    let server = find(&done, "GET /echo/{id}");
    assert_eq!(ok.parent_span_id, caller.span_context.span_id());
    assert_eq!(ok.span_context.trace_id(), caller.span_context.trace_id());
    assert_eq!(server.parent_span_id, ok.span_context.span_id());
    assert!(body.starts_with(&format!(
        "00-{}-{}-01|",
        ok.span_context.trace_id(),
        ok.span_context.span_id()
    )));
    assert_eq!(ok.instrumentation_scope.name(), "autobot-tracing");
    assert_eq!(ok.status, Status::Unset);
    assert!(ok.events.is_empty());
    assert_eq!(
        keys(ok),
        [
            "http.request.method",
            "http.response.status_code",
            "server.address",
            "server.port",
            "url.full",
        ]
    );
    let a = attrs(ok);
    assert_eq!(a["http.request.method"], "GET");
    assert_eq!(a["url.full"], format!("http://{b}/echo/3?q=1"));
    assert_eq!(a["server.address"], "127.0.0.1");
    assert_eq!(a["server.port"], b.port().to_string());
    assert!(ok.end_time >= ok.start_time);

    // 4xx: an error on a CLIENT span, recorded as `record_error_message` does.
    let not_found = clients
        .iter()
        .find(|s| attrs(s)["http.response.status_code"] == "404")
        .unwrap();
    assert_eq!(not_found.status, Status::error("HTTP 404"));
    assert_eq!(attrs(not_found)["error.type"], "404");
    let event = &not_found.events[0];
    assert_eq!(event.name, "exception");
    let event_attrs: Vec<(String, String)> = event
        .attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect();
    assert_eq!(
        event_attrs,
        [
            ("exception.type".to_owned(), "404".to_owned()),
            ("exception.message".to_owned(), "HTTP 404".to_owned()),
        ]
    );

    // A method semantic conventions do not know.
    let other = find(&done, "HTTP");
    assert_eq!(other.span_kind, SpanKind::Client);
    assert_eq!(attrs(other)["http.request.method"], "_OTHER");
    assert_eq!(attrs(other)["error.type"], "405");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagate_false_records_the_span_and_sends_no_header() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, exporter) = in_memory(1.0);
    let b = serve(downstream()).await;
    let quiet = autobot_tracing::http::client_builder(reqwest::Client::builder())
        .propagate(false)
        .build()
        .unwrap();
    let body = quiet
        .get(format!("http://{b}/echo/1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.starts_with("-|-|"), "no trace header was sent: {body}");
    let done = spans(&exporter);
    let client_span = by_kind(&done, SpanKind::Client, "GET")[0];
    assert_eq!(attrs(client_span)["http.response.status_code"], "200");
    let server = find(&done, "GET /echo/{id}");
    assert_ne!(
        server.span_context.trace_id(),
        client_span.span_context.trace_id()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_sdk_disabled_the_callers_context_is_passed_on_unchanged() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let cfg = autobot_tracing::TracingConfig {
        sdk_disabled: true,
        log_filter: "warn".into(),
        ..autobot_tracing::TracingConfig::default()
    };
    let guard = autobot_tracing::init_with("test-service", "0.0.0", cfg).unwrap();
    assert!(!guard.is_enabled());
    let b = serve(downstream()).await;
    let a = serve(upstream(b)).await;
    let body = reqwest::Client::new()
        .get(format!("http://{a}/call"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.starts_with(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01|4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1|"
        ),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_request_still_ends_its_span() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, exporter) = in_memory(1.0);
    // Accepts the connection and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let (socket, _) = silent.accept().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        drop(socket);
    });
    let call = client().unwrap().get(format!("http://{addr}/slow")).send();
    let outcome = tokio::time::timeout(std::time::Duration::from_millis(300), call).await;
    assert!(outcome.is_err(), "the caller gave up");

    let done = spans(&exporter);
    let span = by_kind(&done, SpanKind::Client, "GET")
        .into_iter()
        .next()
        .expect("the cancelled request's span ended and was exported");
    assert!(!attrs(span).contains_key("http.response.status_code"));
    let ran = span.end_time.duration_since(span.start_time).unwrap();
    assert!(ran >= std::time::Duration::from_millis(250), "{ran:?}");
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsampled_root_still_propagates_its_decision() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, exporter) = in_memory(0.0);
    let b = serve(downstream()).await;
    let body = client()
        .unwrap()
        .get(format!("http://{b}/echo/1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (traceparent, rest) = body.split_once('|').unwrap();
    assert!(
        traceparent.starts_with("00-") && traceparent.ends_with("-00"),
        "{body}"
    );
    assert!(rest.starts_with(&traceparent[3..51]), "b3 too: {body}");
    assert!(spans(&exporter).is_empty(), "nothing sampled, nothing kept");
}
