//! The LLM gateway's metrics: the GenAI semantic-convention histograms
//! `gen_ai.client.operation.duration` (seconds) and
//! `gen_ai.client.token.usage` (tokens, by `gen_ai.token.type`), shown as
//! `gen_ai_client_operation_duration_seconds_*` and
//! `gen_ai_client_token_usage_*`, and the `llm.inference` CLIENT span's
//! spanmetrics series. Counted on every call, whatever the sampling.

use std::time::Duration;

use autobot_metrics::spans::{Operation, SpanKind};
use autobot_metrics::{Family, HistogramSeries, buckets};
use autobot_wire::chat::{Provider, Usage};

pub(crate) struct LlmMetrics {
    duration: &'static Family<HistogramSeries>,
    tokens: &'static Family<HistogramSeries>,
    inference: &'static Operation,
}

impl LlmMetrics {
    pub(crate) fn new() -> Self {
        Self {
            duration: autobot_metrics::histogram(
                "gen_ai_client_operation_duration_seconds",
                "GenAI operation duration (gen_ai.client.operation.duration).",
                &[
                    "gen_ai_operation_name",
                    "gen_ai_provider_name",
                    "gen_ai_request_model",
                    "server_address",
                    "error_type",
                ],
                &buckets::GEN_AI_DURATION,
                buckets::SECONDS,
            ),
            tokens: autobot_metrics::histogram(
                "gen_ai_client_token_usage",
                "Tokens used per GenAI call, input and output (gen_ai.client.token.usage).",
                &[
                    "gen_ai_operation_name",
                    "gen_ai_provider_name",
                    "gen_ai_request_model",
                    "gen_ai_token_type",
                ],
                &buckets::GEN_AI_TOKENS,
                1.0,
            ),
            inference: autobot_metrics::spans::operation("llm.inference", SpanKind::Client),
        }
    }

    /// Counts one chat call: how long it took, and its tokens when the
    /// provider said (`Ok`) or its error class (`Err`).
    pub(crate) fn chat(
        &self,
        provider: Provider,
        model: &str,
        host: &str,
        elapsed: Duration,
        outcome: Result<Option<Usage>, &str>,
        exemplar: Option<autobot_metrics::TraceId>,
    ) {
        let (usage, error_type) = match outcome {
            Ok(usage) => (usage, None),
            Err(error_type) => (None, Some(error_type)),
        };
        let provider = provider.as_str();
        self.duration
            .with(&["chat", provider, model, host, error_type.unwrap_or("")])
            .observe_duration(elapsed, exemplar);
        self.inference
            .record(elapsed, error_type.is_some(), exemplar);
        if let Some(usage) = usage {
            for (kind, n) in [
                ("input", usage.prompt_tokens),
                ("output", usage.completion_tokens),
            ] {
                self.tokens
                    .with(&["chat", provider, model, kind])
                    .observe(u64::from(n), exemplar);
            }
        }
    }
}
