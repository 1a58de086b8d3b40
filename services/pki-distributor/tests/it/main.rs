//! Integration tests of autobot-pki-distributor: the agent binary on its
//! own, and whole distributions over real OpenSSH sshd processes, with the
//! trace collected by a real OTLP receiver.

mod agent;
mod support;
