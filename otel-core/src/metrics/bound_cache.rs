//! [`BoundCache`]: bound series handles found by a small key, without a lock.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A bounded, append-only table of bound series handles ([`BoundHistogram`],
/// [`BoundCounter`], …) found by a small key, for instrumentation that records into a
/// handful of attribute sets over and over (one per route and status, per command, per
/// destination).
///
/// Lookups take no lock and allocate nothing: they scan the filled slots. An insert takes the
/// next free slot; two threads inserting the same key at once may both get a slot, which is
/// harmless (both handles resolve to the same series). Once the table is full,
/// [`get_or_insert_with`](Self::get_or_insert_with) returns `None` and the caller records
/// through the unbound instrument, so a high-cardinality key costs lookups, never memory.
///
/// [`BoundHistogram`]: super::BoundHistogram
/// [`BoundCounter`]: super::BoundCounter
///
/// ```
/// use opentelemetry::{Context, KeyValue};
/// use otel_core::metrics::{BoundCache, BoundHistogram, Metrics};
///
/// let metrics = Metrics::default();
/// let duration = metrics.f64_histogram("app.duration").with_unit("s").build();
/// let cache: BoundCache<&'static str, BoundHistogram> = BoundCache::new(16);
/// for (op, secs) in [("get", 0.25), ("set", 0.5), ("get", 0.75)] {
///     let bound = cache.get_or_insert_with(
///         |key| *key == op,
///         || (op, duration.bind(&[KeyValue::new("op", op)])),
///     );
///     match bound {
///         Some(bound) => bound.record_with_context(secs, &Context::current()),
///         None => duration.record(secs, &[KeyValue::new("op", op)]),
///     }
/// }
/// assert_eq!(cache.len(), 2);
/// let gets = duration.percentiles(&[KeyValue::new("op", "get")]).expect("recorded");
/// assert_eq!(gets.count, 2);
/// ```
#[derive(Debug)]
pub struct BoundCache<K, V> {
    slots: Box<[OnceLock<(K, V)>]>,
    next: AtomicUsize,
}

impl<K, V> BoundCache<K, V> {
    /// An empty table of at most `capacity` entries.
    ///
    /// ```
    /// use otel_core::metrics::BoundCache;
    ///
    /// let cache: BoundCache<u16, ()> = BoundCache::new(8);
    /// assert!(cache.is_empty());
    /// ```
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: (0..capacity).map(|_| OnceLock::new()).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The value of the first entry whose key `matches`; otherwise a new entry made by
    /// `make`, or `None` when the table is full.
    ///
    /// ```
    /// use otel_core::metrics::BoundCache;
    ///
    /// let cache = BoundCache::new(1);
    /// assert_eq!(cache.get_or_insert_with(|k| *k == 1, || (1, "one")), Some(&"one"));
    /// assert_eq!(cache.get_or_insert_with(|k| *k == 1, || (1, "uno")), Some(&"one"));
    /// assert_eq!(cache.get_or_insert_with(|k| *k == 2, || (2, "two")), None);
    /// ```
    #[inline]
    pub fn get_or_insert_with(
        &self,
        matches: impl Fn(&K) -> bool,
        make: impl FnOnce() -> (K, V),
    ) -> Option<&V> {
        let filled = self.next.load(Ordering::Acquire).min(self.slots.len());
        for slot in &self.slots[..filled] {
            if let Some((key, value)) = slot.get()
                && matches(key)
            {
                return Some(value);
            }
        }
        self.insert(make)
    }

    #[cold]
    fn insert(&self, make: impl FnOnce() -> (K, V)) -> Option<&V> {
        if self.next.load(Ordering::Relaxed) >= self.slots.len() {
            return None;
        }
        let index = self.next.fetch_add(1, Ordering::AcqRel);
        let slot = self.slots.get(index)?;
        let _ = slot.set(make());
        slot.get().map(|(_, value)| value)
    }

    /// The number of entries.
    ///
    /// ```
    /// use otel_core::metrics::BoundCache;
    ///
    /// let cache = BoundCache::new(4);
    /// cache.get_or_insert_with(|k| *k == 'a', || ('a', ()));
    /// assert_eq!(cache.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.get().is_some())
            .count()
    }

    /// Whether the table has no entry.
    ///
    /// ```
    /// use otel_core::metrics::BoundCache;
    ///
    /// assert!(BoundCache::<u8, u8>::new(4).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn concurrent_inserts_stay_bounded_and_find_their_keys() {
        let cache = Arc::new(BoundCache::new(8));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || {
                    for i in 0..100_u32 {
                        let key = (i + t) % 12;
                        if let Some(v) = cache.get_or_insert_with(|k| *k == key, || (key, key * 10))
                        {
                            assert_eq!(*v, key * 10);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(cache.len(), 8);
        assert!(cache.next.load(Ordering::Relaxed) >= 8);
    }
}
