//! placeholder, written by the trace-tool work
