//! The periodic OTLP exporter: a thread of its own that exports the registry every interval.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{OtlpMetricsExporter, parse_millis, to_otlp_request};
use crate::metrics::Metrics;
use crate::metrics::config::MetricsError;

/// Timing of a [`PeriodicMetricsExporter`].
///
/// ```
/// use otel_core::metrics::otlp::PeriodicConfig;
/// use std::time::Duration;
///
/// let config = PeriodicConfig::default();
/// assert_eq!(
///     (config.interval, config.timeout),
///     (Duration::from_secs(60), Duration::from_secs(30))
/// );
/// let fast = config
///     .with_interval(Duration::from_secs(10))
///     .with_timeout(Duration::from_secs(5));
/// assert_eq!(fast.interval, Duration::from_secs(10));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeriodicConfig {
    /// Time between exports (`OTEL_METRIC_EXPORT_INTERVAL`, default 60 s).
    pub interval: Duration,
    /// Cap on one export (`OTEL_METRIC_EXPORT_TIMEOUT`, default 30 s); the exporter's own
    /// timeout applies too, the smaller wins.
    pub timeout: Duration,
}

impl Default for PeriodicConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        }
    }
}

impl PeriodicConfig {
    /// Sets the interval.
    ///
    /// ```
    /// use otel_core::metrics::otlp::PeriodicConfig;
    /// use std::time::Duration;
    ///
    /// let config = PeriodicConfig::default().with_interval(Duration::from_secs(15));
    /// assert_eq!(config.interval, Duration::from_secs(15));
    /// ```
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the per-export cap.
    ///
    /// ```
    /// use otel_core::metrics::otlp::PeriodicConfig;
    /// use std::time::Duration;
    ///
    /// let config = PeriodicConfig::default().with_timeout(Duration::from_secs(3));
    /// assert_eq!(config.timeout, Duration::from_secs(3));
    /// ```
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads `OTEL_METRIC_EXPORT_INTERVAL` and `OTEL_METRIC_EXPORT_TIMEOUT` (milliseconds).
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidEnv`] naming the variable for a value that is not a whole number
    /// of milliseconds, or an interval of 0.
    ///
    /// ```
    /// use otel_core::metrics::otlp::PeriodicConfig;
    ///
    /// # fn main() -> Result<(), otel_core::metrics::MetricsError> {
    /// let config = PeriodicConfig::from_env()?;
    /// println!("exporting every {:?}", config.interval);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_env() -> Result<Self, MetricsError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Like [`PeriodicConfig::from_env`], reading variables through `lookup`.
    ///
    /// # Errors
    ///
    /// As [`PeriodicConfig::from_env`].
    ///
    /// ```
    /// use otel_core::metrics::otlp::PeriodicConfig;
    /// use std::time::Duration;
    ///
    /// let config = PeriodicConfig::from_lookup(|var| match var {
    ///     "OTEL_METRIC_EXPORT_INTERVAL" => Some("15000".to_owned()),
    ///     _ => None,
    /// })
    /// .expect("valid settings");
    /// assert_eq!(config.interval, Duration::from_secs(15));
    /// assert_eq!(config.timeout, Duration::from_secs(30)); // the default
    ///
    /// let zero = PeriodicConfig::from_lookup(|var| {
    ///     (var == "OTEL_METRIC_EXPORT_INTERVAL").then(|| "0".to_owned())
    /// });
    /// assert!(zero.is_err());
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, MetricsError> {
        let mut config = Self::default();
        if let Some(value) = lookup("OTEL_METRIC_EXPORT_INTERVAL").filter(|v| !v.trim().is_empty())
        {
            config.interval = parse_millis("OTEL_METRIC_EXPORT_INTERVAL", &value)?;
            if config.interval.is_zero() {
                return Err(MetricsError::InvalidEnv {
                    var: "OTEL_METRIC_EXPORT_INTERVAL",
                    value,
                    reason: "the interval must be positive".to_owned(),
                });
            }
        }
        if let Some(value) = lookup("OTEL_METRIC_EXPORT_TIMEOUT").filter(|v| !v.trim().is_empty()) {
            config.timeout = parse_millis("OTEL_METRIC_EXPORT_TIMEOUT", &value)?;
        }
        Ok(config)
    }
}

