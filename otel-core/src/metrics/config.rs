//! Configuration of a [`Metrics`](super::Metrics) registry and the errors of this module.

use std::time::Duration;

use opentelemetry_sdk::Resource;

/// Environment variable selecting the exemplar filter (OpenTelemetry SDK configuration).
///
/// ```
/// use otel_core::metrics::{ExemplarFilter, OTEL_METRICS_EXEMPLAR_FILTER};
///
/// let env = |var: &str| (var == OTEL_METRICS_EXEMPLAR_FILTER).then(|| "always_off".to_owned());
/// assert_eq!(
///     ExemplarFilter::from_lookup(env).ok(),
///     Some(ExemplarFilter::AlwaysOff)
/// );
/// ```
pub const OTEL_METRICS_EXEMPLAR_FILTER: &str = "OTEL_METRICS_EXEMPLAR_FILTER";

/// Default cardinality limit per instrument (the OpenTelemetry SDK default).
///
/// ```
/// use otel_core::metrics::{DEFAULT_CARDINALITY_LIMIT, MetricsConfig};
///
/// assert_eq!(
///     MetricsConfig::default().cardinality_limit,
///     DEFAULT_CARDINALITY_LIMIT
/// );
/// // A registry for instruments with many attribute sets, capped lower:
/// let config = MetricsConfig::default().with_cardinality_limit(DEFAULT_CARDINALITY_LIMIT / 4);
/// assert_eq!(config.cardinality_limit, 500);
/// ```
pub const DEFAULT_CARDINALITY_LIMIT: usize = 2000;

/// Which measurements may become exemplars.
///
/// Selected in code with [`MetricsConfig::with_exemplar_filter`] or from the environment with
/// [`ExemplarFilter::from_env`] (`OTEL_METRICS_EXEMPLAR_FILTER`).
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::{ExemplarFilter, Metrics, MetricsConfig, SnapshotExt};
///
/// // `AlwaysOn` keeps exemplars of measurements made outside any span too.
/// let metrics =
///     Metrics::new(MetricsConfig::default().with_exemplar_filter(ExemplarFilter::AlwaysOn));
/// let histogram = metrics
///     .f64_histogram("app.job.duration")
///     .with_unit("s")
///     .build();
/// histogram.record(0.3, &[KeyValue::new("job", "reindex")]);
///
/// let snapshot = metrics.snapshot();
/// let exemplars: Vec<_> = snapshot
///     .find("app.job.duration")
///     .expect("registered")
///     .exemplars()
///     .collect();
/// assert_eq!(exemplars.len(), 1);
/// assert_eq!(exemplars[0].value, 0.3);
/// assert!(!exemplars[0].has_span()); // no span was current
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExemplarFilter {
    /// Only measurements made inside a sampled span (the default): every exemplar points at a
    /// span that the trace pipeline records. `trace_based` in the environment variable.
    #[default]
    TraceBased,
    /// Every measurement; exemplars of calls outside any span carry no trace or span id.
    /// `always_on` in the environment variable.
    AlwaysOn,
    /// No exemplars at all. `always_off` in the environment variable.
    AlwaysOff,
}

