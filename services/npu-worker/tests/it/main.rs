//! The npu-worker's integration tests: one binary, one module per story.
//! They start real things: redis-server, the worker binary, an OTLP receiver.

mod embedding;
mod http;
mod queue;
mod support;
