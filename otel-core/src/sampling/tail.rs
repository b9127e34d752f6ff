//! Tail mode: keep the local part of traces with an error or a slow call, even when the head
//! sampler did not choose them.
//!
//! Two pieces work together:
//!
//! * [`TailSampler`] wraps the head sampler and turns its "drop" into "record only": every span
//!   records its attributes, events, status and timing, but stays *not sampled* (the W3C
//!   `sampled` flag sent downstream is still the head sampler's decision);
//! * [`TailSpanProcessor`] wraps the exporting processor. Sampled spans pass straight through.
//!   Recorded-only spans are buffered per local trace (trace id and local root, which each
//!   span's start records) until the **local root** (the span of the trace that started in
//!   this process: no parent, or a remote parent) ends. Then the whole
//!   local part is exported if any of its spans ended with status `Error` or ran longer than
//!   its threshold — a fixed [`TailConfig::with_slow_threshold`], or the operation's p99 from a
//!   [`P99Source`] — and discarded otherwise.
//!
//! Exported copies have the `sampled` trace flag set, so that backends and processors that
//! drop unsampled spans accept them. **Spans of the same trace in other services may be
//! missing**: those services made their own (head) decision and never saw this one.
//!
//! Memory is bounded: at most [`TailConfig::with_max_spans`] spans are buffered (further spans
//! are dropped, counted in [`TailStats::spans_evicted`], though an error or slow call among
//! them still marks its trace for export), and a local trace open longer than
//! [`TailConfig::with_max_age`] is evicted: exported so far if already marked (it stays
//! marked while its root runs, so what ends in it later is exported too), otherwise dropped
//! and counted. Evictions also print a warning (target `otel_core::sampling::tail`) at most
//! once every 10 seconds.
//!
//! Work that outlives its local root (spawned by a request and not awaited) is a local trace
//! of its own: a span still running when its root ends, or one that starts after, is decided
//! with the spans under it (those that ended before the root did included) when it ends; if
//! the root's part was kept, so is the work. Up to a quarter of `max_spans` spans per shard
//! (16 shards) are followed to their root, running spans first: when the table is full,
//! spans that ended are forgotten, and a span that then starts under one of them, or any span
//! past the limit, is a local root of its own.
//!
//! Every exporting processor must be inside the [`TailSpanProcessor`]: the SDK's batch
//! processor exports whatever it is given, recorded-only spans included.
//!
//! ```
//! use opentelemetry_sdk::trace::{
//!     InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor,
//! };
//! use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
//! use std::time::Duration;
//!
//! let exporter = InMemorySpanExporter::default();
//! let tail = TailSpanProcessor::new(
//!     SimpleSpanProcessor::new(exporter.clone()),
//!     TailConfig::new().with_slow_threshold(Duration::from_millis(500)),
//! );
//! let stats = tail.stats();
//! let provider = SdkTracerProvider::builder()
//!     .with_sampler(TailSampler::new(Sampler::TraceIdRatioBased(0.01)))
//!     .with_span_processor(tail)
//!     .build();
//! # drop(provider); let _ = stats.traces_kept();
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use opentelemetry::trace::{Link, SpanContext, SpanId, SpanKind, Status, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    SamplingDecision, SamplingResult, ShouldSample, Span, SpanData, SpanProcessor,
};

use crate::config::{ConfigError, EnvSource, parse_bool, parse_count, parse_millis};

/// The p99 duration of the operation a span belongs to, for the slow-call rule.
///
/// Implemented for closures `Fn(&SpanData) -> Option<Duration>`; wire it to the exemplar
/// histograms of [`crate::metrics`] (look the series up by the span's name and attributes).
/// `None` means "unknown": only the fixed threshold applies.
///
/// ```
/// # use std::time::{Duration, SystemTime};
/// # use opentelemetry::Context;
/// # use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};
/// use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
///
/// let exporter = InMemorySpanExporter::default();
/// let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), TailConfig::new().with_p99(|span: &opentelemetry_sdk::trace::SpanData| {
///     (span.name == "checkout").then(|| Duration::from_millis(200))
/// }));
/// let stats = tail.stats();
/// let provider = SdkTracerProvider::builder()
///     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
///     .with_span_processor(tail)
///     .build();
/// let tracer = provider.tracer("doc");
/// let start = SystemTime::now();
/// let mut slow = tracer.span_builder("checkout").with_start_time(start).start(&tracer);
/// slow.end_with_timestamp(start + Duration::from_millis(300)); // above its p99
/// let mut other = tracer.span_builder("search").with_start_time(start).start(&tracer);
/// other.end_with_timestamp(start + Duration::from_secs(5)); // no p99 known: not slow
/// let exported = exporter.get_finished_spans().expect("exporter open");
/// assert_eq!(exported.iter().map(|s| s.name.as_ref()).collect::<Vec<_>>(), ["checkout"]);
/// assert_eq!(stats.traces_discarded(), 1);
/// ```
pub trait P99Source: Send + Sync + 'static {
    /// The p99 of `span`'s operation, if known.
    fn p99(&self, span: &SpanData) -> Option<Duration>;
}

impl<F> P99Source for F
where
    F: Fn(&SpanData) -> Option<Duration> + Send + Sync + 'static,
{
    fn p99(&self, span: &SpanData) -> Option<Duration> {
        self(span)
    }
}

/// A [`P99Source`] reading the p99 of an exemplar histogram of durations in seconds
/// ([`crate::metrics::Histogram::percentiles`]).
///
/// `series` maps a span to the attributes of its histogram series (for example the span name
/// as the operation, plus the route); `None` means the span has no series and no p99. A p99 is
/// used only once the series holds at least `min_count` values (default 100), so that the
/// first calls of an operation are not all "slower than p99".
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::{Metrics, MetricsConfig};
/// use otel_core::sampling::tail::{HistogramP99, TailConfig};
/// use otel_core::semconv::attribute::DB_OPERATION_NAME;
///
/// let metrics = Metrics::new(MetricsConfig::default());
/// let duration = metrics
///     .f64_histogram("db.client.operation.duration")
///     .with_unit("s")
///     .build();
/// let p99 = HistogramP99::new(duration, |span: &opentelemetry_sdk::trace::SpanData| {
///     Some(vec![KeyValue::new(
///         DB_OPERATION_NAME,
///         span.name.to_string(),
///     )])
/// });
/// let config = TailConfig::new().with_p99(p99);
/// # drop(config);
/// ```
pub struct HistogramP99<F> {
    histogram: crate::metrics::Histogram,
    series: F,
    min_count: u64,
    /// Each series' p99 as last read, and when: reading it merges the series' HDR stripes
    /// under their locks, too much for every span end, so it is read again at most every
    /// [`P99_REFRESH`].
    cache: std::sync::RwLock<HashMap<String, (Instant, Option<Duration>)>>,
}