/// Counters of a [`PeriodicMetricsExporter`].
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use otel_core::metrics::Metrics;
/// use otel_core::metrics::otlp::{
///     OtlpMetricsConfig, OtlpMetricsExporter, PeriodicConfig, PeriodicMetricsExporter,
/// };
/// use otel_core::testing::OtlpHttpReceiver;
/// use std::time::Duration;
///
/// let collector = OtlpHttpReceiver::start().expect("loopback listener");
/// let config = OtlpMetricsConfig {
///     endpoint: Some(collector.endpoint()),
///     ..OtlpMetricsConfig::default()
/// };
/// let exporter = OtlpMetricsExporter::new(config).expect("valid configuration");
/// let metrics = Metrics::default();
/// metrics.u64_counter("app.calls").build().add(1, &[]);
/// let periodic = PeriodicMetricsExporter::start(metrics, exporter, PeriodicConfig::default())
///     .expect("thread started");
/// periodic
///     .force_flush(Duration::from_secs(5))
///     .expect("exported");
/// let stats = periodic.stats();
/// assert_eq!(
///     (stats.succeeded, stats.failed, stats.last_error),
///     (1, 0, None)
/// );
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Exports the collector accepted.
    pub succeeded: u64,
    /// Exports that failed (each one's data is included again, cumulatively, in the next).
    pub failed: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    succeeded: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

enum Command {
    Flush {
        deadline: Instant,
        reply: SyncSender<Result<(), MetricsError>>,
    },
    Shutdown {
        deadline: Instant,
        reply: SyncSender<Result<(), MetricsError>>,
    },
}

