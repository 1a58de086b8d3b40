//! Requests the backend refuses before calling anyone: 400 saying what is
//! wrong, 413 over 1 MiB; each a JSON error with the trace id and a
//! `traceresponse` header.

use serde_json::Value;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_say_what_is_wrong() {
    let mut stack = Stack::start(Mode::Normal, &[], &[]).await;
    let http = reqwest::Client::new();
    let big = format!(
        r#"{{"messages": [{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(1024 * 1024)
    );
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        ("/api/chat", "invalid JSON", r#"{"messages": [{"role": "user", "#.into(), 400, "Failed to parse the request body as JSON"),
        ("/api/chat", "not an object", "[1, 2]".into(), 400, "invalid type"),
        ("/api/chat", "messages of the wrong type", r#"{"messages": "hello"}"#.into(), 400, "messages: invalid type: string"),
        ("/api/chat", "content of the wrong type", r#"{"messages": [{"role": "user", "content": 42}]}"#.into(), 400, "messages[0].content: invalid type: integer"),
        ("/api/chat", "temperature of the wrong type", r#"{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}"#.into(), 400, "temperature"),
        ("/api/chat", "an unknown role", r#"{"messages": [{"role": "wizard", "content": "x"}]}"#.into(), 400, "unknown variant `wizard`"),
        ("/api/chat", "an unknown provider", r#"{"messages": [{"role": "user", "content": "x"}], "provider": "bard"}"#.into(), 400, "unknown variant `bard`"),
        ("/api/chat", "no messages field", "{}".into(), 400, "missing field `messages`"),
        ("/api/chat", "no messages", r#"{"messages": []}"#.into(), 400, "messages: at least one message is required"),
        ("/api/chat", "an empty content", r#"{"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "   "}]}"#.into(), 400, "messages[1].content: must not be empty"),
        ("/api/chat", "a body over 1 MiB", big.clone(), 413, "length limit exceeded"),
        ("/api/browse", "no url", r#"{"link": "http://x"}"#.into(), 400, "url: missing field"),
        ("/api/browse", "a url of the wrong type", r#"{"url": 7}"#.into(), 400, "url: must be a string"),
        ("/api/browse", "a body over 1 MiB", format!(r#"{{"url": "{}"}}"#, "x".repeat(1024 * 1024)), 413, "length limit exceeded"),
        ("/api/pki/distribute", "targets of the wrong type", r#"{"targets": "all"}"#.into(), 400, "targets: invalid type"),
        ("/api/pki/distribute", "an unknown field", r#"{"target": ["a"]}"#.into(), 400, "unknown field `target`"),
    ];
    for (path, what, body, status, needle) in cases {
        let r = http
            .post(stack.backend.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}: {what}");
        let trace = traceresponse_trace_id(&r);
        let answer: Value = r.json().await.unwrap();
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(needle), "{path}: {what}: {error}");
        assert_eq!(answer["trace_id"], trace.as_str(), "{path}: {what}");
    }
    // A missing content type and an unknown route are answered the same way.
    let r = http
        .post(stack.backend.url("/api/chat"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.headers().contains_key("traceresponse"));
    let r = http
        .get(stack.backend.url("/api/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("traceresponse"));
    let answer: Value = r.json().await.unwrap();
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("/api/nothing-here")
    );

    stack.stop();
    assert!(
        stack.llm.seen().is_empty(),
        "nothing reached the LLM server"
    );
    assert!(
        stack
            .receiver
            .all_spans()
            .await
            .iter()
            .all(|s| s.service != "autobot-ai-stack"),
        "nothing reached the ai-stack"
    );
    // 4xx is the caller's error: the backend's SERVER spans stay unset.
    for s in stack
        .receiver
        .all_spans()
        .await
        .iter()
        .filter(|s| s.kind == Kind::Server)
    {
        assert_ne!(s.status, Status::Error, "{} {:?}", s.name, s.attributes);
    }
}
