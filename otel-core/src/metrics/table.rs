//! The per-instrument series table: attribute hashing, lookup without allocation, cardinality
//! limit and the overflow series.
//!
//! Layout: a fixed-capacity open-addressing table of write-once slots
//! (`OnceLock<Arc<Series<D>>>`), split into lazily allocated chunks. Series are never removed
//! (temporality is cumulative), so a slot, once filled, never changes: readers probe with plain
//! acquire loads — no lock, no reference-count traffic, no allocation — and stop at the first
//! empty slot. Insertion (the first record of a new attribute set) takes a per-instrument mutex,
//! re-probes and fills the first empty slot. The capacity is at least twice the cardinality
//! limit, so the load factor stays below one half and probes stay short.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use opentelemetry::{Array, KeyValue, Value};

/// Key of the attribute marking the overflow series, from the OpenTelemetry metrics SDK
/// specification ("Cardinality limits"); it is not a semantic-convention attribute, so the
/// semantic-conventions crate has no constant for it.
pub(crate) const OVERFLOW_KEY: &str = "otel.metric.overflow";

/// Number of slots per lazily allocated chunk of the table.
const CHUNK: usize = 64;

/// One attribute set (series) of one instrument and its aggregation cells.
#[derive(Debug)]
pub(crate) struct Series<D> {
    /// Attributes without duplicate keys (last value wins), sorted by key.
    pub(crate) attributes: Box<[KeyValue]>,
    /// Order-independent hash of `attributes` (see [`hash_attributes`]).
    hash: u64,
    /// When the series was created: the start of its cumulative aggregation.
    pub(crate) start_time: SystemTime,
    /// Whether this is the overflow series.
    pub(crate) overflow: bool,
    /// The aggregation cells.
    pub(crate) data: D,
}

type Chunk<D> = Box<[OnceLock<Arc<Series<D>>>]>;

/// Fixed-capacity table of series with a cardinality limit.
#[derive(Debug)]
pub(crate) struct SeriesTable<D> {
    chunks: Box<[OnceLock<Chunk<D>>]>,
    mask: usize,
    /// Number of regular (non-overflow) series.
    len: AtomicUsize,
    /// Most regular series the table accepts; the overflow series is the `limit`-th.
    max_regular: usize,
    insert: Mutex<()>,
    overflow: OnceLock<Arc<Series<D>>>,
}

impl<D> SeriesTable<D> {
    /// A table that holds at most `cardinality_limit` series, the overflow series included.
    pub(crate) fn new(cardinality_limit: usize) -> Self {
        let limit = cardinality_limit.max(1);
        let capacity = (limit.saturating_mul(2)).max(CHUNK).next_power_of_two();
        let chunks = (0..capacity / CHUNK).map(|_| OnceLock::new()).collect();
        Self {
            chunks,
            mask: capacity - 1,
            len: AtomicUsize::new(0),
            max_regular: limit - 1,
            insert: Mutex::new(()),
            overflow: OnceLock::new(),
        }
    }

    /// The series for `attributes` (hashed as `hash`), created with `make` on first use, or the
    /// overflow series once the cardinality limit is reached.
    ///
    /// Steady state (series exists): lock-free and allocation-free.
    #[inline]
    pub(crate) fn get_or_insert(
        &self,
        hash: u64,
        attributes: &[KeyValue],
        make: impl FnOnce() -> D,
    ) -> &Series<D> {
        match self.probe(hash, attributes) {
            Probe::Found(series) => series,
            Probe::Vacant(_) | Probe::Full => self.insert_slow(hash, attributes, make),
        }
    }

