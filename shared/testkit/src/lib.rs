//! Starts the real processes integration tests talk to, each on ephemeral
//! ports, each stopped when its handle is dropped. No mocks of things we can run.

pub mod bins;
pub mod pki;
pub mod redis;
pub mod sshd;
pub mod trace_tool;
