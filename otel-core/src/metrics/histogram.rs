//! The exemplar-tagged, HDR-backed histogram instrument.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};

use super::config::{ExemplarFilter, MetricsConfig};
use super::registry::{Descriptor, Handle};
use super::snapshot::{
    Exemplar, HistogramData, Percentiles, SeriesData, SeriesSnapshot, bucket_index,
};
use super::stripes::{Padded, stripe_of};
use super::table::{
    LazySeries, Series, SeriesTable, canonical_attributes, hash_attributes, sorted_attributes,
};

/// Default bucket boundaries for durations in seconds, from the semantic conventions (e.g.
/// `http.server.request.duration`): 5 ms … 10 s.
///
/// A histogram with unit `s` and no explicit boundaries uses them:
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::{DURATION_BOUNDARIES_SECONDS, Metrics, SnapshotExt};
///
/// let metrics = Metrics::default();
/// let duration = metrics
///     .f64_histogram("http.client.request.duration")
///     .with_unit("s")
///     .build();
/// duration.record(0.02, &[KeyValue::new("http.request.method", "GET")]);
/// let snapshot = metrics.snapshot();
/// let series = &snapshot
///     .find("http.client.request.duration")
///     .expect("registered")
///     .series[0];
/// let data = series.histogram().expect("a histogram");
/// assert_eq!(data.boundaries, DURATION_BOUNDARIES_SECONDS);
/// // 0.02 s falls into the bucket (0.01, 0.025].
/// assert_eq!(data.bucket_index(0.02), 2);
/// ```
pub const DURATION_BOUNDARIES_SECONDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Default bucket boundaries for units other than seconds: the OpenTelemetry SDK default for
/// explicit-bucket histograms.
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::{DEFAULT_BOUNDARIES, Metrics, SnapshotExt};
///
/// let metrics = Metrics::default();
/// let size = metrics
///     .f64_histogram("http.server.request.body.size")
///     .with_unit("By")
///     .build();
/// size.record(300.0, &[KeyValue::new("http.request.method", "POST")]);
/// let snapshot = metrics.snapshot();
/// let series = &snapshot
///     .find("http.server.request.body.size")
///     .expect("registered")
///     .series[0];
/// assert_eq!(
///     series.histogram().expect("a histogram").boundaries,
///     DEFAULT_BOUNDARIES
/// );
/// ```
pub const DEFAULT_BOUNDARIES: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// Most filtered attributes an overflow-series exemplar keeps.
const MAX_FILTERED_ATTRIBUTES: usize = 8;

/// Significant decimal digits of the HDR histograms (values within 1 %).
pub(crate) const HDR_SIGFIG: u8 = 2;
/// Largest value the HDR histograms track, in HDR units (1 h in microseconds for time units);
/// larger values are clamped to it (the exact maximum is kept separately).
pub(crate) const HDR_HIGHEST: u64 = 3_600_000_000;

/// A histogram instrument: records values (typically durations in seconds) per attribute set,
/// with explicit-bucket counts, count, sum, min, max, one exemplar per bucket and an HDR
/// histogram for local percentiles.
///
/// Cheap to clone (a reference to the shared instrument). Built with
/// [`Metrics::f64_histogram`](super::Metrics::f64_histogram).
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::Metrics;
///
/// let metrics = Metrics::default();
/// let duration = metrics
///     .f64_histogram("http.server.request.duration")
///     .with_unit("s")
///     .with_description("Duration of HTTP server requests.")
///     .build();
/// let attributes = [KeyValue::new("http.request.method", "GET")];
/// duration.record(0.120, &attributes);
/// let p = duration.percentiles(&attributes).expect("series exists");
/// assert_eq!(p.count, 1);
/// assert!((p.p50 - 0.120).abs() < 0.0013);
/// ```
#[derive(Clone, Debug)]
pub struct Histogram {
    pub(crate) inner: Handle<HistogramInstrument>,
}