/// How long a series' p99 read by [`HistogramP99`] is reused.
const P99_REFRESH: Duration = Duration::from_secs(1);

/// The most series whose p99 [`HistogramP99`] keeps (it starts afresh beyond).
const P99_CACHED_SERIES: usize = 4096;

impl<F> fmt::Debug for HistogramP99<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistogramP99")
            .field("histogram", &self.histogram)
            .field("min_count", &self.min_count)
            .finish_non_exhaustive()
    }
}

impl<F> HistogramP99<F>
where
    F: Fn(&SpanData) -> Option<Vec<KeyValue>> + Send + Sync + 'static,
{
    /// Reads `histogram` (seconds) at the series `series(span)`.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    /// use otel_core::sampling::tail::{HistogramP99, TailConfig};
    /// use otel_core::semconv::attribute::HTTP_ROUTE;
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics
    ///     .f64_histogram("http.server.request.duration")
    ///     .with_unit("s")
    ///     .build();
    /// // Series by route; spans without a route have no p99.
    /// let p99 = HistogramP99::new(duration, |span: &opentelemetry_sdk::trace::SpanData| {
    ///     let route = span
    ///         .attributes
    ///         .iter()
    ///         .find(|kv| kv.key.as_str() == HTTP_ROUTE)?;
    ///     Some(vec![KeyValue::new(HTTP_ROUTE, route.value.clone())])
    /// });
    /// let config = TailConfig::new().with_p99(p99);
    /// # drop(config);
    /// ```
    pub fn new(histogram: crate::metrics::Histogram, series: F) -> Self {
        Self {
            histogram,
            series,
            min_count: 100,
            cache: std::sync::RwLock::default(),
        }
    }
    /// The fewest values a series needs before its p99 is trusted (default 100).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    /// use otel_core::sampling::tail::{HistogramP99, P99Source as _};
    /// # use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics
    ///     .f64_histogram("app.call.duration")
    ///     .with_unit("s")
    ///     .build();
    /// for _ in 0..10 {
    ///     duration.record(0.010, &[KeyValue::new("call", "checkout")]);
    /// }
    /// let series = |span: &opentelemetry_sdk::trace::SpanData| {
    ///     Some(vec![KeyValue::new("call", span.name.to_string())])
    /// };
    /// // A finished span named "checkout":
    /// let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    /// let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
    ///     .with_simple_exporter(exporter.clone())
    ///     .build();
    /// provider.tracer("doc").in_span("checkout", |_| ());
    /// let span = exporter
    ///     .get_finished_spans()
    ///     .expect("exporter open")
    ///     .remove(0);
    ///
    /// // Ten values are too few for the default minimum of 100 ...
    /// assert_eq!(HistogramP99::new(duration.clone(), series).p99(&span), None);
    /// // ... but enough with a lower one.
    /// let p99 = HistogramP99::new(duration, series)
    ///     .with_min_count(10)
    ///     .p99(&span)
    ///     .expect("known");
    /// assert!((p99.as_secs_f64() - 0.010).abs() < 0.0001);
    /// ```
    #[must_use]
    pub fn with_min_count(mut self, min_count: u64) -> Self {
        self.min_count = min_count;
        self
    }
}

impl<F> P99Source for HistogramP99<F>
where
    F: Fn(&SpanData) -> Option<Vec<KeyValue>> + Send + Sync + 'static,
{
    fn p99(&self, span: &SpanData) -> Option<Duration> {
        let attributes = (self.series)(span)?;
        let key = format!("{attributes:?}");
        let now = Instant::now();
        if let Ok(cache) = self.cache.read()
            && let Some((read_at, p99)) = cache.get(&key)
            && now.duration_since(*read_at) < P99_REFRESH
        {
            return *p99;
        }
        let p99 = self.histogram.percentiles(&attributes).and_then(|p| {
            (p.count >= self.min_count && p.p99.is_finite() && p.p99 >= 0.0)
                .then(|| Duration::try_from_secs_f64(p.p99).ok())
                .flatten()
        });
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= P99_CACHED_SERIES {
                cache.clear();
            }
            cache.insert(key, (now, p99));
        }
        p99
    }
}

/// Settings of tail mode.
///
/// ```
/// use otel_core::sampling::tail::TailConfig;
/// use std::time::Duration;
///
/// let config = TailConfig::new()
///     .with_slow_threshold(Duration::from_millis(500))
///     .with_max_spans(50_000)
///     .with_max_age(Duration::from_secs(60));
/// assert!(format!("{config:?}").contains("max_spans: 50000"));
/// ```
#[must_use]
#[derive(Clone)]
pub struct TailConfig {
    slow_threshold: Option<Duration>,
    p99: Option<Arc<dyn P99Source>>,
    max_spans: usize,
    max_age: Duration,
}

