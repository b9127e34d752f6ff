//! Counters and up-down counters: the same series table and export path as histograms, with
//! a few striped atomics per series ([`SumCells`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::SystemTime;

use opentelemetry::KeyValue;

use super::config::MetricsConfig;
use super::registry::{Descriptor, Handle};
use super::snapshot::{SeriesData, SeriesSnapshot};
use super::stripes::{Padded, stripe_of};
use super::table::{LazySeries, Series, SeriesTable, hash_attributes, sorted_attributes};

/// A monotonic counter (e.g. requests served, bytes sent), exported as an OTLP monotonic sum
/// and an OpenMetrics `counter` (`…_total`).
///
/// Cheap to clone. Built with [`Metrics::u64_counter`](super::Metrics::u64_counter).
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::{Metrics, SnapshotExt};
///
/// let metrics = Metrics::default();
/// let retries = metrics
///     .u64_counter("app.retries")
///     .with_unit("{retry}")
///     .build();
/// retries.add(2, &[KeyValue::new("peer", "db")]);
/// retries.add(1, &[KeyValue::new("peer", "db")]);
/// let snapshot = metrics.snapshot();
/// let series = snapshot.find("app.retries").and_then(|m| m.series.first());
/// assert_eq!(series.and_then(|s| s.counter()), Some(3));
/// ```
#[derive(Clone, Debug)]
pub struct Counter {
    pub(crate) inner: Handle<SumInstrument<CounterCells>>,
}

impl Counter {
    /// Adds `value` to the series `attributes`. No global lock; no allocation once the series
    /// exists.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let sent = metrics.u64_counter("app.sent").with_unit("By").build();
    /// sent.add(512, &[KeyValue::new("queue", "orders")]);
    /// sent.add(256, &[KeyValue::new("queue", "orders")]);
    /// sent.add(64, &[KeyValue::new("queue", "audit")]);
    /// let snapshot = metrics.snapshot();
    /// let sent = snapshot.find("app.sent").expect("registered");
    /// let orders = sent.find_series(&[KeyValue::new("queue", "orders")]);
    /// assert_eq!(orders.and_then(|s| s.counter()), Some(768));
    /// ```
    #[inline]
    pub fn add(&self, value: u64, attributes: &[KeyValue]) {
        if let Some(instrument) = self.inner.get() {
            instrument.cell(attributes).add(value);
        }
    }

    /// Whether adding does anything (see [`Histogram::is_enabled`](super::Histogram::is_enabled)).
    ///
    /// ```
    /// use otel_core::metrics::Metrics;
    ///
    /// assert!(
    ///     Metrics::default()
    ///         .u64_counter("app.retries")
    ///         .build()
    ///         .is_enabled()
    /// );
    /// assert!(
    ///     !Metrics::noop()
    ///         .u64_counter("app.retries")
    ///         .build()
    ///         .is_enabled()
    /// );
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.inner.get().is_some()
    }
}

/// A counter that goes up and down (e.g. active requests, connections in use), exported as an
/// OTLP non-monotonic sum and an OpenMetrics `gauge`.
///
/// Cheap to clone. Built with
/// [`Metrics::i64_up_down_counter`](super::Metrics::i64_up_down_counter).
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::Metrics;
///
/// let metrics = Metrics::default();
/// let active = metrics
///     .i64_up_down_counter("http.server.active_requests")
///     .build();
/// let attributes = [KeyValue::new("http.request.method", "GET")];
/// active.add(1, &attributes);
/// // ... handle the request ...
/// active.add(-1, &attributes);
/// ```
#[derive(Clone, Debug)]
pub struct UpDownCounter {
    pub(crate) inner: Handle<SumInstrument<UpDownCells>>,
}