    #[inline]
    fn probe(&self, hash: u64, attributes: &[KeyValue]) -> Probe<'_, D> {
        let mut index = (hash as usize) & self.mask;
        for _ in 0..=self.mask {
            let Some(chunk) = self.chunks[index / CHUNK].get() else {
                return Probe::Vacant(index);
            };
            match chunk[index % CHUNK].get() {
                None => return Probe::Vacant(index),
                Some(series) => {
                    if series.hash == hash && attributes_match(attributes, &series.attributes) {
                        return Probe::Found(series);
                    }
                }
            }
            index = (index + 1) & self.mask;
        }
        Probe::Full
    }

    #[cold]
    #[inline(never)]
    fn insert_slow(
        &self,
        hash: u64,
        attributes: &[KeyValue],
        make: impl FnOnce() -> D,
    ) -> &Series<D> {
        // Past the limit, new attribute sets go straight to the overflow series without taking
        // the insertion lock, so a cardinality explosion does not serialise recording threads.
        if self.len.load(Ordering::Acquire) >= self.max_regular {
            return self.overflow_series(make);
        }
        let _guard = self
            .insert
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let index = match self.probe(hash, attributes) {
            Probe::Found(series) => return series,
            Probe::Full => return self.overflow_series(make),
            Probe::Vacant(index) => index,
        };
        if self.len.load(Ordering::Acquire) >= self.max_regular {
            return self.overflow_series(make);
        }
        let series = Arc::new(Series {
            attributes: canonical_attributes(attributes),
            hash,
            start_time: SystemTime::now(),
            overflow: false,
            data: make(),
        });
        let chunk = self.chunks[index / CHUNK]
            .get_or_init(|| (0..CHUNK).map(|_| OnceLock::new()).collect());
        let slot = &chunk[index % CHUNK];
        // Only this thread (holding `insert`) fills slots, and the probe saw this one empty.
        let series = slot.get_or_init(|| series);
        self.len.fetch_add(1, Ordering::Release);
        series
    }

    fn overflow_series(&self, make: impl FnOnce() -> D) -> &Series<D> {
        self.overflow.get_or_init(|| {
            let attributes: Box<[KeyValue]> = Box::new([KeyValue::new(OVERFLOW_KEY, true)]);
            Arc::new(Series {
                hash: hash_attributes(&attributes),
                attributes,
                start_time: SystemTime::now(),
                overflow: true,
                data: make(),
            })
        })
    }

    /// Every series (regular ones, then the overflow series if it exists).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Series<D>)) {
        for chunk in self.chunks.iter().filter_map(OnceLock::get) {
            for series in chunk.iter().filter_map(OnceLock::get) {
                f(series);
            }
        }
        if let Some(series) = self.overflow.get() {
            f(series);
        }
    }

    /// The existing series for `attributes`, if any (never creates one).
    pub(crate) fn get(&self, attributes: &[KeyValue]) -> Option<&Series<D>> {
        match self.probe(hash_attributes(attributes), attributes) {
            Probe::Found(series) => Some(series),
            Probe::Vacant(_) | Probe::Full => None,
        }
    }

    /// The overflow series, if it exists.
    pub(crate) fn overflow(&self) -> Option<&Series<D>> {
        self.overflow.get().map(|series| &**series)
    }
}

enum Probe<'a, D> {
    Found(&'a Series<D>),
    Vacant(usize),
    Full,
}

// ---------------------------------------------------------------------------------------------
// Attribute hashing and comparison.
//
// Attribute sets are compared as sets: order does not matter and, for a duplicated key, the last
// value wins (as the OpenTelemetry SDKs do). Both the hash and the comparison skip "shadowed"
// entries (an entry whose key appears again later in the slice) without allocating: attribute
// lists are short, so the quadratic scan is cheaper than building a sorted copy.
// ---------------------------------------------------------------------------------------------

