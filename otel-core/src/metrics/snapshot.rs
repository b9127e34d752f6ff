//! The public data model of a point-in-time reading of a [`Metrics`](super::Metrics) registry.
//!
//! [`Metrics::snapshot`](super::Metrics::snapshot) returns one [`MetricSnapshot`] per
//! instrument; the OTLP and OpenMetrics exporters are written against this model, and tests
//! assert on it:
//!
//! ```
//! use opentelemetry::KeyValue;
//! use otel_core::metrics::{Metrics, SnapshotExt};
//!
//! let metrics = Metrics::default();
//! let histogram = metrics
//!     .f64_histogram("http.server.request.duration")
//!     .with_unit("s")
//!     .build();
//! histogram.record(0.042, &[KeyValue::new("http.request.method", "GET")]);
//!
//! let snapshot = metrics.snapshot();
//! let metric = snapshot
//!     .find("http.server.request.duration")
//!     .expect("registered");
//! let series = metric
//!     .find_series(&[KeyValue::new("http.request.method", "GET")])
//!     .expect("recorded");
//! let data = series.histogram().expect("a histogram");
//! assert_eq!(data.count, 1);
//! assert_eq!(data.bucket_counts[data.bucket_index(0.042)], 1);
//! ```

use std::time::SystemTime;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry::{Key, KeyValue, Value};

use super::table::{OVERFLOW_KEY, attributes_match};

/// The kind of an instrument.
///
/// ```
/// use otel_core::metrics::{InstrumentKind, Metrics, SnapshotExt};
///
/// let metrics = Metrics::default();
/// metrics
///     .i64_up_down_counter("app.active")
///     .build()
///     .add(1, &[]);
/// let snapshot = metrics.snapshot();
/// assert_eq!(
///     snapshot.find("app.active").map(|m| m.kind),
///     Some(InstrumentKind::UpDownCounter)
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InstrumentKind {
    /// Explicit-bucket histogram with exemplars and HDR percentiles ([`Histogram`](super::Histogram)).
    Histogram,
    /// Monotonic sum ([`Counter`](super::Counter)).
    Counter,
    /// Non-monotonic sum ([`UpDownCounter`](super::UpDownCounter)).
    UpDownCounter,
}

/// One instrument and all its series at the time of the snapshot.
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::{InstrumentKind, Metrics, SnapshotExt};
///
/// let metrics = Metrics::default();
/// let duration = metrics
///     .f64_histogram("app.call.duration")
///     .with_unit("s")
///     .with_description("Duration of calls.")
///     .build();
/// duration.record(0.1, &[KeyValue::new("call", "a")]);
/// duration.record(0.2, &[KeyValue::new("call", "b")]);
/// duration.record(-1.0, &[KeyValue::new("call", "a")]);
///
/// let snapshot = metrics.snapshot();
/// let metric = snapshot.find("app.call.duration").expect("registered");
/// assert_eq!(
///     (metric.unit.as_str(), metric.kind),
///     ("s", InstrumentKind::Histogram)
/// );
/// assert_eq!(metric.series.len(), 2);
/// assert_eq!(metric.dropped_measurements, 1);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MetricSnapshot {
    /// The instrument name as registered (OpenTelemetry form, e.g.
    /// `http.server.request.duration`).
    pub name: String,
    /// The UCUM unit as registered (e.g. `s`), empty when none.
    pub unit: String,
    /// The description as registered, empty when none.
    pub description: String,
    /// The instrument kind.
    pub kind: InstrumentKind,
    /// Every series, sorted by attributes; the overflow series (if any) last.
    pub series: Vec<SeriesSnapshot>,
    /// Measurements ignored because they were not finite, or negative for a histogram.
    pub dropped_measurements: u64,
}

