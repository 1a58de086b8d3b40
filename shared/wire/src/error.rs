//! The JSON error body every AutoBot service answers with.
use serde::{Deserialize, Serialize};

/// `{"error": "...", "trace_id": "..."}`: what went wrong, and the trace to look at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}
