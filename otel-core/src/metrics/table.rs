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

use std::hash::BuildHasher;
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

/// The highest cardinality limit a table takes: larger ones are lowered to it (the slot
/// index is sized up front).
pub(crate) const MAX_CARDINALITY_LIMIT: usize = 1 << 20;

/// The attributes of a bound series handle and the series, looked up on first use (so a
/// handle made before the instrument records, or while it is disabled, costs no series).
#[derive(Debug)]
pub(crate) struct LazySeries<D> {
    pub(crate) attributes: Arc<[KeyValue]>,
    series: OnceLock<Arc<Series<D>>>,
}

impl<D> Clone for LazySeries<D> {
    fn clone(&self) -> Self {
        Self {
            attributes: Arc::clone(&self.attributes),
            series: self.series.clone(),
        }
    }
}

impl<D> LazySeries<D> {
    pub(crate) fn new(attributes: &[KeyValue]) -> Self {
        Self {
            attributes: attributes.into(),
            series: OnceLock::new(),
        }
    }

    /// The series, found with `lookup` (given the attributes) the first time.
    #[inline]
    pub(crate) fn get(&self, lookup: impl FnOnce(&[KeyValue]) -> Arc<Series<D>>) -> &Series<D> {
        match self.series.get() {
            Some(series) => series,
            None => self.series.get_or_init(|| lookup(&self.attributes)),
        }
    }
}

/// One attribute set (series) of one instrument and its aggregation cells.
#[derive(Debug)]
pub(crate) struct Series<D> {
    /// Attributes without duplicate keys (last value wins), in the order of the first record
    /// (so the common same-order lookup compares pairwise).
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
    /// A table that holds at most `cardinality_limit` series (at most
    /// [`MAX_CARDINALITY_LIMIT`]), the overflow series included.
    pub(crate) fn new(cardinality_limit: usize) -> Self {
        let limit = cardinality_limit.clamp(1, MAX_CARDINALITY_LIMIT);
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
    ) -> &Arc<Series<D>> {
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
    ) -> &Arc<Series<D>> {
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
            attributes: dedup_attributes(attributes),
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

    fn overflow_series(&self, make: impl FnOnce() -> D) -> &Arc<Series<D>> {
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
            Probe::Found(series) => Some(&**series),
            Probe::Vacant(_) | Probe::Full => None,
        }
    }

    /// The overflow series, if it exists.
    pub(crate) fn overflow(&self) -> Option<&Series<D>> {
        self.overflow.get().map(|series| &**series)
    }
}

impl<D> std::fmt::Debug for SeriesTable<D> {
    /// Sizes only: the series themselves are read through snapshots.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesTable")
            .field("series", &self.len.load(Ordering::Relaxed))
            .field("overflow", &self.overflow.get().is_some())
            .field("capacity", &(self.mask + 1))
            .finish()
    }
}

