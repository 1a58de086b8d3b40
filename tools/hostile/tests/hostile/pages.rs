//! Hostile pages: each is answered within the browser's time limit + 1 s,
//! `/health` answers in under 1 s while the browser works on it, and the
//! browser's CPU use is back to idle within 1 s of the answer (measured in
//! /proc/PID/stat). The pages, one after the other against one browser so
//! that its CPU time is its own:
//! - 5 MiB of `a. a. …` in one paragraph (splitting it was quadratic);
//! - 500 000 nested `<div>` then 600 000 `</p>` (html5ever's tree builder
//!   alone is quadratic on it);
//! - a 50 MiB page (cut at the 5 MiB byte limit, never read whole);
//! - one tag with 700 000 attributes (html5ever's tokenizer compares each
//!   with all before it: no bound inside the parser helps, the time limit
//!   must stop it, and its CPU work with it).
//!
//! Each page's figures are printed (`--no-capture` shows them).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::web::{Site, client, cpu_ticks, start_browser, ticks_per_second};

/// The browser's time limit here (its default).
const TIMEOUT: Duration = Duration::from_secs(10);
/// The answer may come this much after the time limit.
const SLACK: Duration = Duration::from_secs(1);
/// `/health` answers within this while a page is worked on.
const HEALTH_WITHIN: Duration = Duration::from_secs(1);
/// CPU the browser may use in the second after "idle within 1 s": timers
/// and the span exporter, a few ticks at most.
const IDLE_CPU: Duration = Duration::from_millis(50);

/// What one page cost.
struct Measured {
    status: u16,
    answered: Duration,
    worst_health: Duration,
    health_checks: usize,
    cpu_during: Duration,
    cpu_after: Duration,
    answer: Value,
}

async fn measure(browser: &autobot_testkit::process::Process, url: &str) -> Measured {
    let ticks = ticks_per_second();
    let cpu = |t: u64| Duration::from_millis(t * 1000 / ticks);
    let pid = browser.pid();

    // /health, polled from beside the navigation until it is answered.
    let working = Arc::new(AtomicBool::new(true));
    let poller = tokio::spawn({
        let health = browser.url("/health");
        let working = working.clone();
        async move {
            let http = client();
            let mut worst = Duration::ZERO;
            let mut checks = 0;
            while working.load(Ordering::Relaxed) {
                let started = Instant::now();
                let r = http.get(&health).send().await.unwrap();
                assert_eq!(r.status(), 200);
                worst = worst.max(started.elapsed());
                checks += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (worst, checks)
        }
    });

    let cpu_before = cpu_ticks(pid);
    let started = Instant::now();
    let r = client()
        .post(browser.url("/navigate"))
        .json(&json!({ "url": url }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let answer: Value = r.json().await.unwrap_or(Value::Null);
    let answered = started.elapsed();
    let cpu_at_answer = cpu_ticks(pid);
    working.store(false, Ordering::Relaxed);
    let (worst_health, health_checks) = poller.await.unwrap();

    // Idle within 1 s of the answer: nothing (to speak of) in the second after.
    tokio::time::sleep_until(tokio::time::Instant::from_std(started + answered + SLACK)).await;
    let idle_from = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_to = cpu_ticks(pid);
    Measured {
        status,
        answered,
        worst_health,
        health_checks,
        cpu_during: cpu(cpu_at_answer - cpu_before),
        cpu_after: cpu(idle_to - idle_from),
        answer,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_pages_are_answered_in_time_and_their_work_stops_with_the_answer() {
    let site = Site::start().await;
    let browser = start_browser(&[(
        "AUTOBOT_BROWSER_TIMEOUT_MS",
        &TIMEOUT.as_millis().to_string(),
    )]);
    let mut failures = Vec::new();
    for (path, what) in [
        ("/dots", "5 MiB of 'a. a. ...'"),
        ("/nest", "500 000 <div> then 600 000 </p>"),
        ("/big", "a 50 MiB page"),
        ("/attributes", "one tag with 700 000 attributes"),
    ] {
        let m = measure(&browser, &site.url(path)).await;
        let outcome = match m.status {
            200 => format!(
                "200, {} bytes of text, {} passages, truncated {}",
                m.answer["text"].as_str().map_or(0, str::len),
                m.answer["passages"].as_array().map_or(0, Vec::len),
                m.answer["truncated"]
            ),
            other => format!("{other}: {}", m.answer["error"]),
        };
        println!(
            "{what}: answered in {:.2} s ({outcome}); CPU {:.2} s while working, {} ms in the \
             second after idle was due; /health worst {} ms over {} checks",
            m.answered.as_secs_f64(),
            m.cpu_during.as_secs_f64(),
            m.cpu_after.as_millis(),
            m.worst_health.as_millis(),
            m.health_checks,
        );
        if !matches!(m.status, 200 | 504) {
            failures.push(format!("{what}: answered {} {}", m.status, m.answer));
        }
        if m.answered > TIMEOUT + SLACK {
            failures.push(format!("{what}: answered after {:?}", m.answered));
        }
        if m.worst_health >= HEALTH_WITHIN {
            failures.push(format!("{what}: /health took {:?}", m.worst_health));
        }
        if m.cpu_after > IDLE_CPU {
            failures.push(format!(
                "{what}: still {:?} of CPU in the second after the answer + 1 s",
                m.cpu_after
            ));
        }
    }
    // The browser is still whole, and reads an ordinary page.
    let r = client()
        .post(browser.url("/navigate"))
        .json(&json!({ "url": site.url("/ok") }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(failures.is_empty(), "{failures:#?}");
}
