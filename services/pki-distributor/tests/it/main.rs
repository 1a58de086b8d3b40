//! Integration tests of autobot-pki-distributor: the agent binary on its
//! own, and whole distributions over real OpenSSH sshd processes, with the
//! trace collected over real OTLP/HTTP.

mod agent;
mod cluster;
mod distribution;
mod http;
mod otlp;
mod startup;
mod support;
