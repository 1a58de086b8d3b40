//! The hostile-input suite (see src/lib.rs): one module per area.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

mod edge;
mod install_crash;
mod llm_limits;
mod pages;
mod slow_headers;
mod ssh_injection;
mod ssrf;
mod vms;
mod web;
