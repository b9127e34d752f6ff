//! [`RecentCache`]: a few recently used bound series handles, oldest replaced first.

/// A small cache of bound series handles ([`BoundHistogram`], [`BoundCounter`], …) for
/// instrumentation whose keys drift over its life (the database a connection has selected,
/// the destinations a channel publishes to), owned by one connection or behind the caller's
/// lock.
///
/// Lookups scan the entries; once `capacity` entries are held, a new key replaces the entry
/// inserted longest ago, so memory stays bounded whatever the keys. For a table shared
/// between threads without a lock, where the keys are few and fixed, see
/// [`BoundCache`](super::BoundCache).
///
/// [`BoundHistogram`]: super::BoundHistogram
/// [`BoundCounter`]: super::BoundCounter
///
/// ```
/// use opentelemetry::{Context, KeyValue};
/// use otel_core::metrics::{BoundHistogram, Metrics, RecentCache};
///
/// let metrics = Metrics::default();
/// let duration = metrics.f64_histogram("db.duration").with_unit("s").build();
/// let mut cache: RecentCache<&'static str, BoundHistogram> = RecentCache::new(2);
/// for (command, secs) in [("GET", 0.25), ("SET", 0.5), ("DEL", 0.1), ("GET", 0.75)] {
///     let bound = cache.get_or_insert_with(
///         |key| *key == command,
///         || (command, duration.bind(&[KeyValue::new("command", command)])),
///     );
///     bound.record_with_context(secs, &Context::current());
/// }
/// // DEL replaced GET, the oldest; the second GET then replaced SET.
/// assert_eq!(cache.len(), 2);
/// let gets = duration.percentiles(&[KeyValue::new("command", "GET")]).expect("recorded");
/// assert_eq!(gets.count, 2);
/// ```
#[derive(Debug, Clone)]
pub struct RecentCache<K, V> {
    entries: Vec<(K, V)>,
    capacity: usize,
    /// The entry to replace next once full (the oldest).
    next: usize,
}

impl<K, V> RecentCache<K, V> {
    /// An empty cache of at most `capacity` entries (at least one).
    ///
    /// ```
    /// use otel_core::metrics::RecentCache;
    ///
    /// let cache: RecentCache<u16, ()> = RecentCache::new(8);
    /// assert!(cache.is_empty());
    /// ```
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Vec::new(),
            capacity: capacity.max(1),
            next: 0,
        }
    }

    /// The value of the first entry whose key `matches`; if there is none, the entry `make`
    /// returns, inserted in place of the oldest one when the cache is full.
    ///
    /// ```
    /// use otel_core::metrics::RecentCache;
    ///
    /// let mut cache: RecentCache<String, usize> = RecentCache::new(4);
    /// let len = *cache.get_or_insert_with(|k| k == "orders", || ("orders".to_owned(), 6));
    /// assert_eq!(len, 6);
    /// // Found: `make` is not called again.
    /// let again = *cache.get_or_insert_with(|k| k == "orders", || unreachable!());
    /// assert_eq!(again, 6);
    /// ```
    pub fn get_or_insert_with(
        &mut self,
        matches: impl Fn(&K) -> bool,
        make: impl FnOnce() -> (K, V),
    ) -> &V {
        let index = match self.entries.iter().position(|(key, _)| matches(key)) {
            Some(index) => index,
            None if self.entries.len() < self.capacity => {
                self.entries.push(make());
                self.entries.len() - 1
            }
            None => {
                let index = self.next;
                self.next = (self.next + 1) % self.capacity;
                self.entries[index] = make();
                index
            }
        };
        &self.entries[index].1
    }

    /// How many entries the cache holds.
    ///
    /// ```
    /// use otel_core::metrics::RecentCache;
    ///
    /// let mut cache = RecentCache::new(1);
    /// cache.get_or_insert_with(|k: &u8| *k == 1, || (1, "one"));
    /// cache.get_or_insert_with(|k: &u8| *k == 2, || (2, "two"));
    /// assert_eq!(cache.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds no entry.
    ///
    /// ```
    /// use otel_core::metrics::RecentCache;
    ///
    /// let cache: RecentCache<u8, u8> = RecentCache::new(4);
    /// assert!(cache.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K, V> Default for RecentCache<K, V> {
    /// A cache of 16 entries.
    fn default() -> Self {
        Self::new(16)
    }
}

#[cfg(test)]
mod tests {
    use super::RecentCache;

    #[test]
    fn replaces_the_oldest_entry_once_full() {
        let mut cache = RecentCache::new(3);
        let mut made = Vec::new();
        for key in [1, 2, 3, 1, 4, 5, 1, 6] {
            cache.get_or_insert_with(
                |k| *k == key,
                || {
                    made.push(key);
                    (key, key * 10)
                },
            );
        }
        // 4 replaced 1 (the oldest), 5 replaced 2, then 1 came back in place of 3, and 6
        // replaced 4.
        assert_eq!(made, [1, 2, 3, 4, 5, 1, 6]);
        let mut keys: Vec<_> = cache.entries.iter().map(|(k, v)| (*k, *v)).collect();
        keys.sort_unstable();
        assert_eq!(keys, [(1, 10), (5, 50), (6, 60)]);
    }
}
