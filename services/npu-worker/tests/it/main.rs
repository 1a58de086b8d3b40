//! The npu-worker's integration tests: one binary, one module per story.
//! They start real things: redis-server, the worker binary, the trace tool.

mod embedding;
mod http;
mod queue;
mod support;
