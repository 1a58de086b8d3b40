//! Traces as the trace tool (`autobot-trace serve`, another process, via
//! testkit::trace_tool) stores them: every exporter in these tests sends real
//! OTLP to it, and the tests read the trace back from its Jaeger API.

use std::collections::BTreeMap;
use std::time::Duration;

use autobot_testkit::trace_tool::TraceTool;
use serde_json::Value;

/// One span of a Jaeger trace, flattened.
#[derive(Clone, Debug)]
pub struct Span {
    pub name: String,
    pub span_id: String,
    /// The CHILD_OF reference; `None` for a root.
    pub parent: Option<String>,
    pub service: String,
    /// `host.name` of the process that sent it.
    pub host: String,
    pub tags: BTreeMap<String, String>,
}

impl Span {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    pub fn is_error(&self) -> bool {
        self.tag("otel.status_code") == Some("ERROR")
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn tags(list: &Value) -> BTreeMap<String, String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|kv| (text(&kv["key"]), text(&kv["value"])))
                .collect()
        })
        .unwrap_or_default()
}

/// The spans of a trace in Jaeger's JSON (`data[0]`).
pub fn spans(trace: &Value) -> Vec<Span> {
    let processes = &trace["processes"];
    trace["spans"]
        .as_array()
        .map(|spans| {
            spans
                .iter()
                .map(|s| {
                    let process = &processes[text(&s["processID"])];
                    let parent = s["references"].as_array().and_then(|refs| {
                        refs.iter()
                            .find(|r| r["refType"] == "CHILD_OF")
                            .map(|r| text(&r["spanID"]))
                    });
                    Span {
                        name: text(&s["operationName"]),
                        span_id: text(&s["spanID"]),
                        parent,
                        service: text(&process["serviceName"]),
                        host: tags(&process["tags"])
                            .remove("host.name")
                            .unwrap_or_default(),
                        tags: tags(&s["tags"]),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Starts the trace tool (it must be built: `cargo build --workspace --bins`).
pub fn start_tool() -> TraceTool {
    TraceTool::start()
}

/// Waits until trace `id` holds spans for which `done` is true; panics with
/// what arrived otherwise. Returns the spans and the raw JSON.
pub async fn wait_for(
    tool: &TraceTool,
    id: &str,
    done: impl Fn(&[Span]) -> bool,
) -> (Vec<Span>, String) {
    let trace = tool
        .wait_for_trace(id, |t| done(&spans(t)), Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (spans(&trace), trace.to_string())
}