impl Histogram {
    /// Records `value` for the series `attributes`, with the current OpenTelemetry context
    /// ([`Context::current`]) deciding the exemplar.
    ///
    /// Values that are negative, infinite or NaN are ignored (counted in
    /// [`MetricSnapshot::dropped_measurements`](super::MetricSnapshot::dropped_measurements)).
    /// Takes no global lock and, once the series exists, does not allocate.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics
    ///     .f64_histogram("http.server.request.duration")
    ///     .with_unit("s")
    ///     .build();
    /// let attributes = [KeyValue::new("http.request.method", "GET")];
    ///
    /// // Inside a sampled span, the measurement becomes the exemplar of its bucket.
    /// let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder()
    ///     .build()
    ///     .tracer("doc");
    /// let span_id = tracer.in_span("GET /", |cx| {
    ///     duration.record(0.120, &attributes);
    ///     cx.span().span_context().span_id()
    /// });
    /// duration.record(f64::NAN, &attributes); // ignored, counted as dropped
    ///
    /// let snapshot = metrics.snapshot();
    /// let metric = snapshot
    ///     .find("http.server.request.duration")
    ///     .expect("registered");
    /// let data = metric
    ///     .find_series(&attributes)
    ///     .and_then(|s| s.histogram())
    ///     .expect("recorded");
    /// assert_eq!(data.count, 1);
    /// assert_eq!(
    ///     data.exemplar_for_span(span_id).map(|e| e.value),
    ///     Some(0.120)
    /// );
    /// assert_eq!(metric.dropped_measurements, 1);
    /// ```
    #[inline]
    pub fn record(&self, value: f64, attributes: &[KeyValue]) {
        if let Some(instrument) = self.inner.get() {
            Context::map_current(|cx| {
                instrument.record(value, attributes, cx.span().span_context(), None);
            });
        }
    }

    /// Records `value` for the series `attributes` with the span of `cx` as exemplar
    /// candidate (for callers that hold the context of the call rather than having it
    /// attached, e.g. a response future completing on another task).
    ///
    /// ```
    /// use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics
    ///     .f64_histogram("messaging.process.duration")
    ///     .with_unit("s")
    ///     .build();
    /// let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder()
    ///     .build()
    ///     .tracer("doc");
    ///
    /// // The context of the call, held rather than attached:
    /// let cx = Context::new().with_span(tracer.start("orders process"));
    /// duration.record_with_context(0.004, &[KeyValue::new("queue", "orders")], &cx);
    ///
    /// let snapshot = metrics.snapshot();
    /// let exemplar = snapshot
    ///     .find("messaging.process.duration")
    ///     .and_then(|m| m.exemplars().next().cloned())
    ///     .expect("one exemplar");
    /// assert_eq!(exemplar.span_id, cx.span().span_context().span_id());
    /// ```
    #[inline]
    pub fn record_with_context(&self, value: f64, attributes: &[KeyValue], cx: &Context) {
        if let Some(instrument) = self.inner.get() {
            instrument.record(value, attributes, cx.span().span_context(), None);
        }
    }

    /// Records `value` for `attributes` at the time `now` (the exemplar's timestamp) with the
    /// span `span` as exemplar candidate, for a caller that holds the span and has just read
    /// the clock.
    #[inline]
    pub(crate) fn record_at(
        &self,
        value: f64,
        attributes: &[KeyValue],
        span: &SpanContext,
        now: SystemTime,
    ) {
        if let Some(instrument) = self.inner.get() {
            instrument.record(value, attributes, span, Some(now));
        }
    }