/// One attribute set of one instrument.
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::{Metrics, SnapshotExt};
///
/// let metrics = Metrics::default();
/// let calls = metrics.u64_counter("app.calls").build();
/// // Recorded in any order, kept sorted by key.
/// calls.add(1, &[KeyValue::new("b", "2"), KeyValue::new("a", "1")]);
/// let snapshot = metrics.snapshot();
/// let series = &snapshot.find("app.calls").expect("registered").series[0];
/// assert_eq!(
///     series.attributes,
///     [KeyValue::new("a", "1"), KeyValue::new("b", "2")]
/// );
/// assert!(series.start_time <= series.time);
/// assert_eq!(series.counter(), Some(1));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SeriesSnapshot {
    /// The attributes, without duplicate keys, sorted by key. For the overflow series:
    /// `otel.metric.overflow = true`.
    pub attributes: Vec<KeyValue>,
    /// When the series was created (start of its cumulative aggregation).
    pub start_time: SystemTime,
    /// When the snapshot was taken.
    pub time: SystemTime,
    /// The aggregated values.
    pub data: SeriesData,
}

/// The aggregated values of one series.
///
/// ```
/// use otel_core::metrics::{Metrics, SeriesData};
///
/// let metrics = Metrics::default();
/// metrics.u64_counter("app.calls").build().add(3, &[]);
/// metrics
///     .f64_histogram("app.call.duration")
///     .build()
///     .record(0.5, &[]);
/// for metric in metrics.snapshot() {
///     for series in &metric.series {
///         match &series.data {
///             SeriesData::Histogram(h) => assert_eq!(h.sum, 0.5),
///             SeriesData::Counter(n) => assert_eq!(*n, 3),
///             other => panic!("unexpected {other:?}"),
///         }
///     }
/// }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SeriesData {
    /// A histogram series (boxed: it is much larger than the other variants).
    Histogram(Box<HistogramData>),
    /// A counter's cumulative sum.
    Counter(u64),
    /// An up-down counter's current value.
    UpDownCounter(i64),
}

/// The aggregated values of one histogram series.
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::{Metrics, SnapshotExt};
///
/// let metrics = Metrics::default();
/// let size = metrics
///     .f64_histogram("app.batch.size")
///     .with_boundaries(vec![10.0, 100.0])
///     .build();
/// for value in [5.0, 50.0, 60.0, 500.0] {
///     size.record(value, &[KeyValue::new("queue", "orders")]);
/// }
/// let snapshot = metrics.snapshot();
/// let data = snapshot
///     .find("app.batch.size")
///     .and_then(|m| m.series[0].histogram());
/// let data = data.expect("a histogram series");
/// assert_eq!((data.count, data.sum), (4, 615.0));
/// assert_eq!((data.min, data.max), (Some(5.0), Some(500.0)));
/// assert_eq!(data.bucket_counts, [1, 2, 1]); // (..10], (10..100], (100..)
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HistogramData {
    /// Number of recorded values.
    pub count: u64,
    /// Sum of recorded values.
    pub sum: f64,
    /// Smallest recorded value (`None` when `count == 0`).
    pub min: Option<f64>,
    /// Largest recorded value (`None` when `count == 0`).
    pub max: Option<f64>,
    /// Upper bounds of the buckets, strictly increasing; the last bucket (`+Inf`) is implicit.
    pub boundaries: Vec<f64>,
    /// Per-bucket counts (not cumulative), `boundaries.len() + 1` entries. Bucket `i` holds
    /// values `v` with `boundaries[i-1] < v <= boundaries[i]`.
    pub bucket_counts: Vec<u64>,
    /// At most one exemplar per bucket (the last sampled measurement that fell into it),
    /// sorted by bucket.
    pub exemplars: Vec<Exemplar>,
    /// HDR percentiles of the series; `None` in snapshots taken for export, which skip them.
    pub percentiles: Option<Percentiles>,
}

