//! Stopping the services with SIGTERM right after a request loses no span.

use std::time::Duration;

use serde_json::json;

use autobot_e2e::system::{Options, RESEARCH_SERVICES, System};
use autobot_testkit::traces::{problems, spans};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_a_request_flushes_every_span() {
    let mut system = System::start(Options::default()).await;
    let answer = system
        .post(
            "/api/research",
            json!({"url": system.article_url(), "question": "What does Jaeger group spans by?"}),
            &[],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // No waiting: stop everything at once (the batch delay is 100 ms; a lost flush would show).
    for service in [
        &mut system.backend,
        &mut system.browser,
        &mut system.npu,
        &mut system.ai_stack,
        &mut system.site,
    ] {
        let status = service.terminate();
        assert!(status.success(), "{} exited with {status}", service.name());
    }
    let trace = system
        .tool
        .wait_for_trace(
            &answer.trace_id,
            |t| problems(t, &RESEARCH_SERVICES, None).is_empty(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let all = spans(&trace);
    for op in [
        "POST /api/research",
        "POST /navigate",
        "send autobot:jobs:npu",
        "process autobot:jobs:npu",
        "npu.inference",
        "POST /v1/chat",
        "llm.inference",
    ] {
        assert!(
            all.iter().any(|s| s.name == op),
            "{op} missing after SIGTERM: {:?}",
            all.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
    }
}