/// Exports a [`Metrics`] registry over OTLP every interval, on a thread of its own (no async
/// runtime needed from the application).
///
/// Memory is bounded: one export is in flight at a time and nothing is queued or retried —
/// temporality is cumulative, so the next export carries whatever a failed one did. Failures
/// are counted ([`stats`](PeriodicMetricsExporter::stats)) and logged.
///
/// [`shutdown`](PeriodicMetricsExporter::shutdown) makes a final export and returns within its
/// deadline even if the collector does not answer. Dropping the exporter without shutting it
/// down also makes a final export, on the background thread, without waiting for it.
///
/// ```no_run
/// use otel_core::metrics::Metrics;
/// use otel_core::metrics::otlp::{
///     OtlpMetricsConfig, OtlpMetricsExporter, PeriodicConfig, PeriodicMetricsExporter,
/// };
/// use std::time::Duration;
///
/// # fn main() -> Result<(), otel_core::metrics::MetricsError> {
/// let metrics = Metrics::default();
/// let exporter = OtlpMetricsExporter::new(OtlpMetricsConfig::from_env()?)?;
/// let periodic = PeriodicMetricsExporter::start(metrics, exporter, PeriodicConfig::from_env()?)?;
/// // ... serve ...
/// periodic.shutdown(Duration::from_secs(5))?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct PeriodicMetricsExporter {
    commands: Mutex<Option<SyncSender<Command>>>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl PeriodicMetricsExporter {
    /// Starts the export thread; the first export happens one interval from now.
    ///
    /// # Errors
    ///
    /// [`MetricsError::Thread`] if the thread cannot be spawned.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use otel_core::metrics::Metrics;
    /// use otel_core::metrics::otlp::{
    ///     OtlpMetricsConfig, OtlpMetricsExporter, PeriodicConfig, PeriodicMetricsExporter,
    /// };
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use std::time::Duration;
    ///
    /// let collector = OtlpHttpReceiver::start().expect("loopback listener");
    /// let config = OtlpMetricsConfig {
    ///     endpoint: Some(collector.endpoint()),
    ///     ..OtlpMetricsConfig::default()
    /// };
    /// let exporter = OtlpMetricsExporter::new(config).expect("valid configuration");
    /// let metrics = Metrics::default();
    /// metrics.u64_counter("app.calls").build().add(1, &[]);
    /// let config = PeriodicConfig::default().with_interval(Duration::from_secs(30));
    /// let periodic =
    ///     PeriodicMetricsExporter::start(metrics, exporter, config).expect("thread started");
    /// // ... serve; every 30 s the registry goes to the collector ...
    /// periodic
    ///     .shutdown(Duration::from_secs(5))
    ///     .expect("final export");
    /// assert_eq!(collector.metric_requests().len(), 1);
    /// # }
    /// ```
    pub fn start(
        metrics: Metrics,
        exporter: OtlpMetricsExporter,
        config: PeriodicConfig,
    ) -> Result<Self, MetricsError> {
        let (sender, receiver) = mpsc::sync_channel::<Command>(4);
        let shared = Arc::new(Shared::default());
        let points = metrics
            .u64_counter(
                opentelemetry_semantic_conventions::metric::OTEL_SDK_EXPORTER_METRIC_DATA_POINT_EXPORTED,
            )
            .with_unit("{data_point}")
            .with_description("Metric data points the exporter handled; error.type set when lost.")
            .build();
        let worker = Worker {
            points,
            metrics,
            exporter,
            config,
            shared: Arc::clone(&shared),
        };
        let thread = std::thread::Builder::new()
            .name("otel-metrics-export".to_owned())
            .spawn(move || worker.run(&receiver))
            .map_err(|e| MetricsError::Thread(e.to_string()))?;
        Ok(Self {
            commands: Mutex::new(Some(sender)),
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Export outcomes so far.
    ///
    /// ```
    /// use otel_core::metrics::Metrics;
    /// use otel_core::metrics::otlp::{
    ///     OtlpMetricsConfig, OtlpMetricsExporter, PeriodicConfig, PeriodicMetricsExporter,
    /// };
    /// use std::time::Duration;
    ///
    /// // A collector that is not there: the failure is counted, not raised on the thread.
    /// let port = std::net::TcpListener::bind("127.0.0.1:0")
    ///     .and_then(|l| l.local_addr())
    ///     .expect("free port")
    ///     .port();
    /// let config = OtlpMetricsConfig {
    ///     endpoint: Some(format!("http://127.0.0.1:{port}")),
    ///     ..OtlpMetricsConfig::default()
    /// };
    /// let exporter = OtlpMetricsExporter::new(config).expect("valid configuration");
    /// let periodic =
    ///     PeriodicMetricsExporter::start(Metrics::default(), exporter, PeriodicConfig::default())
    ///         .expect("thread started");
    /// assert!(periodic.force_flush(Duration::from_secs(5)).is_err());
    /// let stats = periodic.stats();
    /// assert_eq!((stats.succeeded, stats.failed), (0, 1));
    /// assert!(stats.last_error.is_some());
    /// ```
    pub fn stats(&self) -> ExportStats {
        ExportStats {
            succeeded: self.shared.succeeded.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            last_error: self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// Exports now and waits for the outcome, at most `timeout`.
    ///
    /// # Errors
    ///
    /// The export's error, [`MetricsError::Timeout`], or [`MetricsError::Thread`] after
    /// shutdown.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use otel_core::metrics::Metrics;
    /// use otel_core::metrics::otlp::{
    ///     OtlpMetricsConfig, OtlpMetricsExporter, PeriodicConfig, PeriodicMetricsExporter,
    /// };
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use std::time::Duration;
    ///
    /// let collector = OtlpHttpReceiver::start().expect("loopback listener");
    /// let config = OtlpMetricsConfig {
    ///     endpoint: Some(collector.endpoint()),
    ///     ..OtlpMetricsConfig::default()
    /// };
    /// let exporter = OtlpMetricsExporter::new(config).expect("valid configuration");
    /// let metrics = Metrics::default();
    /// metrics.u64_counter("app.calls").build().add(1, &[]);
    /// let periodic = PeriodicMetricsExporter::start(metrics, exporter, PeriodicConfig::default())
    ///     .expect("thread started");
    /// // Without waiting for the interval (60 s by default):
    /// periodic
    ///     .force_flush(Duration::from_secs(5))
    ///     .expect("exported");
    /// assert_eq!(collector.metric_requests().len(), 1);
    /// # }
    /// ```
    pub fn force_flush(&self, timeout: Duration) -> Result<(), MetricsError> {
        let deadline = Instant::now() + timeout;
        self.request(deadline, |reply| Command::Flush { deadline, reply }, false)
    }

    /// Makes a final export and stops the thread, returning within `timeout` whatever the
    /// collector does. Later calls return [`MetricsError::Thread`].
    ///
    /// # Errors
    ///
    /// The final export's error, or [`MetricsError::Timeout`] if it did not finish in time
    /// (the thread then ends on its own once the export's timeout expires).
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use otel_core::metrics::Metrics;
    /// use otel_core::metrics::otlp::{
    ///     OtlpMetricsConfig, OtlpMetricsExporter, PeriodicConfig, PeriodicMetricsExporter,
    /// };
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use std::time::Duration;
    ///
    /// let collector = OtlpHttpReceiver::start().expect("loopback listener");
    /// let config = OtlpMetricsConfig {
    ///     endpoint: Some(collector.endpoint()),
    ///     ..OtlpMetricsConfig::default()
    /// };
    /// let exporter = OtlpMetricsExporter::new(config).expect("valid configuration");
    /// let metrics = Metrics::default();
    /// metrics.u64_counter("app.calls").build().add(1, &[]);
    /// let periodic = PeriodicMetricsExporter::start(metrics, exporter, PeriodicConfig::default())
    ///     .expect("thread started");
    /// periodic
    ///     .shutdown(Duration::from_secs(5))
    ///     .expect("final export");
    /// assert_eq!(collector.metric_requests().len(), 1);
    /// // Once shut down, the exporter refuses further work.
    /// assert!(periodic.force_flush(Duration::from_secs(1)).is_err());
    /// # }
    /// ```
    pub fn shutdown(&self, timeout: Duration) -> Result<(), MetricsError> {
        let deadline = Instant::now() + timeout;
        let result = self.request(
            deadline,
            |reply| Command::Shutdown { deadline, reply },
            true,
        );
        if result.is_ok()
            && let Some(thread) = self
                .thread
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        {
            // The worker replied and is returning; wait for it only while time remains.
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        result
    }

    fn request(
        &self,
        deadline: Instant,
        make: impl FnOnce(SyncSender<Result<(), MetricsError>>) -> Command,
        last: bool,
    ) -> Result<(), MetricsError> {
        let sender = {
            let mut commands = self.commands.lock().unwrap_or_else(PoisonError::into_inner);
            let sender = commands
                .as_ref()
                .ok_or_else(|| MetricsError::Thread("already shut down".to_owned()))?
                .clone();
            if last {
                *commands = None;
            }
            sender
        };
        let (reply, outcome) = mpsc::sync_channel(1);
        let mut command = make(reply);
        loop {
            match sender.try_send(command) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => {
                    return Err(MetricsError::Thread("export thread has stopped".to_owned()));
                }
                Err(TrySendError::Full(c)) => {
                    if Instant::now() >= deadline {
                        return Err(MetricsError::Timeout(Duration::ZERO));
                    }
                    command = c;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        drop(sender);
        let wait = deadline.saturating_duration_since(Instant::now());
        match outcome.recv_timeout(wait) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(MetricsError::Timeout(wait)),
            Err(RecvTimeoutError::Disconnected) => {
                Err(MetricsError::Thread("export thread has stopped".to_owned()))
            }
        }
    }
}

struct Worker {
    metrics: Metrics,
    exporter: OtlpMetricsExporter,
    config: PeriodicConfig,
    shared: Arc<Shared>,
    /// `otel.sdk.exporter.metric_data_point.exported`: the pipeline's own account of points
    /// delivered (and lost, with `error.type`).
    points: crate::metrics::Counter,
}

/// Data points in an export request.
fn data_points(
    request: &opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
) -> u64 {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        } as u64)
        .sum()
}

impl Worker {
    fn run(mut self, commands: &mpsc::Receiver<Command>) {
        let mut next = Instant::now() + self.config.interval;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            match commands.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.export(self.config.timeout);
                    next = Instant::now() + self.config.interval;
                }
                Ok(Command::Flush { deadline, reply }) => {
                    let result = self.export(self.budget(deadline));
                    let _ = reply.try_send(result);
                }
                Ok(Command::Shutdown { deadline, reply }) => {
                    let result = self.export(self.budget(deadline));
                    let _ = reply.try_send(result);
                    return;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Dropped without shutdown: one last export, nobody waiting for it.
                    let _ = self.export(self.config.timeout);
                    return;
                }
            }
        }
    }

    fn budget(&self, deadline: Instant) -> Duration {
        self.config
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()))
    }

    fn export(&mut self, timeout: Duration) -> Result<(), MetricsError> {
        let request = to_otlp_request(
            &self.metrics.snapshot_without_percentiles(),
            &self.metrics.resource(),
        );
        let result = self.exporter.export_with_timeout(&request, timeout);
        let points = data_points(&request);
        match &result {
            Ok(()) => {
                self.shared.succeeded.fetch_add(1, Ordering::Relaxed);
                self.points.add(points, &[]);
            }
            Err(e) => {
                self.shared.failed.fetch_add(1, Ordering::Relaxed);
                self.points.add(
                    points,
                    &[opentelemetry::KeyValue::new(
                        opentelemetry_semantic_conventions::attribute::ERROR_TYPE,
                        "export_failed",
                    )],
                );
                *self
                    .shared
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
                tracing::warn!(error = %e, "periodic OTLP metrics export failed");
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_env() {
        let config = PeriodicConfig::from_lookup(|var| match var {
            "OTEL_METRIC_EXPORT_INTERVAL" => Some("1500".into()),
            "OTEL_METRIC_EXPORT_TIMEOUT" => Some("200".into()),
            _ => None,
        });
        assert_eq!(
            config.ok(),
            Some(PeriodicConfig {
                interval: Duration::from_millis(1500),
                timeout: Duration::from_millis(200)
            })
        );
        assert_eq!(
            PeriodicConfig::from_lookup(|_| None).ok(),
            Some(PeriodicConfig::default())
        );
        let err = PeriodicConfig::from_lookup(|var| {
            (var == "OTEL_METRIC_EXPORT_INTERVAL").then(|| "1m".to_owned())
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("OTEL_METRIC_EXPORT_INTERVAL") && err.contains("1m"),
            "{err}"
        );
        assert!(
            PeriodicConfig::from_lookup(|var| {
                (var == "OTEL_METRIC_EXPORT_INTERVAL").then(|| "0".to_owned())
            })
            .is_err()
        );
    }
}
