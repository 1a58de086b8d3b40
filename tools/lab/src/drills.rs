//! `scripts/lab.sh drill`: four faults an operator will meet, each done to
//! the deployed lab for real, with what was measured printed.
//! - jaeger: the redis+jaeger machine powered off for 60 s under steady
//!   traffic;
//! - redis: the redis+jaeger machine rebooted under traffic;
//! - npu: the npu-worker SIGKILLed mid-job;
//! - pki: one SSH target's power cut during a certificate distribution.
//!
//! Each drill leaves the lab as it found it (services up, machines on).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::check::{
    DISTRIBUTION_SERVICES, Verdict, distribute, indent, installs_missing, results_of,
};
use crate::lab::Lab;
use crate::traces::{is_error, new_caller, render, spans_named, tag, wait_whole};
use crate::traffic::{Sample, Traffic, summarize};

pub const ALL: [&str; 4] = ["jaeger", "redis", "npu", "pki"];

pub async fn run(lab: &Lab, names: &[String]) -> anyhow::Result<()> {
    let names: Vec<String> = if names.is_empty() {
        ALL.iter().map(|s| (*s).to_owned()).collect()
    } else {
        names.to_vec()
    };
    if let Some(bad) = names.iter().find(|n| !ALL.contains(&n.as_str())) {
        bail!("no drill {bad}: the drills are {}", ALL.join(", "));
    }
    let mut failed = Vec::new();
    for name in &names {
        let started = Instant::now();
        let outcome = match name.as_str() {
            "jaeger" => jaeger(lab).await,
            "redis" => redis(lab).await,
            "npu" => npu(lab).await,
            _ => pki(lab).await,
        };
        let took = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("==> drill {name}: PASSED in {took:.0} s"),
            Err(e) => {
                println!("==> drill {name}: FAILED in {took:.0} s: {e:#}");
                failed.push(name.clone());
            }
        }
    }
    if !failed.is_empty() {
        bail!("drills failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Builds requests for [`Traffic`] (it needs `'static` closures).
fn poster(lab: &Lab, path: &str) -> impl Fn() -> reqwest::RequestBuilder + Send + Sync + 'static {
    let http = lab.http.clone();
    let url = format!("{}{path}", lab.backend);
    let key = std::env::var("AUTOBOT_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    move || {
        let request = http.post(&url);
        match &key {
            Some(k) => request.bearer_auth(k),
            None => request,
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Resident memory of units, sampled every 2 s until stopped.
struct MemoryWatch {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Vec<(Duration, String, u64)>>,
}

impl MemoryWatch {
    fn start(units: &[(&str, &str)], origin: tokio::time::Instant) -> anyhow::Result<Self> {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        // Its own handle on the lab: the task outlives this call.
        let lab = Lab::from_env()?;
        let units: Vec<(String, String)> = units
            .iter()
            .map(|(m, u)| ((*m).to_owned(), (*u).to_owned()))
            .collect();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                for (machine, unit) in &units {
                    if let Ok(kib) = lab.rss_kib(machine, unit).await {
                        samples.push((origin.elapsed(), unit.clone(), kib));
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stopped.changed() => break,
                }
            }
            samples
        });
        Ok(Self { stop, task })
    }

    async fn finish(self) -> Vec<(Duration, String, u64)> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// The largest sample of `unit` in `[from, to)`, in KiB.
fn max_rss(samples: &[(Duration, String, u64)], unit: &str, from: Duration, to: Duration) -> u64 {
    samples
        .iter()
        .filter(|(at, u, _)| u == unit && *at >= from && *at < to)
        .map(|(_, _, kib)| *kib)
        .max()
        .unwrap_or(0)
}

// ------------------------------------------------------------------- jaeger

/// The jaeger machine (redis+jaeger, .23) powered off for 60 s under steady
/// chat traffic: the services keep answering at their rate, their memory
/// stays bounded, and the traces of requests made after it is back arrive
/// whole. (Chat does not use Redis, which goes down with the machine.)
async fn jaeger(lab: &Lab) -> anyhow::Result<()> {
    const RATE: f64 = 10.0;
    const BASELINE: Duration = Duration::from_secs(20);
    const OUTAGE: Duration = Duration::from_secs(60);
    const AFTER: Duration = Duration::from_secs(20);
    const MEMORY_BOUND_KIB: u64 = 64 * 1024;
    println!(
        "==> drill jaeger: {RATE}/s POST /api/chat; {} s normal, the jaeger machine off {} s, {} s after",
        BASELINE.as_secs(),
        OUTAGE.as_secs(),
        AFTER.as_secs()
    );
    let mut v = Verdict::default();
    let post = poster(lab, "/api/chat");
    let traffic = Traffic::start(RATE, Duration::from_secs(10), move |n| {
        post().json(&json!({"messages": [{"role": "user", "content": format!("drill message {n}: is tracing on?")}]}))
    });
    let memory = MemoryWatch::start(
        &[
            ("main", "autobot-backend"),
            ("ai-stack", "autobot-ai-stack"),
        ],
        traffic.started,
    )?;
    tokio::time::sleep(BASELINE).await;
    let stopped = traffic.now();
    let outcome = async {
        lab.lab_sh(&["stop", "redis"]).await?;
        let off = traffic.now();
        let receiver_gone = lab.query.services().await.is_err();
        println!(
            "    {}: the jaeger machine powers off; off at {} (query API unreachable: {receiver_gone})",
            secs(stopped),
            secs(off)
        );
        tokio::time::sleep(OUTAGE.saturating_sub(off - stopped)).await;
        anyhow::Ok(())
    }
    .await;
    // Whatever happened: the machine is powered on again.
    let restarted = traffic.now();
    lab.lab_sh(&["start", "redis"]).await?;
    outcome?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while lab.query.services().await.is_err() {
        if tokio::time::Instant::now() > deadline {
            bail!("the query API did not come back within 60 s of the machine's start");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let back = traffic.now();
    println!(
        "    {}: the jaeger machine powered on; the query API answers at {}",
        secs(restarted),
        secs(back)
    );
    tokio::time::sleep(AFTER).await;
    let end = traffic.now();
    let samples = traffic.finish().await;
    let memory = memory.finish().await;

    let before = summarize(&samples, Duration::ZERO, stopped);
    let during = summarize(&samples, stopped, restarted);
    let after = summarize(&samples, restarted, end);
    println!("    normal:  {before}");
    println!("    outage:  {during}");
    println!("    after:   {after}");
    v.expect(
        before.failed() == 0 && during.failed() == 0 && after.failed() == 0,
        format!(
            "every request answered 2xx ({} failed before, {} during, {} after)",
            before.failed(),
            during.failed(),
            after.failed()
        ),
    );
    v.expect(
        during.ok_rate >= 0.9 * before.ok_rate,
        format!(
            "rate kept during the outage: {:.1}/s vs {:.1}/s normal",
            during.ok_rate, before.ok_rate
        ),
    );
    let latency_bound = before.p99 * 3 + Duration::from_millis(100);
    v.expect(
        during.p99 <= latency_bound,
        format!(
            "latency kept: p99 {} ms during vs {} ms normal (bound {} ms)",
            during.p99.as_millis(),
            before.p99.as_millis(),
            latency_bound.as_millis()
        ),
    );
    for unit in ["autobot-backend", "autobot-ai-stack"] {
        let normal = max_rss(&memory, unit, Duration::ZERO, stopped);
        let outage = max_rss(&memory, unit, stopped, restarted);
        let later = max_rss(&memory, unit, restarted, end + Duration::from_secs(5));
        v.expect(
            normal > 0 && outage <= normal + MEMORY_BOUND_KIB,
            format!(
                "{unit} memory bounded: max RSS {} MiB normal, {} MiB during, {} MiB after (bound +{} MiB)",
                normal / 1024,
                outage / 1024,
                later / 1024,
                MEMORY_BOUND_KIB / 1024
            ),
        );
    }
    // Traces of requests made once the receiver answered again must arrive
    // whole; those made during the outage were dropped (and counted) by the
    // exporters, never queued without bound.
    let arrived = whole_traces(
        lab,
        &samples,
        back,
        end,
        &["autobot-backend", "autobot-ai-stack"],
    )
    .await;
    v.expect(
        arrived.0 > 0 && arrived.0 == arrived.1,
        format!(
            "{} of {} traces of requests sent after the receiver was back arrived whole",
            arrived.0, arrived.1
        ),
    );
    let lost = whole_traces_now(
        lab,
        &samples,
        stopped + Duration::from_secs(6),
        restarted,
        &["autobot-backend", "autobot-ai-stack"],
    )
    .await;
    println!(
        "    (traces of requests made during the outage found afterwards: {} of {}: the exporters dropped what they could not send, their queues stayed bounded)",
        lost.0, lost.1
    );
    v.finish("drill jaeger")
}

/// How many of the traces of requests sent in `[from, to)` arrive whole
/// (polled for up to 30 s), and how many were looked for.
async fn whole_traces(
    lab: &Lab,
    samples: &[Sample],
    from: Duration,
    to: Duration,
    services: &[&str],
) -> (usize, usize) {
    let mut waiting: Vec<String> = samples
        .iter()
        .filter(|s| s.sent >= from && s.sent < to && s.ok())
        .filter_map(|s| s.trace_id.clone())
        .collect();
    let total = waiting.len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut still = Vec::new();
        for id in waiting {
            if wait_whole(&lab.query, &id, None, services, Duration::ZERO, |_| {
                Vec::new()
            })
            .await
            .is_err()
            {
                still.push(id);
            }
        }
        waiting = still;
        if waiting.is_empty() || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if let Some(id) = waiting.first()
        && let Err(problems) = wait_whole(&lab.query, id, None, services, Duration::ZERO, |_| {
            Vec::new()
        })
        .await
    {
        println!("    e.g. trace {id}: {}", problems.join("; "));
    }
    (total - waiting.len(), total)
}

/// Like [`whole_traces`], one look only.
async fn whole_traces_now(
    lab: &Lab,
    samples: &[Sample],
    from: Duration,
    to: Duration,
    services: &[&str],
) -> (usize, usize) {
    let ids: Vec<&String> = samples
        .iter()
        .filter(|s| s.sent >= from && s.sent < to && s.ok())
        .filter_map(|s| s.trace_id.as_ref())
        .collect();
    let mut whole = 0;
    for id in &ids {
        if wait_whole(&lab.query, id, None, services, Duration::ZERO, |_| {
            Vec::new()
        })
        .await
        .is_ok()
        {
            whole += 1;
        }
    }
    (whole, ids.len())
}

// -------------------------------------------------------------------- redis

/// `redis-cli --json …` on the redis machine, as Redis's operator user (the redis role's autobot-redis-cli).
async fn redis_json(lab: &Lab, command: &str) -> anyhow::Result<Value> {
    let out = lab
        .sh("redis", &format!("autobot-redis-cli --json {command}"))
        .await?;
    serde_json::from_str(out.trim()).with_context(|| format!("redis-cli {command}: {out}"))
}

/// The fields of `XINFO GROUPS`' group `npu-workers`.
async fn npu_group(lab: &Lab) -> anyhow::Result<Value> {
    let groups = redis_json(lab, "XINFO GROUPS autobot:jobs:npu").await?;
    groups
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["name"] == "npu-workers")
        .cloned()
        .context("no consumer group npu-workers on autobot:jobs:npu")
}

/// The redis+jaeger machine rebooted under embedding traffic: no job Redis
/// accepted is lost, the worker and the backend reconnect by themselves.
async fn redis(lab: &Lab) -> anyhow::Result<()> {
    const RATE: f64 = 2.0;
    println!("==> drill redis: {RATE}/s POST /api/embeddings; the redis+jaeger machine rebooted");
    let mut v = Verdict::default();
    let worker_before = lab
        .unit(
            "npu-worker",
            "autobot-npu-worker",
            &["MainPID", "NRestarts"],
        )
        .await?;
    let dead_before = redis_json(lab, "XLEN autobot:jobs:npu:dead").await?;
    let post = poster(lab, "/api/embeddings");
    // Longer than the backend's own wait for a result (60 s): every request gets the backend's answer.
    let traffic = Traffic::start(RATE, Duration::from_secs(90), move |n| {
        post().json(&json!({"texts": [format!("drill passage {n}: Redis came back")]}))
    });
    tokio::time::sleep(Duration::from_secs(10)).await;
    let stream_before = redis_json(lab, "XINFO STREAM autobot:jobs:npu").await?;
    // A new boot id tells a reboot, however fast (nspawn gives each boot its own).
    let boot_id = "cat /proc/sys/kernel/random/boot_id";
    let before = lab.sh("redis", boot_id).await?;
    let rebooted = traffic.now();
    let _ = lab.run("redis", "systemctl reboot").await;
    println!(
        "    {}: `systemctl reboot` on the redis+jaeger machine",
        secs(rebooted)
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    // Down (no answer) or already up again with a new boot id.
    loop {
        let out = lab.run("redis", boot_id).await;
        let same_boot = matches!(&out, Ok(o) if o.ok() && o.stdout == before);
        if !same_boot {
            break;
        }
        if traffic.now() > rebooted + Duration::from_secs(90) {
            bail!("the redis machine did not reboot within 90 s of `systemctl reboot`");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let went_down = traffic.now();
    loop {
        let out = lab.run("redis", "autobot-redis-cli ping").await;
        if matches!(&out, Ok(o) if o.stdout.trim() == "PONG") {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("Redis did not answer within 180 s of the reboot");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let redis_back = traffic.now();
    println!(
        "    {}: Redis gone; {}: Redis answers again ({} down)",
        secs(went_down),
        secs(redis_back),
        secs(redis_back - went_down)
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    let end = traffic.now();
    let samples = traffic.finish().await;

    let before = summarize(&samples, Duration::ZERO, rebooted);
    let during = summarize(&samples, rebooted, redis_back);
    let after = summarize(&samples, redis_back, end);
    println!("    before:  {before}");
    println!("    reboot:  {during}");
    println!("    after:   {after}");
    let first_ok = samples
        .iter()
        .filter(|s| s.sent >= redis_back && s.ok())
        .map(|s| s.sent + s.latency)
        .min();
    v.expect(
        first_ok.is_some(),
        format!(
            "jobs run again without a restart: the first answered {} after Redis was back",
            first_ok.map_or("never".to_owned(), |t| secs(t.saturating_sub(redis_back)))
        ),
    );
    let timed_out = samples.iter().filter(|s| s.status == Some(504)).count();
    let unanswered = samples.iter().filter(|s| s.status.is_none()).count();
    v.expect(
        timed_out == 0 && unanswered == 0,
        format!(
            "every request got the backend's answer in time: {timed_out} waited out the job timeout (504), {unanswered} unanswered"
        ),
    );
    v.expect(
        before.failed() == 0 && after.failed() == 0,
        format!(
            "no failure outside the reboot ({} before, {} after); during it the backend refused {} quickly (the queue was down, the job not accepted)",
            before.failed(),
            after.failed(),
            during.failed()
        ),
    );
    // Accepted = in the stream. Nothing Redis had acknowledged went away...
    let stream_after = redis_json(lab, "XINFO STREAM autobot:jobs:npu").await?;
    let added = |s: &Value| s["entries-added"].as_u64().unwrap_or(0);
    v.expect(
        added(&stream_after) >= added(&stream_before),
        format!(
            "the stream kept its jobs across the reboot: entries-added {} before, {} after",
            added(&stream_before),
            added(&stream_after)
        ),
    );
    // ...and every job in it was delivered and acknowledged.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let group = loop {
        let g = npu_group(lab).await?;
        if (g["pending"] == 0 && g["lag"] == 0) || tokio::time::Instant::now() > deadline {
            break g;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    v.expect(
        group["pending"] == 0 && group["lag"] == 0,
        format!(
            "every accepted job was processed: pending {}, lag {}, entries read {}",
            group["pending"], group["lag"], group["entries-read"]
        ),
    );
    let dead_after = redis_json(lab, "XLEN autobot:jobs:npu:dead").await?;
    v.expect(
        dead_after == dead_before,
        format!("no job dead-lettered: {dead_before} before, {dead_after} after"),
    );
    let worker_after = lab
        .unit(
            "npu-worker",
            "autobot-npu-worker",
            &["MainPID", "NRestarts"],
        )
        .await?;
    v.expect(
        worker_after.get("MainPID") == worker_before.get("MainPID")
            && worker_after.get("NRestarts") == worker_before.get("NRestarts"),
        format!(
            "the npu-worker reconnected by itself: pid {} → {}, restarts {} → {}",
            worker_before.get("MainPID"),
            worker_after.get("MainPID"),
            worker_before.get("NRestarts"),
            worker_after.get("NRestarts")
        ),
    );
    for unit in ["redis-server", "jaeger"] {
        let active = lab
            .wait_active("redis", unit, Duration::from_secs(30))
            .await;
        v.expect(active.is_ok(), format!("{unit} came back with the machine"));
    }
    v.finish("drill redis")
}

// ---------------------------------------------------------------------- npu

/// The npu-worker SIGKILLed while it runs a job: systemd restarts it, the
/// job is taken over and finishes, and its trace shows both attempts.
async fn npu(lab: &Lab) -> anyhow::Result<()> {
    const JOB_SECONDS: f64 = 5.0;
    println!("==> drill npu: a long embedding job; the worker SIGKILLed once it has the job");
    let mut v = Verdict::default();
    let before = lab
        .unit(
            "npu-worker",
            "autobot-npu-worker",
            &["MainPID", "NRestarts"],
        )
        .await?;
    // A job long enough to be killed mid-way, short enough to finish again
    // within the backend's wait for a result (60 s) after the takeover
    // (AUTOBOT_NPU_CLAIM_IDLE_MS, 30 s): about 5 s of this machine's work (longer jobs cost more than their share).
    let passage = |i: usize| {
        format!(
            "Passage {i} of the drill. {}",
            "A worker that dies while it holds a job leaves the entry pending; another worker takes it over after the idle time and runs it again. ".repeat(12)
        )
    };
    let probe_texts: Vec<String> = (0..8).map(passage).collect();
    let probe = Instant::now();
    let response = lab
        .post("/api/embeddings")
        .timeout(Duration::from_secs(120))
        .json(&json!({ "texts": probe_texts }))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("the calibration job failed: HTTP {}", response.status());
    }
    let per_text = probe.elapsed().as_secs_f64() / 8.0;
    let count = ((JOB_SECONDS / per_text).ceil() as usize).clamp(8, 256);
    println!(
        "    calibration: 8 texts of 256 tokens in {:.1} s; the drill job has {count} (about {:.0} s)",
        per_text * 8.0,
        per_text * count as f64
    );
    let texts: Vec<String> = (0..count).map(passage).collect();
    let caller = new_caller();
    let trace = caller.trace_id.clone();
    let sent = Instant::now();
    let request = lab
        .post("/api/embeddings")
        .timeout(Duration::from_secs(180))
        .header("traceparent", &caller.traceparent)
        .json(&json!({ "texts": texts }));
    let mut answer = tokio::spawn(async move {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::Ok((status, body))
    });
    // The worker has the job once its `receive` span is in the query API
    // (exported within the batch delay): then it is mid-job.
    let id = autobot_trace::TraceId::parse(&trace)?;
    let taken = loop {
        if answer.is_finished() {
            bail!(
                "the job finished in {} before its receive span could be seen: too short to kill mid-job",
                secs(sent.elapsed())
            );
        }
        if let Ok(Some(t)) = lab.query.trace(id).await
            && let Some(first) = spans_named(&t, "receive autobot:jobs:npu").first()
        {
            break tag(first, "messaging.client.id").unwrap_or_default();
        }
        if sent.elapsed() > Duration::from_secs(60) {
            bail!("no receive span within 60 s: did a worker take the job?");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let killed_at = sent.elapsed();
    lab.sh("npu-worker", "systemctl kill -s KILL autobot-npu-worker")
        .await?;
    println!(
        "    {}: worker {taken} has the job; SIGKILL",
        secs(killed_at)
    );
    let (status, body) = tokio::time::timeout(Duration::from_secs(200), &mut answer)
        .await
        .context("no answer within 200 s")???;
    let answered = sent.elapsed();
    let vectors = body["embeddings"].as_array().map_or(0, Vec::len);
    v.expect(
        status == 200 && vectors == count,
        format!(
            "the request was answered {status} with {vectors} embeddings, {} after it was sent ({} after the kill)",
            secs(answered),
            secs(answered - killed_at)
        ),
    );
    let after = lab
        .unit(
            "npu-worker",
            "autobot-npu-worker",
            &["MainPID", "NRestarts", "ActiveState"],
        )
        .await?;
    v.expect(
        after.get("ActiveState") == "active" && after.get("MainPID") != before.get("MainPID"),
        format!(
            "systemd restarted the worker: pid {} → {}, restarts {} → {}",
            before.get("MainPID"),
            after.get("MainPID"),
            before.get("NRestarts"),
            after.get("NRestarts")
        ),
    );
    let attempts = |t: &autobot_trace::Trace| -> Vec<String> {
        let counts: Vec<String> = spans_named(t, "receive autobot:jobs:npu")
            .iter()
            .filter_map(|s| tag(s, "messaging.redis.message.delivery_count"))
            .collect();
        let finished: Vec<&autobot_trace::model::Span> = spans_named(t, "process autobot:jobs:npu")
            .into_iter()
            .filter(|s| !is_error(s))
            .collect();
        let mut problems = Vec::new();
        if !(counts.iter().any(|c| c == "1") && counts.iter().any(|c| c == "2")) {
            problems.push(format!(
                "receive spans with delivery counts {counts:?}, expected 1 and 2"
            ));
        }
        // The killed attempt never ended its process span: only the second's is there.
        let processed: Vec<String> = finished
            .iter()
            .filter_map(|s| tag(s, "messaging.redis.message.delivery_count"))
            .collect();
        if processed != ["2"] {
            problems.push(format!(
                "process spans of deliveries {processed:?}, expected only the second's"
            ));
        }
        problems
    };
    match wait_whole(
        &lab.query,
        &trace,
        Some(&caller.span_id),
        &["autobot-backend", "autobot-npu-worker"],
        Duration::from_secs(30),
        attempts,
    )
    .await
    {
        Ok(t) => {
            let origin = t.spans.iter().map(|s| s.start_time).min().unwrap_or(0);
            for s in spans_named(&t, "receive autobot:jobs:npu")
                .iter()
                .chain(spans_named(&t, "process autobot:jobs:npu").iter())
            {
                println!(
                    "         +{:>5.1} s {:<28} delivery {} by {}, {:.1} s",
                    (s.start_time - origin) as f64 / 1e6,
                    s.operation_name,
                    tag(s, "messaging.redis.message.delivery_count").unwrap_or_default(),
                    tag(s, "messaging.client.id").unwrap_or_default(),
                    s.duration as f64 / 1e6
                );
            }
            v.pass(format!(
                "trace {trace} is whole and shows both attempts (the killed one's receive span, the second's receive and process)"
            ));
        }
        Err(problems) => v.fail(format!("trace {trace}: {}", problems.join("; "))),
    }
    let group = npu_group(lab).await?;
    v.expect(
        group["pending"] == 0,
        format!("nothing left pending (pending {})", group["pending"]),
    );
    v.finish("drill npu")
}

// ---------------------------------------------------------------------- pki

/// SHA-256 of each machine's installed server certificate (None: none yet).
async fn certificates(lab: &Lab) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for m in &lab.machines {
        let sum = lab
            .run(&m.short, "sha256sum /etc/autobot/certs/server-cert.pem")
            .await
            .ok()
            .filter(|o| o.ok())
            .and_then(|o| o.stdout.split_whitespace().next().map(str::to_owned));
        out.insert(m.short.clone(), sum);
    }
    out
}

/// The browser machine's power cut while the distributor is connected to
/// it: the others get their certificates, the failure is reported, the
/// trace is whole, and the browser keeps its previous certificate.
async fn pki(lab: &Lab) -> anyhow::Result<()> {
    const VICTIM: &str = "browser";
    println!("==> drill pki: the {VICTIM} machine's power cut during a certificate distribution");
    let victim = lab.machine(VICTIM)?.clone();
    let before = certificates(lab).await;
    let outcome = pki_cut(lab, &victim, &before).await;
    // Whatever happened: the machine is powered on again.
    let restored = async {
        lab.lab_sh(&["start", VICTIM]).await?;
        lab.wait_active(VICTIM, "autobot-browser", Duration::from_secs(60))
            .await
    }
    .await;
    let mut v = outcome?;
    let after = certificates(lab).await;
    v.expect(
        restored.is_ok() && after.get(VICTIM) == before.get(VICTIM),
        format!(
            "{VICTIM} powered on again, services up, its previous certificate intact ({})",
            match &restored {
                Ok(()) => "sha256 unchanged".to_owned(),
                Err(e) => e.to_string(),
            }
        ),
    );
    v.finish("drill pki")
}

async fn pki_cut(
    lab: &Lab,
    victim: &crate::lab::Machine,
    before: &BTreeMap<String, Option<String>>,
) -> anyhow::Result<Verdict> {
    let mut v = Verdict::default();
    // sshd stops answering (the kernel still completes TCP handshakes), so the
    // distributor is certainly mid-connection when the power goes.
    lab.sh(
        &victim.short,
        "kill -STOP \"$(systemctl show -p MainPID --value ssh)\"",
    )
    .await?;
    let caller = new_caller();
    let trace = caller.trace_id.clone();
    let sent = Instant::now();
    let run = {
        let lab = Lab::from_env()?;
        let traceparent = caller.traceparent.clone();
        tokio::spawn(async move { distribute(&lab, Some(&traceparent)).await })
    };
    let connected = format!("ss -Htn state established dst {}:22", victim.ip);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if !lab.sh("main", &connected).await?.trim().is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the distributor did not connect to {} within 20 s",
                victim.ip
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    lab.lab_sh(&["stop", "--hard", &victim.short]).await?;
    let cut = sent.elapsed();
    println!(
        "    {}: the distributor is connected to {}:22; power cut",
        secs(cut),
        victim.ip
    );
    let (status, answer) = run.await??;
    let answered = sent.elapsed();
    let results = results_of(&answer);
    for (target, ok, detail) in &results {
        println!(
            "         {target:<20} {} {detail}",
            if *ok { "ok" } else { "FAILED" }
        );
    }
    let others: Vec<String> = lab
        .machines
        .iter()
        .filter(|m| m.name != victim.name)
        .map(|m| m.name.clone())
        .collect();
    let victim_failed = results.iter().any(|(t, ok, _)| *t == victim.name && !ok);
    let others_ok = others
        .iter()
        .all(|o| results.iter().any(|(t, ok, _)| t == o && *ok));
    v.expect(
        status == 200 && victim_failed && others_ok,
        format!(
            "answered {status} {} after the power cut: {} failed and is reported, the other {} got their certificates",
            secs(answered - cut),
            victim.name,
            others.len()
        ),
    );
    let after = certificates(lab).await;
    let renewed: Vec<&String> = after
        .iter()
        .filter(|(m, sum)| **m != victim.short && sum.is_some() && before.get(*m) != Some(sum))
        .map(|(m, _)| m)
        .collect();
    v.expect(
        renewed.len() == others.len(),
        format!(
            "new certificate files on {} of {} machines: {renewed:?}",
            renewed.len(),
            others.len()
        ),
    );
    let victim_name = victim.name.clone();
    let more = |t: &autobot_trace::Trace| -> Vec<String> {
        let mut problems = installs_missing(t, &others);
        let failed_ssh = spans_named(t, "ssh.distribute_certificates")
            .into_iter()
            .any(|s| {
                tag(s, "ssh.target_vm").as_deref() == Some(victim_name.as_str()) && is_error(s)
            });
        if !failed_ssh {
            problems.push(format!(
                "no failed ssh.distribute_certificates span for {victim_name}"
            ));
        }
        problems
    };
    match wait_whole(
        &lab.query,
        &trace,
        Some(&caller.span_id),
        &DISTRIBUTION_SERVICES,
        Duration::from_secs(30),
        more,
    )
    .await
    {
        Ok(t) => {
            print!("{}", indent(&render(&t)));
            v.pass(format!(
                "trace {trace} is whole: pki.install on the other {}, the failed SSH span of {} marked ERROR",
                others.len(),
                victim.name
            ));
        }
        Err(problems) => v.fail(format!("trace {trace}: {}", problems.join("; "))),
    }
    Ok(v)
}
