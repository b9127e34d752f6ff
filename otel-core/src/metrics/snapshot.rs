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
//! let histogram = metrics.f64_histogram("http.server.request.duration").with_unit("s").build();
//! histogram.record(0.042, &[KeyValue::new("http.request.method", "GET")]);
//!
//! let snapshot = metrics.snapshot();
//! let metric = snapshot.find("http.server.request.duration").expect("registered");
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
    pub fn has_span(&self) -> bool {
        self.trace_id != TraceId::INVALID && self.span_id != SpanId::INVALID
    }
}

/// Local percentiles of one histogram series, from its HDR histogram.
///
/// Values are in the instrument's unit and exact to the HDR precision (2 significant digits:
/// within 1 % of the true quantile), over the whole life of the series.
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
    pub fn find_series(&self, attributes: &[KeyValue]) -> Option<&SeriesSnapshot> {
        self.series
            .iter()
            .find(|s| attributes_match(attributes, &s.attributes))
    }

    /// The series whose attributes include all of `attributes`.
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
    pub fn overflow_series(&self) -> Option<&SeriesSnapshot> {
        self.series.iter().find(|s| s.is_overflow())
    }

    /// Sum of the histogram counts of all series (0 for other kinds).
    pub fn total_count(&self) -> u64 {
        self.series
            .iter()
            .filter_map(SeriesSnapshot::histogram)
            .map(|h| h.count)
            .sum()
    }

    /// Every exemplar of every series.
    pub fn exemplars(&self) -> impl Iterator<Item = &Exemplar> + '_ {
        self.series
            .iter()
            .filter_map(SeriesSnapshot::histogram)
            .flat_map(|h| h.exemplars.iter())
    }
}

impl SeriesSnapshot {
    /// The histogram values, if this is a histogram series.
    pub fn histogram(&self) -> Option<&HistogramData> {
        match &self.data {
            SeriesData::Histogram(h) => Some(h),
            _ => None,
        }
    }

    /// The counter's sum, if this is a counter series.
    pub fn counter(&self) -> Option<u64> {
        match self.data {
            SeriesData::Counter(v) => Some(v),
            _ => None,
        }
    }

    /// The up-down counter's value, if this is an up-down counter series.
    pub fn up_down_counter(&self) -> Option<i64> {
        match self.data {
            SeriesData::UpDownCounter(v) => Some(v),
            _ => None,
        }
    }

    /// The value of the attribute `key`, if the series has it.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        let key = Key::from(key.to_owned());
        self.attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| &kv.value)
    }

    /// Whether this is the overflow series (`otel.metric.overflow = true`).
    pub fn is_overflow(&self) -> bool {
        self.attributes
            .iter()
            .any(|kv| kv.key.as_str() == OVERFLOW_KEY && kv.value == Value::Bool(true))
    }
}

impl HistogramData {
    /// Index of the bucket `value` falls into (upper bounds inclusive).
    pub fn bucket_index(&self, value: f64) -> usize {
        bucket_index(&self.boundaries, value)
    }

    /// The exemplar of bucket `bucket`, if it has one.
    pub fn exemplar(&self, bucket: usize) -> Option<&Exemplar> {
        self.exemplars.iter().find(|e| e.bucket == bucket)
    }

    /// The exemplar recorded in span `span_id`, if any.
    pub fn exemplar_for_span(&self, span_id: SpanId) -> Option<&Exemplar> {
        self.exemplars.iter().find(|e| e.span_id == span_id)
    }

    /// Cumulative bucket counts (as Prometheus `_bucket{le=…}` samples), ending with `count`.
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
