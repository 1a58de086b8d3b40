//! The environment-variable carrier (OpenTelemetry "Environment Variables as
//! Context Propagation Carriers"): TRACEPARENT, TRACESTATE and BAGGAGE, for
//! processes started over SSH or as children.
//!
//! The parent injects into a map and sends each variable as an SSH `env`
//! request. OpenSSH drops env requests that `AcceptEnv` does not name, so the
//! parent also writes the map to a private [`CONTEXT_FILE`] the child reads,
//! and may put ONE value on a command line: [`command_line_traceparent`],
//! written from the span context (never copied from a caller) in a shape no
//! shell treats specially. TRACESTATE and BAGGAGE hold what callers sent and
//! never go on a command line. The child continues from its environment and
//! the file ([`extract_with_file`]).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::Propagators;
use crate::propagation::AutobotPropagator;

/// The variables this carrier uses.
pub const VARIABLES: [&str; 3] = ["TRACEPARENT", "TRACESTATE", "BAGGAGE"];

/// W3C only: the env carrier's names are defined for trace context and
/// baggage. This set is fixed (`OTEL_PROPAGATORS` does not change it); the
/// rules, size limit included, are those of [`AutobotPropagator`], written once.
static PROPAGATOR: LazyLock<AutobotPropagator> = LazyLock::new(|| {
    AutobotPropagator::new(Propagators {
        tracecontext: true,
        baggage: true,
        b3_single: false,
        b3_multi: false,
    })
});

fn propagator() -> &'static AutobotPropagator {
    &PROPAGATOR
}

/// Env variable name for a propagation key: upper-case, others → `_`.
pub fn variable_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

struct EnvInjector<'a>(&'a mut BTreeMap<String, String>);

impl Injector for EnvInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The W3C rules write tracestate even when it is empty.
        if !value.is_empty() {
            self.0.insert(variable_name(key), value);
        }
    }
}

struct EnvExtractor(BTreeMap<String, String>);

impl Extractor for EnvExtractor {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(&variable_name(key))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The variables for `cx` (empty values skipped).
pub fn inject(cx: &Context) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    propagator().inject_context(cx, &mut EnvInjector(&mut vars));
    vars
}

/// The variables for the current context (call it inside the CLIENT span of the remote call).
pub fn inject_current() -> BTreeMap<String, String> {
    inject(&Context::current())
}

/// The context carried by variables read through `lookup`.
pub fn extract_with(lookup: impl Fn(&str) -> Option<String>) -> Context {
    let vars = VARIABLES
        .iter()
        .filter_map(|name| lookup(name).map(|v| ((*name).to_owned(), v)))
        .collect();
    propagator().extract(&EnvExtractor(vars))
}

/// The context carried by this process's environment.
pub fn extract_from_env() -> Context {
    extract_with(|name| std::env::var(name).ok())
}

/// Makes `span` continue the trace this process was started in. One call at
/// the top of a child process: `env_carrier::continue_from_env(&span)` before entering it.
pub fn continue_from_env(span: &tracing::Span) {
    let cx = extract_from_env();
    if opentelemetry::trace::TraceContextExt::span(&cx)
        .span_context()
        .is_valid()
    {
        let _ = span.set_parent(cx);
    }
}

/// The file beside a child's inputs that carries the variables as a JSON
/// object (`{"TRACEPARENT": "…", "TRACESTATE": "…", "BAGGAGE": "…"}`), for
/// when the env requests were refused. Written 0600 by the parent.
pub const CONTEXT_FILE: &str = "trace-context.json";

/// A context file larger than this is ignored (W3C caps baggage at 8 KiB).
pub const MAX_CONTEXT_FILE_BYTES: usize = 64 * 1024;

