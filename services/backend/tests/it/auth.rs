//! Operator keys on the real backend (docs/security.md): every `/api/*`
//! route but `/api/health` refuses a caller without a valid key (401), the
//! distribution refuses a `user` key (403) before anything is called, a bad
//! keys file stops the start naming the file and the line, and neither the
//! key, nor its hash, nor the Authorization header reaches a span or a log
//! line; the key's name is the server span's `enduser.id`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use autobot_testkit::operator_keys::{OperatorKey, OperatorKeys};
use autobot_testkit::redis::RedisServer;

use crate::support::*;

/// Every route of the API that needs a key (services/backend/src/routes),
/// with a body it would accept.
fn keyed_routes() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("GET", "/api/health/cluster", Value::Null),
        ("POST", "/api/chat", json!({"message": "hello"})),
        ("POST", "/api/embeddings", json!({"texts": ["a passage"]})),
        ("POST", "/api/browse", json!({"url": "http://127.0.0.1:9/"})),
        (
            "POST",
            "/api/research",
            json!({"url": "http://127.0.0.1:9/", "question": "why?"}),
        ),
        ("POST", "/api/pki/distribute", json!({})),
    ]
}

/// A TCP listener standing where the pki-distributor would be: it counts
/// the connections it accepts and closes them.
struct ConnectionCounter {
    url: String,
    accepted: Arc<AtomicUsize>,
}

impl ConnectionCounter {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Self { url, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn call(
    backend: &Process,
    method: &str,
    path: &str,
    body: &Value,
    authorization: Option<&str>,
) -> reqwest::Response {
    let client = reqwest::Client::new();
    let url = backend.url(path);
    let mut request = match method {
        "GET" => client.get(url),
        _ => client.post(url).json(body),
    };
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

/// The answer is `{"error", "trace_id"}` with the trace of `traceresponse`.
async fn assert_refusal(response: reqwest::Response, status: u16, what: &str) -> String {
    assert_eq!(response.status(), status, "{what}");
    let trace_id = traceresponse_trace_id(&response);
    if status == 401 {
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "{what}"
        );
    }
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: {body}"
    );
    assert_eq!(body["trace_id"], trace_id.as_str(), "{what}: {body}");
    trace_id
}

/// The third field of the keys file's line for `key`: its SHA-256.
fn hash_of(keys: &OperatorKeys, key: &OperatorKey) -> String {
    let text = std::fs::read_to_string(&keys.file).unwrap();
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key.name.as_str()))
        .unwrap();
    line.split_whitespace().nth(2).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_but_health_needs_a_valid_key_and_the_distribution_an_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = OperatorKeys::generate(dir.path(), &[("carol", "user"), ("ada", "admin")]);
    let (user, admin) = (keys.key("carol").clone(), keys.key("ada").clone());
    let receiver = TraceTool::start();
    let redis = RedisServer::start().expect("redis-server starts");
    let pki = ConnectionCounter::start().await;
    let mut backend = start_backend(
        &receiver,
        "http://127.0.0.1:9",
        &[
            ("AUTOBOT_AUTH", "on".to_owned()),
            ("AUTOBOT_API_KEYS_FILE", keys.file.display().to_string()),
            ("AUTOBOT_PKI_URL", pki.url.clone()),
            ("AUTOBOT_BROWSER_URL", "http://127.0.0.1:9".to_owned()),
            ("AUTOBOT_REDIS_URL", redis.url()),
        ],
    );

    // Open: the health of the backend itself.
    let health = call(&backend, "GET", "/api/health", &Value::Null, None).await;
    assert_eq!(health.status(), 200);

    // A key nobody was given, a key's hash sent as the key, another scheme.
    let wrong = "abk_0000000000000000000000000000000000000000000000000000000000000000";
    let user_hash = hash_of(&keys, &user);
    let refused_authorizations = [
        None,
        Some(format!("Bearer {wrong}")),
        Some(format!("Bearer {user_hash}")),
        Some(format!("Basic {}", user.key)),
    ];
    let mut refusals = Vec::new();
    for (method, path, body) in keyed_routes() {
        for authorization in &refused_authorizations {
            let what = format!(
                "{method} {path} with {}",
                match authorization {
                    None => "no key",
                    Some(a) if a.starts_with("Basic") => "the key as Basic",
                    Some(a) if a.contains(&user_hash) => "the key's hash",
                    Some(_) => "a wrong key",
                }
            );
            let response = call(&backend, method, path, &body, authorization.as_deref()).await;
            refusals.push(assert_refusal(response, 401, &what).await);
        }
    }

    // A user key may not distribute: 403, and the distributor never hears
    // of it (no connection arrives).
    let forbidden = call(
        &backend,
        "POST",
        "/api/pki/distribute",
        &json!({}),
        Some(&user.bearer()),
    )
    .await;
    let forbidden_trace = assert_refusal(forbidden, 403, "distribute with a user key").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(pki.accepted(), 0, "a refused caller reaches no peer");

    // It may call the rest (the cluster check reaches the distributor's /health).
    let cluster = call(
        &backend,
        "GET",
        "/api/health/cluster",
        &Value::Null,
        Some(&user.bearer()),
    )
    .await;
    assert_eq!(cluster.status(), 200, "a user key passes");
    let user_trace = traceresponse_trace_id(&cluster);
    let before = pki.accepted();

    // The counter does count: an admin key's distribution reaches it (and
    // fails there, since it speaks no HTTP).
    let admitted = call(
        &backend,
        "POST",
        "/api/pki/distribute",
        &json!({}),
        Some(&admin.bearer()),
    )
    .await;
    assert_ne!(admitted.status(), 401);
    assert_ne!(admitted.status(), 403);
    assert!(pki.accepted() > before, "the admin's distribution arrives");
    let admin_trace = traceresponse_trace_id(&admitted);

    let spans = receiver
        .wait_for_spans(&admin_trace, |s| {
            s.iter().any(|s| s.name == "POST /api/pki/distribute")
        })
        .await;
    let server = one(&spans, "autobot-backend", "POST /api/pki/distribute");
    assert_eq!(server.attr_text("enduser.id").as_deref(), Some("ada"));
    let spans = receiver
        .wait_for_spans(&forbidden_trace, |s| {
            s.iter().any(|s| s.name == "POST /api/pki/distribute")
        })
        .await;
    let server = one(&spans, "autobot-backend", "POST /api/pki/distribute");
    assert_eq!(server.attr_text("enduser.id").as_deref(), Some("carol"));
    assert_eq!(server.int_attr("http.response.status_code"), 403);
    assert!(
        !spans.iter().any(|s| s.kind == Kind::Client),
        "nothing called: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let spans = receiver
        .wait_for_spans(&user_trace, |s| {
            s.iter().any(|s| s.name == "GET /api/health/cluster")
        })
        .await;
    let server = one(&spans, "autobot-backend", "GET /api/health/cluster");
    assert_eq!(server.attr_text("enduser.id").as_deref(), Some("carol"));
    // A refused caller is nobody.
    let spans = receiver
        .wait_for_spans(&refusals[0], |s| !s.is_empty())
        .await;
    assert!(spans.iter().all(|s| s.attr_text("enduser.id").is_none()));

    backend.stop();

    // Neither key, nor a hash, nor the header, anywhere.
    let admin_hash = hash_of(&keys, &admin);
    let secrets = [
        user.key.as_str(),
        admin.key.as_str(),
        wrong,
        user_hash.as_str(),
        admin_hash.as_str(),
    ];
    let all = receiver.all_spans().await;
    assert!(all.len() >= refusals.len(), "{} spans", all.len());
    for span in &all {
        let text = span.text();
        for secret in secrets {
            assert!(!text.contains(secret), "a secret in span {}", span.name);
        }
        assert!(
            !span
                .attributes
                .keys()
                .any(|k| k.to_ascii_lowercase().contains("authorization"))
                && !text.contains("Bearer abk_")
                && !text.contains("Basic abk_"),
            "the Authorization header in span {}: {text}",
            span.name
        );
    }
    let output = backend.output();
    assert!(output.contains("listening on"), "the log was read");
    for secret in secrets {
        assert!(!output.contains(secret), "a secret in the backend's log");
    }
    assert!(
        !output.contains("Bearer abk_") && !output.contains("Basic abk_"),
        "the Authorization header in the backend's log"
    );
}

