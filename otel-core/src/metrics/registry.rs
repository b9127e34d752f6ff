//! The [`Metrics`] registry, instrument builders and the process-wide default registry.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::SystemTime;

use opentelemetry_sdk::Resource;

use super::config::MetricsConfig;
use super::counter::{Counter, CounterCells, SumInstrument, UpDownCells, UpDownCounter};
use super::histogram::{Histogram, HistogramInstrument};
use super::snapshot::{InstrumentKind, MetricSnapshot, SeriesSnapshot};

/// A registry of instruments: the handle every adapter records through and every exporter
/// reads from.
///
/// Cheap to clone (an `Arc` inside); clones share the instruments. Build one with
/// [`Metrics::new`] (or take the process-wide one with [`Metrics::global`]), create
/// instruments with [`f64_histogram`](Metrics::f64_histogram),
/// [`u64_counter`](Metrics::u64_counter) and
/// [`i64_up_down_counter`](Metrics::i64_up_down_counter), read everything with
/// [`snapshot`](Metrics::snapshot), export with [`otlp`](super::otlp) or
/// [`openmetrics`](super::openmetrics).
///
/// Instrument names are case-insensitive (as in OpenTelemetry): asking twice for the same name
/// and kind returns the same instrument (the first registration's unit, description and
/// boundaries win). Asking for a name already used by another kind, or for a name that is not
/// a valid OpenTelemetry instrument name, returns a disabled instrument and logs a warning.
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::{Metrics, MetricsConfig, SnapshotExt};
///
/// let metrics = Metrics::new(MetricsConfig::default());
/// let requests = metrics.u64_counter("app.requests").build();
/// // The same name and kind: the same instrument, whatever the case.
/// let again = metrics.u64_counter("App.Requests").build();
/// requests.add(1, &[KeyValue::new("route", "/")]);
/// again.add(1, &[KeyValue::new("route", "/")]);
///
/// let snapshot = metrics.snapshot();
/// assert_eq!(snapshot.len(), 1);
/// let series = snapshot.find("app.requests").and_then(|m| m.series.first());
/// assert_eq!(series.and_then(|s| s.counter()), Some(2));
///
/// // Not a valid instrument name: a disabled instrument.
/// assert!(!metrics.u64_counter("app requests!").build().is_enabled());
/// ```
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: MetricsInner,
}

#[derive(Clone, Debug)]
enum MetricsInner {
    Registry(Arc<Registry>),
    /// [`Metrics::global`] before [`Metrics::set_global`]: forwards to the global registry
    /// once set.
    GlobalProxy,
    /// [`Metrics::noop`].
    Noop,
}

impl Default for Metrics {
    /// A registry with [`MetricsConfig::default`].
    fn default() -> Self {
        Self::new(MetricsConfig::default())
    }
}

static GLOBAL: RwLock<Option<Metrics>> = RwLock::new(None);
static GLOBAL_SET: AtomicBool = AtomicBool::new(false);
/// Hooks given to the global proxy before a global registry was set: moved into it by
/// [`Metrics::set_global`].
static PENDING_HOOKS: Mutex<Vec<(u64, Hook)>> = Mutex::new(Vec::new());
/// Ids of the hooks given to the global proxy (apart from the registries' own ids).
static NEXT_GLOBAL_HOOK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 63);

impl Metrics {
    /// A new, empty registry.
    ///
    /// ```
    /// use otel_core::metrics::{Metrics, MetricsConfig};
    ///
    /// let metrics = Metrics::new(MetricsConfig::default().with_cardinality_limit(100));
    /// assert!(metrics.snapshot().is_empty());
    /// assert_eq!(metrics.config().cardinality_limit, 100);
    /// ```
    pub fn new(config: MetricsConfig) -> Self {
        Self {
            inner: MetricsInner::Registry(Arc::new(Registry {
                config,
                instruments: Mutex::new(Vec::new()),
                hooks: Mutex::new(Vec::new()),
                next_hook: std::sync::atomic::AtomicU64::new(0),
            })),
        }
    }

    /// A registry whose instruments do nothing and whose snapshot is always empty: for
    /// turning metrics off at (almost) no cost per call.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    ///
    /// let metrics = Metrics::noop();
    /// let requests = metrics.u64_counter("app.requests").build();
    /// requests.add(1, &[KeyValue::new("route", "/")]);
    /// assert!(!requests.is_enabled());
    /// assert!(metrics.snapshot().is_empty());
    /// ```
    pub fn noop() -> Self {
        Self {
            inner: MetricsInner::Noop,
        }
    }

