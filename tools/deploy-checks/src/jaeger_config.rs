//! The structure check of a Jaeger v2 configuration (an OpenTelemetry
//! Collector configuration, `infra/jaeger/config*.yaml`), the mistakes that
//! stop Jaeger at start or leave it storing nothing:
//! - every component is of a type the Jaeger 2.20.0 binary is built with;
//! - every pipeline has receivers and exporters, and every receiver,
//!   processor and exporter it names is defined (connectors count as both);
//! - every extension the service lists is defined, and `jaeger_storage`
//!   and `jaeger_query` are both listed when either is used;
//! - each storage backend is exactly one known kind;
//! - the storages named by `jaeger_query` (traces, archive, metrics) and by
//!   every `jaeger_storage_exporter` are defined;
//! - the UI config file it names is shipped with it (`/etc/jaeger/<file>`
//!   comes from `infra/jaeger/<file>`).
//!
//! The configuration comes as JSON (the tests read the YAML with PyYAML).

use std::path::Path;

use serde_json::{Map, Value};

/// Component types of the Jaeger 2.20.0 binary, by section
/// (jaegertracing/jaeger v2.20.0 `cmd/jaeger/internal/components.go`).
pub const COMPONENT_TYPES: [(&str, &[&str]); 5] = [
    ("receivers", &["otlp", "jaeger", "kafka", "nop", "zipkin"]),
    (
        "processors",
        &[
            "batch",
            "memory_limiter",
            "tail_sampling",
            "attributes",
            "filter",
            "adaptive_sampling",
        ],
    ),
    (
        "exporters",
        &[
            "jaeger_storage_exporter",
            "debug",
            "kafka",
            "nop",
            "otlp",
            "otlphttp",
            "prometheus",
        ],
    ),
    ("connectors", &["forward", "spanmetrics"]),
    (
        "extensions",
        &[
            "jaeger_storage",
            "jaeger_query",
            "remote_sampling",
            "remote_storage",
            "healthcheckv2",
            "pprof",
            "zpages",
            "basicauth",
            "sigv4auth",
            "expvar",
            "storage_cleaner",
        ],
    ),
];

/// Trace storage kinds (`cmd/internal/storageconfig/config.go`, TraceBackend).
pub const TRACE_BACKENDS: [&str; 7] = [
    "memory",
    "badger",
    "grpc",
    "cassandra",
    "elasticsearch",
    "opensearch",
    "clickhouse",
];
/// Metric storage kinds (the same file, MetricBackend).
pub const METRIC_BACKENDS: [&str; 4] = ["prometheus", "elasticsearch", "opensearch", "clickhouse"];

/// The type of a component id (`otlp/secure` → `otlp`).
fn component_type(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

fn section<'a>(config: &'a Value, name: &str) -> Option<&'a Map<String, Value>> {
    config.get(name).and_then(Value::as_object)
}