enum Probe<'a, D> {
    Found(&'a Arc<Series<D>>),
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
///
/// Each `key=value` pair is hashed on its own (so the sum does not depend on order) with a
/// folded-multiply string hash that reads short strings in one or two loads; a pair whose key
/// appears again later in the slice is skipped. Key hashes are kept on the stack so that the
/// duplicate check compares integers, not strings.
#[inline]
pub(crate) fn hash_attributes(attributes: &[KeyValue]) -> u64 {
    const INLINE: usize = 16;
    let seed = seed();
    let n = attributes.len();
    let mut combined: u64 = 0;
    let mut count: u64 = 0;
    if n <= INLINE {
        let mut key_hashes = [0u64; INLINE];
        for (slot, kv) in key_hashes.iter_mut().zip(attributes) {
            *slot = str_hash(kv.key.as_str().as_bytes(), seed);
        }
        for i in 0..n {
            let shadowed = (i + 1..n).any(|j| {
                key_hashes[j] == key_hashes[i]
                    && str_eq(attributes[j].key.as_str(), attributes[i].key.as_str())
            });
            if shadowed {
                continue;
            }
            combined = combined.wrapping_add(pair_hash(key_hashes[i], &attributes[i].value, seed));
            count += 1;
        }
    } else {
        for (i, kv) in attributes.iter().enumerate() {
            if is_shadowed(attributes, i) {
                continue;
            }
            let key_hash = str_hash(kv.key.as_str().as_bytes(), seed);
            combined = combined.wrapping_add(pair_hash(key_hash, &kv.value, seed));
            count += 1;
        }
    }
    fmix64(combined ^ count.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

#[inline]
fn is_shadowed(attributes: &[KeyValue], i: usize) -> bool {
    let key = attributes[i].key.as_str();
    attributes[i + 1..]
        .iter()
        .any(|kv| str_eq(kv.key.as_str(), key))
}

/// String equality that skips the byte comparison when both sides are the same string
/// (typical for `&'static str` keys and shared `Arc<str>` values).
#[inline]
fn str_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a == b)
}

/// Keys equal (see [`str_eq`]).
#[inline]
fn key_eq(a: &KeyValue, b: &KeyValue) -> bool {
    str_eq(a.key.as_str(), b.key.as_str())
}

/// `raw` (any order, possibly with duplicate keys) denotes the same set as `stored` (unique
/// keys, in the order the series was first recorded with).
#[inline]
pub(crate) fn attributes_match(raw: &[KeyValue], stored: &[KeyValue]) -> bool {
    // Fast path: callers pass their attributes in the same order every time.
    if raw.len() == stored.len()
        && raw
            .iter()
            .zip(stored)
            .all(|(a, b)| key_eq(a, b) && value_eq(&a.value, &b.value))
    {
        return true;
    }
    let mut matched = 0;
    for (i, kv) in raw.iter().enumerate() {
        if is_shadowed(raw, i) {
            continue;
        }
        match stored.iter().find(|c| key_eq(c, kv)) {
            Some(c) if value_eq(&c.value, &kv.value) => matched += 1,
            _ => return false,
        }
    }
    matched == stored.len()
}

/// Attribute values equal, with floats compared by bit pattern (so a NaN attribute value
/// denotes one series instead of a new series per call).
#[inline]
pub(crate) fn value_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => str_eq(x.as_str(), y.as_str()),
        (Value::I64(x), Value::I64(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(Array::F64(x)), Value::Array(Array::F64(y))) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| x.to_bits() == y.to_bits())
        }
        _ => a == b,
    }
}

/// The attributes without shadowed duplicates (last value wins), in first-recorded order.
pub(crate) fn dedup_attributes(attributes: &[KeyValue]) -> Box<[KeyValue]> {
    attributes
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_shadowed(attributes, *i))
        .map(|(_, kv)| kv.clone())
        .collect()
}

/// Deduplicated (last value wins) and key-sorted copy of an attribute set.
pub(crate) fn canonical_attributes(attributes: &[KeyValue]) -> Box<[KeyValue]> {
    let mut out = dedup_attributes(attributes).into_vec();
    out.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    out.into_boxed_slice()
}

/// A key-sorted copy (for snapshots).
pub(crate) fn sorted_attributes(attributes: &[KeyValue]) -> Vec<KeyValue> {
    let mut out = attributes.to_vec();
    out.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    out
}

/// Hash of one `key=value` pair from its key's hash.
#[inline]
fn pair_hash(key_hash: u64, value: &Value, seed: u64) -> u64 {
    folded_multiply(
        key_hash ^ 0x243f_6a88_85a3_08d3,
        value_hash(value, seed) ^ 0x1319_8a2e_0370_7344,
    )
}

