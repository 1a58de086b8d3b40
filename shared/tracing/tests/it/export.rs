//! Real OTLP export (written once the receiver crate exists).
