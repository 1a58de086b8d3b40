//! `GET /api/health` (this process) and `GET /api/health/cluster`: every
//! configured peer and Redis, checked in parallel, each in its own
//! `health.check` span. A peer that is down is reported, not an error.

use std::time::Instant;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use futures::future::join_all;
use serde::Serialize;
use tracing::Instrument;
use tracing::field::Empty;

use crate::AppState;
use crate::upstream::{Peer, send_error};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/health/cluster", get(cluster))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "service": crate::SERVICE_NAME,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// One peer's state.
#[derive(Debug, Serialize)]
pub struct PeerHealth {
    pub name: &'static str,
    /// Where it was looked for (credentials redacted).
    pub target: String,
    pub ok: bool,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ClusterHealth {
    /// `ok` when every peer is up, `degraded` otherwise.
    pub status: &'static str,
    pub peers: Vec<PeerHealth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

async fn cluster(State(state): State<AppState>) -> Json<ClusterHealth> {
    let mut http_peers = vec![
        state.peers.ai_stack.clone(),
        state.peers.browser.clone(),
        state.peers.pki.clone(),
    ];
    if let Some(npu) = &state.peers.npu {
        http_peers.push(npu.clone());
    }
    let http_checks = http_peers.iter().map(|p| check_http(&state, p));
    let (mut peers, redis) = tokio::join!(join_all(http_checks), check_redis(&state));
    peers.push(redis);
    let all_ok = peers.iter().all(|p| p.ok);
    Json(ClusterHealth {
        status: if all_ok { "ok" } else { "degraded" },
        peers,
        trace_id: autobot_tracing::current_trace_id(),
    })
}

fn check_span(name: &str, target: &str) -> tracing::Span {
    tracing::info_span!(
        "health.check",
        autobot.peer = name,
        autobot.peer.target = target,
        health.ok = Empty,
    )
}

async fn check_http(state: &AppState, peer: &Peer) -> PeerHealth {
    let target = autobot_tracing::redact::redact_url(&peer.url("/health"));
    let span = check_span(peer.name, &target);
    let started = Instant::now();
    let outcome = state
        .http
        .get(peer.url("/health"))
        .timeout(state.cfg.health_timeout)
        .send()
        .instrument(span.clone())
        .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let (ok, status_code, error) = match outcome {
        Ok(r) if r.status().is_success() => (true, Some(r.status().as_u16()), None),
        Ok(r) => (
            false,
            Some(r.status().as_u16()),
            Some(format!("answered HTTP {}", r.status().as_u16())),
        ),
        Err(e) => (
            false,
            None,
            Some(send_error(peer, &e, state.cfg.health_timeout).to_string()),
        ),
    };
    finish(&span, ok, error.as_deref(), status_code);
    PeerHealth {
        name: peer.name,
        target,
        ok,
        latency_ms,
        status_code,
        error,
    }
}

async fn check_redis(state: &AppState) -> PeerHealth {
    let target = autobot_tracing::redact::redact_url_str(&state.cfg.redis_url);
    let span = check_span("redis", &target);
    let started = Instant::now();
    let redis = state.redis.clone();
    let redis_target = state.redis_target.clone();
    let state_timeout = state.cfg.health_timeout;
    let ping = async move {
        let mut con = redis
            .connect(state_timeout)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        autobot_tracing::redis::query::<String, _>(&mut con, &redis_target, &redis::cmd("PING"))
            .await
            .map_err(|e| format!("PING failed: {e}"))
    };
    let outcome = tokio::time::timeout(state.cfg.health_timeout, ping)
        .instrument(span.clone())
        .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let error = match outcome {
        Ok(Ok(pong)) if pong == "PONG" => None,
        Ok(Ok(other)) => Some(format!("PING answered {other:?}")),
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!(
            "no answer within {} ms",
            state.cfg.health_timeout.as_millis()
        )),
    };
    let ok = error.is_none();
    finish(&span, ok, error.as_deref(), None);
    PeerHealth {
        name: "redis",
        target,
        ok,
        latency_ms,
        status_code: None,
        error,
    }
}

fn finish(span: &tracing::Span, ok: bool, error: Option<&str>, status: Option<u16>) {
    span.record("health.ok", ok);
    if let Some(message) = error {
        let error_type = match status {
            Some(s) => s.to_string(),
            None => "unavailable".to_owned(),
        };
        autobot_tracing::record_error_message(span, &error_type, message);
    }
}