impl fmt::Debug for TailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TailConfig")
            .field("slow_threshold", &self.slow_threshold)
            .field("p99", &self.p99.is_some())
            .field("max_spans", &self.max_spans)
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl Default for TailConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl TailConfig {
    /// Errors only (no slow rule), 10 000 buffered spans, 30 s maximum age.
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use opentelemetry::Context;
    /// # use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};
    /// use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
    ///
    /// let exporter = InMemorySpanExporter::default();
    /// let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), TailConfig::new());
    /// let stats = tail.stats();
    /// let provider = SdkTracerProvider::builder()
    ///     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
    ///     .with_span_processor(tail)
    ///     .build();
    /// let tracer = provider.tracer("doc");
    /// let start = SystemTime::now();
    /// let mut slow = tracer.span_builder("slow").with_start_time(start).start(&tracer);
    /// slow.end_with_timestamp(start + Duration::from_secs(60)); // slow, but no slow rule
    /// let mut failed = tracer.start("failed");
    /// failed.set_status(Status::error("boom"));
    /// failed.end();
    /// let exported = exporter.get_finished_spans().expect("exporter open");
    /// assert_eq!(exported.iter().map(|s| s.name.as_ref()).collect::<Vec<_>>(), ["failed"]);
    /// ```
    pub fn new() -> Self {
        Self {
            slow_threshold: None,
            p99: None,
            max_spans: 10_000,
            max_age: Duration::from_secs(30),
        }
    }
    /// Keeps local traces with a span longer than `threshold`.
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use opentelemetry::Context;
    /// # use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};
    /// use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
    ///
    /// let exporter = InMemorySpanExporter::default();
    /// let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), TailConfig::new().with_slow_threshold(Duration::from_millis(500)));
    /// let stats = tail.stats();
    /// let provider = SdkTracerProvider::builder()
    ///     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
    ///     .with_span_processor(tail)
    ///     .build();
    /// let tracer = provider.tracer("doc");
    /// let start = SystemTime::now();
    /// for (name, took) in [("fast", 20), ("slow", 900)] {
    ///     let mut span = tracer.span_builder(name).with_start_time(start).start(&tracer);
    ///     span.end_with_timestamp(start + Duration::from_millis(took));
    /// }
    /// let exported = exporter.get_finished_spans().expect("exporter open");
    /// assert_eq!(exported.iter().map(|s| s.name.as_ref()).collect::<Vec<_>>(), ["slow"]);
    /// // Exported copies carry the sampled flag.
    /// assert!(exported[0].span_context.is_sampled());
    /// ```
    pub fn with_slow_threshold(mut self, threshold: Duration) -> Self {
        self.slow_threshold = Some(threshold);
        self
    }
    /// Keeps local traces with a span longer than its operation's p99.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    /// use otel_core::sampling::tail::{HistogramP99, TailConfig};
    /// use std::time::Duration;
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics
    ///     .f64_histogram("http.server.request.duration")
    ///     .with_unit("s")
    ///     .build();
    /// // The p99 of each span's own operation, once its series has 100 values:
    /// let p99 = HistogramP99::new(duration, |span: &opentelemetry_sdk::trace::SpanData| {
    ///     Some(vec![KeyValue::new("operation", span.name.to_string())])
    /// });
    /// // Also keep anything over 2 s, whatever its p99.
    /// let config = TailConfig::new()
    ///     .with_p99(p99)
    ///     .with_slow_threshold(Duration::from_secs(2));
    /// # drop(config);
    /// ```
    pub fn with_p99(mut self, source: impl P99Source) -> Self {
        self.p99 = Some(Arc::new(source));
        self
    }
    /// The most spans buffered at once (default 10 000).
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use opentelemetry::Context;
    /// # use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};
    /// use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
    ///
    /// let exporter = InMemorySpanExporter::default();
    /// let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), TailConfig::new().with_max_spans(1));
    /// let stats = tail.stats();
    /// let provider = SdkTracerProvider::builder()
    ///     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
    ///     .with_span_processor(tail)
    ///     .build();
    /// let tracer = provider.tracer("doc");
    /// let root = Context::new().with_span(tracer.start("GET /orders"));
    /// tracer.start_with_context("first", &root).end(); // buffered
    /// tracer.start_with_context("second", &root).end(); // over the cap: dropped
    /// assert_eq!((stats.spans_buffered(), stats.spans_evicted()), (1, 1));
    /// root.span().end();
    /// ```
    pub fn with_max_spans(mut self, max: usize) -> Self {
        self.max_spans = max;
        self
    }
    /// How long a local trace may stay open before it is evicted (default 30 s).
    ///
    /// ```
    /// use otel_core::sampling::tail::TailConfig;
    /// use std::time::Duration;
    ///
    /// // Long-running jobs: keep their local traces open for up to ten minutes.
    /// let config = TailConfig::new().with_max_age(Duration::from_secs(600));
    /// assert!(format!("{config:?}").contains("max_age: 600s"));
    /// ```
    pub fn with_max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// Reads tail mode from `env`: `None` unless `OTEL_CORE_TAIL_SAMPLING` is true; then
    /// `OTEL_CORE_TAIL_SLOW_MS`, `OTEL_CORE_TAIL_MAX_SPANS` and `OTEL_CORE_TAIL_MAX_AGE_MS`
    /// override the defaults of [`TailConfig::new`].
    ///
    /// ```
    /// use otel_core::config::EnvSource;
    /// use otel_core::sampling::tail::TailConfig;
    ///
    /// let off = TailConfig::from_env(&EnvSource::from_pairs([("OTEL_CORE_TAIL_SLOW_MS", "500")]));
    /// assert!(off.expect("valid").is_none());
    ///
    /// let env = EnvSource::from_pairs([
    ///     ("OTEL_CORE_TAIL_SAMPLING", "true"),
    ///     ("OTEL_CORE_TAIL_SLOW_MS", "500"),
    ///     ("OTEL_CORE_TAIL_MAX_SPANS", "20000"),
    /// ]);
    /// let config = TailConfig::from_env(&env).expect("valid").expect("on");
    /// let text = format!("{config:?}");
    /// assert!(text.contains("slow_threshold: Some(500ms)") && text.contains("max_spans: 20000"));
    ///
    /// let bad = EnvSource::from_pairs([
    ///     ("OTEL_CORE_TAIL_SAMPLING", "true"),
    ///     ("OTEL_CORE_TAIL_SLOW_MS", "soon"),
    /// ]);
    /// assert!(
    ///     TailConfig::from_env(&bad)
    ///         .expect_err("not ms")
    ///         .to_string()
    ///         .contains("OTEL_CORE_TAIL_SLOW_MS")
    /// );
    /// ```
    pub fn from_env(env: &EnvSource) -> Result<Option<Self>, ConfigError> {
        let on = match env.get("OTEL_CORE_TAIL_SAMPLING") {
            Some(v) => parse_bool("OTEL_CORE_TAIL_SAMPLING", &v)?,
            None => false,
        };
        if !on {
            return Ok(None);
        }
        let mut c = Self::new();
        if let Some(v) = env.get("OTEL_CORE_TAIL_SLOW_MS") {
            c.slow_threshold = Some(parse_millis("OTEL_CORE_TAIL_SLOW_MS", &v)?);
        }
        if let Some(v) = env.get("OTEL_CORE_TAIL_MAX_SPANS") {
            c.max_spans = parse_count("OTEL_CORE_TAIL_MAX_SPANS", &v)?;
        }
        if let Some(v) = env.get("OTEL_CORE_TAIL_MAX_AGE_MS") {
            c.max_age = parse_millis("OTEL_CORE_TAIL_MAX_AGE_MS", &v)?;
        }
        Ok(Some(c))
    }
}

/// A head sampler whose "drop" becomes "record only", for [`TailSpanProcessor`].
///
/// ```
/// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
/// use otel_core::sampling::tail::TailSampler;
///
/// let provider = SdkTracerProvider::builder()
///     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
///     .build();
/// let span = provider.tracer("doc").start("call");
/// // Recorded (attributes, status and timing are kept), but not sampled.
/// assert!(span.is_recording());
/// assert!(!span.span_context().is_sampled());
/// ```
#[derive(Debug, Clone)]
pub struct TailSampler {
    inner: Box<dyn ShouldSample>,
}