    /// The process-wide registry set with [`Metrics::set_global`].
    ///
    /// Until it is set, this returns a proxy: instruments built from it record nothing (one
    /// atomic load per call) until a global registry is set, then bind to it on their next
    /// call, so adapters built before the pipeline still report once it is installed.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// // An adapter built before the pipeline takes the global registry...
    /// let requests = Metrics::global().u64_counter("app.requests").build();
    /// requests.add(1, &[]); // nothing set yet: recorded nowhere
    ///
    /// // ... and reports into the registry set later.
    /// let metrics = Metrics::default();
    /// Metrics::set_global(metrics.clone());
    /// requests.add(1, &[KeyValue::new("route", "/")]);
    /// let snapshot = metrics.snapshot();
    /// let series = snapshot.find("app.requests").and_then(|m| m.series.first());
    /// assert_eq!(series.and_then(|s| s.counter()), Some(1));
    /// ```
    pub fn global() -> Self {
        if GLOBAL_SET.load(Ordering::Acquire)
            && let Some(global) = GLOBAL
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
        {
            return global.clone();
        }
        Self {
            inner: MetricsInner::GlobalProxy,
        }
    }

    /// Makes `metrics` the process-wide registry returned by [`Metrics::global`].
    ///
    /// Meant to be called once at start-up by the pipeline. Setting it again replaces it for
    /// later callers; instruments already bound keep recording into the registry they were
    /// bound to. Passing the global proxy itself is ignored.
    ///
    /// ```
    /// use opentelemetry_sdk::Resource;
    /// use otel_core::metrics::{Metrics, MetricsConfig};
    ///
    /// let resource = Resource::builder_empty()
    ///     .with_service_name("checkout")
    ///     .build();
    /// Metrics::set_global(Metrics::new(
    ///     MetricsConfig::default().with_resource(resource.clone()),
    /// ));
    /// assert_eq!(Metrics::global().resource(), resource);
    /// ```
    pub fn set_global(metrics: Metrics) {
        if matches!(metrics.inner, MetricsInner::GlobalProxy) {
            return;
        }
        let registry = metrics.registry();
        *GLOBAL.write().unwrap_or_else(PoisonError::into_inner) = Some(metrics);
        GLOBAL_SET.store(true, Ordering::Release);
        // Hooks given to the proxy before now run with the registry's collections.
        let pending =
            std::mem::take(&mut *PENDING_HOOKS.lock().unwrap_or_else(PoisonError::into_inner));
        if let Some(registry) = registry {
            registry
                .hooks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(pending);
        }
    }

    /// The configuration of this registry (the global one's for the proxy; the default with
    /// an empty resource for [`Metrics::noop`] and an unset global).
    ///
    /// ```
    /// use otel_core::metrics::{ExemplarFilter, Metrics, MetricsConfig};
    ///
    /// let config = MetricsConfig::default().with_exemplar_filter(ExemplarFilter::AlwaysOff);
    /// let metrics = Metrics::new(config);
    /// assert_eq!(metrics.config().exemplar_filter, ExemplarFilter::AlwaysOff);
    /// assert!(Metrics::noop().config().resource.is_empty());
    /// ```
    pub fn config(&self) -> MetricsConfig {
        match self.registry() {
            Some(registry) => registry.config.clone(),
            None => MetricsConfig::default().with_resource(Resource::builder_empty().build()),
        }
    }

    /// The resource exported with these metrics.
    ///
    /// ```
    /// use opentelemetry::Key;
    /// use opentelemetry_sdk::Resource;
    /// use otel_core::metrics::{Metrics, MetricsConfig};
    ///
    /// let resource = Resource::builder_empty()
    ///     .with_service_name("checkout")
    ///     .build();
    /// let metrics = Metrics::new(MetricsConfig::default().with_resource(resource));
    /// let name = metrics
    ///     .resource()
    ///     .get(&Key::from_static_str("service.name"));
    /// assert_eq!(name.map(|v| v.to_string()), Some("checkout".to_owned()));
    /// ```
    pub fn resource(&self) -> Resource {
        match self.registry() {
            Some(registry) => registry.config.resource.clone(),
            None => Resource::builder_empty().build(),
        }
    }

