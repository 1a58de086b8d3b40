//! # autobot-trace
//!
//! One tool for both sides of a trace:
//! - [`serve`]: an OTLP receiver (gRPC and HTTP) with a bounded in-memory
//!   [`store`], answering Jaeger's query API ([`query`]: API v3 in
//!   OTLP-JSON, [`otlp_json`], and the v1 JSON of [`jaeger`] and [`model`])
//!   as Jaeger does ([`adjust`]), so that one client speaks to both;
//! - [`search`]: what a search asks (service, operation, attributes, time,
//!   duration) and a trace's summary, for the query API and other tools;
//! - [`client`]: that client, for `serve` and a real Jaeger v2 (API v3,
//!   falling back to v1 for a Jaeger without it);
//! - [`show`]: a trace as a tree in the terminal;
//! - [`check`]: is a trace whole (one root, every parent, every service)?
//! - [`smoke`]: after a deploy, one research request and its trace checked;
//! - [`ui`]: the web UI on the query port (search, trace page, service graph).
//!
//! The query client, the model and the check live here so other tools (the
//! smoke test) reuse them.

pub mod adjust;
pub mod attr;
pub mod check;
pub mod cli;
pub mod client;
pub mod jaeger;
pub mod model;
pub mod otlp_json;
pub mod query;
pub mod search;
pub mod serve;
pub mod show;
pub mod smoke;
pub mod store;
pub mod stored;
pub mod time_text;
pub mod trace_id;
pub mod ui;

#[cfg(test)]
mod test_support;

pub use check::{CheckOutcome, Expected, Problem, check_trace, wait_and_check};
pub use client::{ClientError, JaegerClient, QueryApi, TraceSearch, default_query_url};
pub use model::Trace;
pub use trace_id::{TraceId, same_trace};