    /// p50/p90/p99/p99.9, exact min/max and the slowest recent exemplar of the series
    /// `attributes`; `None` if nothing was recorded for it (or the instrument is disabled).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics
    ///     .f64_histogram("app.call.duration")
    ///     .with_unit("s")
    ///     .build();
    /// let attributes = [KeyValue::new("call", "lookup")];
    /// for ms in 1..=100 {
    ///     duration.record(f64::from(ms) / 1000.0, &attributes);
    /// }
    /// let p = duration.percentiles(&attributes).expect("recorded");
    /// assert_eq!(p.count, 100);
    /// assert_eq!((p.min, p.max), (0.001, 0.1)); // exact
    /// assert!((p.p50 - 0.050).abs() <= 0.0005); // within 1 %
    /// assert!((p.p99 - 0.099).abs() <= 0.001);
    /// assert!(
    ///     duration
    ///         .percentiles(&[KeyValue::new("call", "other")])
    ///         .is_none()
    /// );
    /// ```
    pub fn percentiles(&self, attributes: &[KeyValue]) -> Option<Percentiles> {
        let instrument = self.inner.get()?;
        let series = instrument.table.get(attributes)?;
        instrument.percentiles(series, SystemTime::now())
    }

    /// Percentiles of the overflow series, if the cardinality limit was reached.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, MetricsConfig};
    ///
    /// // Room for one attribute set plus the overflow series.
    /// let metrics = Metrics::new(MetricsConfig::default().with_cardinality_limit(2));
    /// let duration = metrics
    ///     .f64_histogram("app.call.duration")
    ///     .with_unit("s")
    ///     .build();
    /// duration.record(0.1, &[KeyValue::new("user", "ann")]);
    /// assert!(duration.overflow_percentiles().is_none());
    /// duration.record(0.2, &[KeyValue::new("user", "bob")]);
    /// duration.record(0.3, &[KeyValue::new("user", "cid")]);
    /// let overflow = duration.overflow_percentiles().expect("limit reached");
    /// assert_eq!((overflow.count, overflow.max), (2, 0.3));
    /// ```
    pub fn overflow_percentiles(&self) -> Option<Percentiles> {
        let instrument = self.inner.get()?;
        let series = instrument.table.overflow()?;
        instrument.percentiles(series, SystemTime::now())
    }

    /// Whether recording does anything (false for instruments of [`Metrics::noop`](super::Metrics::noop),
    /// of an unset global registry, or rejected at registration).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    ///
    /// let histogram = Metrics::default().f64_histogram("app.latency").build();
    /// assert!(histogram.is_enabled());
    ///
    /// let off = Metrics::noop().f64_histogram("app.latency").build();
    /// assert!(!off.is_enabled());
    /// off.record(1.0, &[KeyValue::new("route", "/")]); // does nothing
    /// assert!(off.percentiles(&[KeyValue::new("route", "/")]).is_none());
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.inner.get().is_some()
    }
}

impl Histogram {
    /// A handle on the series `attributes` of this histogram, for call sites that record the
    /// same attribute set over and over: [`BoundHistogram::record_with_context`] skips the
    /// hashing and comparison of the attributes that [`Histogram::record_with_context`] does on
    /// every call.
    ///
    /// The series is looked up (and created) on the first record, so binding is cheap and a
    /// handle made before the global registry is set starts recording once it is. Past the
    /// cardinality limit the handle records into the overflow series, as `record` would.
    ///
    /// ```
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::metrics::Metrics;
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics
    ///     .f64_histogram("app.job.duration")
    ///     .with_unit("s")
    ///     .build();
    /// let attributes = [KeyValue::new("job", "reindex")];
    /// let reindex = duration.bind(&attributes);
    /// reindex.record_with_context(0.25, &Context::current());
    /// reindex.record_with_context(0.75, &Context::current());
    /// assert_eq!(
    ///     duration.percentiles(&attributes).expect("recorded").count,
    ///     2
    /// );
    /// ```
    pub fn bind(&self, attributes: &[KeyValue]) -> BoundHistogram {
        BoundHistogram {
            histogram: self.clone(),
            series: LazySeries::new(attributes),
        }
    }
}

