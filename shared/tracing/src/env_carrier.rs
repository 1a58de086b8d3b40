//! The environment-variable carrier (OpenTelemetry "Environment Variables as
//! Context Propagation Carriers"): TRACEPARENT, TRACESTATE and BAGGAGE, for
//! processes started over SSH or as children.
//!
//! The parent injects into a map, sends each variable as an SSH `env` request
//! AND as a shell-quoted prefix of the command (OpenSSH drops env requests
//! that `AcceptEnv` does not name); the child continues from its environment.

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

/// Quotes `value` for a POSIX shell: `'…'` with embedded quotes escaped.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `TRACEPARENT='…' TRACESTATE='…' ` to put before a command run by a shell.
/// Names that are not `[A-Z0-9_]+` are left out.
pub fn shell_prefix(vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (name, value) in vars {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if valid && !value.is_empty() {
            out.push_str(name);
            out.push('=');
            out.push_str(&shell_quote(value));
            out.push(' ');
        }
    }
    out
}