impl ExemplarFilter {
    /// Parses a value of `OTEL_METRICS_EXEMPLAR_FILTER` (`trace_based`, `always_on`,
    /// `always_off`; case-insensitive, surrounding blanks ignored).
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidEnv`] naming the variable and the value when it is none of those.
    ///
    /// ```
    /// use otel_core::metrics::ExemplarFilter;
    ///
    /// assert_eq!(
    ///     ExemplarFilter::parse(" Always_On ").ok(),
    ///     Some(ExemplarFilter::AlwaysOn)
    /// );
    /// let err = ExemplarFilter::parse("sometimes").expect_err("not a filter");
    /// assert!(err.to_string().contains("OTEL_METRICS_EXEMPLAR_FILTER"));
    /// ```
    pub fn parse(value: &str) -> Result<Self, MetricsError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "trace_based" => Ok(Self::TraceBased),
            "always_on" => Ok(Self::AlwaysOn),
            "always_off" => Ok(Self::AlwaysOff),
            _ => Err(MetricsError::InvalidEnv {
                var: OTEL_METRICS_EXEMPLAR_FILTER,
                value: value.to_owned(),
                reason: "expected one of trace_based, always_on, always_off".to_owned(),
            }),
        }
    }

    /// Reads `OTEL_METRICS_EXEMPLAR_FILTER`; unset or empty gives the default
    /// ([`ExemplarFilter::TraceBased`]).
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidEnv`] naming the variable and the value when it is set to an
    /// unknown value (or is not valid Unicode).
    ///
    /// ```
    /// use otel_core::metrics::{ExemplarFilter, Metrics, MetricsConfig};
    ///
    /// # fn main() -> Result<(), otel_core::metrics::MetricsError> {
    /// let filter = ExemplarFilter::from_env()?;
    /// let metrics = Metrics::new(MetricsConfig::default().with_exemplar_filter(filter));
    /// assert_eq!(metrics.config().exemplar_filter, filter);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_env() -> Result<Self, MetricsError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Like [`ExemplarFilter::from_env`], reading variables through `lookup` (for tests and
    /// for configuration layered over the process environment).
    ///
    /// # Errors
    ///
    /// As [`ExemplarFilter::from_env`].
    ///
    /// ```
    /// use otel_core::metrics::ExemplarFilter;
    /// use std::collections::HashMap;
    ///
    /// let settings = HashMap::from([("OTEL_METRICS_EXEMPLAR_FILTER", "always_off")]);
    /// let filter = ExemplarFilter::from_lookup(|var| settings.get(var).map(|v| v.to_string()));
    /// assert_eq!(filter.ok(), Some(ExemplarFilter::AlwaysOff));
    /// // Unset: the default.
    /// assert_eq!(
    ///     ExemplarFilter::from_lookup(|_| None).ok(),
    ///     Some(ExemplarFilter::TraceBased)
    /// );
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, MetricsError> {
        match lookup(OTEL_METRICS_EXEMPLAR_FILTER) {
            Some(value) if !value.trim().is_empty() => Self::parse(&value),
            _ => Ok(Self::default()),
        }
    }
}

/// Configuration of a [`Metrics`](super::Metrics) registry.
///
/// ```
/// use opentelemetry_sdk::Resource;
/// use otel_core::metrics::{ExemplarFilter, Metrics, MetricsConfig};
///
/// let config = MetricsConfig::default()
///     .with_exemplar_filter(ExemplarFilter::AlwaysOn)
///     .with_cardinality_limit(500)
///     .with_resource(
///         Resource::builder_empty()
///             .with_service_name("checkout")
///             .build(),
///     );
/// let metrics = Metrics::new(config);
/// # let _ = metrics;
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// Which measurements may become exemplars. Default: [`ExemplarFilter::TraceBased`].
    pub exemplar_filter: ExemplarFilter,
    /// Most series one instrument keeps, the overflow series included; attribute sets beyond
    /// it are folded into the series `otel.metric.overflow = true`. Default: 2000. Values below
    /// 1 are treated as 1 (everything goes to the overflow series).
    pub cardinality_limit: usize,
    /// The resource: exported with OTLP and rendered as `target_info` in OpenMetrics.
    /// Default: `Resource::builder().build()` (SDK defaults and `OTEL_RESOURCE_ATTRIBUTES` /
    /// `OTEL_SERVICE_NAME`); the pipeline passes its own.
    pub resource: Resource,
    /// Stripes per histogram, counter and up-down counter series: independently locked
    /// histogram stripes, separate atomics (each on its own cache lines) for counters.
    /// Recording threads spread over the stripes, so `n` threads recording into one series
    /// contend `n` times less. A histogram stripe costs the memory given in the
    /// [module docs](super#memory-per-series), a counter stripe 128 bytes. Default: 2.
    /// Clamped to `1..=16`.
    pub stripes_per_series: usize,
    /// How long the slowest exemplar of a series stays "recent" for
    /// [`Histogram::percentiles`](super::Histogram::percentiles): a slower call always replaces
    /// it, a faster one replaces it once it is older than this. Default: 60 s.
    pub slowest_window: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            exemplar_filter: ExemplarFilter::default(),
            cardinality_limit: DEFAULT_CARDINALITY_LIMIT,
            resource: Resource::builder().build(),
            stripes_per_series: 2,
            slowest_window: Duration::from_secs(60),
        }
    }
}