impl TailSampler {
    /// Wraps the head sampler `inner`.
    ///
    /// ```
    /// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    /// use otel_core::sampling::tail::TailSampler;
    ///
    /// // The head sampler's "sample" stays "sample".
    /// let provider = SdkTracerProvider::builder()
    ///     .with_sampler(TailSampler::new(Sampler::AlwaysOn))
    ///     .build();
    /// assert!(
    ///     provider
    ///         .tracer("doc")
    ///         .start("call")
    ///         .span_context()
    ///         .is_sampled()
    /// );
    /// ```
    pub fn new(inner: impl ShouldSample + 'static) -> Self {
        Self {
            inner: Box::new(inner),
        }
    }
    /// Wraps an already boxed head sampler.
    ///
    /// ```
    /// use otel_core::config::EnvSource;
    /// use otel_core::sampling::sampler_from_env;
    /// use otel_core::sampling::tail::TailSampler;
    ///
    /// let env = EnvSource::from_pairs([
    ///     ("OTEL_TRACES_SAMPLER", "traceidratio"),
    ///     ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
    /// ]);
    /// let head = sampler_from_env(&env).expect("valid");
    /// let sampler = TailSampler::from_boxed(head);
    /// assert!(format!("{sampler:?}").contains("TraceIdRatioBased(0.01)"));
    /// ```
    pub fn from_boxed(inner: Box<dyn ShouldSample>) -> Self {
        Self { inner }
    }
}

impl ShouldSample for TailSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let mut r =
            self.inner
                .should_sample(parent_context, trace_id, name, span_kind, attributes, links);
        if r.decision == SamplingDecision::Drop {
            r.decision = SamplingDecision::RecordOnly;
        }
        r
    }
}

const SHARDS: usize = 16;

struct LocalTrace {
    spans: Vec<SpanData>,
    keep: bool,
    /// The buffered spans that are notable (an error, or slow), should they move to
    /// another local trace (see [`Shard::settle`]).
    notable: Vec<SpanId>,
    /// Some of its spans were already exported (evicted by age while marked): it is not
    /// counted again as a kept trace.
    exported: bool,
    opened: Instant,
}

impl LocalTrace {
    fn new(now: Instant) -> Self {
        Self {
            spans: Vec::new(),
            keep: false,
            notable: Vec::new(),
            exported: false,
            opened: now,
        }
    }
}

/// What the processor knows of a recording span whose local trace is still open.
struct Entry {
    /// The local root its spans are buffered under: the span itself for a local root, and
    /// for work that outlived its root (see [`Shard::decide`]).
    root: SpanId,
    /// Its local parent (`SpanId::INVALID` for a local root).
    parent: SpanId,
    /// When it started, or ended once it has.
    since: Instant,
    ended: bool,
}

struct Shard {
    /// Open local traces, by trace id and local root span id: two local roots of one trace
    /// in flight at once (parallel requests of one caller, messages of one producer) are
    /// decided apart.
    traces: HashMap<(TraceId, SpanId), LocalTrace>,
    /// Every recording span of an open local trace, recorded at its start (a span learns
    /// only its parent, not its root) and kept until its root is decided: a child that
    /// starts after its parent ended still finds its root. A span whose parent is not here
    /// (its local trace was decided) is a local root of its own.
    roots: HashMap<SpanId, Entry>,
    /// The spans recorded under each local root, to settle them when it is decided.
    members: HashMap<SpanId, Vec<SpanId>>,
    /// How many entries of `roots` are of spans that ended.
    ended: usize,
    last_sweep: Instant,
}

impl Shard {
    /// Settles the spans tracked under the local root `root`, whose local trace `t` (the
    /// root's own span included) is being decided.
    ///
    /// Spans still running (work that outlives its root) become the roots of local traces
    /// of their own, one per topmost running span, with the running and ended spans under
    /// it: their buffered spans move out of `t` into those local traces, which `t`'s mark
    /// carries over to. The ended spans under no running one are forgotten.
    ///
    /// `buffered` counts spans buffered in the processor (`t`'s are already taken off).
    fn settle(
        &mut self,
        trace_id: TraceId,
        root: SpanId,
        t: &mut LocalTrace,
        now: Instant,
        buffered: &AtomicUsize,
    ) {
        use std::collections::HashSet;

        self.roots.remove(&root);
        let Some(members) = self.members.remove(&root) else {
            return;
        };
        let ours = |id: &SpanId, roots: &HashMap<SpanId, Entry>| {
            roots.get(id).is_some_and(|e| e.root == root)
        };
        let running =
            |id: &SpanId, roots: &HashMap<SpanId, Entry>| roots.get(id).is_some_and(|e| !e.ended);
        // Usually everything under the root has ended: forget it, with no more allocation.
        if !members
            .iter()
            .any(|id| ours(id, &self.roots) && running(id, &self.roots))
        {
            for id in &members {
                if ours(id, &self.roots) && self.roots.remove(id).is_some_and(|e| e.ended) {
                    self.ended -= 1;
                }
            }
            return;
        }
        let members: HashSet<SpanId> = members
            .into_iter()
            .filter(|id| ours(id, &self.roots))
            .collect();
        // The topmost running span on each member's path up to the root (itself included),
        // `None` when the path holds none: computed once per span.
        let mut top: HashMap<SpanId, Option<SpanId>> = HashMap::with_capacity(members.len());
        for &id in &members {
            let mut path = Vec::new();
            let mut cur = id;
            let mut above = None;
            loop {
                if let Some(known) = top.get(&cur) {
                    above = *known;
                    break;
                }
                path.push(cur);
                match self.roots.get(&cur) {
                    Some(e) if members.contains(&e.parent) && path.len() <= members.len() => {
                        cur = e.parent;
                    }
                    _ => break,
                }
            }
            // Resolve downwards: a running span is its own top unless one above it runs.
            for &span in path.iter().rev() {
                if above.is_none() && running(&span, &self.roots) {
                    above = Some(span);
                }
                top.insert(span, above);
            }
        }
        for (&id, &new_root) in &top {
            match new_root {
                Some(new_root) => {
                    if let Some(e) = self.roots.get_mut(&id) {
                        e.root = new_root;
                    }
                    if new_root != id {
                        self.members.entry(new_root).or_default().push(id);
                    }
                }
                None => {
                    if self.roots.remove(&id).is_some_and(|e| e.ended) {
                        self.ended -= 1;
                    }
                }
            }
        }
        // Spans already buffered under a running one follow it; the new local traces keep
        // `t`'s mark (one local trace, decided in parts).
        let spans = std::mem::take(&mut t.spans);
        for span in spans {
            let id = span.span_context.span_id();
            match top.get(&id).copied().flatten() {
                Some(new_root) => {
                    let moved = self
                        .traces
                        .entry((trace_id, new_root))
                        .or_insert_with(|| LocalTrace::new(now));
                    if t.notable.contains(&id) {
                        moved.keep = true;
                        moved.notable.push(id);
                    }
                    moved.spans.push(span);
                    buffered.fetch_add(1, Ordering::Relaxed);
                }
                None => t.spans.push(span),
            }
        }
        if t.keep {
            for new_root in top.values().flatten() {
                self.traces
                    .entry((trace_id, *new_root))
                    .or_insert_with(|| LocalTrace::new(now))
                    .keep = true;
            }
        }
    }

    /// The local root of a span that started under `parent` (`None`: no local parent).
    fn root_under(&self, span: SpanId, parent: Option<SpanId>) -> SpanId {
        parent
            .and_then(|parent| self.roots.get(&parent))
            .map_or(span, |e| e.root)
    }