/// One recorded measurement kept as a pointer from an aggregate to a trace.
///
/// ```
/// use opentelemetry::KeyValue;
/// use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
/// use otel_core::metrics::{Metrics, SnapshotExt};
///
/// let metrics = Metrics::default();
/// let duration = metrics
///     .f64_histogram("app.call.duration")
///     .with_unit("s")
///     .build();
/// let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder()
///     .build()
///     .tracer("doc");
/// let span = tracer.in_span("call", |cx| {
///     duration.record(0.3, &[KeyValue::new("call", "a")]);
///     cx.span().span_context().clone()
/// });
///
/// let snapshot = metrics.snapshot();
/// let data = snapshot
///     .find("app.call.duration")
///     .and_then(|m| m.series[0].histogram());
/// let exemplar = data
///     .and_then(|h| h.exemplars.first())
///     .expect("one exemplar");
/// assert_eq!(exemplar.value, 0.3);
/// assert_eq!(
///     (exemplar.trace_id, exemplar.span_id),
///     (span.trace_id(), span.span_id())
/// );
/// assert_eq!(exemplar.bucket, 7); // (0.25, 0.5]
/// assert!(exemplar.filtered_attributes.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Exemplar {
    /// Index of the bucket the value fell into (see [`HistogramData::bucket_counts`]).
    pub bucket: usize,
    /// The recorded value.
    pub value: f64,
    /// When it was recorded.
    pub time: SystemTime,
    /// Trace of the span current at recording; [`TraceId::INVALID`] if there was none
    /// (possible only with [`ExemplarFilter::AlwaysOn`](super::ExemplarFilter::AlwaysOn)).
    pub trace_id: TraceId,
    /// The span current at recording; [`SpanId::INVALID`] if there was none.
    pub span_id: SpanId,
    /// Attributes of the measurement that are not attributes of its series. Empty except in
    /// the overflow series, where it holds (up to 8 of) the attributes that were folded away.
    pub filtered_attributes: Vec<KeyValue>,
}

impl Exemplar {
    /// Whether the exemplar points at a span (it has a valid trace id and span id).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{ExemplarFilter, Metrics, MetricsConfig, SnapshotExt};
    ///
    /// let config = MetricsConfig::default().with_exemplar_filter(ExemplarFilter::AlwaysOn);
    /// let metrics = Metrics::new(config);
    /// let duration = metrics
    ///     .f64_histogram("app.call.duration")
    ///     .with_unit("s")
    ///     .build();
    /// duration.record(0.3, &[KeyValue::new("call", "a")]); // outside any span
    /// let snapshot = metrics.snapshot();
    /// let exemplar = snapshot
    ///     .find("app.call.duration")
    ///     .and_then(|m| m.exemplars().next());
    /// assert_eq!(exemplar.map(|e| e.has_span()), Some(false));
    /// ```
    pub fn has_span(&self) -> bool {
        self.trace_id != TraceId::INVALID && self.span_id != SpanId::INVALID
    }
}

/// Local percentiles of one histogram series, from its HDR histogram.
///
/// Values are in the instrument's unit and exact to the HDR precision (2 significant digits:
/// within 1 % of the true quantile), over the whole life of the series.
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
/// let attributes = [KeyValue::new("call", "a")];
/// for ms in [10.0, 20.0, 30.0, 40.0, 1000.0] {
///     duration.record(ms / 1000.0, &attributes);
/// }
/// let p = duration.percentiles(&attributes).expect("recorded");
/// assert_eq!(p.count, 5);
/// assert!((p.p50 - 0.030).abs() <= 0.0003);
/// assert!((p.p99 - 1.0).abs() <= 0.01);
/// assert_eq!((p.min, p.max), (0.01, 1.0));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Percentiles {
    /// Number of values.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Exact smallest value.
    pub min: f64,
    /// Exact largest value.
    pub max: f64,
    /// The slowest sampled call of the recent window (see
    /// [`MetricsConfig::slowest_window`](super::MetricsConfig::slowest_window)), if any.
    pub slowest: Option<Exemplar>,
}

/// Lookups on a snapshot (`Vec<MetricSnapshot>` or a slice of it).
///
/// ```
/// use otel_core::metrics::{Metrics, SnapshotExt};
///
/// let metrics = Metrics::default();
/// metrics.u64_counter("app.calls").build().add(1, &[]);
/// let snapshot = metrics.snapshot();
/// assert!(snapshot.find("app.calls").is_some());
/// assert!(snapshot.find("app.other").is_none());
/// ```
pub trait SnapshotExt {
    /// The instrument named `name` (exact OpenTelemetry name).
    fn find(&self, name: &str) -> Option<&MetricSnapshot>;
}

impl SnapshotExt for [MetricSnapshot] {
    fn find(&self, name: &str) -> Option<&MetricSnapshot> {
        self.iter().find(|m| m.name == name)
    }
}

