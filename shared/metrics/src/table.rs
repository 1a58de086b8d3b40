//! A fixed-capacity, insert-only hash table whose lookups take no lock and
//! allocate nothing: the way a request finds its pre-resolved label set.
//!
//! Each slot is a `OnceLock`: set once (the first request with a new label
//! set, on the cold path, allocates the entry) and never changed, so a
//! lookup is atomic loads and key comparisons. When every slot is taken the
//! table hands out its overflow entry, so a flood of new label values
//! (hosts, models) can neither grow memory nor lose a count.

use std::sync::OnceLock;

/// Lookups and inserts by a caller-computed hash and key comparison.
pub struct Table<K, V> {
    slots: Box<[OnceLock<(K, V)>]>,
    overflow: V,
}

impl<K, V> Table<K, V> {
    /// A table of `capacity` slots; `overflow` takes what does not fit.
    pub fn new(capacity: usize, overflow: V) -> Self {
        Self {
            slots: (0..capacity.max(1)).map(|_| OnceLock::new()).collect(),
            overflow,
        }
    }

    /// The entry whose key `matches`, inserted with `make` when absent.
    /// `make` runs at most once per call, only for a key not yet present.
    pub fn get_or_insert(
        &self,
        hash: u64,
        matches: impl Fn(&K) -> bool,
        make: impl FnOnce() -> (K, V),
    ) -> &V {
        let n = self.slots.len();
        let start = (hash as usize) % n;
        let mut make = Some(make);
        let mut made: Option<(K, V)> = None;
        for i in 0..n {
            let slot = &self.slots[(start + i) % n];
            if let Some((k, v)) = slot.get() {
                if matches(k) {
                    return v;
                }
                continue;
            }
            if made.is_none() {
                made = make.take().map(|f| f());
            }
            // Another thread may fill this slot first: then look at what it put.
            let (k, v) = slot.get_or_init(|| made.take().expect("made above"));
            if matches(k) {
                return v;
            }
        }
        &self.overflow
    }

    /// The overflow entry.
    pub fn overflow(&self) -> &V {
        &self.overflow
    }

    /// Every entry inserted so far (for exposition).
    pub fn entries(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slots
            .iter()
            .filter_map(|s| s.get().map(|(k, v)| (k, v)))
    }
}

/// FNV-1a over bytes: a fixed, fast hash for short label values.
#[derive(Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        self
    }

    pub fn u64(self, v: u64) -> Self {
        self.bytes(&v.to_le_bytes())
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_inserted_once_and_found_again() {
        let t: Table<String, u32> = Table::new(4, 0);
        let h = |s: &str| Fnv::default().bytes(s.as_bytes()).finish();
        let a = t.get_or_insert(h("a"), |k| k == "a", || ("a".into(), 1)) as *const u32;
        let again = t.get_or_insert(h("a"), |k| k == "a", || panic!("not made twice"));
        assert_eq!(a, again as *const u32);
        assert_eq!(
            *t.get_or_insert(h("b"), |k| k == "b", || ("b".into(), 2)),
            2
        );
        assert_eq!(t.entries().count(), 2);
    }

    #[test]
    fn colliding_hashes_and_a_full_table_go_on_or_overflow() {
        let t: Table<u32, u32> = Table::new(2, 99);
        assert_eq!(*t.get_or_insert(7, |k| *k == 1, || (1, 10)), 10);
        assert_eq!(*t.get_or_insert(7, |k| *k == 2, || (2, 20)), 20);
        assert_eq!(*t.get_or_insert(7, |k| *k == 3, || (3, 30)), 99);
        assert_eq!(*t.get_or_insert(7, |k| *k == 1, || (1, 0)), 10);
    }

    #[test]
    fn racing_inserts_of_one_key_make_one_entry() {
        let t: Table<u32, std::sync::atomic::AtomicU64> =
            Table::new(64, std::sync::atomic::AtomicU64::new(0));
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for k in 0..32u32 {
                        t.get_or_insert(
                            u64::from(k % 5),
                            |x| *x == k,
                            || (k, std::sync::atomic::AtomicU64::new(0)),
                        )
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(t.entries().count(), 32);
        for (_, v) in t.entries() {
            assert_eq!(v.load(std::sync::atomic::Ordering::Relaxed), 8);
        }
    }
}
