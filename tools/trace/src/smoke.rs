//! `autobot-trace smoke`: what an operator runs after a deploy. One research
//! request against the deployed backend, its trace id read from the
//! `traceresponse` header, then `check` that the trace is whole and holds
//! every service the workflow crosses.

use std::time::Duration;

use serde_json::json;

use crate::check::{CheckOutcome, Expected, POLL_INTERVAL, wait_and_check};
use crate::client::JaegerClient;
use crate::trace_id::TraceId;

/// The services a research request crosses.
pub const RESEARCH_SERVICES: [&str; 4] = [
    "autobot-backend",
    "autobot-browser",
    "autobot-npu-worker",
    "autobot-ai-stack",
];

/// A page about trace context, reachable from a browser VM with web access.
pub const DEFAULT_PAGE: &str = "https://www.w3.org/TR/trace-context/";
pub const DEFAULT_QUESTION: &str = "Which HTTP header carries the trace context?";

/// What went wrong before the trace could be checked.
#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    #[error("the backend at {url} could not be reached: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the backend answered {status}: {body}")]
    Failed { status: u16, body: String },
    #[error(
        "the backend's answer has no traceresponse header (is it an AutoBot backend with tracing on?)"
    )]
    NoTraceResponse,
    #[error("traceresponse {0:?} is not 00-<trace id>-<span id>-<flags>")]
    BadTraceResponse(String),
    #[error(
        "the request was not sampled (traceresponse flags 00): below AUTOBOT_TRACE_SAMPLE_RATE=1, run smoke with --force-sample"
    )]
    NotSampled,
}

/// The trace id and sampled flag of a `traceresponse` value.
pub fn parse_traceresponse(value: &str) -> Result<(TraceId, bool), SmokeError> {
    let parts: Vec<&str> = value.trim().split('-').collect();
    match parts.as_slice() {
        [_, trace, span, flags] if span.len() == 16 && flags.len() == 2 => {
            let id = TraceId::parse(trace)
                .map_err(|_| SmokeError::BadTraceResponse(value.to_owned()))?;
            let sampled = u8::from_str_radix(flags, 16)
                .map(|f| f & 1 == 1)
                .unwrap_or(false);
            Ok((id, sampled))
        }
        _ => Err(SmokeError::BadTraceResponse(value.to_owned())),
    }
}

/// What the research request started: the trace id the backend reported
/// and, when smoke sent a traceparent of its own, that caller span (never
/// exported: the check names it as the remote parent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    pub trace_id: TraceId,
    pub remote_parent: Option<String>,
}

/// How smoke calls the backend: its URL, the operator key (sent as
/// `Authorization: Bearer`, never printed), and for an https backend the CA
/// its certificate chains to (the system's roots without one).
#[derive(Clone)]
pub struct Backend {
    pub url: String,
    pub api_key: Option<String>,
    pub ca: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("ca", &self.ca)
            .finish()
    }
}

impl Backend {
    fn client(&self) -> Result<reqwest::Client, SmokeError> {
        let unusable = |detail: String| SmokeError::Unreachable {
            url: self.url.clone(),
            detail,
        };
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca)
                .map_err(|e| unusable(format!("cannot read the CA file {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| unusable(format!("the CA file {}: {e}", ca.display())))?;
            builder = builder.tls_certs_only(certs);
        }
        builder.build().map_err(|e| unusable(e.to_string()))
    }
}

/// Sends the research request; returns what it started.
pub async fn research(
    backend: &Backend,
    page: &str,
    question: &str,
    force_sample: bool,
    timeout: Duration,
) -> Result<Started, SmokeError> {
    let url = format!("{}/api/research", backend.url.trim_end_matches('/'));
    let mut request = backend
        .client()?
        .post(&url)
        .timeout(timeout)
        .json(&json!({ "url": page, "question": question, "top_k": 3 }));
    if let Some(key) = &backend.api_key {
        request = request.bearer_auth(key);
    }
    let mut remote_parent = None;
    if force_sample {
        // A sampled caller span of our own: every service keeps the trace at
        // any rate; it is not exported, so the check is told its id.
        let trace: u128 = rand_id();
        let span = (trace as u64) | 1;
        request = request.header("traceparent", format!("00-{trace:032x}-{span:016x}-01"));
        remote_parent = Some(format!("{span:016x}"));
    }
    let response = request.send().await.map_err(|e| SmokeError::Unreachable {
        url: url.clone(),
        detail: e.to_string(),
    })?;
    let status = response.status().as_u16();
    let header = response
        .headers()
        .get("traceresponse")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(SmokeError::Failed {
            status,
            body: body.chars().take(500).collect(),
        });
    }
    let (id, sampled) = parse_traceresponse(&header.ok_or(SmokeError::NoTraceResponse)?)?;
    if !sampled {
        return Err(SmokeError::NotSampled);
    }
    Ok(Started {
        trace_id: id,
        remote_parent,
    })
}

/// A random non-zero 128-bit id from the OS's hasher seeds (no RNG dependency).
fn rand_id() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut id = 0u128;
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(id);
        id = (id << 64) | u128::from(h.finish());
    }
    id.max(1)
}

/// Runs the request and checks its trace; returns the exit code (0 whole,
/// 1 broken or the request failed, 2 Jaeger unreachable).
pub async fn run(
    backend: &Backend,
    jaeger: &JaegerClient,
    page: &str,
    question: &str,
    force_sample: bool,
    wait: Duration,
) -> i32 {
    println!("smoke: POST {}/api/research (page {page})", backend.url);
    let started = match research(
        backend,
        page,
        question,
        force_sample,
        Duration::from_secs(300),
    )
    .await
    {
        Ok(started) => started,
        Err(e) => {
            println!("FAIL smoke: {e}");
            return 1;
        }
    };
    let id = started.trace_id;
    println!(
        "smoke: trace {}; checking it at {}",
        id.jaeger(),
        jaeger.base_url()
    );
    let expected = Expected {
        services: RESEARCH_SERVICES.iter().map(|s| (*s).to_owned()).collect(),
        remote_parents: started.remote_parent.into_iter().collect(),
    };
    let outcome = wait_and_check(jaeger, id, &expected, wait, POLL_INTERVAL).await;
    match &outcome {
        CheckOutcome::Whole(trace) => {
            print!("{}", crate::show::render(trace));
            println!(
                "OK smoke: trace {} is whole: {} spans, services {}",
                id.jaeger(),
                trace.spans.len(),
                RESEARCH_SERVICES.join(",")
            );
        }
        CheckOutcome::Broken { problems, .. } => {
            println!("FAIL smoke: trace {} is not whole:", id.jaeger());
            for p in problems {
                println!("  - {p}");
            }
        }
        CheckOutcome::Unreachable(e) => println!("FAIL smoke: Jaeger: {e}"),
    }
    outcome.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceresponse_is_read_or_refused() {
        let (id, sampled) =
            parse_traceresponse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(id.full(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(sampled);
        assert!(
            !parse_traceresponse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .unwrap()
                .1
        );
        for bad in [
            "",
            "garbage",
            "00-xyz-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-01",
        ] {
            assert!(parse_traceresponse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forced_ids_are_never_zero() {
        assert_ne!(rand_id(), 0);
        assert_ne!(rand_id(), rand_id());
    }
}