impl MetricSnapshot {
    /// The series whose attribute set equals `attributes` (in any order).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let calls = metrics.u64_counter("app.calls").build();
    /// calls.add(1, &[KeyValue::new("a", "1"), KeyValue::new("b", "2")]);
    /// let snapshot = metrics.snapshot();
    /// let metric = snapshot.find("app.calls").expect("registered");
    /// assert!(
    ///     metric
    ///         .find_series(&[KeyValue::new("b", "2"), KeyValue::new("a", "1")])
    ///         .is_some()
    /// );
    /// // A subset is another attribute set.
    /// assert!(metric.find_series(&[KeyValue::new("a", "1")]).is_none());
    /// ```
    pub fn find_series(&self, attributes: &[KeyValue]) -> Option<&SeriesSnapshot> {
        self.series
            .iter()
            .find(|s| attributes_match(attributes, &s.attributes))
    }

    /// The series whose attributes include all of `attributes`.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let calls = metrics.u64_counter("app.calls").build();
    /// calls.add(
    ///     1,
    ///     &[KeyValue::new("method", "GET"), KeyValue::new("status", 200)],
    /// );
    /// calls.add(
    ///     2,
    ///     &[KeyValue::new("method", "GET"), KeyValue::new("status", 500)],
    /// );
    /// calls.add(
    ///     4,
    ///     &[
    ///         KeyValue::new("method", "POST"),
    ///         KeyValue::new("status", 200),
    ///     ],
    /// );
    /// let snapshot = metrics.snapshot();
    /// let metric = snapshot.find("app.calls").expect("registered");
    /// let gets: u64 = metric
    ///     .series_matching(&[KeyValue::new("method", "GET")])
    ///     .filter_map(|s| s.counter())
    ///     .sum();
    /// assert_eq!(gets, 3);
    /// ```
    pub fn series_matching<'a, 'b>(
        &'a self,
        attributes: &'b [KeyValue],
    ) -> impl Iterator<Item = &'a SeriesSnapshot> + use<'a, 'b> {
        self.series.iter().filter(move |s| {
            attributes.iter().all(|want| {
                s.attributes
                    .iter()
                    .any(|have| have.key == want.key && have.value == want.value)
            })
        })
    }

    /// The overflow series, if the cardinality limit was reached.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, MetricsConfig, SnapshotExt};
    ///
    /// let metrics = Metrics::new(MetricsConfig::default().with_cardinality_limit(2));
    /// let calls = metrics.u64_counter("app.calls").build();
    /// for user in ["ann", "bob", "cid"] {
    ///     calls.add(1, &[KeyValue::new("user", user)]);
    /// }
    /// let snapshot = metrics.snapshot();
    /// let overflow = snapshot.find("app.calls").and_then(|m| m.overflow_series());
    /// assert_eq!(overflow.and_then(|s| s.counter()), Some(2));
    /// ```
    pub fn overflow_series(&self) -> Option<&SeriesSnapshot> {
        self.series.iter().find(|s| s.is_overflow())
    }

    /// Sum of the histogram counts of all series (0 for other kinds).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics.f64_histogram("app.call.duration").build();
    /// duration.record(1.0, &[KeyValue::new("call", "a")]);
    /// duration.record(2.0, &[KeyValue::new("call", "b")]);
    /// duration.record(3.0, &[KeyValue::new("call", "b")]);
    /// let snapshot = metrics.snapshot();
    /// assert_eq!(
    ///     snapshot.find("app.call.duration").map(|m| m.total_count()),
    ///     Some(3)
    /// );
    /// ```
    pub fn total_count(&self) -> u64 {
        self.series
            .iter()
            .filter_map(SeriesSnapshot::histogram)
            .map(|h| h.count)
            .sum()
    }

    /// Every exemplar of every series.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics
    ///     .f64_histogram("app.call.duration")
    ///     .with_unit("s")
    ///     .build();
    /// let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder()
    ///     .build()
    ///     .tracer("doc");
    /// tracer.in_span("a", |_| {
    ///     duration.record(0.001, &[KeyValue::new("call", "a")])
    /// });
    /// tracer.in_span("b", |_| duration.record(2.0, &[KeyValue::new("call", "b")]));
    /// duration.record(0.5, &[KeyValue::new("call", "b")]); // no span: no exemplar
    /// let snapshot = metrics.snapshot();
    /// let metric = snapshot.find("app.call.duration").expect("registered");
    /// let mut values: Vec<f64> = metric.exemplars().map(|e| e.value).collect();
    /// values.sort_by(f64::total_cmp);
    /// assert_eq!(values, [0.001, 2.0]);
    /// ```
    pub fn exemplars(&self) -> impl Iterator<Item = &Exemplar> + '_ {
        self.series
            .iter()
            .filter_map(SeriesSnapshot::histogram)
            .flat_map(|h| h.exemplars.iter())
    }
}

