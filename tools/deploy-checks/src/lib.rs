//! Checks of AutoBot's deployment files (`infra/`, `ansible/`, `.env.example`).
//!
//! Everything lives in the integration test `tests/checks.rs`; the tools it
//! drives (ansible-core, ansible-lint, check-jsonschema) come from
//! `scripts/setup.d/40-ansible.sh`, `systemd-analyze` from the system.