#[inline]
fn value_hash(value: &Value, seed: u64) -> u64 {
    const TAG: [u64; 6] = [
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
        0x4528_21e6_38d0_1377,
        0xbe54_66cf_34e9_0c6c,
        0xc0ac_29b7_c97c_50dd,
        0x3f84_d5b5_b547_0917,
    ];
    match value {
        Value::String(s) => str_hash(s.as_str().as_bytes(), seed ^ TAG[0]),
        Value::I64(i) => folded_multiply(*i as u64 ^ seed, TAG[1]),
        Value::F64(f) => folded_multiply(f.to_bits() ^ seed, TAG[2]),
        Value::Bool(b) => folded_multiply(u64::from(*b) ^ seed, TAG[3]),
        Value::Array(array) => {
            let mut h = seed ^ TAG[4];
            match array {
                Array::Bool(v) => v
                    .iter()
                    .for_each(|b| h = folded_multiply(h ^ u64::from(*b), TAG[3])),
                Array::I64(v) => v
                    .iter()
                    .for_each(|i| h = folded_multiply(h ^ *i as u64, TAG[1])),
                Array::F64(v) => v
                    .iter()
                    .for_each(|f| h = folded_multiply(h ^ f.to_bits(), TAG[2])),
                Array::String(v) => v.iter().for_each(|s| {
                    h = folded_multiply(h ^ str_hash(s.as_str().as_bytes(), seed), TAG[0])
                }),
                // `Array` is non-exhaustive: unknown kinds hash by their debug form (rare, and
                // only hashing; equality still uses `PartialEq`).
                other => h = str_hash(format!("{other:?}").as_bytes(), h),
            }
            h
        }
        other => str_hash(format!("{other:?}").as_bytes(), seed ^ TAG[5]),
    }
}

/// A folded-multiply string hash in the style of wyhash/foldhash: strings up to 16 bytes take
/// one 128-bit multiply (two possibly overlapping loads), longer ones one per 16 bytes.
///
/// Written here rather than added as a dependency: it is a few lines, and the standard
/// library's SipHash costs several times more per attribute on the recording path.
#[inline]
fn str_hash(bytes: &[u8], seed: u64) -> u64 {
    const K0: u64 = 0x2d35_8dcc_aa6c_78a5;
    const K1: u64 = 0x8bb8_4b93_962e_acc9;
    let len = bytes.len();
    let (a, b) = if len <= 16 {
        if len >= 8 {
            (read_u64(&bytes[..8]), read_u64(&bytes[len - 8..]))
        } else if len >= 4 {
            (
                u64::from(read_u32(&bytes[..4])),
                u64::from(read_u32(&bytes[len - 4..])),
            )
        } else if len > 0 {
            (
                u64::from(bytes[0])
                    | u64::from(bytes[len / 2]) << 8
                    | u64::from(bytes[len - 1]) << 16,
                0,
            )
        } else {
            (0, 0)
        }
    } else {
        let mut h = seed;
        let mut chunks = bytes[..len - 1].chunks_exact(16);
        for chunk in &mut chunks {
            h = folded_multiply(read_u64(&chunk[..8]) ^ h ^ K0, read_u64(&chunk[8..]) ^ K1);
        }
        let tail = &bytes[len - 16..];
        return folded_multiply(
            folded_multiply(read_u64(&tail[..8]) ^ h ^ K0, read_u64(&tail[8..]) ^ K1),
            len as u64 ^ K0,
        );
    };
    folded_multiply(a ^ seed ^ K0, b ^ (len as u64) ^ K1)
}

#[inline]
fn read_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

#[inline]
fn read_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(word)
}

#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Per-process random seed, so attribute values chosen by a remote party cannot be crafted to
/// collide (the table is bounded anyway; this keeps probes short).
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64))
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
        let stored = dedup_attributes(&[kv("b", "x"), kv("a", 2), kv("a", 1)]);
        assert_eq!(&*stored, &[kv("b", "x"), kv("a", 1)]);
        assert!(attributes_match(&[kv("a", 1), kv("b", "x")], &stored));
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
