//! A trace as a tree in the terminal, one line a span:
//! service, operation, kind, start offset, duration with a bar, status and
//! the attributes that matter. Spans whose parent is missing and children
//! that start before their parent are marked.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::model::{Span, Trace};

/// Attributes worth a glance, in this order.
pub const KEY_ATTRIBUTES: [&str; 7] = [
    "http.route",
    "http.response.status_code",
    "db.operation.name",
    "messaging.destination.name",
    "llm.model",
    "ssh.target_vm",
    "error.type",
];

const BAR_WIDTH: u64 = 24;

pub fn render(trace: &Trace) -> String {
    let ids: HashSet<&str> = trace.spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&Span>> = HashMap::new();
    let mut tops: Vec<&Span> = Vec::new();
    for span in &trace.spans {
        match span.parent_span_id() {
            Some(parent) if ids.contains(parent) => children.entry(parent).or_default().push(span),
            _ => tops.push(span),
        }
    }
    let by_start = |a: &&Span, b: &&Span| a.start_time.cmp(&b.start_time);
    tops.sort_by(by_start);
    for list in children.values_mut() {
        list.sort_by(by_start);
    }
    let trace_start = trace.spans.iter().map(|s| s.start_time).min().unwrap_or(0);
    let trace_end = trace.spans.iter().map(Span::end_time).max().unwrap_or(0);
    let total = trace_end.saturating_sub(trace_start).max(1);
    let services: HashSet<&str> = trace.spans.iter().map(|s| trace.service_of(s)).collect();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "trace {}  {} spans, {} services, {}",
        trace.trace_id,
        trace.spans.len(),
        services.len(),
        micros(total)
    );
    let ctx = Ctx {
        trace,
        children: &children,
        trace_start,
        total,
    };
    for top in tops {
        ctx.line(&mut out, top, None, "", true, 0);
    }
    out
}

struct Ctx<'a> {
    trace: &'a Trace,
    children: &'a HashMap<&'a str, Vec<&'a Span>>,
    trace_start: u64,
    total: u64,
}

impl Ctx<'_> {
    fn line(
        &self,
        out: &mut String,
        span: &Span,
        parent: Option<&Span>,
        prefix: &str,
        last: bool,
        depth: usize,
    ) {
        let branch = if depth == 0 {
            ""
        } else if last {
            "└─ "
        } else {
            "├─ "
        };
        let offset = span.start_time.saturating_sub(self.trace_start);
        let bar_start = offset * BAR_WIDTH / self.total;
        let bar_len = (span.duration * BAR_WIDTH / self.total).max(1);
        let bar: String = (0..BAR_WIDTH)
            .map(|i| {
                if i >= bar_start && i < bar_start + bar_len {
                    '█'
                } else {
                    '·'
                }
            })
            .collect();
        let kind = span
            .tag("span.kind")
            .map(|t| t.text())
            .unwrap_or_else(|| "internal".into());
        let status = match span.tag("otel.status_code").map(|t| t.text()).as_deref() {
            Some("ERROR") => {
                let description = span
                    .tag("otel.status_description")
                    .map(|t| format!(": {}", t.text()))
                    .unwrap_or_default();
                format!("ERROR{description}")
            }
            Some(other) => other.to_owned(),
            None => "-".to_owned(),
        };
        let attributes: Vec<String> = KEY_ATTRIBUTES
            .iter()
            .filter_map(|k| span.tag(k).map(|t| format!("{k}={}", t.text())))
            .collect();
        let mut marks = Vec::new();
        match (span.parent_span_id(), parent) {
            (Some(missing), None) => marks.push(format!("!! parent {missing} missing")),
            (_, Some(p)) if span.start_time < p.start_time => {
                marks.push(format!(
                    "!! starts {} before its parent",
                    micros(p.start_time - span.start_time)
                ));
            }
            _ => {}
        }
        let _ = writeln!(
            out,
            "{prefix}{branch}{} {} [{kind}] +{} {} {bar} {status}{}{}",
            self.trace.service_of(span),
            span.operation_name,
            micros(offset),
            micros(span.duration),
            if attributes.is_empty() {
                String::new()
            } else {
                format!(" {}", attributes.join(" "))
            },
            if marks.is_empty() {
                String::new()
            } else {
                format!("  {}", marks.join(" "))
            },
        );
        let child_prefix = if depth == 0 {
            prefix.to_owned()
        } else if last {
            format!("{prefix}   ")
        } else {
            format!("{prefix}│  ")
        };
        if let Some(kids) = self.children.get(span.span_id.as_str()) {
            for (i, kid) in kids.iter().enumerate() {
                self.line(
                    out,
                    kid,
                    Some(span),
                    &child_prefix,
                    i + 1 == kids.len(),
                    depth + 1,
                );
            }
        }
    }
}

/// A duration in microseconds, readable.
pub fn micros(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2}s", us as f64 / 1e6)
    } else if us >= 1_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{us}µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_jaegers_fixture_as_a_tree() {
        let trace: Trace =
            serde_json::from_str(include_str!("../fixtures/jaeger/ui_01.json")).unwrap();
        let text = render(&trace);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("trace 0000000000000001  3 spans, 2 services"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("service-x some-operation [internal] +0µs 5µs"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("└─ service-y some-operation"),
            "{text}"
        );
        // Its first CHILD_OF (00000000000000ff) is not in the trace.
        assert!(lines[3].starts_with("service-y reference-test"), "{text}");
        assert!(
            lines[3].contains("!! parent 00000000000000ff missing"),
            "{text}"
        );
    }

    #[test]
    fn marks_a_child_that_starts_before_its_parent() {
        let mut trace: Trace =
            serde_json::from_str(include_str!("../fixtures/jaeger/ui_01.json")).unwrap();
        trace.spans.truncate(2);
        trace.spans[1].start_time -= 7;
        let text = render(&trace);
        assert!(text.contains("!! starts 7µs before its parent"), "{text}");
    }
}