impl UpDownCounter {
    /// Adds `value` (negative to subtract) to the series `attributes`. No global lock; no
    /// allocation once the series exists.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let in_use = metrics
    ///     .i64_up_down_counter("db.client.connection.count")
    ///     .build();
    /// let attributes = [KeyValue::new("db.client.connection.state", "used")];
    /// in_use.add(3, &attributes);
    /// in_use.add(-1, &attributes);
    /// let snapshot = metrics.snapshot();
    /// let metric = snapshot
    ///     .find("db.client.connection.count")
    ///     .expect("registered");
    /// assert_eq!(
    ///     metric
    ///         .find_series(&attributes)
    ///         .and_then(|s| s.up_down_counter()),
    ///     Some(2)
    /// );
    /// ```
    #[inline]
    pub fn add(&self, value: i64, attributes: &[KeyValue]) {
        if let Some(instrument) = self.inner.get() {
            instrument.cell(attributes).add(value);
        }
    }

    /// Whether adding does anything (see [`Histogram::is_enabled`](super::Histogram::is_enabled)).
    ///
    /// ```
    /// use otel_core::metrics::Metrics;
    ///
    /// let metrics = Metrics::default();
    /// assert!(
    ///     metrics
    ///         .i64_up_down_counter("app.active")
    ///         .build()
    ///         .is_enabled()
    /// );
    /// // The name is taken by another kind of instrument: this one is disabled.
    /// assert!(!metrics.u64_counter("app.active").build().is_enabled());
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.inner.get().is_some()
    }
}

/// The cells of one counter series: one atomic per stripe, each on its own cache lines, so
/// that threads adding to the same series (an in-flight gauge raised and lowered on every
/// request) do not fight over one line. A read sums the stripes, as Java's `LongAdder` (the
/// OpenTelemetry Java SDK's sum cell) does: a read racing with adds on other threads may miss
/// some of them, and a monotonic counter still never reads lower than before.
#[derive(Debug)]
pub(crate) struct SumCells<A> {
    stripes: Box<[Padded<A>]>,
}

/// A monotonic counter's cells.
pub(crate) type CounterCells = SumCells<AtomicU64>;
/// An up-down counter's cells.
pub(crate) type UpDownCells = SumCells<AtomicI64>;

impl<A: Default> SumCells<A> {
    fn with_stripes(stripes: usize) -> Self {
        Self {
            stripes: (0..stripes.max(1)).map(|_| Padded(A::default())).collect(),
        }
    }

    /// This thread's stripe.
    #[inline]
    fn stripe(&self) -> &A {
        &self.stripes[stripe_of(self.stripes.len())].0
    }
}

/// The cells of a sum instrument's series.
pub(crate) trait SumCell: Send + Sync + 'static {
    /// What one add takes.
    type Value;
    /// Cells with `stripes` stripes.
    fn new(stripes: usize) -> Self;
    /// Adds `value` to this thread's stripe.
    fn add(&self, value: Self::Value);
    /// The sum of all stripes.
    fn read(&self) -> SeriesData;
}

/// The [`SumCell`] implementation for the cells of one atomic type; `$data` wraps their sum.
macro_rules! sum_cells {
    ($atomic:ty, $value:ty, $data:path) => {
        impl SumCell for SumCells<$atomic> {
            type Value = $value;

            fn new(stripes: usize) -> Self {
                Self::with_stripes(stripes)
            }

            #[inline]
            fn add(&self, value: $value) {
                self.stripe().fetch_add(value, Ordering::Relaxed);
            }

            fn read(&self) -> SeriesData {
                // The stripes are read one after the other: an add and a matching subtract
                // on two stripes in between (a request that moved threads) would show a
                // value the series never held (-1 active requests). Read until two passes
                // agree (a few tries; under constant change the last pass stands).
                let pass = || {
                    self.stripes
                        .iter()
                        .map(|s| s.0.load(Ordering::Acquire))
                        .collect::<Vec<_>>()
                };
                let mut last = pass();
                for _ in 0..4 {
                    let again = pass();
                    if again == last {
                        break;
                    }
                    last = again;
                }
                $data(last.iter().fold(0, |sum, v| sum.wrapping_add(*v)))
            }
        }
    };
}