impl MetricsConfig {
    /// The default configuration with the exemplar filter read from
    /// `OTEL_METRICS_EXEMPLAR_FILTER`.
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidEnv`] for an unknown filter value.
    ///
    /// ```
    /// use otel_core::metrics::{Metrics, MetricsConfig};
    ///
    /// # fn main() -> Result<(), otel_core::metrics::MetricsError> {
    /// let metrics = Metrics::new(MetricsConfig::from_env()?.with_cardinality_limit(100));
    /// assert_eq!(metrics.config().cardinality_limit, 100);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_env() -> Result<Self, MetricsError> {
        Ok(Self::default().with_exemplar_filter(ExemplarFilter::from_env()?))
    }

    /// Sets the exemplar filter.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{ExemplarFilter, Metrics, MetricsConfig, SnapshotExt};
    ///
    /// let config = MetricsConfig::default().with_exemplar_filter(ExemplarFilter::AlwaysOff);
    /// let metrics = Metrics::new(config);
    /// let histogram = metrics.f64_histogram("app.latency").with_unit("s").build();
    /// histogram.record(0.01, &[KeyValue::new("route", "/")]);
    /// let snapshot = metrics.snapshot();
    /// assert_eq!(
    ///     snapshot
    ///         .find("app.latency")
    ///         .expect("registered")
    ///         .exemplars()
    ///         .count(),
    ///     0
    /// );
    /// ```
    #[must_use]
    pub fn with_exemplar_filter(mut self, filter: ExemplarFilter) -> Self {
        self.exemplar_filter = filter;
        self
    }

    /// Sets the cardinality limit per instrument (overflow series included; at least 1, at
    /// most 1 048 576: values outside are brought within).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, MetricsConfig, SnapshotExt};
    ///
    /// let metrics = Metrics::new(MetricsConfig::default().with_cardinality_limit(3));
    /// let requests = metrics.u64_counter("app.requests").build();
    /// for user in ["ann", "bob", "cid", "dan"] {
    ///     requests.add(1, &[KeyValue::new("user", user)]);
    /// }
    /// let snapshot = metrics.snapshot();
    /// let metric = snapshot.find("app.requests").expect("registered");
    /// // Two attribute sets kept, the other two folded into the overflow series.
    /// assert_eq!(metric.series.len(), 3);
    /// assert_eq!(metric.overflow_series().and_then(|s| s.counter()), Some(2));
    /// ```
    #[must_use]
    pub fn with_cardinality_limit(mut self, limit: usize) -> Self {
        self.cardinality_limit = limit;
        self
    }

    /// Sets the resource exported with the metrics.
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
    /// assert_eq!(
    ///     metrics
    ///         .resource()
    ///         .get(&Key::from_static_str("service.name"))
    ///         .map(|v| v.to_string()),
    ///     Some("checkout".to_owned())
    /// );
    /// ```
    #[must_use]
    pub fn with_resource(mut self, resource: Resource) -> Self {
        self.resource = resource;
        self
    }

    /// Sets the number of stripes per histogram and counter series (see the field docs).
    ///
    /// ```
    /// use otel_core::metrics::{Metrics, MetricsConfig};
    ///
    /// // Many series, little contention: one stripe halves the memory per series.
    /// let metrics = Metrics::new(MetricsConfig::default().with_stripes_per_series(1));
    /// assert_eq!(metrics.config().stripes_per_series, 1);
    /// ```
    #[must_use]
    pub fn with_stripes_per_series(mut self, stripes: usize) -> Self {
        self.stripes_per_series = stripes;
        self
    }

    /// Sets how long the slowest exemplar of a series counts as recent.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{ExemplarFilter, Metrics, MetricsConfig};
    /// use std::time::Duration;
    ///
    /// let config = MetricsConfig::default()
    ///     .with_exemplar_filter(ExemplarFilter::AlwaysOn)
    ///     .with_slowest_window(Duration::from_secs(300));
    /// let metrics = Metrics::new(config);
    /// let duration = metrics
    ///     .f64_histogram("app.call.duration")
    ///     .with_unit("s")
    ///     .build();
    /// let attributes = [KeyValue::new("call", "sync")];
    /// duration.record(2.0, &attributes);
    /// duration.record(0.1, &attributes);
    /// // The slower call stays the slowest of the window.
    /// let p = duration.percentiles(&attributes).expect("recorded");
    /// assert_eq!(p.slowest.map(|e| e.value), Some(2.0));
    /// ```
    #[must_use]
    pub fn with_slowest_window(mut self, window: Duration) -> Self {
        self.slowest_window = window;
        self
    }

    pub(crate) fn effective_stripes(&self) -> usize {
        self.stripes_per_series.clamp(1, 16)
    }
}

