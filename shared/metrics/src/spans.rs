//! The series Jaeger's Monitor tab reads, in the shape the OpenTelemetry
//! Collector's spanmetrics connector gives them (namespace
//! `traces.span.metrics`, through Prometheus' OTLP naming):
//!
//! - `traces_span_metrics_calls_total` (counter)
//! - `traces_span_metrics_duration_milliseconds_{bucket,sum,count}`
//!   (histogram in ms on the connector's default bounds)
//!
//! labelled `service_name`, `span_name`, `span_kind` (`SPAN_KIND_SERVER`…)
//! and `status_code` (`STATUS_CODE_UNSET` / `STATUS_CODE_ERROR`). Jaeger's
//! reader (`internal/storage/metricstore/prometheus/metricstore/reader.go`
//! in jaegertracing/jaeger) queries exactly these with `normalize_calls` and
//! `normalize_duration` on and `latency_unit: ms` (infra/jaeger/config.yaml).
//!
//! Unlike the connector, which sees only the sampled spans, they are counted
//! where the span would be: the SERVER spans from the HTTP server's own
//! counts ([`crate::http`]) and the domain operations from [`Operation`].

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::buckets::{self, SPANMETRICS};
use crate::expo::{Kind, View, Writer, render_labels};
use crate::histogram::{Histogram, Snapshot, TraceId};
use crate::table::{Fnv, Table};
use crate::{Collect, register};

/// OpenTelemetry span kinds, as the spanmetrics connector writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Server,
    Client,
    Producer,
    Consumer,
    Internal,
}

impl SpanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "SPAN_KIND_SERVER",
            Self::Client => "SPAN_KIND_CLIENT",
            Self::Producer => "SPAN_KIND_PRODUCER",
            Self::Consumer => "SPAN_KIND_CONSUMER",
            Self::Internal => "SPAN_KIND_INTERNAL",
        }
    }
}

pub const STATUS_UNSET: &str = "STATUS_CODE_UNSET";
pub const STATUS_ERROR: &str = "STATUS_CODE_ERROR";

/// A domain operation (`llm.inference`, `npu.inference`, …): its span's
/// name and kind, and its durations by status.
pub struct Operation {
    pub name: Box<str>,
    pub kind: SpanKind,
    unset: Histogram,
    error: Histogram,
}

impl Operation {
    /// Counts one run that took `elapsed` and ended as an error or not;
    /// `exemplar` is the trace id of a sampled run.
    #[inline]
    pub fn record(&self, elapsed: Duration, failed: bool, exemplar: Option<TraceId>) {
        if !crate::enabled() {
            return;
        }
        let h = if failed { &self.error } else { &self.unset };
        h.observe_duration(elapsed, exemplar);
    }

    /// Starts timing a run.
    pub fn start(&'static self) -> OperationTimer {
        OperationTimer {
            operation: self,
            started: Instant::now(),
        }
    }
}

/// A run being timed; [`OperationTimer::finish`] counts it.
pub struct OperationTimer {
    operation: &'static Operation,
    started: Instant,
}

impl OperationTimer {
    pub fn finish(self, failed: bool, exemplar: Option<TraceId>) -> Duration {
        let elapsed = self.started.elapsed();
        self.operation.record(elapsed, failed, exemplar);
        elapsed
    }
}

/// The spanmetrics series of the process.
pub struct SpanMetrics {
    operations: Table<(Box<str>, SpanKind), Operation>,
}

fn span_metrics() -> &'static SpanMetrics {
    static SPANS: OnceLock<&'static SpanMetrics> = OnceLock::new();
    SPANS.get_or_init(|| {
        // The server's routes exist before: its family is written first.
        let _ = crate::http::server();
        register("traces_span_metrics", || SpanMetrics {
            operations: Table::new(
                64,
                Operation {
                    name: "_OTHER".into(),
                    kind: SpanKind::Internal,
                    unset: Histogram::new(&SPANMETRICS),
                    error: Histogram::new(&SPANMETRICS),
                },
            ),
        })
    })
}

/// The operation named `name` of `kind` (registered on first use; call it
/// at start so that the series exist before the first run).
pub fn operation(name: &str, kind: SpanKind) -> &'static Operation {
    let hash = Fnv::default()
        .bytes(name.as_bytes())
        .u64(kind as u64)
        .finish();
    span_metrics().operations.get_or_insert(
        hash,
        |(n, k)| &**n == name && *k == kind,
        || {
            (
                (name.into(), kind),
                Operation {
                    name: name.into(),
                    kind,
                    unset: Histogram::new(&SPANMETRICS),
                    error: Histogram::new(&SPANMETRICS),
                },
            )
        },
    )
}

/// Makes sure the spanmetrics families are exposed (empty until counted).
pub fn register_families() {
    let _ = span_metrics();
}

impl Collect for SpanMetrics {
    fn collect(&self, out: &mut Writer) {
        let service = crate::service_name();
        let mut series: Vec<(String, Snapshot)> = Vec::new();
        let mut push = |span_name: &str, kind: SpanKind, failed: bool, snapshot: Snapshot| {
            let status = if failed { STATUS_ERROR } else { STATUS_UNSET };
            let labels = render_labels(&[
                ("service_name", service),
                ("span_name", span_name),
                ("span_kind", kind.as_str()),
                ("status_code", status),
            ]);
            match series.iter_mut().find(|(l, _)| *l == labels) {
                Some((_, s)) => s.merge(&snapshot),
                None => series.push((labels, snapshot)),
            }
        };
        for route in crate::http::server().routes().filter(|r| r.traced) {
            let name = route.span_name();
            for (failed, snapshot) in route.snapshots() {
                push(&name, SpanKind::Server, failed, snapshot);
            }
        }
        for (_, op) in self.operations.entries() {
            for (failed, h) in [(false, &op.unset), (true, &op.error)] {
                let snapshot = h.snapshot();
                if snapshot.count() > 0 {
                    push(&op.name, op.kind, failed, snapshot);
                }
            }
        }
        out.family(
            "traces_span_metrics_calls",
            "Spans (requests and operations) by service, name, kind and status, counted whatever the sampling.",
            Kind::Counter,
        );
        for (labels, snapshot) in &series {
            out.counter("traces_span_metrics_calls", labels, snapshot.count());
        }
        const DURATION: &str = "traces_span_metrics_duration_milliseconds";
        out.family(
            DURATION,
            "Duration of the same spans, in milliseconds.",
            Kind::Histogram,
        );
        let view = View {
            bounds: &SPANMETRICS,
            scale: buckets::MILLISECONDS,
        };
        for (labels, snapshot) in &series {
            out.histogram(DURATION, labels, view, snapshot);
        }
    }
}