    /// Starts building a histogram of `f64` values named `name` (an OpenTelemetry instrument
    /// name such as `http.server.request.duration`).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    /// use otel_core::semconv::metric::HTTP_SERVER_REQUEST_DURATION;
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics
    ///     .f64_histogram(HTTP_SERVER_REQUEST_DURATION)
    ///     .with_unit("s")
    ///     .with_description("Duration of HTTP server requests.")
    ///     .build();
    /// duration.record(0.031, &[KeyValue::new("http.request.method", "GET")]);
    /// ```
    pub fn f64_histogram(&self, name: impl Into<Cow<'static, str>>) -> HistogramBuilder<'_> {
        HistogramBuilder {
            metrics: self,
            spec: Spec::new(name.into()),
            boundaries: None,
        }
    }

    /// Starts building a monotonic `u64` counter named `name`.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    ///
    /// let metrics = Metrics::default();
    /// let retries = metrics
    ///     .u64_counter("app.retries")
    ///     .with_unit("{retry}")
    ///     .with_description("Retried calls.")
    ///     .build();
    /// retries.add(1, &[KeyValue::new("peer", "db")]);
    /// ```
    pub fn u64_counter(&self, name: impl Into<Cow<'static, str>>) -> CounterBuilder<'_> {
        CounterBuilder {
            metrics: self,
            spec: Spec::new(name.into()),
        }
    }

    /// Starts building an `i64` up-down counter named `name`.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    /// use otel_core::semconv::metric::HTTP_SERVER_ACTIVE_REQUESTS;
    ///
    /// let metrics = Metrics::default();
    /// let active = metrics
    ///     .i64_up_down_counter(HTTP_SERVER_ACTIVE_REQUESTS)
    ///     .with_unit("{request}")
    ///     .build();
    /// active.add(1, &[KeyValue::new("http.request.method", "GET")]);
    /// ```
    pub fn i64_up_down_counter(
        &self,
        name: impl Into<Cow<'static, str>>,
    ) -> UpDownCounterBuilder<'_> {
        UpDownCounterBuilder {
            metrics: self,
            spec: Spec::new(name.into()),
        }
    }

    /// Reads every instrument and series, with histogram percentiles.
    ///
    /// Instruments come in registration order, series sorted by attributes (the overflow
    /// series last). Each histogram series is read under its own locks, so within one series
    /// count, bucket counts, sum and HDR agree exactly.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{InstrumentKind, Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics
    ///     .f64_histogram("app.call.duration")
    ///     .with_unit("s")
    ///     .build();
    /// let calls = metrics.u64_counter("app.calls").build();
    /// duration.record(0.2, &[KeyValue::new("call", "b")]);
    /// duration.record(0.1, &[KeyValue::new("call", "a")]);
    /// calls.add(2, &[]);
    ///
    /// let snapshot = metrics.snapshot();
    /// let kinds: Vec<_> = snapshot.iter().map(|m| m.kind).collect();
    /// assert_eq!(kinds, [InstrumentKind::Histogram, InstrumentKind::Counter]);
    /// let histogram = snapshot.find("app.call.duration").expect("registered");
    /// // Series sorted by attributes.
    /// assert_eq!(
    ///     histogram.series[0].attribute("call").map(|v| v.to_string()),
    ///     Some("a".to_owned())
    /// );
    /// let p = histogram.series[0]
    ///     .histogram()
    ///     .and_then(|h| h.percentiles.clone());
    /// assert_eq!(p.map(|p| p.max), Some(0.1));
    /// ```
    pub fn snapshot(&self) -> Vec<MetricSnapshot> {
        self.collect(true)
    }

    /// Like [`Metrics::snapshot`] without HDR percentiles (cheaper; what the exporters use).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics
    ///     .f64_histogram("app.call.duration")
    ///     .with_unit("s")
    ///     .build();
    /// duration.record(0.2, &[KeyValue::new("call", "a")]);
    /// let snapshot = metrics.snapshot_without_percentiles();
    /// let data = snapshot
    ///     .find("app.call.duration")
    ///     .and_then(|m| m.series[0].histogram());
    /// let data = data.expect("a histogram series");
    /// assert_eq!(data.count, 1);
    /// assert!(data.percentiles.is_none());
    /// ```
    pub fn snapshot_without_percentiles(&self) -> Vec<MetricSnapshot> {
        self.collect(false)
    }

    /// Runs `hook` before every collection of these metrics (a snapshot, an OTLP export, a
    /// scrape), until the returned [`CollectHook`] is dropped: for values read from elsewhere
    /// at that moment, such as a pool's connection counts recorded into an up-down counter.
    /// The hook must not collect these metrics itself.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicI64, Ordering};
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let queue = metrics.i64_up_down_counter("app.queue.length").build();
    /// let length = Arc::new(AtomicI64::new(0)); // kept by someone else
    /// let seen = Arc::new(AtomicI64::new(0));
    /// let hook = metrics.on_collect({
    ///     let (queue, length, seen) = (queue.clone(), length.clone(), seen.clone());
    ///     move || {
    ///         let now = length.load(Ordering::Relaxed);
    ///         queue.add(now - seen.swap(now, Ordering::Relaxed), &[]);
    ///     }
    /// });
    /// length.store(7, Ordering::Relaxed);
    /// let snapshot = metrics.snapshot();
    /// let series = &snapshot.find("app.queue.length").expect("registered").series[0];
    /// assert_eq!(series.up_down_counter(), Some(7));
    /// drop(hook);
    /// ```
    pub fn on_collect(&self, hook: impl Fn() + Send + Sync + 'static) -> CollectHook {
        if matches!(self.inner, MetricsInner::GlobalProxy) {
            // Before a global registry is set, kept until [`Metrics::set_global`] (checked
            // under the pending list's lock, which `set_global` takes after setting it).
            let mut pending = PENDING_HOOKS.lock().unwrap_or_else(PoisonError::into_inner);
            if !GLOBAL_SET.load(Ordering::Acquire) {
                let id = NEXT_GLOBAL_HOOK.fetch_add(1, Ordering::Relaxed);
                pending.push((id, Arc::new(hook)));
                return CollectHook { registry: None, id };
            }
        }
        let Some(registry) = self.registry() else {
            return CollectHook {
                registry: None,
                id: 0,
            };
        };
        let id = registry.next_hook.fetch_add(1, Ordering::Relaxed);
        registry
            .hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, Arc::new(hook)));
        CollectHook {
            registry: Some(Arc::downgrade(&registry)),
            id,
        }
    }

    fn collect(&self, with_percentiles: bool) -> Vec<MetricSnapshot> {
        let Some(registry) = self.registry() else {
            return Vec::new();
        };
        // The hooks run outside the lock: they record into these metrics.
        let hooks: Vec<Hook> = registry
            .hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(_, hook)| Arc::clone(hook))
            .collect();
        for hook in hooks {
            hook();
        }
        let instruments: Vec<Instrument> = registry
            .instruments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|entry| entry.instrument.clone())
            .collect();
        let now = SystemTime::now();
        instruments
            .iter()
            .map(|instrument| {
                let (descriptor, kind, mut series, dropped) = match instrument {
                    Instrument::Histogram(h) => (
                        &h.descriptor,
                        InstrumentKind::Histogram,
                        h.collect(with_percentiles, now),
                        h.dropped(),
                    ),
                    Instrument::Counter(c) => {
                        (&c.descriptor, InstrumentKind::Counter, c.collect(now), 0)
                    }
                    Instrument::UpDownCounter(c) => (
                        &c.descriptor,
                        InstrumentKind::UpDownCounter,
                        c.collect(now),
                        0,
                    ),
                };
                sort_series(&mut series);
                MetricSnapshot {
                    name: descriptor.name.clone(),
                    unit: descriptor.unit.clone(),
                    description: descriptor.description.clone(),
                    kind,
                    series,
                    dropped_measurements: dropped,
                }
            })
            .collect()
    }

    /// The registry behind this handle: its own, the current global one for the proxy, none
    /// for no-op.
    fn registry(&self) -> Option<Arc<Registry>> {
        match &self.inner {
            MetricsInner::Registry(r) => Some(Arc::clone(r)),
            MetricsInner::Noop => None,
            MetricsInner::GlobalProxy => match Metrics::global().inner {
                MetricsInner::Registry(r) => Some(r),
                _ => None,
            },
        }
    }

    fn build<I: Registered>(&self, spec: Spec) -> Handle<I> {
        match &self.inner {
            MetricsInner::Registry(registry) => registry.get_or_register(spec),
            MetricsInner::Noop => Handle::Disabled,
            MetricsInner::GlobalProxy => match Metrics::global().inner {
                MetricsInner::Registry(registry) => registry.get_or_register(spec),
                _ => Handle::Deferred(Arc::new(Deferred {
                    spec,
                    resolved: OnceLock::new(),
                })),
            },
        }
    }
}