/// One series of a [`Histogram`], bound with [`Histogram::bind`]. Cheap to clone.
///
/// Adapters bind the series of a connection or destination once and record into it on every
/// call:
///
/// ```
/// use opentelemetry::{Context, KeyValue};
/// use otel_core::metrics::{BoundHistogram, Metrics};
///
/// struct Connection {
///     duration: BoundHistogram,
/// }
///
/// let metrics = Metrics::default();
/// let duration = metrics
///     .f64_histogram("db.client.operation.duration")
///     .with_unit("s")
///     .build();
/// let attributes = [KeyValue::new("db.system.name", "redis")];
/// let connection = Connection {
///     duration: duration.bind(&attributes),
/// };
/// connection
///     .duration
///     .record_with_context(0.0008, &Context::current());
/// connection
///     .duration
///     .record_with_context(0.0011, &Context::current());
/// assert_eq!(duration.percentiles(&attributes).map(|p| p.count), Some(2));
/// ```
#[derive(Clone, Debug)]
pub struct BoundHistogram {
    histogram: Histogram,
    series: LazySeries<HistogramCells>,
}

impl BoundHistogram {
    /// Records `value` with the span of `cx` as exemplar candidate; see
    /// [`Histogram::record_with_context`].
    ///
    /// ```
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::metrics::Metrics;
    ///
    /// let metrics = Metrics::default();
    /// let histogram = metrics.f64_histogram("app.latency").with_unit("s").build();
    /// let bound = histogram.bind(&[KeyValue::new("route", "/")]);
    /// bound.record_with_context(0.002, &Context::new());
    /// let p = histogram
    ///     .percentiles(&[KeyValue::new("route", "/")])
    ///     .expect("recorded");
    /// assert_eq!(p.count, 1);
    /// ```
    #[inline]
    pub fn record_with_context(&self, value: f64, cx: &Context) {
        self.record_inner(value, cx.span().span_context(), None);
    }

    /// Records `value` at the time `now` (the exemplar's timestamp) with the span `span` as
    /// exemplar candidate, for a caller that holds the span and has just read the clock.
    #[inline]
    pub(crate) fn record_at(&self, value: f64, span: &SpanContext, now: SystemTime) {
        self.record_inner(value, span, Some(now));
    }

    #[inline]
    fn record_inner(&self, value: f64, span: &SpanContext, now: Option<SystemTime>) {
        let Some(instrument) = self.histogram.inner.get() else {
            return;
        };
        if !(value >= 0.0 && value.is_finite()) {
            instrument.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let series = self
            .series
            .get(|attributes| Arc::clone(instrument.series(attributes)));
        instrument.record_in(series, value, &self.series.attributes, span, now);
    }

    /// The attributes of the series.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    ///
    /// let histogram = Metrics::default().f64_histogram("app.latency").build();
    /// let bound = histogram.bind(&[KeyValue::new("route", "/")]);
    /// assert_eq!(bound.attributes(), &[KeyValue::new("route", "/")]);
    /// ```
    pub fn attributes(&self) -> &[KeyValue] {
        &self.series.attributes
    }
}

/// How recorded values map onto the integer domain of the HDR histogram.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HdrScale {
    /// HDR units per instrument unit.
    factor: f64,
}

impl HdrScale {
    /// Time units are tracked in microseconds; other units as whole numbers of their unit.
    pub(crate) fn for_unit(unit: &str) -> Self {
        let factor = match unit {
            "s" => 1e6,
            "ms" => 1e3,
            "us" | "µs" => 1.0,
            "ns" => 1e-3,
            "min" => 60e6,
            "h" => 3600e6,
            _ => 1.0,
        };
        Self { factor }
    }

    #[inline]
    fn to_hdr(self, value: f64) -> u64 {
        // Values are validated non-negative, so adding one half and truncating rounds to
        // nearest without the call to `round` (not inlined on baseline x86-64). `as`
        // saturates; `saturating_record` clamps into [1, HDR_HIGHEST].
        (value * self.factor + 0.5) as u64
    }

