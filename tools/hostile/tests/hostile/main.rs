//! The hostile-input suite (see src/lib.rs): one module per area.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

mod install_crash;
mod slow_headers;
mod ssh_injection;
mod vms;
