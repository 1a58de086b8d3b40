//! What Jaeger's query service does to a trace before answering (its
//! "standard adjusters", jaeger `cmd/jaeger/internal/extension/jaegerquery/
//! internal/adjuster/standard.go`), so `serve` answers as Jaeger does;
//! `rawTraces=true` skips them, as in Jaeger:
//!
//! 1. attributes sorted by key (resource, scope, span, event, link), events
//!    by name;
//! 2. exact duplicate spans dropped;
//! 3. clock skew: with Jaeger v2's default `max_clock_skew_adjust: 0` no
//!    timestamp moves, but a span gets a warning when its parent is not in
//!    the trace, when its id repeats, or when it would have been shifted;
//! 4. numeric `ip` / `peer.ipv4` attributes written as dotted quads;
//! 5. `telemetry.sdk.*` / `telemetry.distro.*` span attributes moved to
//!    the resource.
//!
//! Warnings go in the span attribute `@jaeger@warnings` (a list of strings),
//! as in Jaeger; the v1 JSON shows them as the span's `warnings`.
//! Not done: Zipkin-style shared client/server span ids are not re-numbered
//! (OTLP senders do not share them).

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};

use crate::jaeger::WARNINGS_ATTRIBUTE;
use crate::stored::StoredSpan;
use crate::time_text::format_go_duration;
use crate::trace_id::span_id_hex;

/// Jaeger v2's default `max_clock_skew_adjust`: no adjustment, warnings only.
const MAX_CLOCK_SKEW_ADJUST_NANOS: u64 = 0;

const LIBRARY_KEYS: [&str; 5] = [
    "telemetry.sdk.language",
    "telemetry.sdk.name",
    "telemetry.sdk.version",
    "telemetry.distro.name",
    "telemetry.distro.version",
];

/// Runs Jaeger's standard adjusters over one trace's spans.
pub fn standard(spans: &mut Vec<StoredSpan>) {
    spans.iter_mut().for_each(sort_collections);
    deduplicate(spans);
    clock_skew_warnings(spans);
    spans.iter_mut().for_each(normalize_ip_attributes);
    spans.iter_mut().for_each(move_library_attributes);
}

fn sort_attributes(attributes: &mut [KeyValue]) {
    attributes.sort_by(|a, b| a.key.cmp(&b.key));
}

fn is_sorted(attributes: &[KeyValue]) -> bool {
    attributes.windows(2).all(|w| w[0].key <= w[1].key)
}

fn sort_collections(s: &mut StoredSpan) {
    if !is_sorted(&s.resource.attributes) {
        sort_attributes(&mut Arc::make_mut(&mut s.resource).attributes);
    }
    if !is_sorted(&s.scope.attributes) {
        sort_attributes(&mut Arc::make_mut(&mut s.scope).attributes);
    }
    sort_attributes(&mut s.span.attributes);
    // Stable, as pdata's slice sort.
    s.span.events.sort_by(|a, b| a.name.cmp(&b.name));
    for event in &mut s.span.events {
        sort_attributes(&mut event.attributes);
    }
    for link in &mut s.span.links {
        sort_attributes(&mut link.attributes);
    }
}

/// Drops a span equal to an earlier one (resource, scope and span).
fn deduplicate(spans: &mut Vec<StoredSpan>) {
    let mut kept: Vec<StoredSpan> = Vec::with_capacity(spans.len());
    for s in spans.drain(..) {
        let duplicate = kept.iter().any(|k| {
            k.span == s.span
                && k.resource.attributes == s.resource.attributes
                && k.scope.attributes == s.scope.attributes
        });
        if !duplicate {
            kept.push(s);
        }
    }
    *spans = kept;
}

/// Appends to the span's `@jaeger@warnings` list (making it one when it is not).
pub fn add_warning(s: &mut StoredSpan, warning: String) {
    let text = |w: String| AnyValue {
        value: Some(any_value::Value::StringValue(w)),
    };
    let attributes = &mut s.span.attributes;
    match attributes
        .iter_mut()
        .find(|kv| kv.key == WARNINGS_ATTRIBUTE)
    {
        Some(kv) => match kv.value.as_mut().and_then(|v| v.value.as_mut()) {
            Some(any_value::Value::ArrayValue(list)) => list.values.push(text(warning)),
            _ => {
                let previous = crate::attr::value_text(kv.value.as_ref());
                kv.value = Some(AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                        values: vec![text(previous), text(warning)],
                    })),
                });
            }
        },
        None => attributes.push(KeyValue {
            key: WARNINGS_ATTRIBUTE.to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![text(warning)],
                })),
            }),
            ..Default::default()
        }),
    }
}

