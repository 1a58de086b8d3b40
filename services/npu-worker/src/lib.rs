//! AutoBot's NPU worker (being written).
pub mod embedding;
