//! autobot-tracing integration tests: one binary, run with cargo-nextest
//! (each test in its own process, so each may install global telemetry).

mod support;

mod env_carrier;
mod export;
mod http;
mod limits;
mod otlp_encode;
mod otlp_partial;
mod otlp_wire;
mod propagation;
mod redis_spans;
mod sampling;
