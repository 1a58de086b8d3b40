//! The query API `serve` answers on its query port (Jaeger's 16686), in
//! Jaeger's own shapes:
//! - [`v3`]: API v3 (`/api/v3/…`, OTLP-JSON), what Jaeger's UI and our
//!   client use, and the only search Jaeger keeps after v2.20;
//! - [`v1`]: the v1 JSON API (`/api/traces`, `/api/services`, …) that Jaeger
//!   up to v2.20 serves, for older clients.
//!
//! Both run the same searches ([`crate::search::SpanQuery`] on
//! [`crate::store::Store`]) and the same adjusters ([`crate::adjust`]).

use std::sync::Arc;

use axum::routing::get;

use crate::store::Store;
use crate::stored::StoredSpan;
use crate::trace_id::TraceId;

pub mod v1;
pub mod v3;

/// Every route of the query API, and the web UI (`crate::ui`).
pub fn app(store: Arc<Store>) -> axum::Router {
    v1::routes()
        .merge(v3::routes())
        .route("/api/autobot/stats", get(stats))
        .merge(crate::ui::routes())
        .with_state(store)
}

async fn stats(
    axum::extract::State(store): axum::extract::State<Arc<Store>>,
) -> axum::Json<crate::store::StoreStats> {
    axum::Json(store.stats())
}

/// A trace's spans as Jaeger's query service hands them out: adjusted
/// unless `raw` (Jaeger's `raw=true` / `rawTraces=true`).
pub fn trace_spans(store: &Store, id: TraceId, raw: bool) -> Option<Vec<StoredSpan>> {
    let mut spans = store.trace(id)?;
    if !raw {
        crate::adjust::standard(&mut spans);
    }
    Some(spans)
}

/// Found traces, adjusted unless `raw`.
pub fn search(
    store: &Store,
    query: &crate::search::SpanQuery,
    raw: bool,
) -> Vec<(TraceId, Vec<StoredSpan>)> {
    let mut found = store.search(query);
    if !raw {
        for (_, spans) in &mut found {
            crate::adjust::standard(spans);
        }
    }
    found
}

/// Go's `strconv.ParseBool`, which Jaeger's parameters go through.
pub fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}