    fn to_unit(self, value: u64) -> f64 {
        value as f64 / self.factor
    }
}

/// The shared state of one histogram instrument.
#[derive(Debug)]
pub(crate) struct HistogramInstrument {
    pub(crate) descriptor: Descriptor,
    pub(crate) boundaries: Box<[f64]>,
    table: SeriesTable<HistogramCells>,
    filter: ExemplarFilter,
    stripes: usize,
    scale: HdrScale,
    slowest_window: Duration,
    dropped: AtomicU64,
}

impl HistogramInstrument {
    pub(crate) fn new(
        descriptor: Descriptor,
        boundaries: Option<&[f64]>,
        config: &MetricsConfig,
    ) -> Self {
        let boundaries = match boundaries {
            Some(b) => sanitize_boundaries(b),
            None if descriptor.unit == "s" => DURATION_BOUNDARIES_SECONDS.into(),
            None => DEFAULT_BOUNDARIES.into(),
        };
        Self {
            scale: HdrScale::for_unit(&descriptor.unit),
            descriptor,
            boundaries,
            table: SeriesTable::new(config.cardinality_limit),
            filter: config.exemplar_filter,
            stripes: config.effective_stripes(),
            slowest_window: config.slowest_window,
            dropped: AtomicU64::new(0),
        }
    }

    #[inline]
    pub(crate) fn record(
        &self,
        value: f64,
        attributes: &[KeyValue],
        span: &SpanContext,
        now: Option<SystemTime>,
    ) {
        // Also rejects NaN.
        if !(value >= 0.0 && value.is_finite()) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let series = self.series(attributes);
        self.record_in(series, value, attributes, span, now);
    }

    /// The series of `attributes`, created on first use (or the overflow series).
    #[inline]
    fn series(&self, attributes: &[KeyValue]) -> &Arc<Series<HistogramCells>> {
        self.table
            .get_or_insert(hash_attributes(attributes), attributes, || {
                HistogramCells::new(self.boundaries.len() + 1, self.stripes)
            })
    }

    /// Records an already validated `value` into `series` (whose attributes are `attributes`).
    #[inline]
    fn record_in(
        &self,
        series: &Series<HistogramCells>,
        value: f64,
        attributes: &[KeyValue],
        span: &SpanContext,
        now: Option<SystemTime>,
    ) {
        let bucket = bucket_index(&self.boundaries, value);
        let exemplar = self.exemplar(value, attributes, series, span, now);
        series.data.record(
            value,
            bucket,
            self.scale.to_hdr(value),
            exemplar,
            self.slowest_window,
        );
    }

    /// The exemplar for this measurement, if the filter admits it.
    #[inline]
    fn exemplar(
        &self,
        value: f64,
        attributes: &[KeyValue],
        series: &Series<HistogramCells>,
        sc: &SpanContext,
        now: Option<SystemTime>,
    ) -> Option<ExemplarSlot> {
        let (trace_id, span_id) = match self.filter {
            ExemplarFilter::AlwaysOff => return None,
            ExemplarFilter::TraceBased => {
                if !(sc.is_valid() && sc.is_sampled()) {
                    return None;
                }
                (sc.trace_id(), sc.span_id())
            }
            ExemplarFilter::AlwaysOn => {
                if sc.is_valid() {
                    (sc.trace_id(), sc.span_id())
                } else {
                    (TraceId::INVALID, SpanId::INVALID)
                }
            }
        };
        let filtered = if series.overflow {
            filtered_attributes(attributes)
        } else {
            None
        };
        Some(ExemplarSlot {
            value,
            time: now.unwrap_or_else(SystemTime::now),
            trace_id,
            span_id,
            filtered,
        })
    }

