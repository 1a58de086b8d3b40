//! Checks of AutoBot's deployment files (`infra/`, `ansible/`, `.env.example`).
//!
//! The checks live in the integration test `tests/checks.rs`; the tools it
//! drives (ansible-core, ansible-lint, check-jsonschema) come from
//! `scripts/setup.d/40-ansible.sh`, `systemd-analyze` from the system.
//! [`jaeger_config`] holds the structure check of Jaeger's configurations,
//! which has no tool of its own to call.

pub mod jaeger_config;
