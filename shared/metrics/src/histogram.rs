//! Histograms as arrays of atomic bucket counters, and the exemplar each
//! bucket keeps of its latest sampled observation.
//!
//! Values are integers in a base unit (nanoseconds for durations, tokens,
//! bytes): a sum of integers is exact and needs one `fetch_add`. One storage
//! can be shown as several histograms whose boundaries are all among its
//! own (the HTTP server storage is both the semconv histogram in seconds and
//! the spanmetrics one in milliseconds, [`crate::buckets`]).

use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A trace id, as a number (the 16 bytes big-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceId(pub u128);

/// One bucket's latest exemplar, written without a lock: a writer claims the
/// slot by making its sequence odd (a second writer at that instant skips:
/// an exemplar is a sample, losing one is fine), a reader retries while the
/// sequence is odd or moved (a seqlock).
#[derive(Default)]
pub(crate) struct ExemplarSlot {
    seq: AtomicU64,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    value: AtomicU64,
    at_ms: AtomicU64,
}

/// An exemplar as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exemplar {
    pub trace_id: TraceId,
    /// In the storage's base unit.
    pub value: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl ExemplarSlot {
    fn write(&self, trace_id: TraceId, value: u64) {
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & 1 == 1
            || self
                .seq
                .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        fence(Ordering::Release);
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.trace_hi
            .store((trace_id.0 >> 64) as u64, Ordering::Relaxed);
        self.trace_lo.store(trace_id.0 as u64, Ordering::Relaxed);
        self.value.store(value, Ordering::Relaxed);
        self.at_ms.store(at_ms, Ordering::Relaxed);
        self.seq.store(seq + 2, Ordering::Release);
    }

    fn read(&self) -> Option<Exemplar> {
        for _ in 0..64 {
            let before = self.seq.load(Ordering::Acquire);
            if before == 0 {
                return None;
            }
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let hi = self.trace_hi.load(Ordering::Relaxed);
            let lo = self.trace_lo.load(Ordering::Relaxed);
            let value = self.value.load(Ordering::Relaxed);
            let at_ms = self.at_ms.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return Some(Exemplar {
                    trace_id: TraceId((u128::from(hi) << 64) | u128::from(lo)),
                    value,
                    at_ms,
                });
            }
        }
        None
    }
}

/// Bucket counts, their sum, and an exemplar per bucket.
pub struct Histogram {
    /// Inclusive upper bounds, ascending, in the base unit (the last bucket is +Inf).
    bounds: &'static [u64],
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    exemplars: Box<[ExemplarSlot]>,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds ascend");
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            exemplars: (0..=bounds.len())
                .map(|_| ExemplarSlot::default())
                .collect(),
        }
    }

    /// Counts one observation; a sampled one also becomes its bucket's exemplar.
    #[inline]
    pub fn observe(&self, value: u64, exemplar: Option<TraceId>) {
        let i = self.bounds.partition_point(|b| *b < value);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
        if let Some(trace_id) = exemplar {
            self.exemplars[i].write(trace_id, value);
        }
    }

    /// A duration, in nanoseconds.
    #[inline]
    pub fn observe_duration(&self, elapsed: Duration, exemplar: Option<TraceId>) {
        self.observe(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            exemplar,
        );
    }

    pub fn bounds(&self) -> &'static [u64] {
        self.bounds
    }

    /// Reads the histogram (non-cumulative counts, one per bucket).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            bounds: self.bounds,
            counts: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum: self.sum.load(Ordering::Relaxed),
            exemplars: self.exemplars.iter().map(ExemplarSlot::read).collect(),
        }
    }
}

/// What a histogram held when read; several can be added up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The storage's bounds, in its base unit.
    pub bounds: &'static [u64],
    /// Per bucket, not cumulative; the last is above every bound.
    pub counts: Vec<u64>,
    pub sum: u64,
    pub exemplars: Vec<Option<Exemplar>>,
}

impl Snapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds `other` (same bounds) into `self`; the later exemplar wins.
    pub fn merge(&mut self, other: &Snapshot) {
        if self.counts.is_empty() {
            *self = other.clone();
            return;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
        for (a, b) in self.exemplars.iter_mut().zip(&other.exemplars) {
            if let Some(b) = b
                && a.is_none_or(|a| a.at_ms <= b.at_ms)
            {
                *a = Some(*b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static BOUNDS: [u64; 3] = [10, 20, 30];

    #[test]
    fn an_observation_lands_in_the_first_bucket_whose_bound_it_does_not_pass() {
        let h = Histogram::new(&BOUNDS);
        for v in [0, 10, 11, 20, 30, 31, 1000] {
            h.observe(v, None);
        }
        let s = h.snapshot();
        assert_eq!(s.counts, vec![2, 2, 1, 2]);
        assert_eq!(s.sum, 1102);
        assert_eq!(s.count(), 7);
        assert!(s.exemplars.iter().all(Option::is_none));
    }

    #[test]
    fn a_sampled_observation_is_its_buckets_exemplar_until_a_later_one() {
        let h = Histogram::new(&BOUNDS);
        h.observe(15, Some(TraceId(1)));
        h.observe(16, Some(TraceId(2)));
        h.observe(17, None);
        let s = h.snapshot();
        let e = s.exemplars[1].expect("bucket 1 has one");
        assert_eq!((e.trace_id, e.value), (TraceId(2), 16));
        assert!(e.at_ms > 0);
        assert_eq!(s.exemplars[0], None);
    }

    #[test]
    fn exemplars_written_from_many_threads_are_never_torn() {
        let h = Histogram::new(&BOUNDS);
        std::thread::scope(|s| {
            for t in 1..=4u128 {
                let h = &h;
                s.spawn(move || {
                    for _ in 0..10_000 {
                        // Both halves of the id carry t, the value too.
                        h.observe(15, Some(TraceId((t << 64) | t)));
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..10_000 {
                    if let Some(e) = h.snapshot().exemplars[1] {
                        assert_eq!(e.trace_id.0 >> 64, e.trace_id.0 & u128::from(u64::MAX));
                    }
                }
            });
        });
        assert_eq!(h.snapshot().counts[1], 40_000);
    }
}