/// Sorts series by their attributes (as text) with the overflow series last, so snapshots and
/// expositions are stable.
fn sort_series(series: &mut [SeriesSnapshot]) {
    series.sort_by_cached_key(|s| {
        let key: Vec<(String, String)> = s
            .attributes
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        (s.is_overflow(), key)
    });
}

/// Builder of a [`Histogram`], from [`Metrics::f64_histogram`].
///
/// ```
/// use otel_core::metrics::Metrics;
///
/// let metrics = Metrics::default();
/// let histogram = metrics
///     .f64_histogram("app.batch.size")
///     .with_unit("{message}")
///     .with_description("Messages per batch.")
///     .with_boundaries(vec![1.0, 10.0, 100.0])
///     .build();
/// assert!(histogram.is_enabled());
/// ```
#[derive(Debug)]
#[must_use = "call .build() to get the histogram"]
pub struct HistogramBuilder<'a> {
    metrics: &'a Metrics,
    spec: Spec,
    boundaries: Option<Vec<f64>>,
}

impl HistogramBuilder<'_> {
    /// Sets the UCUM unit (`s` for durations). With unit `s` and no explicit boundaries the
    /// buckets are the semantic-convention duration boundaries.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::openmetrics::{Format, render};
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let duration = metrics
    ///     .f64_histogram("app.call.duration")
    ///     .with_unit("s")
    ///     .build();
    /// duration.record(0.5, &[KeyValue::new("call", "a")]);
    /// assert_eq!(
    ///     metrics
    ///         .snapshot()
    ///         .find("app.call.duration")
    ///         .map(|m| m.unit.as_str()),
    ///     Some("s")
    /// );
    /// // The unit becomes the Prometheus suffix.
    /// assert!(
    ///     render(&metrics, Format::OpenMetrics)
    ///         .contains("# TYPE app_call_duration_seconds histogram")
    /// );
    /// ```
    pub fn with_unit(mut self, unit: impl Into<Cow<'static, str>>) -> Self {
        self.spec.unit = unit.into();
        self
    }

    /// Sets the description (OpenMetrics `# HELP`).
    ///
    /// ```
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// metrics
    ///     .f64_histogram("app.call.duration")
    ///     .with_description("Duration of calls.")
    ///     .build();
    /// let snapshot = metrics.snapshot();
    /// assert_eq!(
    ///     snapshot
    ///         .find("app.call.duration")
    ///         .map(|m| m.description.as_str()),
    ///     Some("Duration of calls.")
    /// );
    /// ```
    pub fn with_description(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.spec.description = description.into();
        self
    }

    /// Sets the bucket upper bounds. Non-finite values are dropped, the rest sorted and
    /// deduplicated; an empty list leaves a single `+Inf` bucket.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let size = metrics
    ///     .f64_histogram("app.batch.size")
    ///     .with_boundaries(vec![100.0, 10.0, f64::NAN, 10.0, 1.0])
    ///     .build();
    /// size.record(42.0, &[KeyValue::new("queue", "orders")]);
    /// let snapshot = metrics.snapshot();
    /// let data = snapshot
    ///     .find("app.batch.size")
    ///     .and_then(|m| m.series[0].histogram());
    /// let data = data.expect("a histogram series");
    /// assert_eq!(data.boundaries, [1.0, 10.0, 100.0]);
    /// assert_eq!(data.bucket_counts, [0, 0, 1, 0]);
    /// ```
    pub fn with_boundaries(mut self, boundaries: Vec<f64>) -> Self {
        self.boundaries = Some(boundaries);
        self
    }

    /// Registers the histogram (or returns the one registered under this name).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::Metrics;
    ///
    /// let metrics = Metrics::default();
    /// let first = metrics.f64_histogram("app.latency").with_unit("s").build();
    /// let second = metrics.f64_histogram("app.latency").build();
    /// first.record(0.1, &[KeyValue::new("route", "/")]);
    /// // Both handles are the same instrument.
    /// assert_eq!(
    ///     second
    ///         .percentiles(&[KeyValue::new("route", "/")])
    ///         .map(|p| p.count),
    ///     Some(1)
    /// );
    /// ```
    pub fn build(self) -> Histogram {
        let mut spec = self.spec;
        spec.boundaries = self.boundaries;
        Histogram {
            inner: self.metrics.build(spec),
        }
    }
}