/// Order-independent hash of an attribute set.
#[inline]
pub(crate) fn hash_attributes(attributes: &[KeyValue]) -> u64 {
    let seed = seed();
    let mut combined: u64 = 0;
    let mut count: u64 = 0;
    for (i, kv) in attributes.iter().enumerate() {
        if is_shadowed(attributes, i) {
            continue;
        }
        let mut hasher = FastHasher::new(seed);
        hash_key_value(kv, &mut hasher);
        combined = combined.wrapping_add(fmix64(hasher.finish()));
        count += 1;
    }
    fmix64(combined ^ count.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

#[inline]
fn is_shadowed(attributes: &[KeyValue], i: usize) -> bool {
    let key = attributes[i].key.as_str();
    attributes[i + 1..].iter().any(|kv| kv.key.as_str() == key)
}

/// `raw` (any order, possibly with duplicate keys) denotes the same set as `canonical`
/// (unique keys).
#[inline]
pub(crate) fn attributes_match(raw: &[KeyValue], canonical: &[KeyValue]) -> bool {
    if raw.len() == canonical.len() {
        // Fast path: no duplicates possible when every raw entry matches a distinct canonical
        // entry; the common case is also the same order.
        if raw
            .iter()
            .zip(canonical)
            .all(|(a, b)| a.key == b.key && value_eq(&a.value, &b.value))
        {
            return true;
        }
    }
    let mut matched = 0;
    for (i, kv) in raw.iter().enumerate() {
        if is_shadowed(raw, i) {
            continue;
        }
        match canonical.iter().find(|c| c.key == kv.key) {
            Some(c) if value_eq(&c.value, &kv.value) => matched += 1,
            _ => return false,
        }
    }
    matched == canonical.len()
}

/// Attribute values equal, with floats compared by bit pattern (so a NaN attribute value
/// denotes one series instead of a new series per call).
pub(crate) fn value_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(Array::F64(x)), Value::Array(Array::F64(y))) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| x.to_bits() == y.to_bits())
        }
        _ => a == b,
    }
}

/// Deduplicated (last value wins) and key-sorted copy of an attribute set.
pub(crate) fn canonical_attributes(attributes: &[KeyValue]) -> Box<[KeyValue]> {
    let mut out: Vec<KeyValue> = attributes
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_shadowed(attributes, *i))
        .map(|(_, kv)| kv.clone())
        .collect();
    out.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    out.into_boxed_slice()
}

fn hash_key_value(kv: &KeyValue, hasher: &mut FastHasher) {
    hasher.write(kv.key.as_str().as_bytes());
    hasher.write_u8(0xff);
    match &kv.value {
        Value::Bool(b) => {
            hasher.write_u8(1);
            hasher.write_u8(u8::from(*b));
        }
        Value::I64(i) => {
            hasher.write_u8(2);
            hasher.write_u64(*i as u64);
        }
        Value::F64(f) => {
            hasher.write_u8(3);
            hasher.write_u64(f.to_bits());
        }
        Value::String(s) => {
            hasher.write_u8(4);
            hasher.write(s.as_str().as_bytes());
        }
        Value::Array(array) => {
            hasher.write_u8(5);
            match array {
                Array::Bool(v) => v.iter().for_each(|b| hasher.write_u8(u8::from(*b))),
                Array::I64(v) => v.iter().for_each(|i| hasher.write_u64(*i as u64)),
                Array::F64(v) => v.iter().for_each(|f| hasher.write_u64(f.to_bits())),
                Array::String(v) => v.iter().for_each(|s| {
                    hasher.write(s.as_str().as_bytes());
                    hasher.write_u8(0xff);
                }),
                // `Array` is non-exhaustive: unknown kinds hash by their debug form (rare, and
                // only hashing; equality still uses `PartialEq`).
                other => hasher.write(format!("{other:?}").as_bytes()),
            }
        }
        other => hasher.write(format!("{other:?}").as_bytes()),
    }
}

/// Per-process random seed, so attribute values chosen by a remote party cannot be crafted to
/// collide (the table is bounded anyway; this keeps probes short).
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64))
}

/// A small multiply-rotate hasher in the style of FxHash, finalised with `fmix64`.
///
/// Written here rather than added as a dependency: it is a dozen lines, and the standard
/// library's SipHash costs several times more per attribute on the recording path.
struct FastHasher {
    state: u64,
}

