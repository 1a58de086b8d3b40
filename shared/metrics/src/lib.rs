//! # autobot-metrics
//!
//! What every AutoBot service counts, and the text a Prometheus scrape of
//! `GET /metrics` reads (the runner, `shared/lifecycle/src/metrics.rs`,
//! serves it). RED is counted where requests happen, on every request
//! whatever the trace sampling decided: [`http`] (the semconv HTTP
//! histograms, fed by autobot-tracing's server layer and client) and
//! [`spans`] (the series Jaeger's Monitor tab reads, in the spanmetrics
//! connector's shape). Domain metrics are [`Family`]s a service gets by name
//! from [`counter`], [`gauge`] and [`histogram`].
//!
//! Why hand-rolled and not a crate: the hot path must take no lock shared
//! between requests and allocate nothing. The `prometheus` crate's vectors
//! look a label set up in a `RwLock<HashMap>` and cannot write exemplars;
//! `prometheus-client` writes exemplars but its `Family` is also a
//! `RwLock<HashMap>` keyed by an owned label set; the OpenTelemetry SDK's
//! metrics pipeline takes a lock per measurement and its Prometheus exporter
//! is deprecated. Here a label set is resolved once into a slot of an
//! insert-only table ([`table`]) read with atomic loads, and a series is
//! atomics ([`histogram`]), so a request costs a lookup and a few relaxed
//! `fetch_add`s (figures: docs/performance.md, "Metrics").

pub mod buckets;
pub mod expo;
mod family;
pub mod histogram;
pub mod http;
pub mod spans;
pub mod table;

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

pub use expo::{Format, Kind, View, Writer};
pub use family::{Counter, Family, FamilyInfo, Gauge, HistogramSeries, OVERFLOW_LABELS, Single};
pub use histogram::{Histogram, TraceId};

/// Something that writes metric families at scrape time.
pub trait Collect: Send + Sync + 'static {
    fn collect(&self, out: &mut Writer);
}

/// A label set as stored: its values and its rendered `a="x",b="y"`.
pub struct Labels {
    pub values: Box<[Box<str>]>,
    pub rendered: Box<str>,
}

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether anything is counted (AUTOBOT_METRICS_ENABLED; on by default).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns counting on or off for the whole process (the runner does it
/// from the settings; the two-hop bench compares both).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

struct Entry {
    name: String,
    collect: &'static dyn Collect,
    any: &'static (dyn Any + Send + Sync),
}

struct Identity {
    name: String,
    version: String,
    instance: String,
}

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static IDENTITY: Mutex<Option<Identity>> = Mutex::new(None);
static SERVICE_NAME: OnceLock<Box<str>> = OnceLock::new();

/// Names the process: `service_name` of the spanmetrics series and the
/// `target_info` series. Telemetry init calls it with the spans' own
/// service.name, version and instance id.
pub fn set_service(name: &str, version: &str, instance: &str) {
    let _ = SERVICE_NAME.set(name.into());
    *IDENTITY.lock().unwrap_or_else(|e| e.into_inner()) = Some(Identity {
        name: name.to_owned(),
        version: version.to_owned(),
        instance: instance.to_owned(),
    });
}

/// The service name set by [`set_service`] (empty before).
pub fn service_name() -> &'static str {
    SERVICE_NAME.get().map_or("", |s| s)
}

/// Registers `make()` under `name` once; later calls with the same name get
/// the same one (a different type under one name is a programming error).
fn register<T: Collect + Any + Send + Sync>(name: &str, make: impl FnOnce() -> T) -> &'static T {
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = registry.iter().find(|e| e.name == name) {
        return entry
            .any
            .downcast_ref::<T>()
            .unwrap_or_else(|| panic!("metric {name} is registered with another type"));
    }
    let made: &'static T = Box::leak(Box::new(make()));
    registry.push(Entry {
        name: name.to_owned(),
        collect: made,
        any: made,
    });
    made
}

/// Puts `collector` under `name`, replacing what was there (a process that
/// starts telemetry again, as tests do, reports its new pipeline).
pub fn set_collector<T: Collect + Any + Send + Sync>(name: &str, collector: T) {
    let made: &'static T = Box::leak(Box::new(collector));
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let entry = Entry {
        name: name.to_owned(),
        collect: made,
        any: made,
    };
    match registry.iter_mut().find(|e| e.name == name) {
        Some(existing) => *existing = entry,
        None => registry.push(entry),
    }
}

/// A counter family (`name` without `_total`: the exposition adds it).
pub fn counter(
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
) -> &'static Family<Counter> {
    register(name, || {
        Family::new(FamilyInfo {
            name,
            help,
            label_names,
            view: None,
        })
    })
}

/// A gauge family.
pub fn gauge(
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
) -> &'static Family<Gauge> {
    register(name, || {
        Family::new(FamilyInfo {
            name,
            help,
            label_names,
            view: None,
        })
    })
}

/// A histogram family: observations in the base unit of `bounds`, shown
/// divided by `scale` (`buckets::SECONDS` for durations observed in ns).
pub fn histogram(
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
    bounds: &'static [u64],
    scale: f64,
) -> &'static Family<HistogramSeries> {
    register(name, || {
        Family::new(FamilyInfo {
            name,
            help,
            label_names,
            view: Some((bounds, View { bounds, scale })),
        })
    })
}

/// A counter without labels.
pub fn single_counter(name: &'static str, help: &'static str) -> &'static Single<Counter> {
    register(name, || {
        Single::new(FamilyInfo {
            name,
            help,
            label_names: &[],
            view: None,
        })
    })
}

/// A gauge without labels.
pub fn single_gauge(name: &'static str, help: &'static str) -> &'static Single<Gauge> {
    register(name, || {
        Single::new(FamilyInfo {
            name,
            help,
            label_names: &[],
            view: None,
        })
    })
}

/// Everything registered, in `format`: `target_info` first, then every
/// family in the order it was first asked for.
pub fn render(format: Format) -> String {
    let mut out = Writer::new(format);
    if let Some(id) = IDENTITY.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        out.family(
            "target_info",
            "The process these metrics come from (OpenTelemetry resource).",
            Kind::Info,
        );
        out.info(
            "target_info",
            &expo::render_labels(&[
                ("service_name", &id.name),
                ("service_namespace", "autobot"),
                ("service_version", &id.version),
                ("service_instance_id", &id.instance),
            ]),
        );
    }
    // Collect outside the lock would need copies of the list; a scrape
    // holds it only against registrations (never taken by a request).
    let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    for entry in registry.iter() {
        entry.collect.collect(&mut out);
    }
    out.finish()
}