    /// Snapshot of every series.
    pub(crate) fn collect(&self, with_percentiles: bool, now: SystemTime) -> Vec<SeriesSnapshot> {
        let mut out = Vec::new();
        self.table.for_each(|series| {
            let merged =
                series
                    .data
                    .merge(&self.boundaries, self.slowest_window, now, with_percentiles);
            let percentiles = merged
                .hdr
                .as_ref()
                .and_then(|hdr| self.percentiles_from(&merged, hdr));
            out.push(SeriesSnapshot {
                attributes: sorted_attributes(&series.attributes),
                // A series created while the snapshot is taken starts no later than it.
                start_time: series.start_time.min(now),
                time: now,
                data: SeriesData::Histogram(Box::new(HistogramData {
                    count: merged.count,
                    sum: merged.sum,
                    min: (merged.count > 0).then_some(merged.min),
                    max: (merged.count > 0).then_some(merged.max),
                    boundaries: self.boundaries.to_vec(),
                    bucket_counts: merged.buckets,
                    exemplars: merged.exemplars,
                    percentiles,
                })),
            });
        });
        out
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn percentiles(&self, series: &Series<HistogramCells>, now: SystemTime) -> Option<Percentiles> {
        let merged = series
            .data
            .merge(&self.boundaries, self.slowest_window, now, true);
        let hdr = merged.hdr.as_ref()?;
        self.percentiles_from(&merged, hdr)
    }

    fn percentiles_from(
        &self,
        merged: &Merged,
        hdr: &hdrhistogram::Histogram<u64>,
    ) -> Option<Percentiles> {
        if merged.count == 0 {
            return None;
        }
        let mut values = [0.0; 4];
        for (slot, v) in values
            .iter_mut()
            .zip(hdr.value_at_quantiles([0.5, 0.9, 0.99, 0.999]))
        {
            // HDR reports the top of the value's equivalence range; the exact extremes bound it.
            *slot = self.scale.to_unit(v).clamp(merged.min, merged.max);
        }
        Some(Percentiles {
            count: merged.count,
            p50: values[0],
            p90: values[1],
            p99: values[2],
            p999: values[3],
            min: merged.min,
            max: merged.max,
            slowest: merged.slowest.clone(),
        })
    }
}

/// Keeps the configured boundaries usable: finite, strictly increasing.
fn sanitize_boundaries(boundaries: &[f64]) -> Box<[f64]> {
    let mut b: Vec<f64> = boundaries
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    b.sort_by(f64::total_cmp);
    b.dedup();
    b.into_boxed_slice()
}

/// Attributes of a measurement folded into the overflow series, kept on its exemplar.
#[cold]
fn filtered_attributes(attributes: &[KeyValue]) -> Option<Box<[KeyValue]>> {
    let mut canonical = canonical_attributes(attributes).into_vec();
    canonical.truncate(MAX_FILTERED_ATTRIBUTES);
    (!canonical.is_empty()).then(|| canonical.into_boxed_slice())
}

/// An exemplar as stored in a bucket slot.
#[derive(Clone, Debug)]
pub(crate) struct ExemplarSlot {
    value: f64,
    time: SystemTime,
    trace_id: TraceId,
    span_id: SpanId,
    filtered: Option<Box<[KeyValue]>>,
}

impl ExemplarSlot {
    fn to_exemplar(&self, bucket: usize) -> Exemplar {
        Exemplar {
            bucket,
            value: self.value,
            time: self.time,
            trace_id: self.trace_id,
            span_id: self.span_id,
            filtered_attributes: self
                .filtered
                .as_deref()
                .map(<[_]>::to_vec)
                .unwrap_or_default(),
        }
    }
}

/// The aggregation cells of one histogram series: a few independently locked stripes.
#[derive(Debug)]
pub(crate) struct HistogramCells {
    stripes: Box<[Padded<Mutex<Stripe>>]>,
}

/// One stripe: everything a record touches, under one uncontended lock.
#[derive(Debug)]
struct Stripe {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    buckets: Box<[u64]>,
    exemplars: Box<[Option<ExemplarSlot>]>,
    slowest: Option<ExemplarSlot>,
    hdr: Hdr,
}

/// HDR counts start as `u32` (half the memory) and widen to `u64` before any count could
/// saturate: a bin can only overflow once the stripe holds `u32::MAX` values, which is checked
/// on every record (a field read) and triggers a one-time conversion.
#[derive(Debug)]
enum Hdr {
    Narrow(hdrhistogram::Histogram<u32>),
    Wide(hdrhistogram::Histogram<u64>),
}

impl Hdr {
    fn new() -> Self {
        Self::Narrow(
            hdrhistogram::Histogram::new_with_bounds(1, HDR_HIGHEST, HDR_SIGFIG)
                .expect("constant HDR bounds are valid"),
        )
    }