/// Builder of a [`Counter`], from [`Metrics::u64_counter`].
///
/// ```
/// use otel_core::metrics::Metrics;
///
/// let metrics = Metrics::default();
/// let sent = metrics
///     .u64_counter("app.sent")
///     .with_unit("By")
///     .with_description("Bytes sent.")
///     .build();
/// sent.add(1024, &[]);
/// ```
#[derive(Debug)]
#[must_use = "call .build() to get the counter"]
pub struct CounterBuilder<'a> {
    metrics: &'a Metrics,
    spec: Spec,
}

impl CounterBuilder<'_> {
    /// Sets the UCUM unit (e.g. `{request}`, `By`).
    ///
    /// ```
    /// use otel_core::metrics::Metrics;
    /// use otel_core::metrics::openmetrics::{Format, render};
    ///
    /// let metrics = Metrics::default();
    /// metrics
    ///     .u64_counter("app.sent")
    ///     .with_unit("By")
    ///     .build()
    ///     .add(1024, &[]);
    /// assert!(render(&metrics, Format::OpenMetrics).contains("app_sent_bytes_total 1024"));
    /// ```
    pub fn with_unit(mut self, unit: impl Into<Cow<'static, str>>) -> Self {
        self.spec.unit = unit.into();
        self
    }

    /// Sets the description (OpenMetrics `# HELP`).
    ///
    /// ```
    /// use otel_core::metrics::Metrics;
    /// use otel_core::metrics::openmetrics::{Format, render};
    ///
    /// let metrics = Metrics::default();
    /// metrics
    ///     .u64_counter("app.sent")
    ///     .with_description("Bytes sent.")
    ///     .build()
    ///     .add(1, &[]);
    /// assert!(render(&metrics, Format::OpenMetrics).contains("# HELP app_sent Bytes sent."));
    /// ```
    pub fn with_description(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.spec.description = description.into();
        self
    }

    /// Registers the counter (or returns the one registered under this name).
    ///
    /// ```
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// metrics.u64_counter("app.sent").build().add(1, &[]);
    /// metrics.u64_counter("app.sent").build().add(1, &[]);
    /// let snapshot = metrics.snapshot();
    /// let series = snapshot.find("app.sent").and_then(|m| m.series.first());
    /// assert_eq!(series.and_then(|s| s.counter()), Some(2));
    /// ```
    pub fn build(self) -> Counter {
        Counter {
            inner: self.metrics.build(self.spec),
        }
    }
}

