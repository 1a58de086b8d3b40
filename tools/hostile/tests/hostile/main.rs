//! The hostile-input suite (see src/lib.rs): one module per area.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

mod edge;
mod llm_limits;
mod pages;
mod ssrf;
mod web;