/// Errors of the metrics module: configuration read from the environment, OTLP export.
///
/// ```
/// use otel_core::metrics::{ExemplarFilter, MetricsError};
///
/// match ExemplarFilter::parse("sometimes") {
///     Err(MetricsError::InvalidEnv { var, value, .. }) => {
///         assert_eq!(var, "OTEL_METRICS_EXEMPLAR_FILTER");
///         assert_eq!(value, "sometimes");
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// An environment variable holds a value that cannot be used.
    #[error("invalid value {value:?} for environment variable {var}: {reason}")]
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration given in code cannot be used.
    #[error("invalid OTLP metrics configuration: {0}")]
    InvalidConfig(String),
    /// An export failed (transport error, non-success status, timeout).
    #[error("OTLP metrics export to {endpoint} failed: {reason}")]
    Export {
        /// Where the request went.
        endpoint: String,
        /// What failed.
        reason: String,
    },
    /// A blocking exporter method was called on a thread driving an async runtime, where it
    /// would block the runtime (or panic); call it from a plain thread or use
    /// [`PeriodicMetricsExporter`](super::otlp::PeriodicMetricsExporter).
    #[error("blocking OTLP metrics export called from inside an async runtime")]
    InsideAsyncRuntime,
    /// The periodic exporter did not finish within the deadline given to it.
    #[error("periodic metrics exporter did not finish within {0:?}")]
    Timeout(Duration),
    /// The periodic exporter's thread could not be started, or has already stopped.
    #[error("periodic metrics exporter thread: {0}")]
    Thread(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exemplar_filter_values() {
        assert_eq!(
            ExemplarFilter::parse("trace_based").ok(),
            Some(ExemplarFilter::TraceBased)
        );
        assert_eq!(
            ExemplarFilter::parse(" Always_On ").ok(),
            Some(ExemplarFilter::AlwaysOn)
        );
        assert_eq!(
            ExemplarFilter::parse("always_off").ok(),
            Some(ExemplarFilter::AlwaysOff)
        );
        let err = ExemplarFilter::parse("sometimes")
            .err()
            .map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("OTEL_METRICS_EXEMPLAR_FILTER"), "{err}");
        assert!(err.contains("sometimes"), "{err}");
        assert_eq!(
            ExemplarFilter::from_lookup(|_| None).ok(),
            Some(ExemplarFilter::TraceBased)
        );
        assert_eq!(
            ExemplarFilter::from_lookup(|_| Some("always_off".into())).ok(),
            Some(ExemplarFilter::AlwaysOff)
        );
        assert!(ExemplarFilter::from_lookup(|_| Some("on".into())).is_err());
    }
}