/// The TRACEPARENT of `cx` for a command line: `00-<32 hex>-<16 hex>-<2 hex>`,
/// formatted here from the span context's ids and flags (nothing a caller
/// sent is copied), and checked with [`is_command_line_safe`]. `None` when
/// `cx` has no valid span.
pub fn command_line_traceparent(cx: &Context) -> Option<String> {
    let span = opentelemetry::trace::TraceContextExt::span(cx);
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let value = format!(
        "00-{:032x}-{:016x}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    );
    is_command_line_safe(&value).then_some(value)
}

/// [`command_line_traceparent`] of the current context (call it inside the
/// CLIENT span of the remote call).
pub fn command_line_traceparent_current() -> Option<String> {
    command_line_traceparent(&Context::current())
}

/// Whether `value` is exactly `00-` + 32 + `-` + 16 + `-` + 2 lowercase hex
/// digits with non-zero ids: the only context value that may appear in a
/// command line (no byte of it means anything to sh, bash, zsh, fish or csh).
pub fn is_command_line_safe(value: &str) -> bool {
    let b = value.as_bytes();
    let hex = |s: &[u8]| {
        s.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    let nonzero = |s: &[u8]| s.iter().any(|&c| c != b'0');
    b.len() == 55
        && &b[..3] == b"00-"
        && b[35] == b'-'
        && b[52] == b'-'
        && hex(&b[3..35])
        && hex(&b[36..52])
        && hex(&b[53..55])
        && nonzero(&b[3..35])
        && nonzero(&b[36..52])
}

/// The [`CONTEXT_FILE`] for `vars` (only the carrier's variables).
pub fn context_file_bytes(vars: &BTreeMap<String, String>) -> Vec<u8> {
    let known: BTreeMap<&str, &str> = vars
        .iter()
        .filter(|(name, _)| VARIABLES.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    serde_json::to_vec(&known).expect("a map of strings serializes")
}

/// The variables in a [`CONTEXT_FILE`]: only the carrier's names, only
/// string values; anything else (too large, not JSON) is ignored.
pub fn parse_context_file(bytes: &[u8]) -> BTreeMap<String, String> {
    if bytes.len() > MAX_CONTEXT_FILE_BYTES {
        return BTreeMap::new();
    }
    let Ok(map) = serde_json::from_slice::<BTreeMap<String, serde_json::Value>>(bytes) else {
        return BTreeMap::new();
    };
    map.into_iter()
        .filter(|(name, _)| VARIABLES.contains(&name.as_str()))
        .filter_map(|(name, value)| value.as_str().map(|v| (name, v.to_owned())))
        .collect()
}

/// Reads a [`CONTEXT_FILE`]; a missing or unreadable one is empty.
pub fn read_context_file(path: &std::path::Path) -> BTreeMap<String, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| {
        f.take(MAX_CONTEXT_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
    });
    match read {
        Ok(_) => parse_context_file(&bytes),
        Err(_) => BTreeMap::new(),
    }
}

/// The context carried by variables read through `lookup`, each missing
/// one taken from `file` (a parsed [`CONTEXT_FILE`]). TRACESTATE and BAGGAGE
/// are only taken along with the TRACEPARENT they came with.
pub fn extract_with_file(
    lookup: impl Fn(&str) -> Option<String>,
    file: &BTreeMap<String, String>,
) -> Context {
    let [traceparent, ..] = VARIABLES;
    let from_env = lookup(traceparent).filter(|v| !v.is_empty());
    let same_parent =
        from_env.is_none() || from_env.as_deref() == file.get(traceparent).map(String::as_str);
    extract_with(|name| {
        lookup(name).filter(|v| !v.is_empty()).or_else(|| {
            if name == traceparent || same_parent {
                file.get(name).cloned()
            } else {
                None
            }
        })
    })
}

/// Makes `span` continue the trace from this process's environment and,
/// for what the environment lacks, from the [`CONTEXT_FILE`] at `file`.
pub fn continue_from_env_and_file(span: &tracing::Span, file: &std::path::Path) {
    let vars = read_context_file(file);
    let cx = extract_with_file(|name| std::env::var(name).ok(), &vars);
    if opentelemetry::trace::TraceContextExt::span(&cx)
        .span_context()
        .is_valid()
    {
        let _ = span.set_parent(cx);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };

    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn only_a_well_formed_traceparent_is_command_line_safe() {
        assert!(is_command_line_safe(TP));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0;",
            "00-4bf92f3577b34da6a3ce929d0e0e4736;00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473$-00f067aa0ba902b7-01",
        ] {
            assert!(!is_command_line_safe(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_command_line_traceparent_is_written_from_the_span_context_alone() {
        // A tracestate full of shell syntax travels with the context but
        // never reaches the command-line value.
        let state = TraceState::from_key_value([("k", "x;touch /tmp/pwned")]).unwrap();
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            state,
        );
        let cx = Context::new().with_remote_span_context(sc);
        assert_eq!(command_line_traceparent(&cx).as_deref(), Some(TP));
        assert_eq!(command_line_traceparent(&Context::new()), None);
    }

    #[test]
    fn the_context_file_carries_only_the_carriers_variables() {
        let vars = BTreeMap::from([
            ("TRACEPARENT".to_owned(), TP.to_owned()),
            (
                "TRACESTATE".to_owned(),
                "k=\\';touch /tmp/pwned;#".to_owned(),
            ),
            ("PATH".to_owned(), "/evil".to_owned()),
        ]);
        let bytes = context_file_bytes(&vars);
        let back = parse_context_file(&bytes);
        assert_eq!(back.len(), 2, "{back:?}");
        assert_eq!(back["TRACESTATE"], "k=\\';touch /tmp/pwned;#");
        assert!(parse_context_file(b"not json").is_empty());
        assert!(parse_context_file(br#"{"TRACESTATE": 7, "LD_PRELOAD": "x"}"#).is_empty());
        let huge = format!(r#"{{"BAGGAGE": "{}"}}"#, "a".repeat(MAX_CONTEXT_FILE_BYTES));
        assert!(parse_context_file(huge.as_bytes()).is_empty());
    }

    #[test]
    fn the_file_fills_in_what_the_environment_lacks() {
        let file = BTreeMap::from([
            ("TRACEPARENT".to_owned(), TP.to_owned()),
            ("TRACESTATE".to_owned(), "vendor=abc".to_owned()),
        ]);
        // Only TRACEPARENT reached the environment (the command line).
        let cx = extract_with_file(|k| (k == "TRACEPARENT").then(|| TP.to_owned()), &file);
        let sc = cx.span().span_context().clone();
        assert!(sc.is_valid());
        assert_eq!(sc.trace_state().get("vendor"), Some("abc"));
        // Nothing in the environment: the file alone.
        let cx = extract_with_file(|_| None, &file);
        assert_eq!(
            cx.span().span_context().trace_state().get("vendor"),
            Some("abc")
        );
        // A file written for another parent lends nothing to this one.
        let other = "00-11111111111111111111111111111111-2222222222222222-01";
        let cx = extract_with_file(|k| (k == "TRACEPARENT").then(|| other.to_owned()), &file);
        let sc = cx.span().span_context().clone();
        assert_eq!(
            format!("{:032x}", sc.trace_id()),
            "11111111111111111111111111111111"
        );
        assert_eq!(sc.trace_state().get("vendor"), None);
    }
}