fn names(value: Option<&Value>) -> Vec<&str> {
    value
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Everything wrong with a configuration; empty when it holds together.
/// `shipped` is the folder whose files land in `/etc/jaeger`.
pub fn problems(config: &Value, shipped: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let defined = |kind: &str, id: &str| section(config, kind).is_some_and(|s| s.contains_key(id));

    for (kind, types) in COMPONENT_TYPES {
        for id in section(config, kind).into_iter().flat_map(|s| s.keys()) {
            if !types.contains(&component_type(id)) {
                out.push(format!(
                    "{kind}: {id:?} is not a type Jaeger 2.20 is built with ({})",
                    types.join(", ")
                ));
            }
        }
    }

    let service = config.get("service");
    let listed_extensions = names(service.and_then(|s| s.get("extensions")));
    for id in &listed_extensions {
        if !defined("extensions", id) {
            out.push(format!(
                "service.extensions: {id:?} is not defined under extensions"
            ));
        }
    }
    let pipelines = service
        .and_then(|s| s.get("pipelines"))
        .and_then(Value::as_object);
    match pipelines {
        None => out.push("service.pipelines: none defined".into()),
        Some(pipelines) if pipelines.is_empty() => {
            out.push("service.pipelines: none defined".into())
        }
        Some(pipelines) => {
            for (name, pipeline) in pipelines {
                if !["traces", "metrics", "logs"].contains(&component_type(name)) {
                    out.push(format!(
                        "pipeline {name}: a pipeline is traces, metrics or logs[/name]"
                    ));
                }
                for (role, sections, required) in [
                    ("receivers", &["receivers", "connectors"][..], true),
                    ("processors", &["processors"][..], false),
                    ("exporters", &["exporters", "connectors"][..], true),
                ] {
                    let ids = names(pipeline.get(role));
                    if required && ids.is_empty() {
                        out.push(format!("pipeline {name}: no {role}"));
                    }
                    for id in ids {
                        if !sections.iter().any(|s| defined(s, id)) {
                            out.push(format!(
                                "pipeline {name}: {role} {id:?} is not defined under {}",
                                sections.join(" or ")
                            ));
                        }
                    }
                }
            }
        }
    }

    let extensions = section(config, "extensions");
    let of_type = |t: &str| -> Vec<(&String, &Value)> {
        extensions
            .map(|e| e.iter().filter(|(id, _)| component_type(id) == t).collect())
            .unwrap_or_default()
    };
    let storages = of_type("jaeger_storage");
    let queries = of_type("jaeger_query");
    let storage = storages.first().map(|(_, v)| *v);
    let backends = storage
        .and_then(|s| s.get("backends"))
        .and_then(Value::as_object);
    let metric_backends = storage
        .and_then(|s| s.get("metric_backends"))
        .and_then(Value::as_object);
    if storages.len() > 1 {
        out.push("extensions: more than one jaeger_storage".into());
    }
    for (id, _) in storages.iter().chain(&queries) {
        if !listed_extensions.contains(&id.as_str()) {
            out.push(format!(
                "extensions: {id} is defined but not in service.extensions"
            ));
        }
    }
    if storage.is_some() && backends.is_none_or(Map::is_empty) {
        out.push("jaeger_storage: no backends".into());
    }
    for (id, backend) in backends.into_iter().flatten() {
        one_kind(
            &mut out,
            "jaeger_storage.backends",
            id,
            backend,
            &TRACE_BACKENDS,
        );
    }
    for (id, backend) in metric_backends.into_iter().flatten() {
        one_kind(
            &mut out,
            "jaeger_storage.metric_backends",
            id,
            backend,
            &METRIC_BACKENDS,
        );
    }
    let is_backend = |name: &str| backends.is_some_and(|b| b.contains_key(name));
    for (id, query) in &queries {
        let storage_of = |key: &str| query.get("storage").and_then(|s| s.get(key));
        match storage_of("traces").and_then(Value::as_str) {
            None => out.push(format!("{id}: storage.traces is required")),
            Some(name) if !is_backend(name) => out.push(format!(
                "{id}: storage.traces {name:?} is not a jaeger_storage backend"
            )),
            Some(_) => {}
        }
        if let Some(name) = storage_of("traces_archive").and_then(Value::as_str)
            && !is_backend(name)
        {
            out.push(format!(
                "{id}: storage.traces_archive {name:?} is not a jaeger_storage backend"
            ));
        }
        if let Some(name) = storage_of("metrics").and_then(Value::as_str)
            && !metric_backends.is_some_and(|m| m.contains_key(name))
        {
            out.push(format!(
                "{id}: storage.metrics {name:?} is not a jaeger_storage metric backend"
            ));
        }
        if let Some(file) = query
            .get("ui")
            .and_then(|ui| ui.get("config_file"))
            .and_then(Value::as_str)
        {
            match file.strip_prefix("/etc/jaeger/") {
                Some(name) if shipped.join(name).is_file() => {}
                _ => out.push(format!(
                    "{id}: ui.config_file {file:?} is not one of the files shipped to /etc/jaeger ({})",
                    shipped.display()
                )),
            }
        }
    }
    if queries.is_empty() && storage.is_some() {
        out.push("extensions: jaeger_storage without jaeger_query (no UI, no query API)".into());
    }
    for (id, exporter) in section(config, "exporters").into_iter().flatten() {
        if component_type(id) != "jaeger_storage_exporter" {
            continue;
        }
        match exporter.get("trace_storage").and_then(Value::as_str) {
            Some(name) if is_backend(name) => {}
            Some(name) => out.push(format!(
                "{id}: trace_storage {name:?} is not a jaeger_storage backend"
            )),
            None => out.push(format!("{id}: trace_storage is required")),
        }
    }
    out
}

fn one_kind(out: &mut Vec<String>, path: &str, id: &str, backend: &Value, kinds: &[&str]) {
    let keys: Vec<&str> = backend
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    match keys.as_slice() {
        [kind] if kinds.contains(kind) => {}
        _ => out.push(format!(
            "{path}.{id}: exactly one of {} expected, found {keys:?}",
            kinds.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "service": {
                "extensions": ["jaeger_storage", "jaeger_query"],
                "pipelines": {"traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"]
                }}
            },
            "extensions": {
                "jaeger_query": {"storage": {"traces": "main", "metrics": "prom"}},
                "jaeger_storage": {
                    "backends": {"main": {"badger": {"ephemeral": false}}},
                    "metric_backends": {"prom": {"prometheus": {"endpoint": "http://p:9090"}}}
                }
            },
            "receivers": {"otlp": {"protocols": {"grpc": null}}},
            "processors": {"batch": null},
            "exporters": {"jaeger_storage_exporter": {"trace_storage": "main"}}
        })
    }

    fn problems_after(change: impl FnOnce(&mut Value)) -> Vec<String> {
        let mut config = minimal();
        change(&mut config);
        problems(&config, Path::new("/nonexistent"))
    }

    #[test]
    fn a_whole_configuration_passes() {
        assert_eq!(problems_after(|_| {}), Vec::<String>::new());
    }

    #[test]
    fn each_broken_link_is_named() {
        for (change, expected) in [
            (
                Box::new(|c: &mut Value| {
                    c["processors"].as_object_mut().unwrap().remove("batch");
                }) as Box<dyn FnOnce(&mut Value)>,
                "pipeline traces: processors \"batch\" is not defined under processors",
            ),
            (
                Box::new(|c: &mut Value| {
                    c["extensions"]["jaeger_query"]["storage"]["traces"] = json!("gone")
                }),
                "jaeger_query: storage.traces \"gone\" is not a jaeger_storage backend",
            ),
            (
                Box::new(|c: &mut Value| {
                    c["extensions"]["jaeger_query"]["storage"]["metrics"] = json!("gone")
                }),
                "storage.metrics \"gone\" is not a jaeger_storage metric backend",
            ),
            (
                Box::new(|c: &mut Value| {
                    c["exporters"]["jaeger_storage_exporter"]["trace_storage"] = json!("other")
                }),
                "jaeger_storage_exporter: trace_storage \"other\" is not a jaeger_storage backend",
            ),
            (
                Box::new(|c: &mut Value| {
                    c["service"]["extensions"] = json!(["jaeger_storage", "jaeger_query", "pprof"])
                }),
                "service.extensions: \"pprof\" is not defined under extensions",
            ),
            (
                Box::new(|c: &mut Value| c["service"]["extensions"] = json!(["jaeger_storage"])),
                "jaeger_query is defined but not in service.extensions",
            ),
            (
                Box::new(|c: &mut Value| c["processors"]["tail_samplng"] = json!({})),
                "processors: \"tail_samplng\" is not a type Jaeger 2.20 is built with",
            ),
            (
                Box::new(|c: &mut Value| {
                    c["extensions"]["jaeger_storage"]["backends"]["main"]["memory"] = json!({})
                }),
                "jaeger_storage.backends.main: exactly one of",
            ),
            (
                Box::new(|c: &mut Value| {
                    c["service"]["pipelines"]["traces"]["exporters"] = json!([])
                }),
                "pipeline traces: no exporters",
            ),
            (
                Box::new(|c: &mut Value| {
                    c["extensions"]["jaeger_query"]["ui"] =
                        json!({"config_file": "/etc/jaeger/missing.json"})
                }),
                "ui.config_file \"/etc/jaeger/missing.json\" is not one of the files shipped",
            ),
        ] {
            let found = problems_after(change);
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "expected {expected:?} in {found:?}"
            );
        }
    }

    #[test]
    fn connectors_join_pipelines() {
        let found = problems_after(|c| {
            c["connectors"] = json!({"spanmetrics": {}});
            c["exporters"]["prometheus"] = json!({"endpoint": "0.0.0.0:8889"});
            c["service"]["pipelines"]["traces"]["exporters"] =
                json!(["jaeger_storage_exporter", "spanmetrics"]);
            c["service"]["pipelines"]["metrics/spanmetrics"] =
                json!({"receivers": ["spanmetrics"], "exporters": ["prometheus"]});
        });
        assert_eq!(found, Vec::<String>::new());
    }
}