    /// Forgets the ended spans (kept only for children that start after them), to make room
    /// for running ones.
    fn forget_ended(&mut self) {
        self.roots.retain(|_, e| !e.ended);
        self.ended = 0;
        let roots = &self.roots;
        self.members.retain(|root, ids| {
            ids.retain(|id| roots.contains_key(id));
            !ids.is_empty() || roots.contains_key(root)
        });
    }
}

/// How many [`TailSpanProcessor`]s exist in this process (see [`is_active`]).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Whether a [`TailSpanProcessor`] exists in this process (tail mode is on somewhere).
///
/// Adapters that start no span for a request whose caller did not sample the trace
/// (otel-tower's `skip_unsampled`, by default) start one while this is true: tail mode can
/// only keep the errors and slow calls of spans that exist.
///
/// ```
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};
/// use otel_core::sampling::tail::{self, TailConfig, TailSpanProcessor};
///
/// let processor = TailSpanProcessor::new(
///     SimpleSpanProcessor::new(InMemorySpanExporter::default()),
///     TailConfig::new(),
/// );
/// assert!(tail::is_active());
/// drop(processor);
/// ```
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed) > 0
}

struct Shared {
    config: TailConfig,
    shards: Vec<Mutex<Shard>>,
    buffered: AtomicUsize,
    traces_kept: AtomicU64,
    traces_discarded: AtomicU64,
    spans_kept: AtomicU64,
    spans_discarded: AtomicU64,
    spans_evicted: AtomicU64,
    /// When the last eviction warning was printed (ms since `epoch`, 0 = never).
    last_warning: AtomicU64,
    epoch: Instant,
}

impl<P> Drop for TailSpanProcessor<P> {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// At most one eviction warning per this interval.
const WARNING_INTERVAL: Duration = Duration::from_secs(10);

impl Shared {
    /// Counts `n` spans dropped without a decision; `true` when a warning is due (printed by
    /// [`Shared::warn`] once the shard's lock is released: a slow log writer must not hold up
    /// other requests).
    fn evicted(&self, n: u64) -> bool {
        self.spans_evicted.fetch_add(n, Ordering::Relaxed);
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        let last = self.last_warning.load(Ordering::Relaxed);
        (last == 0 || now.saturating_sub(last) >= WARNING_INTERVAL.as_millis() as u64)
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// The eviction warning (see [`Shared::evicted`]).
    fn warn(&self) {
        let total = self.spans_evicted.load(Ordering::Relaxed);
        tracing::warn!(
            target: "otel_core::sampling::tail",
            spans_evicted_total = total,
            max_spans = self.config.max_spans,
            max_age_ms = self.config.max_age.as_millis() as u64,
            "tail sampling dropped spans without a decision (buffer full or local trace too old)"
        );
    }
}

/// Counters of a [`TailSpanProcessor`] (a shared handle; clone freely).
///
/// ```
/// # use std::time::{Duration, SystemTime};
/// # use opentelemetry::Context;
/// # use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};
/// use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
///
/// let exporter = InMemorySpanExporter::default();
/// let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), TailConfig::new());
/// let stats = tail.stats();
/// let provider = SdkTracerProvider::builder()
///     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
///     .with_span_processor(tail)
///     .build();
/// let tracer = provider.tracer("doc");
/// // A local trace whose child fails:
/// let root = Context::new().with_span(tracer.start("GET /orders"));
/// let mut child = tracer.start_with_context("SELECT orders", &root);
/// child.set_status(Status::error("timeout"));
/// child.end();
/// root.span().end();
/// // A local trace with nothing notable:
/// tracer.start("GET /health").end();
/// assert_eq!((stats.traces_kept(), stats.spans_kept()), (1, 2));
/// assert_eq!((stats.traces_discarded(), stats.spans_discarded()), (1, 1));
/// assert_eq!((stats.spans_buffered(), stats.spans_evicted()), (0, 0));
/// assert_eq!(exporter.get_finished_spans().expect("exporter open").len(), 2);
/// ```
#[derive(Clone)]
pub struct TailStats(Arc<Shared>);

impl fmt::Debug for TailStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TailStats")
            .field("spans_buffered", &self.spans_buffered())
            .field("traces_kept", &self.traces_kept())
            .field("traces_discarded", &self.traces_discarded())
            .field("spans_kept", &self.spans_kept())
            .field("spans_discarded", &self.spans_discarded())
            .field("spans_evicted", &self.spans_evicted())
            .finish()
    }
}

