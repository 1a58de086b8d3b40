//! The NPU's one model, shared by the job handler and `POST /inference`:
//! input limits, the `npu.inference` span, and inference off the async threads.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use autobot_wire::jobs::EmbedResponse;
use tracing::field::Empty;

use crate::embedding::{Embedder, EmbeddingError, MODEL_NAME};

/// The NPU's metrics: texts embedded (`rate()` of it is embeddings per
/// second) and the `npu.inference` span's spanmetrics series.
pub mod metrics {
    use autobot_metrics::Counter;
    use autobot_metrics::spans::{Operation, SpanKind};

    pub fn embeddings() -> &'static Counter {
        autobot_metrics::counter(
            "autobot_npu_embeddings",
            "Texts embedded (rate() of it: embeddings per second).",
            &["model"],
        )
        .with(&[super::MODEL_NAME])
    }

    pub fn inference() -> &'static Operation {
        autobot_metrics::spans::operation("npu.inference", SpanKind::Internal)
    }
}

/// At most this many texts per call (the backend's limit too).
pub const MAX_TEXTS: usize = 256;
/// At most this many characters per text.
pub const MAX_TEXT_CHARS: usize = 8192;

/// Why an embedding call gave no vectors.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("no model is loaded: {0}")]
    ModelUnavailable(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("inference failed: {0}")]
    Failed(#[from] EmbeddingError),
    #[error("inference stopped unexpectedly: {0}")]
    Crashed(String),
}

impl InferenceError {
    /// Low-cardinality class for `error.type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::ModelUnavailable(_) => "model_unavailable",
            Self::InvalidInput(_) => "invalid_input",
            Self::TooLarge(_) => "input_too_large",
            Self::Failed(_) => "inference_failed",
            Self::Crashed(_) => "inference_crashed",
        }
    }
}

/// Facts about the model for `GET /models` and `GET /health`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelInfo {
    pub id: &'static str,
    pub loaded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// Why it is not loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The model, or why there is none. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Npu {
    model: Arc<Result<Embedder, String>>,
}

impl Npu {
    /// Loads the model from `dir`; without a directory, or when loading
    /// fails, the NPU answers every call with the reason.
    pub fn load(dir: Option<&Path>) -> Self {
        let model = match dir {
            None => Err(
                "AUTOBOT_NPU_MODEL_DIR is not set (run scripts/setup.sh and point it at .run/models/all-MiniLM-L6-v2)"
                    .to_owned(),
            ),
            Some(dir) => Embedder::load(dir).map_err(|e| e.to_string()),
        };
        match &model {
            Ok(e) => {
                tracing::info!(model = MODEL_NAME, dir = %e.model_dir().display(), "model loaded")
            }
            Err(reason) => tracing::warn!(%reason, "no model: embed jobs will be refused"),
        }
        Self {
            model: Arc::new(model),
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.model.is_ok()
    }

    pub fn info(&self) -> ModelInfo {
        match self.model.as_ref() {
            Ok(e) => ModelInfo {
                id: MODEL_NAME,
                loaded: true,
                dimensions: Some(e.dimensions()),
                max_tokens: Some(e.max_tokens()),
                error: None,
            },
            Err(reason) => ModelInfo {
                id: MODEL_NAME,
                loaded: false,
                dimensions: None,
                max_tokens: None,
                error: Some(reason.clone()),
            },
        }
    }

    /// Embeds `texts` in an `npu.inference` span, on a blocking thread.
    pub async fn embed(&self, texts: Vec<String>) -> Result<EmbedResponse, InferenceError> {
        validate(&texts)?;
        let count = texts.len() as u64;
        let started = Instant::now();
        let span = tracing::Span::current();
        let result = self.embed_in_span(texts).await;
        let exemplar = autobot_tracing::exemplar_of(&span);
        metrics::inference().record(started.elapsed(), result.is_err(), exemplar);
        if result.is_ok() {
            metrics::embeddings().add(count);
        }
        result
    }

    async fn embed_in_span(&self, texts: Vec<String>) -> Result<EmbedResponse, InferenceError> {
        let span = tracing::info_span!(
            "npu.inference",
            otel.kind = "internal",
            npu.model = MODEL_NAME,
            npu.batch_size = texts.len() as i64,
            npu.token_count = Empty,
            npu.duration_ms = Empty,
            gen_ai.operation.name = "embeddings",
            gen_ai.request.model = MODEL_NAME,
            gen_ai.usage.input_tokens = Empty,
        );
        if let Err(reason) = self.model.as_ref() {
            let err = InferenceError::ModelUnavailable(reason.clone());
            autobot_tracing::record_error(&span, err.error_type(), &err);
            return Err(err);
        }
        let model = self.model.clone();
        let inner = span.clone();
        let started = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let _entered = inner.enter();
            match model.as_ref() {
                Ok(embedder) => embedder.embed(&texts).map_err(InferenceError::from),
                Err(reason) => Err(InferenceError::ModelUnavailable(reason.clone())),
            }
        })
        .await;
        span.record("npu.duration_ms", started.elapsed().as_secs_f64() * 1000.0);
        let result = joined.map_err(|e| InferenceError::Crashed(e.to_string()))?;
        match result {
            Ok(out) => {
                span.record("npu.token_count", out.token_count as i64);
                span.record("gen_ai.usage.input_tokens", out.token_count as i64);
                Ok(EmbedResponse {
                    model: MODEL_NAME.to_owned(),
                    dimensions: out.vectors.first().map_or(0, Vec::len),
                    embeddings: out.vectors,
                })
            }
            Err(err) => {
                autobot_tracing::record_error(&span, err.error_type(), &err);
                Err(err)
            }
        }
    }
}

/// 1..=256 texts, each at most 8192 characters.
pub fn validate(texts: &[String]) -> Result<(), InferenceError> {
    if texts.is_empty() {
        return Err(InferenceError::InvalidInput(
            "`texts` is empty: give 1 to 256 texts".to_owned(),
        ));
    }
    if texts.len() > MAX_TEXTS {
        return Err(InferenceError::TooLarge(format!(
            "{} texts; at most {MAX_TEXTS} per call",
            texts.len()
        )));
    }
    if let Some((i, t)) = texts
        .iter()
        .enumerate()
        .find(|(_, t)| t.chars().count() > MAX_TEXT_CHARS)
    {
        return Err(InferenceError::TooLarge(format!(
            "text {i} has {} characters; at most {MAX_TEXT_CHARS}",
            t.chars().count()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(matches!(
            validate(&[]),
            Err(InferenceError::InvalidInput(_))
        ));
        assert!(validate(&["a".into()]).is_ok());
        let many = vec!["a".to_owned(); MAX_TEXTS + 1];
        assert!(matches!(validate(&many), Err(InferenceError::TooLarge(_))));
        let long = vec!["é".repeat(MAX_TEXT_CHARS + 1)];
        assert!(
            matches!(validate(&long), Err(InferenceError::TooLarge(m)) if m.contains("text 0"))
        );
        assert!(validate(&["é".repeat(MAX_TEXT_CHARS)]).is_ok());
    }

    #[tokio::test]
    async fn without_a_model_every_call_is_refused_with_the_reason() {
        let npu = Npu::load(None);
        assert!(!npu.is_loaded());
        let err = npu.embed(vec!["hello".into()]).await.unwrap_err();
        assert!(
            matches!(&err, InferenceError::ModelUnavailable(m) if m.contains("AUTOBOT_NPU_MODEL_DIR")),
            "{err}"
        );
    }
}
