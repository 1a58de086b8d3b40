//! Integration tests: the real `autobot-trace` binary, spans from the real
//! OpenTelemetry exporter over gRPC and HTTP, answers read over HTTP.

mod api_v3;
mod check;
mod export;
mod ingest;
mod query_servers;
mod support;
mod ui;
mod workspace_tracing;
