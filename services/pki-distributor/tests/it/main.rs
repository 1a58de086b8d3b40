//! Integration tests of autobot-pki-distributor: the agent binary on its
//! own, and whole distributions over real OpenSSH sshd processes, with the
//! trace collected by the trace tool over real OTLP (gRPC and HTTP).

mod agent;
mod cluster;
mod constraints;
mod distribution;
mod http;
mod startup;
mod support;