sum_cells!(AtomicU64, u64, SeriesData::Counter);
sum_cells!(AtomicI64, i64, SeriesData::UpDownCounter);

/// The shared state of one counter or up-down counter.
#[derive(Debug)]
pub(crate) struct SumInstrument<C> {
    pub(crate) descriptor: Descriptor,
    table: SeriesTable<C>,
    stripes: usize,
}

impl<C: SumCell> SumInstrument<C> {
    pub(crate) fn new(descriptor: Descriptor, config: &MetricsConfig) -> Self {
        Self {
            descriptor,
            table: SeriesTable::new(config.cardinality_limit),
            stripes: config.effective_stripes(),
        }
    }

    #[inline]
    fn cell(&self, attributes: &[KeyValue]) -> &C {
        &self.series(attributes).data
    }

    /// The cell of a bound series (looked up on first use).
    #[inline]
    fn bound_cell<'a>(&'a self, bound: &'a LazySeries<C>) -> &'a C {
        &bound
            .get(|attributes| Arc::clone(self.series(attributes)))
            .data
    }

    #[inline]
    fn series(&self, attributes: &[KeyValue]) -> &Arc<Series<C>> {
        self.table
            .get_or_insert(hash_attributes(attributes), attributes, || {
                C::new(self.stripes)
            })
    }

    pub(crate) fn collect(&self, now: SystemTime) -> Vec<SeriesSnapshot> {
        let mut out = Vec::new();
        self.table.for_each(|series| {
            out.push(SeriesSnapshot {
                attributes: sorted_attributes(&series.attributes),
                // A series created while the snapshot is taken starts no later than it.
                start_time: series.start_time.min(now),
                time: now,
                data: series.data.read(),
            });
        });
        out
    }
}

impl Counter {
    /// A handle on the series `attributes` of this counter, for call sites that add to the same
    /// attribute set over and over: [`BoundCounter::add`] skips hashing and comparing the
    /// attributes. The series is looked up on the first add (see
    /// [`Histogram::bind`](super::Histogram::bind)).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, SeriesData, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let sent = metrics.u64_counter("app.sent").build();
    /// let to_orders = sent.bind(&[KeyValue::new("queue", "orders")]);
    /// to_orders.add(2);
    /// to_orders.add(1);
    /// let snapshot = metrics.snapshot();
    /// let sent = snapshot.find("app.sent").expect("registered");
    /// let series = sent
    ///     .find_series(&[KeyValue::new("queue", "orders")])
    ///     .expect("one series");
    /// assert!(matches!(series.data, SeriesData::Counter(3)));
    /// ```
    pub fn bind(&self, attributes: &[KeyValue]) -> BoundCounter {
        BoundCounter {
            counter: self.clone(),
            series: LazySeries::new(attributes),
        }
    }
}

/// One series of a [`Counter`], bound with [`Counter::bind`]. Cheap to clone.
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::{BoundCounter, Metrics, SnapshotExt};
///
/// struct Queue {
///     published: BoundCounter,
/// }
///
/// let metrics = Metrics::default();
/// let published = metrics.u64_counter("app.published").build();
/// let orders = Queue {
///     published: published.bind(&[KeyValue::new("queue", "orders")]),
/// };
/// for _ in 0..3 {
///     orders.published.add(1);
/// }
/// let snapshot = metrics.snapshot();
/// let series = snapshot
///     .find("app.published")
///     .and_then(|m| m.series.first());
/// assert_eq!(series.and_then(|s| s.counter()), Some(3));
/// ```
#[derive(Clone, Debug)]
pub struct BoundCounter {
    counter: Counter,
    series: LazySeries<CounterCells>,
}

impl BoundCounter {
    /// Adds `value` to the series.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    ///
    /// let sent = Metrics::default().u64_counter("app.sent").build();
    /// sent.bind(&[KeyValue::new("queue", "orders")]).add(1);
    /// ```
    #[inline]
    pub fn add(&self, value: u64) {
        if let Some(instrument) = self.counter.inner.get() {
            instrument.bound_cell(&self.series).add(value);
        }
    }

