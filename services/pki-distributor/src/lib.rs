//! autobot-pki-distributor: AutoBot's internal CA. It issues a server
//! certificate per VM and installs it over SSH, where `autobot-pki-agent`
//! verifies the chain and swaps the files in atomically. The trace follows:
//! `pki.distribute` → `ssh.distribute_certificates` (one per VM) → the
//! agent's `pki.install`, carried as TRACEPARENT/TRACESTATE/BAGGAGE.

pub mod agent;
pub mod ca;
pub mod config;
pub mod distribute;
pub mod fsio;
pub mod install;
pub mod known_hosts;
pub mod routes;
pub mod ssh;
pub mod targets;

pub use routes::{AppState, app};