/// Builder of an [`UpDownCounter`], from [`Metrics::i64_up_down_counter`].
///
/// ```
/// use otel_core::metrics::Metrics;
///
/// let metrics = Metrics::default();
/// let in_flight = metrics
///     .i64_up_down_counter("app.jobs.in_flight")
///     .with_unit("{job}")
///     .with_description("Jobs running now.")
///     .build();
/// in_flight.add(1, &[]);
/// ```
#[derive(Debug)]
#[must_use = "call .build() to get the up-down counter"]
pub struct UpDownCounterBuilder<'a> {
    metrics: &'a Metrics,
    spec: Spec,
}

impl UpDownCounterBuilder<'_> {
    /// Sets the UCUM unit (e.g. `{request}`, `{connection}`).
    ///
    /// ```
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// metrics
    ///     .i64_up_down_counter("app.connections")
    ///     .with_unit("{connection}")
    ///     .build();
    /// let snapshot = metrics.snapshot();
    /// assert_eq!(
    ///     snapshot.find("app.connections").map(|m| m.unit.as_str()),
    ///     Some("{connection}")
    /// );
    /// ```
    pub fn with_unit(mut self, unit: impl Into<Cow<'static, str>>) -> Self {
        self.spec.unit = unit.into();
        self
    }

    /// Sets the description (OpenMetrics `# HELP`).
    ///
    /// ```
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// metrics
    ///     .i64_up_down_counter("app.jobs.in_flight")
    ///     .with_description("Jobs running now.")
    ///     .build();
    /// let snapshot = metrics.snapshot();
    /// let description = snapshot
    ///     .find("app.jobs.in_flight")
    ///     .map(|m| m.description.as_str());
    /// assert_eq!(description, Some("Jobs running now."));
    /// ```
    pub fn with_description(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.spec.description = description.into();
        self
    }

    /// Registers the up-down counter (or returns the one registered under this name).
    ///
    /// ```
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    ///
    /// let metrics = Metrics::default();
    /// let in_flight = metrics.i64_up_down_counter("app.jobs.in_flight").build();
    /// in_flight.add(2, &[]);
    /// in_flight.add(-1, &[]);
    /// let snapshot = metrics.snapshot();
    /// let series = snapshot
    ///     .find("app.jobs.in_flight")
    ///     .and_then(|m| m.series.first());
    /// assert_eq!(series.and_then(|s| s.up_down_counter()), Some(1));
    /// ```
    pub fn build(self) -> UpDownCounter {
        UpDownCounter {
            inner: self.metrics.build(self.spec),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Internals.
// ---------------------------------------------------------------------------------------------

/// Name, unit and description of an instrument.
#[derive(Clone, Debug)]
pub(crate) struct Descriptor {
    pub(crate) name: String,
    pub(crate) unit: String,
    pub(crate) description: String,
}

/// Everything a builder collected.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    name: Cow<'static, str>,
    unit: Cow<'static, str>,
    description: Cow<'static, str>,
    boundaries: Option<Vec<f64>>,
}

impl Spec {
    fn new(name: Cow<'static, str>) -> Self {
        Self {
            name,
            unit: Cow::Borrowed(""),
            description: Cow::Borrowed(""),
            boundaries: None,
        }
    }

    fn descriptor(&self) -> Descriptor {
        Descriptor {
            name: self.name.to_string(),
            unit: self.unit.to_string(),
            description: self.description.to_string(),
        }
    }
}

/// An instrument handle: bound to a registry, waiting for the global one, or off.
#[derive(Debug)]
pub(crate) enum Handle<I> {
    Active(Arc<I>),
    Deferred(Arc<Deferred<I>>),
    Disabled,
}

impl<I> Clone for Handle<I> {
    fn clone(&self) -> Self {
        match self {
            Self::Active(i) => Self::Active(Arc::clone(i)),
            Self::Deferred(d) => Self::Deferred(Arc::clone(d)),
            Self::Disabled => Self::Disabled,
        }
    }
}

impl<I: Registered> Handle<I> {
    /// The instrument to record into, if any.
    #[inline]
    pub(crate) fn get(&self) -> Option<&I> {
        match self {
            Self::Active(i) => Some(i),
            Self::Deferred(d) => d.get(),
            Self::Disabled => None,
        }
    }
}

/// An instrument built from the global proxy before a global registry was set.
#[derive(Debug)]
pub(crate) struct Deferred<I> {
    spec: Spec,
    resolved: OnceLock<Option<Arc<I>>>,
}

impl<I: Registered> Deferred<I> {
    #[inline]
    fn get(&self) -> Option<&I> {
        if let Some(resolved) = self.resolved.get() {
            return resolved.as_deref();
        }
        if !GLOBAL_SET.load(Ordering::Acquire) {
            return None;
        }
        self.resolve()
    }

    #[cold]
    fn resolve(&self) -> Option<&I> {
        self.resolved
            .get_or_init(|| match Metrics::global().inner {
                MetricsInner::Registry(registry) => {
                    match registry.get_or_register::<I>(self.spec.clone()) {
                        Handle::Active(i) => Some(i),
                        _ => None,
                    }
                }
                _ => None,
            })
            .as_deref()
    }
}

/// A registered instrument of any kind.
#[derive(Clone, Debug)]
pub(crate) enum Instrument {
    Histogram(Arc<HistogramInstrument>),
    Counter(Arc<SumInstrument<CounterCells>>),
    UpDownCounter(Arc<SumInstrument<UpDownCells>>),
}

/// Instrument types the registry can build and hand out.
pub(crate) trait Registered: Sized {
    fn create(spec: &Spec, config: &MetricsConfig) -> Arc<Self>;
    fn wrap(instrument: Arc<Self>) -> Instrument;
    fn unwrap(instrument: &Instrument) -> Option<Arc<Self>>;
}

impl Registered for HistogramInstrument {
    fn create(spec: &Spec, config: &MetricsConfig) -> Arc<Self> {
        Arc::new(HistogramInstrument::new(
            spec.descriptor(),
            spec.boundaries.as_deref(),
            config,
        ))
    }
    fn wrap(instrument: Arc<Self>) -> Instrument {
        Instrument::Histogram(instrument)
    }
    fn unwrap(instrument: &Instrument) -> Option<Arc<Self>> {
        match instrument {
            Instrument::Histogram(h) => Some(Arc::clone(h)),
            _ => None,
        }
    }
}

impl Registered for SumInstrument<CounterCells> {
    fn create(spec: &Spec, config: &MetricsConfig) -> Arc<Self> {
        Arc::new(SumInstrument::new(spec.descriptor(), config))
    }
    fn wrap(instrument: Arc<Self>) -> Instrument {
        Instrument::Counter(instrument)
    }
    fn unwrap(instrument: &Instrument) -> Option<Arc<Self>> {
        match instrument {
            Instrument::Counter(c) => Some(Arc::clone(c)),
            _ => None,
        }
    }
}

impl Registered for SumInstrument<UpDownCells> {
    fn create(spec: &Spec, config: &MetricsConfig) -> Arc<Self> {
        Arc::new(SumInstrument::new(spec.descriptor(), config))
    }
    fn wrap(instrument: Arc<Self>) -> Instrument {
        Instrument::UpDownCounter(instrument)
    }
    fn unwrap(instrument: &Instrument) -> Option<Arc<Self>> {
        match instrument {
            Instrument::UpDownCounter(c) => Some(Arc::clone(c)),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// Lower-cased name (instrument names are case-insensitive).
    key: String,
    instrument: Instrument,
    spec: Spec,
}

struct Registry {
    config: MetricsConfig,
    instruments: Mutex<Vec<Entry>>,
    /// Run before each collection (see [`Metrics::on_collect`]), by id.
    hooks: Mutex<Vec<(u64, Hook)>>,
    next_hook: std::sync::atomic::AtomicU64,
}

/// A function run before each collection.
type Hook = Arc<dyn Fn() + Send + Sync>;

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.config)
            .field("instruments", &self.instruments)
            .finish_non_exhaustive()
    }
}