impl TailStats {
    /// Recorded-only spans waiting for their local root now.
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use opentelemetry::Context;
    /// # use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// # use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};
    /// # use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
    /// #
    /// # let exporter = InMemorySpanExporter::default();
    /// # let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), TailConfig::new());
    /// # let stats = tail.stats();
    /// # let provider = SdkTracerProvider::builder()
    /// #     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
    /// #     .with_span_processor(tail)
    /// #     .build();
    /// # let tracer = provider.tracer("doc");
    /// let root = Context::new().with_span(tracer.start("GET /orders"));
    /// tracer.start_with_context("SELECT orders", &root).end();
    /// assert_eq!(stats.spans_buffered(), 1); // waiting for the root
    /// root.span().end();
    /// assert_eq!(stats.spans_buffered(), 0);
    /// ```
    pub fn spans_buffered(&self) -> usize {
        self.0.buffered.load(Ordering::Relaxed)
    }
    /// Local traces exported because of an error or a slow call.
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use opentelemetry::Context;
    /// # use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// # use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};
    /// # use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
    /// #
    /// # let exporter = InMemorySpanExporter::default();
    /// # let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), TailConfig::new());
    /// # let stats = tail.stats();
    /// # let provider = SdkTracerProvider::builder()
    /// #     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
    /// #     .with_span_processor(tail)
    /// #     .build();
    /// # let tracer = provider.tracer("doc");
    /// // A local trace whose child fails:
    /// let root = Context::new().with_span(tracer.start("GET /orders"));
    /// let mut child = tracer.start_with_context("SELECT orders", &root);
    /// child.set_status(Status::error("timeout"));
    /// child.end();
    /// root.span().end();
    /// // A local trace with nothing notable:
    /// tracer.start("GET /health").end();
    /// assert_eq!(stats.traces_kept(), 1);
    /// ```
    pub fn traces_kept(&self) -> u64 {
        self.0.traces_kept.load(Ordering::Relaxed)
    }
    /// Local traces discarded (nothing notable).
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use opentelemetry::Context;
    /// # use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// # use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};
    /// # use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
    /// #
    /// # let exporter = InMemorySpanExporter::default();
    /// # let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), TailConfig::new());
    /// # let stats = tail.stats();
    /// # let provider = SdkTracerProvider::builder()
    /// #     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
    /// #     .with_span_processor(tail)
    /// #     .build();
    /// # let tracer = provider.tracer("doc");
    /// // A local trace whose child fails:
    /// let root = Context::new().with_span(tracer.start("GET /orders"));
    /// let mut child = tracer.start_with_context("SELECT orders", &root);
    /// child.set_status(Status::error("timeout"));
    /// child.end();
    /// root.span().end();
    /// // A local trace with nothing notable:
    /// tracer.start("GET /health").end();
    /// assert_eq!(stats.traces_discarded(), 1);
    /// ```
    pub fn traces_discarded(&self) -> u64 {
        self.0.traces_discarded.load(Ordering::Relaxed)
    }
    /// Spans exported by tail decision.
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use opentelemetry::Context;
    /// # use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// # use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};
    /// # use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
    /// #
    /// # let exporter = InMemorySpanExporter::default();
    /// # let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), TailConfig::new());
    /// # let stats = tail.stats();
    /// # let provider = SdkTracerProvider::builder()
    /// #     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
    /// #     .with_span_processor(tail)
    /// #     .build();
    /// # let tracer = provider.tracer("doc");
    /// // A local trace whose child fails:
    /// let root = Context::new().with_span(tracer.start("GET /orders"));
    /// let mut child = tracer.start_with_context("SELECT orders", &root);
    /// child.set_status(Status::error("timeout"));
    /// child.end();
    /// root.span().end();
    /// // A local trace with nothing notable:
    /// tracer.start("GET /health").end();
    /// assert_eq!(stats.spans_kept(), 2); // the failed child and its root
    /// ```
    pub fn spans_kept(&self) -> u64 {
        self.0.spans_kept.load(Ordering::Relaxed)
    }
    /// Spans discarded with their local trace.
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use opentelemetry::Context;
    /// # use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// # use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};
    /// # use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
    /// #
    /// # let exporter = InMemorySpanExporter::default();
    /// # let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), TailConfig::new());
    /// # let stats = tail.stats();
    /// # let provider = SdkTracerProvider::builder()
    /// #     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
    /// #     .with_span_processor(tail)
    /// #     .build();
    /// # let tracer = provider.tracer("doc");
    /// // A local trace whose child fails:
    /// let root = Context::new().with_span(tracer.start("GET /orders"));
    /// let mut child = tracer.start_with_context("SELECT orders", &root);
    /// child.set_status(Status::error("timeout"));
    /// child.end();
    /// root.span().end();
    /// // A local trace with nothing notable:
    /// tracer.start("GET /health").end();
    /// assert_eq!(stats.spans_discarded(), 1);
    /// ```
    pub fn spans_discarded(&self) -> u64 {
        self.0.spans_discarded.load(Ordering::Relaxed)
    }
    /// Spans dropped without a decision: over the buffer cap, or in a local trace open longer
    /// than the maximum age and not marked for export.
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use opentelemetry::Context;
    /// # use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// # use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};
    /// # use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
    /// #
    /// # let exporter = InMemorySpanExporter::default();
    /// # let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), TailConfig::new().with_max_spans(2));
    /// # let stats = tail.stats();
    /// # let provider = SdkTracerProvider::builder()
    /// #     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
    /// #     .with_span_processor(tail)
    /// #     .build();
    /// # let tracer = provider.tracer("doc");
    /// let root = Context::new().with_span(tracer.start("batch"));
    /// for i in 0..5 {
    ///     tracer.start_with_context(format!("item {i}"), &root).end();
    /// }
    /// assert_eq!(stats.spans_evicted(), 3); // over the cap of 2
    /// root.span().end();
    /// ```
    pub fn spans_evicted(&self) -> u64 {
        self.0.spans_evicted.load(Ordering::Relaxed)
    }
}

/// Buffers recorded-only spans per local trace and exports those with an error or a slow call
/// through `inner` (see the module docs).
///
/// ```
/// # use std::time::{Duration, SystemTime};
/// # use opentelemetry::Context;
/// # use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};
/// use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
///
/// let exporter = InMemorySpanExporter::default();
/// let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), TailConfig::new());
/// let stats = tail.stats();
/// let provider = SdkTracerProvider::builder()
///     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
///     .with_span_processor(tail)
///     .build();
/// let tracer = provider.tracer("doc");
/// // A local trace whose child fails:
/// let root = Context::new().with_span(tracer.start("GET /orders"));
/// let mut child = tracer.start_with_context("SELECT orders", &root);
/// child.set_status(Status::error("timeout"));
/// child.end();
/// root.span().end();
/// // A local trace with nothing notable:
/// tracer.start("GET /health").end();
/// let exported = exporter.get_finished_spans().expect("exporter open");
/// let mut names: Vec<_> = exported.iter().map(|s| s.name.as_ref()).collect();
/// names.sort();
/// assert_eq!(names, ["GET /orders", "SELECT orders"]);
/// ```
pub struct TailSpanProcessor<P> {
    inner: P,
    shared: Arc<Shared>,
}

