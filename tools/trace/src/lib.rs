//! # autobot-trace
//!
//! One tool for both sides of a trace:
//! - [`serve`]: an OTLP receiver (gRPC and HTTP) with a bounded in-memory
//!   [`store`], answering Jaeger's query API ([`query`]) in Jaeger's own JSON
//!   ([`jaeger`], [`model`]), so that one client speaks to both;
//! - [`client`]: that client, for `serve` and a real Jaeger v2;
//! - [`show`]: a trace as a tree in the terminal;
//! - [`check`]: is a trace whole (one root, every parent, every service)?
//! - [`smoke`]: after a deploy, one research request and its trace checked.
//!
//! The query client, the model and the check live here so other tools (the
//! smoke test) reuse them.

pub mod check;
pub mod cli;
pub mod client;
pub mod jaeger;
pub mod model;
pub mod query;
pub mod serve;
pub mod show;
pub mod smoke;
pub mod store;
pub mod trace_id;

pub use check::{CheckOutcome, Problem, check_trace, wait_and_check};
pub use client::{ClientError, JaegerClient, default_query_url};
pub use model::Trace;
pub use trace_id::{TraceId, same_trace};
