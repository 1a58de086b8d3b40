//! `POST /navigate`, `GET /health`, `GET /status` (AutoBot's browser API names).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use autobot_lifecycle::http::json_rejection;
use autobot_wire::browse::{
    HealthResponse, Limits, NavigateRequest, NavigateResponse, StatusResponse,
};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::routing::{get, post};
use axum::{Json, Router};
use tracing::Instrument as _;
use tracing::field::Empty;
use url::Url;

use crate::budget::Budget;
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
            deny: state.fetcher.policy().deny_ranges(),
            propagate: cfg.propagate,
            allow: state.fetcher.policy().allow_entries(),
            max_navigations: cfg.max_navigations,
        },
    })
}

/// A JSON body with `Content-Type: application/json` (415 otherwise: a
/// form post from a web page cannot reach here), at most
/// AUTOBOT_BROWSER_MAX_NAVIGATIONS at a time (503 with Retry-After beyond).
async fn navigate(
    State(state): State<AppState>,
    body: Result<Json<NavigateRequest>, JsonRejection>,
) -> Result<Json<NavigateResponse>, AppError> {
    let result = match state.navigations.clone().try_acquire_owned() {
        Ok(_permit) => navigate_page(&state, body).await,
        Err(_) => Err(AppError::Busy(state.config.max_navigations)),
    };
    match &result {
        Ok(_) => state.stats.page_fetched(),
        Err(e) => state.stats.error(e.error_type()),
    }
    result.map(Json)
}

async fn navigate_page(
    state: &AppState,
    body: Result<Json<NavigateRequest>, JsonRejection>,
) -> Result<NavigateResponse, AppError> {
    let Json(request) = body.map_err(|r| {
        let (status, message) = json_rejection(&r);
        AppError::RequestBody { status, message }
    })?;
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
    // One deadline for the whole navigation: fetch, then extraction.
    let budget = Budget::until(Instant::now() + Duration::from_millis(timeout_ms));

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
    let result = fetch_and_extract(state, url, &budget, timeout_ms, max_bytes, &span)
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
    budget: &Budget,
    timeout_ms: u64,
    max_bytes: u64,
    span: &tracing::Span,
) -> Result<NavigateResponse, AppError> {
    // Whatever ends this future (an answer, the deadline, the caller gone)
    // stops the extraction's loops too.
    let _cancel = budget.cancel_on_drop();
    let deadline = tokio::time::Instant::from_std(budget.deadline());
    let redirects = AtomicU32::new(0);
    let fetched = tokio::time::timeout_at(
        deadline,
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

    // Parsing a few MiB of HTML is CPU work: off the async workers, within
    // the same deadline, and stopped by the budget when the answer goes.
    let extract_span = tracing::info_span!(
        parent: span,
        "browser.extract",
        browser.passages_count = Empty,
        browser.text_length = Empty,
        browser.cut = Empty,
    );
    let (final_url, status, body_truncated) = (page.url.clone(), page.status, page.truncated);
    let base_url = final_url.clone();
    let work_budget = budget.clone();
    let extraction = tokio::task::spawn_blocking(move || {
        let _entered = extract_span.enter();
        let html = decode(&page.body, page.charset.as_deref());
        drop(page);
        let extracted = extract(&html, &base_url, &work_budget)?;
        extract_span.record(
            "browser.passages_count",
            i64::try_from(extracted.passages.len()).unwrap_or(i64::MAX),
        );
        extract_span.record(
            "browser.text_length",
            i64::try_from(extracted.text.chars().count()).unwrap_or(i64::MAX),
        );
        if let Some(cut) = extracted.cut {
            extract_span.record("browser.cut", cut);
        }
        Ok(extracted)
    });
    let extracted = match tokio::time::timeout_at(deadline, extraction).await {
        Ok(Ok(Ok(extracted))) => extracted,
        Ok(Ok(Err(crate::budget::Stopped))) | Err(_) => {
            span.record("browser.truncated", body_truncated);
            return Err(AppError::Timeout(timeout_ms));
        }
        Ok(Err(e)) => {
            return Err(AppError::Internal(format!(
                "the extraction task failed: {e}"
            )));
        }
    };
    let truncated = body_truncated || extracted.cut.is_some();
    span.record("browser.truncated", truncated);
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
