//! Test support, in one place: starts the real processes integration tests
//! talk to (workspace binaries, redis-server, sshd, the trace tool,
//! Prometheus, headless Chromium), each on ports of its own and stopped when
//! its handle is dropped; reads traces
//! back and checks them; gives a test that installs global telemetry a
//! process of its own. No mocks of things we can run.

pub mod alone;
pub mod bins;
pub mod chromium;
pub mod operator_keys;
pub mod pki;
pub mod ports;
pub mod process;
pub mod prometheus;
pub mod redis;
pub mod sshd;
pub mod trace_tool;
pub mod traces;