/// The host a span ran on, by resource `host.id`, `host.ip`, `host.name`
/// ("" when none: then every span counts as another host).
fn host_key(s: &StoredSpan) -> String {
    for key in ["host.id", "host.ip", "host.name"] {
        if let Some(kv) = s.resource.attributes.iter().find(|kv| kv.key == key) {
            return match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::ArrayValue(a)) => a
                    .values
                    .first()
                    .map(|v| crate::attr::value_text(Some(v)))
                    .unwrap_or_default(),
                _ => crate::attr::value_text(kv.value.as_ref()),
            };
        }
    }
    String::new()
}

/// Jaeger's `CorrectClockSkew` with its v2 default of 0: the skew of a span
/// on another host than its parent is computed, and with nothing allowed to
/// move, reported as a warning; the delta carries on to its children.
fn clock_skew_warnings(spans: &mut [StoredSpan]) {
    let mut by_id: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut warnings: Vec<(usize, String)> = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        if by_id.contains_key(&s.span.span_id) {
            warnings.push((
                i,
                "duplicate span IDs; skipping clock skew adjustment".into(),
            ));
        } else {
            by_id.insert(s.span.span_id.clone(), i);
        }
    }
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (&_, &i) in by_id.iter() {
        let parent = &spans[i].span.parent_span_id;
        if parent.is_empty() || parent.iter().all(|b| *b == 0) {
            roots.push(i);
        } else if let Some(&p) = by_id.get(parent) {
            children.entry(p).or_default().push(i);
        } else {
            warnings.push((
                i,
                format!(
                    "parent span ID={} is not in the trace; skipping clock skew adjustment",
                    span_id_hex(parent)
                ),
            ));
            roots.push(i);
        }
    }
    roots.sort_unstable();
    let hosts: Vec<String> = spans.iter().map(host_key).collect();
    // (span, its parent, the skew it inherits: host and delta in ns)
    let mut stack: Vec<(usize, Option<usize>, String, i64)> = roots
        .into_iter()
        .map(|r| (r, None, hosts[r].clone(), 0))
        .collect();
    while let Some((i, parent, mut skew_host, mut delta)) = stack.pop() {
        if let Some(p) = parent
            && (hosts[i] != skew_host || hosts[i].is_empty())
        {
            skew_host = hosts[i].clone();
            delta = skew(&spans[i], &spans[p]);
        }
        if delta != 0 && delta.unsigned_abs() > MAX_CLOCK_SKEW_ADJUST_NANOS {
            warnings.push((
                i,
                format!(
                    "clock skew adjustment disabled; not applying calculated delta of {}",
                    format_go_duration(delta)
                ),
            ));
        }
        for &child in children.get(&i).map(Vec::as_slice).unwrap_or_default() {
            stack.push((child, Some(i), skew_host.clone(), delta));
        }
    }
    for (i, warning) in warnings {
        add_warning(&mut spans[i], warning);
    }
}

/// Jaeger's `calculateSkew`: how far the child must move to sit inside its
/// parent, latency split evenly; a child longer than its parent only stops
/// starting before it.
fn skew(child: &StoredSpan, parent: &StoredSpan) -> i64 {
    let (ps, pe) = (
        parent.span.start_time_unix_nano as i64,
        parent.span.end_time_unix_nano as i64,
    );
    let (cs, ce) = (
        child.span.start_time_unix_nano as i64,
        child.span.end_time_unix_nano as i64,
    );
    let (parent_duration, child_duration) = (pe - ps, ce - cs);
    if child_duration > parent_duration {
        return if cs < ps { ps - cs } else { 0 };
    }
    if cs >= ps && ce <= pe {
        return 0;
    }
    let latency = (parent_duration - child_duration) / 2;
    ps + latency - cs
}

fn normalize_ip_attributes(s: &mut StoredSpan) {
    fn fix(attributes: &mut [KeyValue]) -> bool {
        let mut changed = false;
        for kv in attributes
            .iter_mut()
            .filter(|kv| kv.key == "ip" || kv.key == "peer.ipv4")
        {
            let packed = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::IntValue(i)) => *i as u32,
                Some(any_value::Value::DoubleValue(d)) => *d as u32,
                _ => continue,
            };
            let [a, b, c, d] = packed.to_be_bytes();
            kv.value = Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("{a}.{b}.{c}.{d}"))),
            });
            changed = true;
        }
        changed
    }
    let needs = |attributes: &[KeyValue]| {
        attributes.iter().any(|kv| {
            (kv.key == "ip" || kv.key == "peer.ipv4")
                && matches!(
                    kv.value.as_ref().and_then(|v| v.value.as_ref()),
                    Some(any_value::Value::IntValue(_) | any_value::Value::DoubleValue(_))
                )
        })
    };
    if needs(&s.resource.attributes) {
        fix(&mut Arc::make_mut(&mut s.resource).attributes);
    }
    fix(&mut s.span.attributes);
}