impl<P: fmt::Debug> fmt::Debug for TailSpanProcessor<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TailSpanProcessor")
            .field("inner", &self.inner)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl<P: SpanProcessor> TailSpanProcessor<P> {
    /// Wraps the exporting processor `inner`.
    ///
    /// ```
    /// use opentelemetry_sdk::trace::{
    ///     InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor,
    /// };
    /// use otel_core::redact::{RedactingSpanProcessor, Redactor};
    /// use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
    ///
    /// // Every exporting processor goes inside: here redaction, then export.
    /// let exporter = InMemorySpanExporter::default();
    /// let inner = RedactingSpanProcessor::new(SimpleSpanProcessor::new(exporter), Redactor::new());
    /// let provider = SdkTracerProvider::builder()
    ///     .with_sampler(TailSampler::new(Sampler::ParentBased(Box::new(
    ///         Sampler::TraceIdRatioBased(0.05),
    ///     ))))
    ///     .with_span_processor(TailSpanProcessor::new(inner, TailConfig::new()))
    ///     .build();
    /// # drop(provider);
    /// ```
    pub fn new(inner: P, config: TailConfig) -> Self {
        let now = Instant::now();
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        Self {
            inner,
            shared: Arc::new(Shared {
                config,
                shards: (0..SHARDS)
                    .map(|_| {
                        Mutex::new(Shard {
                            traces: HashMap::new(),
                            roots: HashMap::new(),
                            members: HashMap::new(),
                            ended: 0,
                            last_sweep: now,
                        })
                    })
                    .collect(),
                buffered: AtomicUsize::new(0),
                traces_kept: AtomicU64::new(0),
                traces_discarded: AtomicU64::new(0),
                spans_kept: AtomicU64::new(0),
                spans_discarded: AtomicU64::new(0),
                spans_evicted: AtomicU64::new(0),
                last_warning: AtomicU64::new(0),
                epoch: now,
            }),
        }
    }

    /// A handle on the counters, valid after the processor moved into a provider.
    ///
    /// ```
    /// # use std::time::{Duration, SystemTime};
    /// # use opentelemetry::Context;
    /// # use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor};
    /// use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
    ///
    /// let exporter = InMemorySpanExporter::default();
    /// let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), TailConfig::new());
    /// let stats = tail.stats();
    /// let provider = SdkTracerProvider::builder()
    ///     .with_sampler(TailSampler::new(Sampler::AlwaysOff))
    ///     .with_span_processor(tail)
    ///     .build();
    /// let tracer = provider.tracer("doc");
    /// tracer.start("GET /health").end();
    /// assert_eq!(stats.traces_discarded(), 1);
    /// ```
    pub fn stats(&self) -> TailStats {
        TailStats(self.shared.clone())
    }

    fn shard(&self, trace_id: TraceId) -> MutexGuard<'_, Shard> {
        let i = (u128::from_be_bytes(trace_id.to_bytes()) as usize) % SHARDS;
        self.shared.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn notable(&self, span: &SpanData) -> bool {
        if matches!(span.status, Status::Error { .. }) {
            return true;
        }
        let took = span
            .end_time
            .duration_since(span.start_time)
            .unwrap_or_default();
        let c = &self.shared.config;
        c.slow_threshold.is_some_and(|t| took > t)
            || c.p99
                .as_ref()
                .and_then(|p| p.p99(span))
                .is_some_and(|p99| took > p99)
    }

    /// Exports a local trace's spans; `new_trace`: counted as a kept trace (not when part of
    /// it was already exported).
    fn export(&self, spans: Vec<SpanData>, new_trace: bool) {
        let s = &self.shared;
        if new_trace {
            s.traces_kept.fetch_add(1, Ordering::Relaxed);
        }
        s.spans_kept
            .fetch_add(spans.len() as u64, Ordering::Relaxed);
        for mut span in spans {
            let sc = &span.span_context;
            span.span_context = SpanContext::new(
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().with_sampled(true),
                sc.is_remote(),
                sc.trace_state().clone(),
            );
            self.inner.on_end(span);
        }
    }

    /// The most spans tracked per shard (their roots): a quarter of the buffer, so that one
    /// local trace of up to that size is followed whole.
    fn tracked_per_shard(&self) -> usize {
        (self.shared.config.max_spans / 4).max(256)
    }

    /// Removes local traces older than the maximum age from `shard`: those marked for export
    /// go to `out` (and stay marked, so what else ends in them is exported too), the rest are
    /// dropped. `warn`: an eviction warning is due.
    fn sweep(
        &self,
        shard: &mut Shard,
        now: Instant,
        out: &mut Vec<(Vec<SpanData>, bool)>,
        warn: &mut bool,
    ) {
        let s = &self.shared;
        let max_age = s.config.max_age;
        let Shard {
            traces,
            roots,
            members,
            ended,
            ..
        } = shard;
        traces.retain(|(_, root), t| {
            if now.duration_since(t.opened) <= max_age {
                return true;
            }
            s.buffered.fetch_sub(t.spans.len(), Ordering::Relaxed);
            if t.keep {
                // Exported so far, and kept marked while its root runs: what ends in it
                // later is exported too.
                if !t.spans.is_empty() {
                    out.push((std::mem::take(&mut t.spans), !t.exported));
                    t.exported = true;
                }
                t.opened = now;
                roots.contains_key(root)
            } else {
                *warn |= s.evicted(t.spans.len() as u64);
                false
            }
        });
        // Spans that ended long ago (kept for children that start after them) under a root
        // that still runs. Running spans stay: they are live, and bounded by the table's cap.
        roots.retain(|_, e| {
            let keep = !e.ended || now.duration_since(e.since) <= max_age;
            if !keep {
                *ended -= 1;
            }
            keep
        });
        let roots = &*roots;
        members.retain(|root, ids| {
            ids.retain(|id| roots.get(id).is_some_and(|e| e.root == *root));
            !ids.is_empty() || roots.contains_key(root)
        });
        // A burst leaves large tables behind: give the memory back once they are mostly empty.
        if shard.traces.capacity() > 64 && shard.traces.len() < shard.traces.capacity() / 4 {
            shard.traces.shrink_to(shard.traces.len() * 2);
        }
        if shard.roots.capacity() > 64 && shard.roots.len() < shard.roots.capacity() / 4 {
            shard.roots.shrink_to(shard.roots.len() * 2);
        }
        if shard.members.capacity() > 64 && shard.members.len() < shard.members.capacity() / 4 {
            shard.members.shrink_to(shard.members.len() * 2);
        }
        shard.last_sweep = now;
    }

    /// Decides every open local trace now (at shutdown).
    fn decide_all(&self) {
        let mut ready = Vec::new();
        for shard in &self.shared.shards {
            let mut shard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (_, t) in shard.traces.drain() {
                self.shared
                    .buffered
                    .fetch_sub(t.spans.len(), Ordering::Relaxed);
                if t.keep {
                    if !t.spans.is_empty() {
                        ready.push((t.spans, !t.exported));
                    }
                } else {
                    self.discard(t.spans.len());
                }
            }
            shard.roots.clear();
            shard.members.clear();
            shard.ended = 0;
        }
        for (spans, new_trace) in ready {
            self.export(spans, new_trace);
        }
    }

    fn discard(&self, n: usize) {
        let s = &self.shared;
        s.traces_discarded.fetch_add(1, Ordering::Relaxed);
        s.spans_discarded.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl<P: SpanProcessor> SpanProcessor for TailSpanProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        use opentelemetry::trace::{Span as _, TraceContextExt as _};
        self.inner.on_start(span, cx);
        let (trace_id, span_id) = {
            let sc = span.span_context();
            if sc.is_sampled() || !span.is_recording() {
                return;
            }
            (sc.trace_id(), sc.span_id())
        };
        let parent = cx.span();
        let parent = parent.span_context();
        // A local root (no parent, or a remote one) keys its own local trace.
        let parent_id = (parent.is_valid() && !parent.is_remote()).then(|| parent.span_id());
        let mut shard = self.shard(trace_id);
        // Bounded (see `tracked_per_shard`): when full, the spans that ended are forgotten
        // first (if they are a good part of it, so that this stays rare); past that, a span
        // is not tracked, and its children become local roots of their own.
        let cap = self.tracked_per_shard();
        if shard.roots.len() >= cap {
            if shard.ended >= cap / 4 {
                shard.forget_ended();
            }
            if shard.roots.len() >= cap {
                return;
            }
        }
        let root = shard.root_under(span_id, parent_id);
        shard.roots.insert(
            span_id,
            Entry {
                root,
                parent: parent_id.unwrap_or(SpanId::INVALID),
                since: Instant::now(),
                ended: false,
            },
        );
        if root != span_id {
            shard.members.entry(root).or_default().push(span_id);
        }
    }

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.inner.on_end(span);
            return;
        }
        let notable = self.notable(&span);
        let local_root = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
        let trace_id = span.span_context.trace_id();
        let s = &self.shared;
        let now = Instant::now();
        let mut aged = Vec::new();
        let mut warn = false;
        let decided = {
            let mut guard = self.shard(trace_id);
            let shard = &mut *guard;
            if now.duration_since(shard.last_sweep) > s.config.max_age / 2 {
                self.sweep(shard, now, &mut aged, &mut warn);
            }
            let span_id = span.span_context.span_id();
            let root = if local_root {
                span_id
            } else {
                match shard.roots.get_mut(&span_id) {
                    // Its entry stays until its root is decided: children that start after
                    // it ended still find their root through it.
                    Some(e) => {
                        if e.root != span_id {
                            e.ended = true;
                            e.since = now;
                            shard.ended += 1;
                        }
                        e.root
                    }
                    // Not tracked (the table was full, or it outlived the maximum age): its
                    // parent's root, or its own.
                    None => shard.root_under(span_id, Some(span.parent_span_id)),
                }
            };
            let key = (trace_id, root);
            if root == span_id {
                // A local root (or work that outlived its root): its local trace is decided.
                let mut t = shard
                    .traces
                    .remove(&key)
                    .unwrap_or_else(|| LocalTrace::new(now));
                s.buffered.fetch_sub(t.spans.len(), Ordering::Relaxed);
                t.keep |= notable;
                t.spans.push(span);
                shard.settle(trace_id, root, &mut t, now, &s.buffered);
                Some(t)
            } else {
                let full = s.buffered.load(Ordering::Relaxed) >= s.config.max_spans;
                let tracked = self.tracked_per_shard();
                let open = shard.traces.len();
                match shard.traces.get_mut(&key) {
                    Some(t) => {
                        t.keep |= notable;
                        if full {
                            warn |= s.evicted(1);
                        } else {
                            s.buffered.fetch_add(1, Ordering::Relaxed);
                            if notable {
                                t.notable.push(span_id);
                            }
                            t.spans.push(span);
                        }
                    }
                    // With the buffer full, no entry is opened for the span, only a mark
                    // when it is notable (and the table has room): memory stays bounded
                    // whatever number of local traces are in flight.
                    None if full => {
                        warn |= s.evicted(1);
                        if notable && open < tracked {
                            let mut t = LocalTrace::new(now);
                            t.keep = true;
                            shard.traces.insert(key, t);
                        }
                    }
                    None => {
                        s.buffered.fetch_add(1, Ordering::Relaxed);
                        let mut t = LocalTrace::new(now);
                        t.keep = notable;
                        if notable {
                            t.notable.push(span_id);
                        }
                        t.spans.push(span);
                        shard.traces.insert(key, t);
                    }
                }
                None
            }
        };
        if warn {
            s.warn();
        }
        for (spans, new_trace) in aged {
            self.export(spans, new_trace);
        }
        if let Some(t) = decided {
            if t.keep {
                self.export(t.spans, !t.exported);
            } else {
                self.discard(t.spans.len());
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        // Local traces past their maximum age are settled now rather than at the next span.
        let now = Instant::now();
        let mut aged = Vec::new();
        let mut warn = false;
        for shard in &self.shared.shards {
            let mut shard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.sweep(&mut shard, now, &mut aged, &mut warn);
        }
        if warn {
            self.shared.warn();
        }
        for (spans, new_trace) in aged {
            self.export(spans, new_trace);
        }
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.decide_all();
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Several processors behind one (what the pipeline puts inside a [`TailSpanProcessor`]).
#[derive(Debug)]
pub(crate) struct FanOut(pub(crate) Vec<Box<dyn SpanProcessor>>);

impl SpanProcessor for FanOut {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        for p in &self.0 {
            p.on_start(span, cx);
        }
    }
    fn on_end(&self, span: SpanData) {
        if let Some((last, rest)) = self.0.split_last() {
            for p in rest {
                p.on_end(span.clone());
            }
            last.on_end(span);
        }
    }
    fn force_flush(&self) -> OTelSdkResult {
        let mut result = Ok(());
        for p in &self.0 {
            let r = p.force_flush();
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let mut result = Ok(());
        for p in &self.0 {
            let r = p.shutdown_with_timeout(timeout);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
    fn set_resource(&mut self, resource: &Resource) {
        for p in &mut self.0 {
            p.set_resource(resource);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::{
        InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor,
    };

    /// A series' p99 is read from the histogram at most once per refresh interval, not at
    /// every span end (reading merges the series' stripes under their locks).
    #[test]
    fn histogram_p99_is_reused_within_the_refresh_interval() {
        let metrics = crate::metrics::Metrics::default();
        let duration = metrics.f64_histogram("op.duration").with_unit("s").build();
        for _ in 0..100 {
            duration.record(0.010, &[]);
        }
        let p99 = HistogramP99::new(duration.clone(), |_: &SpanData| Some(Vec::new()));
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        provider.tracer("t").start("op").end();
        let span = exporter.get_finished_spans().unwrap().remove(0);
        let first = p99.p99(&span).unwrap();
        assert!((first.as_secs_f64() - 0.010).abs() < 0.001, "{first:?}");
        // Much slower calls since: the cached value stands until the interval is over.
        for _ in 0..10_000 {
            duration.record(1.0, &[]);
        }
        assert_eq!(p99.p99(&span), Some(first));
        let fresh = HistogramP99::new(duration, |_: &SpanData| Some(Vec::new()));
        assert!(fresh.p99(&span).unwrap() > Duration::from_millis(900));
    }

    /// Local traces whose roots never end, each with one ended child: with the buffer full,
    /// no entry is opened for them, so memory stays bounded by `max_spans`.
    #[test]
    fn a_full_buffer_opens_no_more_local_traces() {
        let tail = TailSpanProcessor::new(
            SimpleSpanProcessor::new(InMemorySpanExporter::default()),
            TailConfig::new().with_max_spans(1),
        );
        let shared = Arc::clone(&tail.shared);
        let provider = SdkTracerProvider::builder()
            .with_sampler(TailSampler::new(Sampler::AlwaysOff))
            .with_span_processor(tail)
            .build();
        let tracer = provider.tracer("t");
        let mut roots = Vec::new();
        for _ in 0..100 {
            let cx = opentelemetry::Context::current_with_span(tracer.start("root"));
            tracer.start_with_context("child", &cx).end();
            roots.push(cx);
        }
        let entries: usize = shared
            .shards
            .iter()
            .map(|s| s.lock().unwrap().traces.len())
            .sum();
        assert_eq!(entries, 1);
        assert_eq!(shared.buffered.load(Ordering::Relaxed), 1);
        assert_eq!(shared.spans_evicted.load(Ordering::Relaxed), 99);
        for cx in roots {
            cx.span().end();
        }
    }
}
