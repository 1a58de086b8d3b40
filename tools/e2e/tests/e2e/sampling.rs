//! Sampling keeps or drops a trace whole, in every service, at every rate.

use std::time::Duration;

use serde_json::json;

use autobot_e2e::system::{Options, RESEARCH_SERVICES, System};
use autobot_testkit::traces::{is_whole, problems, spans};

/// At 0.5 in every service, about half the traces are kept, and every kept
/// trace holds all its services: no service keeps a trace another dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_half_rate_traces_are_kept_or_dropped_whole() {
    let system = System::start(Options {
        sample_rate: 0.5,
        ..Options::default()
    })
    .await;
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    const REQUESTS: usize = 24;
    for i in 0..REQUESTS {
        let answer = system
            .post(
                "/api/research",
                json!({"url": system.article_url(), "question": format!("Question {i}: how does work cross Redis?"), "top_k": 1}),
                &[],
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        if answer.sampled {
            kept.push(answer.trace_id)
        } else {
            dropped.push(answer.trace_id)
        }
    }
    assert!(
        (4..=20).contains(&kept.len()),
        "about half of {REQUESTS} kept, got {}",
        kept.len()
    );
    for id in &kept {
        let trace = system
            .tool
            .wait_for_trace(
                id,
                |t| is_whole(t, &RESEARCH_SERVICES),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|e| panic!("kept trace {id} is not whole: {e}"));
        assert!(problems(&trace, &RESEARCH_SERVICES, None).is_empty());
    }
    // Dropped traces left nothing: not one span of any service. (Spans of
    // kept traces were waited for above, so the export pipes are drained.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in &dropped {
        assert!(
            system.tool.trace(id).await.is_none(),
            "dropped trace {id} has spans"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_rate_zero_a_sampled_caller_is_kept_whole_and_at_rate_one_an_unsampled_caller_is_not() {
    let system = System::start(Options {
        sample_rate: 0.0,
        ..Options::default()
    })
    .await;
    let body =
        json!({"url": system.article_url(), "question": "Which header carries the trace context?"});
    let caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let answer = system
        .post("/api/research", body.clone(), &[("traceparent", caller)])
        .await;
    assert_eq!(answer.status, 200);
    assert!(answer.sampled);
    let trace = system
        .tool
        .wait_for_trace(
            "0af7651916cd43dd8448eb211c80319c",
            |t| problems(t, &RESEARCH_SERVICES, Some("b7ad6b7169203331")).is_empty(),
            Duration::from_secs(30),
        )
        .await
        .expect("the caller's decision wins over rate 0, in every service");
    assert!(spans(&trace).len() >= 10);
    drop(system);

    let system = System::start(Options {
        sample_rate: 1.0,
        ..Options::default()
    })
    .await;
    let body =
        json!({"url": system.article_url(), "question": "Which header carries the trace context?"});
    let unsampled = "00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let answer = system
        .post("/api/research", body, &[("traceparent", unsampled)])
        .await;
    assert_eq!(answer.status, 200);
    assert!(!answer.sampled, "traceresponse says not sampled");
    // A request the trace tool does see proves the pipes work; then the unsampled one must be absent.
    let probe = system
        .post(
            "/api/research",
            json!({"url": system.article_url(), "question": "x?"}),
            &[],
        )
        .await;
    system
        .tool
        .wait_for_trace(
            &probe.trace_id,
            |t| is_whole(t, &RESEARCH_SERVICES),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(
        system
            .tool
            .trace("1af7651916cd43dd8448eb211c80319c")
            .await
            .is_none()
    );
}
