//! The npu-worker's integration tests: one binary, one module per story.

mod embedding;
mod support;
