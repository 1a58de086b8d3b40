//! The environment-variable carrier used for processes started over SSH.

use std::collections::HashMap;

use autobot_tracing::env_carrier;
use opentelemetry::KeyValue;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::support::{find, in_memory, spans};

#[test]
fn inject_names_the_w3c_variables_and_skips_empty_ones() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, _e) = in_memory(1.0);
    let span = tracing::info_span!("ssh.exec");
    let vars = {
        let _in = span.enter();
        env_carrier::inject_current()
    };
    let tp = &vars["TRACEPARENT"];
    assert!(tp.starts_with("00-") && tp.ends_with("-01"), "{tp}");
    assert!(
        !vars.contains_key("TRACESTATE"),
        "empty tracestate is not sent: {vars:?}"
    );
    assert!(
        vars.keys()
            .all(|k| env_carrier::VARIABLES.contains(&k.as_str())),
        "only W3C names: {vars:?}"
    );
}

#[test]
fn a_child_continues_the_trace_from_its_environment() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, exporter) = in_memory(1.0);
    let parent = tracing::info_span!("ssh.distribute_certificates");
    let cx = parent
        .context()
        .with_baggage(vec![KeyValue::new("vm", "npu-worker")]);
    let vars = env_carrier::inject(&cx);
    assert_eq!(vars["BAGGAGE"], "vm=npu-worker");

    // What the child sees: exactly these variables.
    let child_env: HashMap<String, String> = vars.clone().into_iter().collect();
    let extracted = env_carrier::extract_with(|k| child_env.get(k).cloned());
    assert_eq!(
        extracted.span().span_context().trace_id(),
        cx.span().span_context().trace_id()
    );
    assert_eq!(
        extracted.baggage().get("vm").map(|v| v.to_string()),
        Some("npu-worker".into())
    );

    let child = tracing::info_span!("pki.install");
    child.set_parent(extracted).unwrap();
    drop(child.entered());
    drop(parent);
    let done = spans(&exporter);
    let install = find(&done, "pki.install");
    let distribute = find(&done, "ssh.distribute_certificates");
    assert_eq!(install.parent_span_id, distribute.span_context.span_id());
    assert_eq!(
        install.span_context.trace_id(),
        distribute.span_context.trace_id()
    );
}

#[test]
fn a_process_without_context_starts_a_new_root() {
    if autobot_testkit::alone::rerun_in_own_process() {
        return;
    }
    let (_g, _e) = in_memory(1.0);
    let cx = env_carrier::extract_with(|k| (k == "TRACEPARENT").then(|| "garbage".to_owned()));
    assert!(!cx.span().span_context().is_valid());
}