impl FastHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    #[inline]
    fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    #[inline]
    fn add(&mut self, word: u64) {
        self.state = (self.state ^ word).wrapping_mul(Self::K).rotate_left(26);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
        self.add(bytes.len() as u64);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}

/// MurmurHash3's 64-bit finaliser: spreads every input bit over the whole word.
#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kv(k: &'static str, v: impl Into<Value>) -> KeyValue {
        KeyValue::new(k, v)
    }

    #[test]
    fn hash_ignores_order_and_shadowed_duplicates() {
        let a = [kv("a", 1), kv("b", "x")];
        let b = [kv("b", "x"), kv("a", 1)];
        let c = [kv("a", 7), kv("b", "x"), kv("a", 1)];
        assert_eq!(hash_attributes(&a), hash_attributes(&b));
        assert_eq!(hash_attributes(&a), hash_attributes(&c));
        assert_ne!(
            hash_attributes(&a),
            hash_attributes(&[kv("a", 2), kv("b", "x")])
        );
        assert_ne!(hash_attributes(&a), hash_attributes(&[kv("a", 1)]));
        // Same bytes, different types.
        assert_ne!(
            hash_attributes(&[kv("a", 1)]),
            hash_attributes(&[kv("a", 1.0)])
        );
    }

    #[test]
    fn match_is_set_equality() {
        let canonical = canonical_attributes(&[kv("b", "x"), kv("a", 1)]);
        assert_eq!(canonical[0].key.as_str(), "a");
        assert!(attributes_match(&[kv("a", 1), kv("b", "x")], &canonical));
        assert!(attributes_match(&[kv("b", "x"), kv("a", 1)], &canonical));
        assert!(attributes_match(
            &[kv("a", 3), kv("b", "x"), kv("a", 1)],
            &canonical
        ));
        assert!(!attributes_match(&[kv("a", 1)], &canonical));
        assert!(!attributes_match(&[kv("a", 1), kv("b", "y")], &canonical));
        assert!(!attributes_match(&[kv("a", 1), kv("c", "x")], &canonical));
        let nan = canonical_attributes(&[kv("f", f64::NAN)]);
        assert!(attributes_match(&[kv("f", f64::NAN)], &nan));
    }

    #[test]
    fn table_limits_cardinality_and_overflows() {
        let table: SeriesTable<()> = SeriesTable::new(4);
        for i in 0..10_i64 {
            let attrs = [kv("i", i)];
            table.get_or_insert(hash_attributes(&attrs), &attrs, || ());
        }
        let mut regular = 0;
        let mut overflow = 0;
        table.for_each(|s| {
            if s.overflow {
                overflow += 1
            } else {
                regular += 1
            }
        });
        assert_eq!((regular, overflow), (3, 1));
        // Existing series are still found, new ones land in overflow.
        let attrs = [kv("i", 0_i64)];
        assert!(
            !table
                .get_or_insert(hash_attributes(&attrs), &attrs, || ())
                .overflow
        );
        let attrs = [kv("i", 99_i64)];
        assert!(
            table
                .get_or_insert(hash_attributes(&attrs), &attrs, || ())
                .overflow
        );
        assert!(table.get(&[kv("i", 1_i64)]).is_some());
        assert!(table.get(&[kv("i", 5_i64)]).is_none());
    }

    #[test]
    fn table_with_many_series_finds_every_one() {
        let table: SeriesTable<i64> = SeriesTable::new(2000);
        for i in 0..1999_i64 {
            let attrs = [kv("route", format!("/r/{i}")), kv("i", i)];
            table.get_or_insert(hash_attributes(&attrs), &attrs, || i);
        }
        for i in 0..1999_i64 {
            let attrs = [kv("i", i), kv("route", format!("/r/{i}"))];
            let s = table.get_or_insert(hash_attributes(&attrs), &attrs, || -1);
            assert_eq!(s.data, i);
        }
        assert!(table.overflow().is_none());
    }
}
