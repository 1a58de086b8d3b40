//! The research workflow is ONE trace through backend, browser (and the web
//! site it reads), Redis, npu-worker and ai-stack, with correct parents.

use std::time::Duration;

use serde_json::json;

use autobot_e2e::system::{Options, RESEARCH_SERVICES, System};
use autobot_testkit::traces::{Kind, is_whole, problems, spans};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_research_request_is_one_whole_trace_across_every_service() {
    let system = System::start(Options::default()).await;
    research_is_one_whole_trace(&system).await;
}

/// The research request's answer and its trace, checked; also run with
/// mutual TLS between the services (tests/e2e/mutual_tls.rs).
pub(crate) async fn research_is_one_whole_trace(system: &System) {
    let answer = system
        .post(
            "/api/research",
            json!({"url": system.article_url(), "question": "Which header carries the trace context between services?", "top_k": 3}),
            &[],
        )
        .await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, system.logs());
    assert_eq!(
        answer.body["trace_id"],
        answer.trace_id.as_str(),
        "the body names the trace of traceresponse"
    );

    // The right passage ranks first: real embeddings, not keyword luck.
    let sources = answer.body["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 3);
    let best = sources[0]["text"].as_str().unwrap();
    assert!(best.contains("traceparent header"), "best passage: {best}");
    assert!(sources[0]["score"].as_f64().unwrap() > sources[1]["score"].as_f64().unwrap());
    assert!(
        answer.body["answer"]
            .as_str()
            .unwrap()
            .contains("traceparent header"),
        "{}",
        answer.body
    );

    let mut expected: Vec<&str> = RESEARCH_SERVICES.to_vec();
    expected.push("autobot-demo-site");
    let trace = system
        .tool
        .wait_for_trace(
            &answer.trace_id,
            |t| is_whole(t, &expected) && spans(t).len() >= 12,
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", system.logs()));
    let all = spans(&trace);
    assert_eq!(problems(&trace, &expected, None), Vec::<String>::new());
    let by_id = |id: &str| all.iter().find(|s| s.span_id == id).unwrap();

    // Every SERVER span below the root is the child of a CLIENT span of another service.
    let servers: Vec<_> = all
        .iter()
        .filter(|s| s.kind == Kind::Server && s.parent.is_some())
        .collect();
    assert!(
        servers.len() >= 3,
        "browser, demo site and ai-stack answer over HTTP: {servers:?}"
    );
    for server in servers {
        let parent = by_id(server.parent.as_deref().unwrap());
        assert_eq!(
            parent.kind,
            Kind::Client,
            "{} ({}) has a {:?} parent",
            server.name,
            server.service,
            parent.kind
        );
        assert_ne!(
            parent.service, server.service,
            "{} crosses a service boundary",
            server.name
        );
    }
    let root = all.iter().find(|s| s.parent.is_none()).unwrap();
    assert_eq!(
        (root.name.as_str(), root.service.as_str()),
        ("POST /api/research", "autobot-backend")
    );

    // Across Redis: the CONSUMER span in the worker is the child of (and links to) the PRODUCER span in the backend.
    let consumer = all
        .iter()
        .find(|s| s.kind == Kind::Consumer)
        .expect("a CONSUMER span");
    assert_eq!(consumer.name, "process autobot:jobs:npu");
    assert_eq!(consumer.service, "autobot-npu-worker");
    let producer = by_id(consumer.parent.as_deref().unwrap());
    assert_eq!(
        (producer.kind, producer.name.as_str()),
        (Kind::Producer, "send autobot:jobs:npu")
    );
    assert_eq!(producer.service, "autobot-backend");
    assert!(
        consumer
            .links
            .iter()
            .any(|(_, span)| span == &producer.span_id),
        "the consumer links to the producer too"
    );
    assert!(
        all.iter()
            .any(|s| s.name == "npu.inference" && s.service == "autobot-npu-worker")
    );
    let llm = all
        .iter()
        .find(|s| s.name == "llm.inference")
        .expect("llm.inference");
    assert_eq!(llm.service, "autobot-ai-stack");
    assert_eq!(llm.attr_text("llm.provider").as_deref(), Some("ollama"));

    // The stand-in LLM server received the trace context from inside llm.inference's trace.
    let seen: Vec<_> = system
        .llm
        .seen()
        .into_iter()
        .filter(|r| r.path == "/api/chat")
        .collect();
    let traceparent = seen
        .last()
        .and_then(|r| r.header("traceparent"))
        .unwrap_or_default();
    assert!(
        traceparent.contains(&answer.trace_id),
        "the LLM server got {traceparent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_b3_context_is_continued_through_the_workflow() {
    let system = System::start(Options::default()).await;
    let answer = system
        .post(
            "/api/research",
            json!({"url": system.article_url(), "question": "How is sampling decided?"}),
            &[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.trace_id, "80f198ee56343ba864fe8b2a57d3eff7");
    let trace = system
        .tool
        .wait_for_trace(
            &answer.trace_id,
            |t| problems(t, &RESEARCH_SERVICES, Some("e457b5a2e4d86bd1")).is_empty(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(
        problems(&trace, &RESEARCH_SERVICES, Some("e457b5a2e4d86bd1")),
        Vec::<String>::new()
    );
}

/// What an operator runs after a deploy passes against the running system,
/// also at sampling rate 0 with --force-sample.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autobot_trace_smoke_passes_against_the_running_system() {
    let system = System::start(Options {
        sample_rate: 0.0,
        ..Options::default()
    })
    .await;
    let smoke = |force: bool| {
        let mut cmd = std::process::Command::new(
            autobot_testkit::bins::workspace_bin("autobot-trace").unwrap(),
        );
        cmd.args([
            "smoke",
            "--backend",
            &system.backend.url(""),
            "--url",
            &system.article_url(),
        ])
        .args(["--jaeger", &system.tool.query_url(), "--wait", "30s"]);
        if force {
            cmd.arg("--force-sample");
        }
        // As an operator runs it: the key from the environment, never on the command line.
        cmd.env("AUTOBOT_API_KEY", &system.operator.key);
        cmd.output().unwrap()
    };
    let out = tokio::task::block_in_place(|| smoke(false));
    assert_eq!(
        out.status.code(),
        Some(1),
        "at rate 0 an unforced smoke says it was not sampled"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("not sampled"));
    let out = tokio::task::block_in_place(|| smoke(true));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", system.logs());
    assert!(
        stdout.contains("OK smoke: trace") && stdout.contains("is whole"),
        "{stdout}"
    );
}