/// A function [`Metrics::on_collect`] runs before every collection; removed when dropped.
///
/// ```
/// use otel_core::metrics::Metrics;
///
/// let metrics = Metrics::default();
/// let hook = metrics.on_collect(|| ());
/// drop(hook); // no longer run
/// # let _ = metrics.snapshot();
/// ```
#[must_use = "the hook is removed when this is dropped"]
pub struct CollectHook {
    registry: Option<std::sync::Weak<Registry>>,
    id: u64,
}

impl std::fmt::Debug for CollectHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectHook").field("id", &self.id).finish()
    }
}

impl Drop for CollectHook {
    fn drop(&mut self) {
        let registry = match &self.registry {
            Some(registry) => registry.upgrade(),
            // Given to the global proxy: still pending, or moved into the global registry.
            None if self.id >= 1 << 63 => {
                PENDING_HOOKS
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|(id, _)| *id != self.id);
                Metrics::global().registry()
            }
            None => None,
        };
        if let Some(registry) = registry {
            // Dropped after the lock is released: a hook's captures may own another hook.
            let removed: Vec<(u64, Hook)> = {
                let mut hooks = registry
                    .hooks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let (removed, kept) = std::mem::take(&mut *hooks)
                    .into_iter()
                    .partition(|(id, _)| *id == self.id);
                *hooks = kept;
                removed
            };
            drop(removed);
        }
    }
}