impl SeriesSnapshot {
    /// The histogram values, if this is a histogram series.
    ///
    /// ```
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// metrics
    ///     .f64_histogram("app.call.duration")
    ///     .build()
    ///     .record(0.5, &[]);
    /// let snapshot = metrics.snapshot();
    /// let series = &snapshot
    ///     .find("app.call.duration")
    ///     .expect("registered")
    ///     .series[0];
    /// assert_eq!(series.histogram().map(|h| h.count), Some(1));
    /// assert_eq!(series.counter(), None);
    /// ```
    pub fn histogram(&self) -> Option<&HistogramData> {
        match &self.data {
            SeriesData::Histogram(h) => Some(h),
            _ => None,
        }
    }

    /// The counter's sum, if this is a counter series.
    ///
    /// ```
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// metrics.u64_counter("app.calls").build().add(7, &[]);
    /// let snapshot = metrics.snapshot();
    /// let series = &snapshot.find("app.calls").expect("registered").series[0];
    /// assert_eq!(series.counter(), Some(7));
    /// assert!(series.histogram().is_none());
    /// ```
    pub fn counter(&self) -> Option<u64> {
        match self.data {
            SeriesData::Counter(v) => Some(v),
            _ => None,
        }
    }

    /// The up-down counter's value, if this is an up-down counter series.
    ///
    /// ```
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// metrics
    ///     .i64_up_down_counter("app.balance")
    ///     .build()
    ///     .add(-5, &[]);
    /// let snapshot = metrics.snapshot();
    /// let series = &snapshot.find("app.balance").expect("registered").series[0];
    /// assert_eq!(series.up_down_counter(), Some(-5));
    /// assert_eq!(series.counter(), None);
    /// ```
    pub fn up_down_counter(&self) -> Option<i64> {
        match self.data {
            SeriesData::UpDownCounter(v) => Some(v),
            _ => None,
        }
    }

    /// The value of the attribute `key`, if the series has it.
    ///
    /// ```
    /// use opentelemetry::{KeyValue, Value};
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// metrics
    ///     .u64_counter("app.calls")
    ///     .build()
    ///     .add(1, &[KeyValue::new("http.response.status_code", 200)]);
    /// let snapshot = metrics.snapshot();
    /// let series = &snapshot.find("app.calls").expect("registered").series[0];
    /// assert_eq!(
    ///     series.attribute("http.response.status_code"),
    ///     Some(&Value::I64(200))
    /// );
    /// assert_eq!(series.attribute("http.request.method"), None);
    /// ```
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        let key = Key::from(key.to_owned());
        self.attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| &kv.value)
    }

    /// Whether this is the overflow series (`otel.metric.overflow = true`).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, MetricsConfig, SnapshotExt};
    ///
    /// let metrics = Metrics::new(MetricsConfig::default().with_cardinality_limit(2));
    /// let calls = metrics.u64_counter("app.calls").build();
    /// calls.add(1, &[KeyValue::new("user", "ann")]);
    /// calls.add(1, &[KeyValue::new("user", "bob")]);
    /// let snapshot = metrics.snapshot();
    /// let flags: Vec<bool> = snapshot
    ///     .find("app.calls")
    ///     .expect("registered")
    ///     .series
    ///     .iter()
    ///     .map(|s| s.is_overflow())
    ///     .collect();
    /// assert_eq!(flags, [false, true]); // the overflow series comes last
    /// ```
    pub fn is_overflow(&self) -> bool {
        self.attributes
            .iter()
            .any(|kv| kv.key.as_str() == OVERFLOW_KEY && kv.value == Value::Bool(true))
    }
}