    /// The attributes of the series.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    ///
    /// let sent = Metrics::default().u64_counter("app.sent").build();
    /// let bound = sent.bind(&[KeyValue::new("queue", "orders")]);
    /// assert_eq!(bound.attributes(), &[KeyValue::new("queue", "orders")]);
    /// ```
    pub fn attributes(&self) -> &[KeyValue] {
        &self.series.attributes
    }
}

impl UpDownCounter {
    /// A handle on the series `attributes` of this up-down counter: [`BoundUpDownCounter::add`]
    /// skips hashing and comparing the attributes (see [`Counter::bind`]).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, SeriesData, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let active = metrics.i64_up_down_counter("app.active").build();
    /// let gets = active.bind(&[KeyValue::new("method", "GET")]);
    /// gets.add(1);
    /// gets.add(1);
    /// gets.add(-1);
    /// let snapshot = metrics.snapshot();
    /// let active = snapshot.find("app.active").expect("registered");
    /// let series = active.find_series(&[KeyValue::new("method", "GET")]).expect("one series");
    /// assert!(matches!(series.data, SeriesData::UpDownCounter(1)));
    /// ```
    pub fn bind(&self, attributes: &[KeyValue]) -> BoundUpDownCounter {
        BoundUpDownCounter {
            counter: self.clone(),
            series: LazySeries::new(attributes),
        }
    }
}

/// One series of an [`UpDownCounter`], bound with [`UpDownCounter::bind`]. Cheap to clone.
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::{BoundUpDownCounter, Metrics};
///
/// let active = Metrics::default().i64_up_down_counter("app.active").build();
/// let in_flight: BoundUpDownCounter = active.bind(&[KeyValue::new("queue", "jobs")]);
/// let for_worker = in_flight.clone();
/// in_flight.add(1);
/// for_worker.add(-1);
/// ```
#[derive(Clone, Debug)]
pub struct BoundUpDownCounter {
    counter: UpDownCounter,
    series: LazySeries<UpDownCells>,
}

impl BoundUpDownCounter {
    /// Adds `value` (negative to subtract) to the series.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    ///
    /// let active = Metrics::default().i64_up_down_counter("app.active").build();
    /// let bound = active.bind(&[KeyValue::new("method", "GET")]);
    /// bound.add(1);
    /// bound.add(-1);
    /// ```
    #[inline]
    pub fn add(&self, value: i64) {
        if let Some(instrument) = self.counter.inner.get() {
            instrument.bound_cell(&self.series).add(value);
        }
    }

    /// The attributes of the series.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    ///
    /// let active = Metrics::default().i64_up_down_counter("app.active").build();
    /// let bound = active.bind(&[KeyValue::new("method", "GET")]);
    /// assert_eq!(bound.attributes(), &[KeyValue::new("method", "GET")]);
    /// ```
    pub fn attributes(&self) -> &[KeyValue] {
        &self.series.attributes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_stripe_is_128_bytes() {
        // The figure of the module docs' "Memory per series".
        assert_eq!(std::mem::size_of::<Padded<AtomicI64>>(), 128);
        assert_eq!(std::mem::size_of::<Padded<AtomicU64>>(), 128);
    }

    #[test]
    fn adds_from_many_threads_sum_over_the_stripes() {
        let cells = UpDownCells::new(3);
        let counter = CounterCells::new(3);
        std::thread::scope(|scope| {
            for t in 0..8_i64 {
                let (cells, counter) = (&cells, &counter);
                scope.spawn(move || {
                    for _ in 0..1000 {
                        cells.add(t + 1);
                        cells.add(-1);
                        counter.add(2);
                    }
                });
            }
        });
        // Each thread t added t per round: 1000 * (0 + 1 + ... + 7).
        assert!(matches!(cells.read(), SeriesData::UpDownCounter(28_000)));
        assert!(matches!(counter.read(), SeriesData::Counter(16_000)));
    }
}