impl Registry {
    fn get_or_register<I: Registered>(&self, spec: Spec) -> Handle<I> {
        if let Err(reason) = validate_name(&spec.name) {
            tracing::warn!(
                instrument = %spec.name,
                reason,
                "invalid instrument name: the instrument records nothing"
            );
            return Handle::Disabled;
        }
        let key = spec.name.to_ascii_lowercase();
        let mut instruments = self
            .instruments
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = instruments.iter().find(|e| e.key == key) {
            return match I::unwrap(&entry.instrument) {
                Some(existing) => {
                    if entry.spec.unit != spec.unit
                        || entry.spec.boundaries.is_some()
                            && spec.boundaries.is_some()
                            && entry.spec.boundaries != spec.boundaries
                    {
                        tracing::warn!(
                            instrument = %spec.name,
                            "instrument registered again with a different unit or boundaries: \
                             the first registration is used"
                        );
                    }
                    Handle::Active(existing)
                }
                None => {
                    tracing::warn!(
                        instrument = %spec.name,
                        "instrument name already registered with another kind: \
                         this instrument records nothing"
                    );
                    Handle::Disabled
                }
            };
        }
        let instrument = I::create(&spec, &self.config);
        instruments.push(Entry {
            key,
            instrument: I::wrap(Arc::clone(&instrument)),
            spec,
        });
        Handle::Active(instrument)
    }
}

/// OpenTelemetry instrument name syntax: a letter, then up to 254 of `[A-Za-z0-9_./-]`.
fn validate_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("empty name"),
        Some(c) if !c.is_ascii_alphabetic() => return Err("must start with a letter"),
        Some(_) => {}
    }
    if name.len() > 255 {
        return Err("longer than 255 characters");
    }
    if chars.any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))) {
        return Err("only letters, digits, '_', '.', '/' and '-' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_validation() {
        assert!(validate_name("http.server.request.duration").is_ok());
        assert!(validate_name("a/b-c_d").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("1abc").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn same_name_same_instrument_other_kind_disabled() {
        let metrics = Metrics::default();
        let a = metrics.f64_histogram("x.duration").with_unit("s").build();
        let b = metrics.f64_histogram("X.Duration").build();
        a.record(1.0, &[]);
        b.record(2.0, &[]);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].total_count(), 2);
        let c = metrics.u64_counter("x.duration").build();
        assert!(!c.is_enabled());
        let bad = metrics.u64_counter("no spaces").build();
        assert!(!bad.is_enabled());
        assert!(!Metrics::noop().f64_histogram("a").build().is_enabled());
    }
}