    #[inline]
    fn record(&mut self, value: u64) {
        match self {
            Self::Narrow(h) => {
                if h.len() >= u64::from(u32::MAX) {
                    self.widen();
                    self.record(value);
                } else {
                    h.saturating_record(value);
                }
            }
            Self::Wide(h) => h.saturating_record(value),
        }
    }

    #[cold]
    fn widen(&mut self) {
        if let Self::Narrow(narrow) = self {
            let mut wide = hdrhistogram::Histogram::<u64>::new_from(narrow);
            add_into(&mut wide, narrow);
            *self = Self::Wide(wide);
        }
    }

    fn add_to(&self, target: &mut hdrhistogram::Histogram<u64>) {
        match self {
            Self::Narrow(h) => add_into(target, h),
            Self::Wide(h) => add_into(target, h),
        }
    }
}

fn add_into<T: hdrhistogram::Counter>(
    target: &mut hdrhistogram::Histogram<u64>,
    source: &hdrhistogram::Histogram<T>,
) {
    for v in source.iter_recorded() {
        target.saturating_record_n(v.value_iterated_to(), v.count_at_value().as_u64());
    }
}

/// The merged state of all stripes of a series.
struct Merged {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    buckets: Vec<u64>,
    exemplars: Vec<Exemplar>,
    slowest: Option<Exemplar>,
    hdr: Option<hdrhistogram::Histogram<u64>>,
}

impl HistogramCells {
    fn new(buckets: usize, stripes: usize) -> Self {
        let stripes = (0..stripes.max(1))
            .map(|_| {
                Padded(Mutex::new(Stripe {
                    count: 0,
                    sum: 0.0,
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    buckets: vec![0; buckets].into_boxed_slice(),
                    exemplars: (0..buckets).map(|_| None).collect(),
                    slowest: None,
                    hdr: Hdr::new(),
                }))
            })
            .collect();
        Self { stripes }
    }