fn move_library_attributes(s: &mut StoredSpan) {
    let mut index = 0;
    while index < s.span.attributes.len() {
        let key = s.span.attributes[index].key.clone();
        if !LIBRARY_KEYS.contains(&key.as_str()) {
            index += 1;
            continue;
        }
        let value = s.span.attributes[index].value.clone();
        match s.resource.attributes.iter().find(|kv| kv.key == key) {
            Some(existing) if existing.value != value => {
                add_warning(
                    s,
                    format!("conflicting values between Span and Resource for attribute {key}"),
                );
                index += 1;
            }
            existing => {
                if existing.is_none() {
                    Arc::make_mut(&mut s.resource).attributes.push(KeyValue {
                        key,
                        value,
                        ..Default::default()
                    });
                }
                s.span.attributes.remove(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::kv;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::Span;

    fn span(id: u8, parent: u8, host: &str, start: u64, end: u64) -> StoredSpan {
        StoredSpan {
            service: Arc::from("svc"),
            resource: Arc::new(Resource {
                attributes: vec![kv("host.name", any_value::Value::StringValue(host.into()))],
                ..Default::default()
            }),
            scope: Arc::new(InstrumentationScope::default()),
            span: Span {
                trace_id: vec![1; 16],
                span_id: vec![id; 8],
                parent_span_id: if parent == 0 { vec![] } else { vec![parent; 8] },
                name: format!("op{id}"),
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                ..Default::default()
            },
        }
    }

    fn warnings(s: &StoredSpan) -> Vec<String> {
        s.span
            .attributes
            .iter()
            .filter(|kv| kv.key == WARNINGS_ATTRIBUTE)
            .flat_map(
                |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::ArrayValue(a)) => a
                        .values
                        .iter()
                        .map(|v| crate::attr::value_text(Some(v)))
                        .collect(),
                    _ => vec![],
                },
            )
            .collect()
    }

    #[test]
    fn orphans_duplicates_and_skew_get_jaegers_warnings() {
        let mut spans = vec![
            span(1, 0, "a", 1_000, 2_000),
            // Another host, starting 500 ns before its parent: a skew.
            span(2, 1, "b", 500, 1_000),
            // Same host as 2: inherits 2's (unapplied) delta.
            span(3, 2, "b", 600, 700),
            span(4, 9, "a", 0, 10),
            span(1, 0, "a", 1_000, 2_001),
        ];
        standard(&mut spans);
        assert_eq!(warnings(&spans[0]), Vec::<String>::new());
        assert_eq!(
            warnings(&spans[1]),
            ["clock skew adjustment disabled; not applying calculated delta of 750ns"]
        );
        assert_eq!(
            warnings(&spans[2]),
            ["clock skew adjustment disabled; not applying calculated delta of 750ns"]
        );
        assert_eq!(
            warnings(&spans[3]),
            ["parent span ID=0909090909090909 is not in the trace; skipping clock skew adjustment"]
        );
        assert_eq!(
            warnings(&spans[4]),
            ["duplicate span IDs; skipping clock skew adjustment"]
        );
        assert_eq!(spans[1].span.start_time_unix_nano, 500, "nothing moves");
    }

    #[test]
    fn sorts_dedupes_normalizes_and_moves_library_attributes() {
        let mut a = span(1, 0, "h", 0, 1);
        a.span.attributes = vec![
            kv("z", any_value::Value::BoolValue(true)),
            kv("peer.ipv4", any_value::Value::IntValue(0x0808_0404)),
            kv(
                "telemetry.sdk.name",
                any_value::Value::StringValue("opentelemetry".into()),
            ),
            kv("a", any_value::Value::IntValue(1)),
        ];
        let mut spans = vec![a.clone(), a];
        standard(&mut spans);
        assert_eq!(spans.len(), 1, "exact duplicates go");
        let keys: Vec<&str> = spans[0]
            .span
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(keys, ["a", "peer.ipv4", "z"]);
        assert_eq!(
            crate::attr::value_text(spans[0].span.attributes[1].value.as_ref()),
            "8.8.4.4"
        );
        assert!(
            spans[0]
                .resource
                .attributes
                .iter()
                .any(|kv| kv.key == "telemetry.sdk.name")
        );
    }
}
