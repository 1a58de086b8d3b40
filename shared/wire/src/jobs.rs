//! Wire types for the jobs flow: the envelope a producer (the backend) puts
//! on the Redis Stream `autobot:jobs:npu`, the result a worker pushes on the
//! envelope's `reply_to` list, and the `embed` job's payload and result.
//!
//! One stream entry has one field, [`ENVELOPE_FIELD`], holding the envelope
//! as JSON:
//! `{"id","kind","payload","trace":{"traceparent",…},"reply_to","created_at"}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The stream the NPU worker consumes.
pub const NPU_STREAM: &str = "autobot:jobs:npu";
/// Where jobs go that could not be processed (malformed, or delivered too often).
pub const NPU_DEAD_LETTER_STREAM: &str = "autobot:jobs:npu:dead";
/// The consumer group of the NPU workers.
pub const NPU_CONSUMER_GROUP: &str = "npu-workers";
/// The stream entry field that holds the JSON envelope.
pub const ENVELOPE_FIELD: &str = "envelope";
/// `reply_to` lists are named `{REPLY_PREFIX}{job id}`.
pub const REPLY_PREFIX: &str = "autobot:jobs:reply:";

/// Job kind: sentence embeddings, payload [`EmbedRequest`], result [`EmbedResponse`].
pub const KIND_EMBED: &str = "embed";

/// Fields of a dead-letter stream entry (besides [`ENVELOPE_FIELD`], the raw envelope).
pub mod dead_letter {
    /// Why the job was given up: a sentence.
    pub const REASON: &str = "reason";
    /// The entry id the job had on the job stream.
    pub const MESSAGE_ID: &str = "message_id";
    /// How often it had been delivered.
    pub const DELIVERY_COUNT: &str = "delivery_count";
    /// The consumer that gave it up.
    pub const CONSUMER: &str = "consumer";
    /// When, in milliseconds since the Unix epoch.
    pub const DEAD_AT: &str = "dead_at";
}

/// A job as it travels through the stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobEnvelope {
    /// Unique job id (a UUID), chosen by the producer.
    pub id: String,
    /// What to do, e.g. [`KIND_EMBED`].
    pub kind: String,
    /// The kind's input.
    pub payload: serde_json::Value,
    /// Trace context of the PRODUCER span, lower-case keys
    /// (`traceparent`, `tracestate`, `baggage`, `b3`, …).
    #[serde(default)]
    pub trace: BTreeMap<String, String>,
    /// The list the worker pushes the [`JobResult`] on.
    pub reply_to: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
}

/// What a worker answers on `reply_to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// The job's id.
    pub id: String,
    /// `"status": "ok"` with `result`, or `"status": "error"` with `error`.
    #[serde(flatten)]
    pub outcome: JobOutcome,
    /// Which delivery of the job produced this result (1 = first try).
    pub delivery_count: u64,
    /// The consumer name of the worker that answered.
    pub worker: String,
    /// Milliseconds since the Unix epoch.
    pub completed_at: u64,
}

/// A job's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum JobOutcome {
    Ok { result: serde_json::Value },
    Error { error: JobFailure },
}

/// Why a job produced no result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    pub code: FailureCode,
    pub message: String,
}

impl JobFailure {
    pub fn new(code: FailureCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

/// The kinds of failure a caller can tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// The payload does not fit the kind (a caller error).
    InvalidPayload,
    /// No worker knows this kind.
    UnknownKind,
    /// The worker has no model loaded.
    ModelUnavailable,
    /// The work itself failed.
    Failed,
    /// Given up after too many deliveries, or unreadable: see the dead-letter stream.
    DeadLettered,
}

impl FailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidPayload => "invalid_payload",
            Self::UnknownKind => "unknown_kind",
            Self::ModelUnavailable => "model_unavailable",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// Payload of an `embed` job; also the body of the NPU worker's
/// `POST /inference` and of the backend's `POST /api/embeddings`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedRequest {
    pub texts: Vec<String>,
}

/// Result of an `embed` job and of `POST /inference`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbedResponse {
    pub model: String,
    pub dimensions: usize,
    /// One L2-normalised vector per text, in the order of the texts.
    pub embeddings: Vec<Vec<f32>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_has_the_documented_shape() {
        let env = JobEnvelope {
            id: "j1".into(),
            kind: KIND_EMBED.into(),
            payload: json!({"texts": ["a"]}),
            trace: BTreeMap::from([("traceparent".into(), "00-…".into())]),
            reply_to: format!("{REPLY_PREFIX}j1"),
            created_at: 1,
        };
        let v = serde_json::to_value(&env).unwrap();
        assert_eq!(
            v,
            json!({"id": "j1", "kind": "embed", "payload": {"texts": ["a"]},
                   "trace": {"traceparent": "00-…"}, "reply_to": "autobot:jobs:reply:j1",
                   "created_at": 1})
        );
        // A producer that sends no trace map is still understood.
        let mut without = v.clone();
        without.as_object_mut().unwrap().remove("trace");
        let back: JobEnvelope = serde_json::from_value(without).unwrap();
        assert!(back.trace.is_empty());
    }

    #[test]
    fn results_are_tagged_by_status() {
        let ok = JobResult {
            id: "j1".into(),
            outcome: JobOutcome::Ok {
                result: json!({"x": 1}),
            },
            delivery_count: 1,
            worker: "w".into(),
            completed_at: 2,
        };
        let v = serde_json::to_value(&ok).unwrap();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["result"]["x"], 1);
        assert_eq!(serde_json::from_value::<JobResult>(v).unwrap(), ok);

        let err = JobResult {
            outcome: JobOutcome::Error {
                error: JobFailure::new(FailureCode::ModelUnavailable, "no model"),
            },
            ..ok
        };
        let v = serde_json::to_value(&err).unwrap();
        assert_eq!(v["status"], "error");
        assert_eq!(v["error"]["code"], "model_unavailable");
        assert_eq!(serde_json::from_value::<JobResult>(v).unwrap(), err);
    }
}
