//! autobot-browser integration tests: one binary. The browser runs as a real
//! process (`autobot-browser`, found with autobot-testkit), exports its spans
//! over OTLP to the trace tool (another process), and fetches from a web site
//! this test starts on 127.0.0.1, which records what it receives.

mod navigate;
mod support;
