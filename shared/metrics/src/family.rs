//! Counters, gauges and histograms with labels: each label set is resolved
//! once (the first time it is used, or up front by the service) and kept in
//! a [`Table`], so counting afterwards is a lookup without lock or allocation
//! and an atomic add. Hold on to the returned `&'static` series to skip even
//! the lookup.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::expo::{Kind, View, Writer, render_labels};
use crate::histogram::{Histogram, TraceId};
use crate::table::{Fnv, Table};
use crate::{Collect, Labels};

/// How many label sets a family holds before new ones share its overflow series.
const FAMILY_CAPACITY: usize = 512;

/// A monotonic count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }
    #[inline]
    pub fn add(&self, n: u64) {
        if crate::enabled() {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (an f64 stored as bits).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    #[inline]
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// What a family stores per label set.
pub trait Series: Send + Sync + 'static {
    const KIND: Kind;
    fn new(family: &FamilyInfo) -> Self;
    fn write(&self, name: &str, labels: &str, family: &FamilyInfo, out: &mut Writer);
}

/// A family's fixed description.
pub struct FamilyInfo {
    pub name: &'static str,
    pub help: &'static str,
    pub label_names: &'static [&'static str],
    /// Histograms: the storage's bounds and how they are shown.
    pub view: Option<(&'static [u64], View)>,
}

impl Series for Counter {
    const KIND: Kind = Kind::Counter;
    fn new(_: &FamilyInfo) -> Self {
        Self::default()
    }
    fn write(&self, name: &str, labels: &str, _: &FamilyInfo, out: &mut Writer) {
        out.counter(name, labels, self.get());
    }
}

impl Series for Gauge {
    const KIND: Kind = Kind::Gauge;
    fn new(_: &FamilyInfo) -> Self {
        Self::default()
    }
    fn write(&self, name: &str, labels: &str, _: &FamilyInfo, out: &mut Writer) {
        out.gauge(name, labels, self.get());
    }
}

/// A histogram series; [`HistogramSeries::observe`] respects the switch.
pub struct HistogramSeries(pub Histogram);

impl HistogramSeries {
    #[inline]
    pub fn observe(&self, value: u64, exemplar: Option<TraceId>) {
        if crate::enabled() {
            self.0.observe(value, exemplar);
        }
    }
    #[inline]
    pub fn observe_duration(&self, elapsed: std::time::Duration, exemplar: Option<TraceId>) {
        if crate::enabled() {
            self.0.observe_duration(elapsed, exemplar);
        }
    }
}

impl Series for HistogramSeries {
    const KIND: Kind = Kind::Histogram;
    fn new(family: &FamilyInfo) -> Self {
        let (storage, _) = family.view.expect("a histogram family has bounds");
        Self(Histogram::new(storage))
    }
    fn write(&self, name: &str, labels: &str, family: &FamilyInfo, out: &mut Writer) {
        let (_, view) = family.view.expect("a histogram family has bounds");
        out.histogram(name, labels, view, &self.0.snapshot());
    }
}

/// Series of one metric, by label values.
pub struct Family<S: Series> {
    info: FamilyInfo,
    table: Table<Labels, S>,
}

impl<S: Series> Family<S> {
    pub(crate) fn new(info: FamilyInfo) -> Self {
        let overflow = S::new(&info);
        Self {
            info,
            table: Table::new(FAMILY_CAPACITY, overflow),
        }
    }

    /// The series of these label values, in the order of the family's
    /// label names (a wrong count is a programming error).
    pub fn with(&self, values: &[&str]) -> &S {
        assert_eq!(
            values.len(),
            self.info.label_names.len(),
            "{} takes labels {:?}",
            self.info.name,
            self.info.label_names
        );
        let hash = values
            .iter()
            .fold(Fnv::default(), |h, v| h.bytes(v.as_bytes()))
            .finish();
        self.table.get_or_insert(
            hash,
            |labels| {
                labels
                    .values
                    .iter()
                    .map(|v| &**v)
                    .eq(values.iter().copied())
            },
            || {
                let pairs: Vec<(&str, &str)> = self
                    .info
                    .label_names
                    .iter()
                    .copied()
                    .zip(values.iter().copied())
                    .collect();
                (
                    Labels {
                        values: values.iter().map(|v| Box::<str>::from(*v)).collect(),
                        rendered: render_labels(&pairs).into(),
                    },
                    S::new(&self.info),
                )
            },
        )
    }
}

impl<S: Series> Collect for Family<S> {
    fn collect(&self, out: &mut Writer) {
        out.family(self.info.name, self.info.help, S::KIND);
        for (labels, series) in self.table.entries() {
            series.write(self.info.name, &labels.rendered, &self.info, out);
        }
        if self.table.entries().count() >= FAMILY_CAPACITY {
            self.table
                .overflow()
                .write(self.info.name, OVERFLOW_LABELS, &self.info, out);
        }
    }
}

/// The labels of the series that takes label sets past a family's capacity
/// (the OpenTelemetry SDK's name for it).
pub const OVERFLOW_LABELS: &str = "otel_metric_overflow=\"true\"";

/// A metric without labels.
pub struct Single<S: Series> {
    info: FamilyInfo,
    series: S,
}

impl<S: Series> Single<S> {
    pub(crate) fn new(info: FamilyInfo) -> Self {
        let series = S::new(&info);
        Self { info, series }
    }
}

impl<S: Series> std::ops::Deref for Single<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.series
    }
}

impl<S: Series> Collect for Single<S> {
    fn collect(&self, out: &mut Writer) {
        out.family(self.info.name, self.info.help, S::KIND);
        self.series.write(self.info.name, "", &self.info, out);
    }
}