    /// Locks a stripe: this thread's preferred one if free, else any free one, else waits for
    /// the preferred one.
    #[inline]
    fn lock(&self) -> MutexGuard<'_, Stripe> {
        let n = self.stripes.len();
        if n == 1 {
            return self.stripes[0]
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
        }
        let start = stripe_of(n);
        let mut i = start;
        loop {
            match self.stripes[i].0.try_lock() {
                Ok(guard) => return guard,
                Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
            i = if i + 1 == n { 0 } else { i + 1 };
            if i == start {
                break;
            }
        }
        self.stripes[start]
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    #[inline]
    fn record(
        &self,
        value: f64,
        bucket: usize,
        hdr_value: u64,
        exemplar: Option<ExemplarSlot>,
        window: Duration,
    ) {
        let mut s = self.lock();
        s.count += 1;
        s.sum += value;
        if value < s.min {
            s.min = value;
        }
        if value > s.max {
            s.max = value;
        }
        if let Some(c) = s.buckets.get_mut(bucket) {
            *c += 1;
        }
        s.hdr.record(hdr_value);
        if let Some(exemplar) = exemplar {
            let replace_slowest = match &s.slowest {
                None => true,
                Some(old) => {
                    exemplar.value >= old.value
                        || exemplar
                            .time
                            .duration_since(old.time)
                            .is_ok_and(|age| age > window)
                }
            };
            if replace_slowest {
                s.slowest = Some(exemplar.clone());
            }
            if let Some(slot) = s.exemplars.get_mut(bucket) {
                *slot = Some(exemplar);
            }
        }
    }

    /// Reads all stripes (each under its lock) and merges them.
    fn merge(
        &self,
        boundaries: &[f64],
        window: Duration,
        now: SystemTime,
        with_hdr: bool,
    ) -> Merged {
        let mut merged = Merged {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            buckets: Vec::new(),
            exemplars: Vec::new(),
            slowest: None,
            hdr: None,
        };
        let mut latest: Vec<Option<Exemplar>> = Vec::new();
        let mut slowest: Option<Exemplar> = None;
        for stripe in self.stripes.iter() {
            let s = stripe.0.lock().unwrap_or_else(PoisonError::into_inner);
            if merged.buckets.is_empty() {
                merged.buckets = vec![0; s.buckets.len()];
                latest = (0..s.buckets.len()).map(|_| None).collect();
            }
            merged.count += s.count;
            merged.sum += s.sum;
            merged.min = merged.min.min(s.min);
            merged.max = merged.max.max(s.max);
            for (total, c) in merged.buckets.iter_mut().zip(s.buckets.iter()) {
                *total += c;
            }
            for (bucket, (best, slot)) in latest.iter_mut().zip(s.exemplars.iter()).enumerate() {
                if let Some(slot) = slot
                    && best.as_ref().is_none_or(|e| slot.time > e.time)
                {
                    *best = Some(slot.to_exemplar(bucket));
                }
            }
            if let Some(candidate) = &s.slowest {
                // A clock step backwards makes the exemplar "from the future": keep it.
                let recent = now
                    .duration_since(candidate.time)
                    .map_or(true, |age| age <= window);
                if recent && slowest.as_ref().is_none_or(|e| candidate.value > e.value) {
                    slowest =
                        Some(candidate.to_exemplar(bucket_index(boundaries, candidate.value)));
                }
            }
            if with_hdr {
                let target = merged.hdr.get_or_insert_with(|| {
                    hdrhistogram::Histogram::new_with_bounds(1, HDR_HIGHEST, HDR_SIGFIG)
                        .expect("constant HDR bounds are valid")
                });
                s.hdr.add_to(target);
            }
        }
        merged.exemplars = latest.into_iter().flatten().collect();
        merged.slowest = slowest;
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps the figures in the module docs ("Memory per series") honest.
    #[test]
    fn memory_per_series_matches_the_docs() {
        let Hdr::Narrow(hdr) = Hdr::new() else {
            panic!("starts narrow")
        };
        assert_eq!(hdr.distinct_values(), 3328);
        assert_eq!(hdr.distinct_values() * std::mem::size_of::<u32>(), 13_312);
        assert!(std::mem::size_of::<hdrhistogram::Histogram<u32>>() <= 128);
        assert_eq!(std::mem::size_of::<Option<ExemplarSlot>>(), 64);
        assert_eq!(std::mem::size_of::<Padded<Mutex<Stripe>>>(), 256);
    }

    #[test]
    fn narrow_hdr_widens_without_losing_counts() {
        let mut hdr = Hdr::new();
        if let Hdr::Narrow(h) = &mut hdr {
            h.record_n(1000, u32::MAX).expect("in range");
        }
        hdr.record(1000);
        let Hdr::Wide(h) = &hdr else {
            panic!("widened")
        };
        assert_eq!(h.len(), u64::from(u32::MAX) + 1);
        assert_eq!(h.count_at(1000), u64::from(u32::MAX) + 1);
    }
}
