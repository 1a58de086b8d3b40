//! The browser's metrics: page fetches by outcome, bytes fetched, and the
//! `browser.navigate` span's spanmetrics series.

use std::time::Duration;

use autobot_metrics::spans::{Operation, SpanKind};
use autobot_metrics::{Counter, Family};

fn fetches() -> &'static Family<Counter> {
    autobot_metrics::counter(
        "autobot_browser_fetches",
        "Pages fetched for /api/navigate, by outcome (ok, or the error.type of the failure).",
        &["outcome"],
    )
}

fn fetched_bytes() -> &'static Counter {
    autobot_metrics::single_counter(
        "autobot_browser_fetched_bytes",
        "Bytes of page bodies fetched (after the max_bytes cut).",
    )
}

fn navigate() -> &'static Operation {
    autobot_metrics::spans::operation("browser.navigate", SpanKind::Internal)
}

/// Makes the series exist (at 0) before the first fetch.
pub fn register() {
    let _ = (fetches().with(&["ok"]), fetched_bytes(), navigate());
}

/// Counts one navigation: `error_type` `None` for a page fetched and read.
pub fn navigated(error_type: Option<&str>, elapsed: Duration, span: &tracing::Span) {
    fetches().with(&[error_type.unwrap_or("ok")]).inc();
    navigate().record(
        elapsed,
        error_type.is_some(),
        autobot_tracing::exemplar_of(span),
    );
}

pub fn bytes_fetched(n: usize) {
    fetched_bytes().add(n as u64);
}
