//! How a call to an LLM server fails, and what each failure means for the
//! caller (HTTP status) and for the span (`error.type`).

use autobot_wire::chat::Provider;
use axum::http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// No connection could be made (refused, DNS, reset before an answer).
    #[error("{provider} is unreachable at {endpoint}: {detail}")]
    Unreachable {
        provider: Provider,
        endpoint: String,
        detail: String,
    },
    /// AUTOBOT_LLM_TIMEOUT_MS passed before the whole answer arrived.
    #[error("{provider} did not answer within {timeout_ms} ms")]
    Timeout { provider: Provider, timeout_ms: u64 },
    /// The server answered with an error; `message` is its own words.
    #[error("{provider} answered with an error{}: {message}", status_text(*.status))]
    Provider {
        provider: Provider,
        status: Option<u16>,
        message: String,
    },
    /// The server answered something that is not a chat answer.
    #[error("{provider} sent an answer that could not be read: {detail}")]
    InvalidResponse { provider: Provider, detail: String },
}

fn status_text(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

impl LlmError {
    /// Low-cardinality class for `error.type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "connect_error",
            Self::Timeout { .. } => "timeout",
            Self::Provider { .. } => "provider_error",
            Self::InvalidResponse { .. } => "invalid_response",
        }
    }

    /// The answer to our caller: the provider's failure is a bad gateway,
    /// its slowness a gateway timeout.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// The same error with every occurrence of `secret` replaced: a server
    /// may echo the API key back in its error message.
    pub fn scrubbed(self, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        let scrub = |s: String| s.replace(secret, autobot_tracing::redact::REDACTED);
        match self {
            Self::Unreachable {
                provider,
                endpoint,
                detail,
            } => Self::Unreachable {
                provider,
                endpoint,
                detail: scrub(detail),
            },
            Self::Provider {
                provider,
                status,
                message,
            } => Self::Provider {
                provider,
                status,
                message: scrub(message),
            },
            Self::InvalidResponse { provider, detail } => Self::InvalidResponse {
                provider,
                detail: scrub(detail),
            },
            timeout @ Self::Timeout { .. } => timeout,
        }
    }
}

/// A reqwest error's text without the URL reqwest puts in it
/// ("error sending request for url (http://…)"): the URL may carry secrets.
pub(crate) fn without_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(" for url (") {
        out.push_str(&rest[..i]);
        rest = match rest[i..].find(')') {
            Some(j) => &rest[i + j + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// `outer: inner: innermost`, URLs removed.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    without_url(&autobot_tracing::error_chain(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_cut_from_reqwest_messages() {
        assert_eq!(
            without_url("error sending request for url (http://u:p@h/x?key=1): connection refused"),
            "error sending request: connection refused"
        );
    }

    #[test]
    fn the_key_is_scrubbed_from_provider_messages() {
        let e = LlmError::Provider {
            provider: Provider::Openai,
            status: Some(401),
            message: "Incorrect API key provided: sk-abc".into(),
        }
        .scrubbed("sk-abc");
        assert!(!e.to_string().contains("sk-abc"), "{e}");
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY);
    }
}
