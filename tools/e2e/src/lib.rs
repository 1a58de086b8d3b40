//! End-to-end tests live in `tests/e2e/`: they start every AutoBot service as
//! a real process and check the traces that arrive at the trace tool.