#[test]
fn each_keys_file_error_stops_the_start_naming_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let keys = OperatorKeys::generate(dir.path(), &[("carol", "user")]);
    let good = std::fs::read_to_string(&keys.file).unwrap();
    let hash = good
        .lines()
        .find(|l| l.starts_with("carol "))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap()
        .to_owned();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    // The tests run as root, who reads any file whatever its mode: a
    // directory is a file that cannot be read.
    let unreadable = dir.path().join("a-directory");
    std::fs::create_dir(&unreadable).unwrap();
    let cases = [
        (
            dir.path().join("missing"),
            "cannot read the file".to_owned(),
        ),
        (unreadable, "cannot read the file".to_owned()),
        (
            write("malformed", &format!("# ops\n\ncarol user {hash} extra\n")),
            "line 3: expected `<name> <role> <sha256 of the key>`, found 4 fields".to_owned(),
        ),
        (
            write("role", &format!("{good}dave root {hash}\n")),
            "line 3: role \"root\" is neither user nor admin".to_owned(),
        ),
        (
            write("hash", &format!("carol user {}\n", hash.to_uppercase())),
            "line 1: the third field must be the key's SHA-256 as 64 lowercase hex digits"
                .to_owned(),
        ),
        (
            write("short", &format!("carol user {}\n", &hash[..63])),
            "line 1: the third field must be the key's SHA-256".to_owned(),
        ),
    ];
    for (file, reason) in cases {
        let out = Launch::program(env!("CARGO_BIN_EXE_autobot-backend"))
            .env("AUTOBOT_API_KEYS_FILE", &file)
            .env("AUTOBOT_JAEGER_ENDPOINT", "http://127.0.0.1:9")
            .run();
        let expected = format!(
            "AUTOBOT_API_KEYS_FILE={:?} is not valid: {reason}",
            file.display().to_string()
        );
        assert_eq!(out.code(), Some(2), "{}: {}", file.display(), out.stderr);
        assert!(
            out.stderr.contains(&expected),
            "expected {expected:?} in:\n{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains(&hash) && !out.stderr.contains(&hash.to_uppercase()),
            "the hash is not quoted: {}",
            out.stderr
        );
        assert!(
            !out.stdout.contains("listening on") && !out.stderr.contains("listening on"),
            "it did not start"
        );
    }
}
