//! `POST /navigate`, `GET /health`, `GET /status` (AutoBot's browser API names).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use autobot_lifecycle::http::json_body;
use autobot_wire::browse::{
    HealthResponse, Limits, NavigateRequest, NavigateResponse, StatusResponse,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::routing::{get, post};
use axum::{Json, Router};
use tracing::Instrument as _;
use tracing::field::Empty;
use url::Url;

use crate::config::MAX_REDIRECTS;
use crate::error::AppError;
use crate::extract::{decode, extract};
use crate::{AppState, SERVICE_NAME};

/// The routes, with their state; `crate::app` adds the layers every service has.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/navigate", post(navigate))
        .route("/health", get(health))
        .route("/status", get(status))
        .with_state(state)
}

async fn health() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
        service: SERVICE_NAME.into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn status(State(state): State<AppState>) -> Json<StatusResponse> {
    let cfg = &state.config;
    Json(StatusResponse {
        service: SERVICE_NAME.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_secs: state.stats.uptime_secs(),
        pages_fetched: state.stats.pages_fetched(),
        errors: state.stats.errors(),
        limits: Limits {
            timeout_ms: u64::try_from(cfg.timeout.as_millis()).unwrap_or(u64::MAX),
            max_bytes: cfg.max_bytes,
            max_redirects: MAX_REDIRECTS,
            deny: state.fetcher.deny().ranges(),
            propagate: cfg.propagate,
        },
    })
}

/// The body is read whatever its Content-Type says (callers have always
/// sent some without one), and refused the way every service refuses a body.
async fn navigate(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<NavigateResponse>, AppError> {
    let result = navigate_page(&state, body).await;
    match &result {
        Ok(_) => state.stats.page_fetched(),
        Err(e) => state.stats.error(e.error_type()),
    }
    result.map(Json)
}

async fn navigate_page(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<NavigateResponse, AppError> {
    let request: NavigateRequest =
        json_body(body).map_err(|(status, message)| AppError::RequestBody { status, message })?;
    let url = Url::parse(request.url.trim()).map_err(|e| AppError::InvalidUrl {
        url: autobot_tracing::redact::redact_url_str(&request.url)
            .chars()
            .take(200)
            .collect(),
        reason: e.to_string(),
    })?;
    let cfg = &state.config;
    let config_ms = u64::try_from(cfg.timeout.as_millis()).unwrap_or(u64::MAX);
    let timeout_ms = lower_limit(request.timeout_ms, config_ms, "timeout_ms")?;
    let max_bytes = lower_limit(request.max_bytes, cfg.max_bytes, "max_bytes")?;

    let span = tracing::info_span!(
        "browser.navigate",
        otel.kind = "internal",
        url.full = %autobot_tracing::redact::redact_url(&url),
        http.response.status_code = Empty,
        browser.bytes = Empty,
        browser.links_count = Empty,
        browser.truncated = Empty,
        browser.redirects = Empty,
        browser.timeout_ms = i64::try_from(timeout_ms).unwrap_or(i64::MAX),
        browser.max_bytes = i64::try_from(max_bytes).unwrap_or(i64::MAX),
    );
    let started = std::time::Instant::now();
    let result = fetch_and_extract(state, url, timeout_ms, max_bytes, &span)
        .instrument(span.clone())
        .await;
    if let Err(e) = &result {
        autobot_tracing::record_error(&span, e.error_type(), e);
    }
    crate::metrics::navigated(
        result.as_ref().err().map(AppError::error_type),
        started.elapsed(),
        &span,
    );
    result
}

async fn fetch_and_extract(
    state: &AppState,
    url: Url,
    timeout_ms: u64,
    max_bytes: u64,
    span: &tracing::Span,
) -> Result<NavigateResponse, AppError> {
    let redirects = AtomicU32::new(0);
    let fetched = tokio::time::timeout(
        Duration::from_millis(timeout_ms),
        state.fetcher.fetch(url, max_bytes, &redirects, span),
    )
    .await;
    // Recorded once: a field recorded twice becomes two attributes.
    span.record(
        "browser.redirects",
        i64::from(redirects.load(Ordering::Relaxed)),
    );
    let page = fetched.map_err(|_| AppError::Timeout(timeout_ms))??;
    span.record(
        "browser.bytes",
        i64::try_from(page.body.len()).unwrap_or(i64::MAX),
    );
    crate::metrics::bytes_fetched(page.body.len());
    span.record("browser.truncated", page.truncated);

    // Parsing a few MiB of HTML is CPU work: off the async workers.
    let extract_span = tracing::info_span!(
        parent: span,
        "browser.extract",
        browser.passages_count = Empty,
        browser.text_length = Empty,
    );
    let (final_url, status, truncated) = (page.url.clone(), page.status, page.truncated);
    let base_url = final_url.clone();
    let extracted = tokio::task::spawn_blocking(move || {
        let _entered = extract_span.enter();
        let html = decode(&page.body, page.charset.as_deref());
        drop(page);
        let extracted = extract(&html, &base_url);
        extract_span.record(
            "browser.passages_count",
            i64::try_from(extracted.passages.len()).unwrap_or(i64::MAX),
        );
        extract_span.record(
            "browser.text_length",
            i64::try_from(extracted.text.chars().count()).unwrap_or(i64::MAX),
        );
        extracted
    })
    .await
    .map_err(|e| AppError::Internal(format!("the extraction task failed: {e}")))?;
    span.record(
        "browser.links_count",
        i64::try_from(extracted.links.len()).unwrap_or(i64::MAX),
    );
    Ok(NavigateResponse {
        url: String::from(final_url),
        status,
        title: extracted.title,
        description: extracted.description,
        text: extracted.text,
        passages: extracted.passages,
        links: extracted.links,
        truncated,
    })
}

/// A per-request limit may lower the service's limit, never raise it; zero is refused.
fn lower_limit(requested: Option<u64>, configured: u64, name: &str) -> Result<u64, AppError> {
    match requested {
        None => Ok(configured),
        Some(0) => Err(AppError::BadRequest(format!("{name} must be at least 1"))),
        Some(n) => Ok(n.min(configured)),
    }
}