impl HistogramData {
    /// Index of the bucket `value` falls into (upper bounds inclusive).
    ///
    /// ```
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// metrics
    ///     .f64_histogram("app.size")
    ///     .with_boundaries(vec![10.0, 100.0])
    ///     .build()
    ///     .record(1.0, &[]);
    /// let snapshot = metrics.snapshot();
    /// let data = snapshot
    ///     .find("app.size")
    ///     .and_then(|m| m.series[0].histogram())
    ///     .expect("histogram");
    /// assert_eq!(data.bucket_index(10.0), 0); // upper bound inclusive
    /// assert_eq!(data.bucket_index(10.5), 1);
    /// assert_eq!(data.bucket_index(1e9), 2); // the +Inf bucket
    /// ```
    pub fn bucket_index(&self, value: f64) -> usize {
        bucket_index(&self.boundaries, value)
    }

    /// The exemplar of bucket `bucket`, if it has one.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{ExemplarFilter, Metrics, MetricsConfig, SnapshotExt};
    ///
    /// let config = MetricsConfig::default().with_exemplar_filter(ExemplarFilter::AlwaysOn);
    /// let metrics = Metrics::new(config);
    /// let size = metrics
    ///     .f64_histogram("app.size")
    ///     .with_boundaries(vec![10.0, 100.0])
    ///     .build();
    /// size.record(20.0, &[]);
    /// size.record(30.0, &[]);
    /// let snapshot = metrics.snapshot();
    /// let data = snapshot
    ///     .find("app.size")
    ///     .and_then(|m| m.series[0].histogram())
    ///     .expect("histogram");
    /// // Each bucket keeps its last measurement.
    /// assert_eq!(
    ///     data.exemplar(data.bucket_index(30.0)).map(|e| e.value),
    ///     Some(30.0)
    /// );
    /// assert!(data.exemplar(0).is_none());
    /// ```
    pub fn exemplar(&self, bucket: usize) -> Option<&Exemplar> {
        self.exemplars.iter().find(|e| e.bucket == bucket)
    }

    /// The exemplar recorded in span `span_id`, if any.
    ///
    /// ```
    /// use opentelemetry::Context;
    /// use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics
    ///     .f64_histogram("app.call.duration")
    ///     .with_unit("s")
    ///     .build();
    /// let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder()
    ///     .build()
    ///     .tracer("doc");
    /// let cx = Context::new().with_span(tracer.start("call"));
    /// duration.record_with_context(0.02, &[], &cx);
    /// let snapshot = metrics.snapshot();
    /// let data = snapshot
    ///     .find("app.call.duration")
    ///     .and_then(|m| m.series[0].histogram());
    /// let data = data.expect("a histogram series");
    /// let span_id = cx.span().span_context().span_id();
    /// assert_eq!(data.exemplar_for_span(span_id).map(|e| e.value), Some(0.02));
    /// ```
    pub fn exemplar_for_span(&self, span_id: SpanId) -> Option<&Exemplar> {
        self.exemplars.iter().find(|e| e.span_id == span_id)
    }

    /// Cumulative bucket counts (as Prometheus `_bucket{le=…}` samples), ending with `count`.
    ///
    /// ```
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let size = metrics
    ///     .f64_histogram("app.size")
    ///     .with_boundaries(vec![10.0, 100.0])
    ///     .build();
    /// for value in [5.0, 50.0, 60.0, 500.0] {
    ///     size.record(value, &[]);
    /// }
    /// let snapshot = metrics.snapshot();
    /// let data = snapshot
    ///     .find("app.size")
    ///     .and_then(|m| m.series[0].histogram())
    ///     .expect("histogram");
    /// assert_eq!(data.bucket_counts, [1, 2, 1]);
    /// assert_eq!(data.cumulative_counts(), [1, 3, 4]);
    /// ```
    pub fn cumulative_counts(&self) -> Vec<u64> {
        self.bucket_counts
            .iter()
            .scan(0u64, |acc, c| {
                *acc += c;
                Some(*acc)
            })
            .collect()
    }
}

/// Index of the bucket of `value` for `boundaries`: the first bound `>= value`, or the
/// overflow bucket.
#[inline]
pub(crate) fn bucket_index(boundaries: &[f64], value: f64) -> usize {
    if boundaries.len() <= 32 {
        // Counting the bounds below the value is branch-free and vectorises; a binary search
        // is a chain of dependent loads and compares, slower for the usual 10–20 bounds.
        boundaries.iter().filter(|&&bound| bound < value).count()
    } else {
        boundaries.partition_point(|&bound| bound < value)
    }
}
