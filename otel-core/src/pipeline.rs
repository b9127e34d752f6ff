//! One-call pipeline setup: [`Telemetry::builder`] → [`TelemetryBuilder::install`] →
//! [`TelemetryGuard`].
//!
//! Everything is configured from the standard OpenTelemetry environment variables, and every
//! builder option overrides its variable. See `docs/configuration.md` for the full table.
//!
//! ```no_run
//! # fn main() -> Result<(), otel_core::ConfigError> {
//! let _guard = otel_core::Telemetry::builder()
//!     .with_service_name("checkout")
//!     .with_service_version(env!("CARGO_PKG_VERSION"))
//!     .install()?;
//! tracing::info!("started"); // printed with trace_id/span_id inside spans
//! // … run the service; dropping the guard flushes and shuts down within a bounded time.
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLoggerProvider};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, ShouldSample, SpanData,
    SpanExporter, SpanProcessor,
};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{
    ConfigError, EnvSource, OtlpOverrides, OtlpProtocol, OtlpSettings, Signal, parse_count,
    parse_millis,
};
use crate::console::ConsoleExporter;
use crate::limits::{ValueLengthLimitLogProcessor, ValueLengthLimitProcessor};
use crate::logs::{LogFormat, fmt_layer_with_redaction};
use crate::metrics::otlp::{
    OtlpMetricsConfig, OtlpMetricsExporter, PeriodicConfig, PeriodicMetricsExporter,
};
use crate::metrics::{ExemplarFilter, Metrics, MetricsConfig, MetricsError};
use crate::redact::{RedactingLogProcessor, RedactingSpanProcessor, Redactor};
use crate::resource::ResourceConfig;
use crate::sampling::tail::{FanOut, TailConfig, TailSampler, TailSpanProcessor, TailStats};

/// Entry point of the pipeline setup.
///
/// ```
/// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::InMemorySpanExporter;
/// use otel_core::{EnvSource, Telemetry};
/// use std::time::Duration;
///
/// // `build` wires everything without touching global state (`install` also makes it global).
/// // Variables come from the process environment unless `with_env` says otherwise.
/// let spans = InMemorySpanExporter::default();
/// let mut guard = Telemetry::builder()
///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
///     .with_service_name("checkout")
///     .with_span_exporter(spans.clone())
///     .build()?;
/// let tracer = guard
///     .tracer_provider()
///     .expect("the SDK is enabled")
///     .tracer("example");
/// tracer.in_span("GET /cart", |_| {});
/// guard
///     .tracer_provider()
///     .expect("the SDK is enabled")
///     .force_flush()?;
/// assert_eq!(spans.get_finished_spans()?[0].name, "GET /cart");
/// let report = guard.shutdown(Duration::from_secs(5));
/// assert!(report.completed_in_time);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Telemetry;

impl Telemetry {
    /// A builder reading the process environment; see [`TelemetryBuilder`].
    ///
    /// ```
    /// use otel_core::resource::service_name;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([
    ///         ("OTEL_SERVICE_NAME", "billing"),
    ///         ("OTEL_TRACES_EXPORTER", "none"),
    ///     ]))
    ///     .build()?;
    /// assert_eq!(service_name(guard.resource()), "billing");
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn builder() -> TelemetryBuilder {
        TelemetryBuilder::default()
    }
}

/// Where finished spans go (`OTEL_TRACES_EXPORTER`, comma-separated; default `otlp`).
///
/// ```
/// use otel_core::{EnvSource, Telemetry, TracesExporter};
///
/// // The console waterfall only: no collector needed (for development).
/// let guard = Telemetry::builder()
///     .with_env(EnvSource::from_pairs::<&str, &str>([]))
///     .with_traces_exporters([TracesExporter::Console])
///     .build()?;
/// assert!(guard.tracer_provider().is_some());
///
/// // From the environment, an unknown name is an error.
/// let err = Telemetry::builder()
///     .with_env(EnvSource::from_pairs([(
///         "OTEL_TRACES_EXPORTER",
///         "otlp,zipkin",
///     )]))
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().contains("unknown exporter \"zipkin\""));
/// # Ok::<(), otel_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TracesExporter {
    /// `otlp`: to a collector (see [`OtlpSettings`]).
    Otlp,
    /// `console`: a waterfall of each finished local trace on standard output, for development.
    Console,
}

impl TracesExporter {
    fn parse_list(variable: &str, value: &str) -> Result<Vec<Self>, ConfigError> {
        let mut out = Vec::new();
        for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "otlp" => out.push(Self::Otlp),
                "console" => out.push(Self::Console),
                "none" => {}
                _ => {
                    return Err(ConfigError::invalid(
                        variable,
                        value,
                        format!("unknown exporter {name:?}; expected otlp, console or none"),
                    ));
                }
            }
        }
        // Each exporter once, wherever it repeats (`otlp,console,otlp`).
        let mut seen = Vec::with_capacity(out.len());
        out.retain(|e| {
            let first = !seen.contains(e);
            seen.push(*e);
            first
        });
        Ok(out)
    }
}

/// Builder of the pipeline. Every `with_*` overrides the matching environment variable.
///
/// ```
/// use opentelemetry_sdk::trace::Sampler;
/// use otel_core::logs::LogFormat;
/// use otel_core::{EnvSource, Telemetry, TracesExporter};
/// use std::time::Duration;
///
/// let guard = Telemetry::builder()
///     .with_env(EnvSource::from_pairs([("OTEL_SERVICE_NAME", "from-env")]))
///     .with_service_name("checkout") // beats OTEL_SERVICE_NAME
///     .with_deployment_environment("staging")
///     .with_traces_exporters([TracesExporter::Console])
///     .with_sampler(Sampler::TraceIdRatioBased(0.25))
///     .with_log_format(LogFormat::Json)
///     .with_shutdown_timeout(Duration::from_secs(2))
///     .build()?;
/// assert_eq!(
///     otel_core::resource::service_name(guard.resource()),
///     "checkout"
/// );
/// # Ok::<(), otel_core::ConfigError>(())
/// ```
#[must_use]
#[derive(Debug, Default)]
pub struct TelemetryBuilder {
    env: Option<EnvSource>,
    resource: ResourceConfig,
    traces_exporters: Option<Vec<TracesExporter>>,
    otlp: OtlpOverrides,
    sampler: Option<Box<dyn ShouldSample>>,
    propagator: Option<Box<dyn TextMapPropagator + Send + Sync>>,
    disabled: Option<bool>,
    log_format: Option<LogFormat>,
    logs_export: Option<bool>,
    metrics_export: Option<bool>,
    install_subscriber: Option<bool>,
    shutdown_timeout: Option<Duration>,
    extra_exporter: Option<ProcessorFactory>,
    // sampling/redaction options (crate::sampling::tail, crate::redact)
    tail: Option<TailConfig>,
    redaction: Option<Redactor>,
    value_length_limit: Option<usize>,
}

type BoxedSpanProcessor = Box<dyn SpanProcessor>;

struct ProcessorFactory(Box<dyn FnOnce() -> BoxedSpanProcessor + Send>);

impl fmt::Debug for ProcessorFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpanProcessorFactory")
    }
}

impl TelemetryBuilder {
    /// Reads variables from `env` instead of the process environment.
    ///
    /// ```
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// // A test (or an application with its own configuration store) hands in its variables.
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_SDK_DISABLED", "true")]))
    ///     .build()?;
    /// assert!(guard.tracer_provider().is_none());
    ///
    /// let err = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_SDK_DISABLED", "maybe")]))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("OTEL_SDK_DISABLED"));
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn with_env(mut self, env: EnvSource) -> Self {
        self.env = Some(env);
        self
    }
    /// `service.name` (overrides `OTEL_SERVICE_NAME`).
    ///
    /// ```
    /// use otel_core::resource::service_name;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([
    ///         ("OTEL_SERVICE_NAME", "from-env"),
    ///         ("OTEL_TRACES_EXPORTER", "none"),
    ///     ]))
    ///     .with_service_name("checkout")
    ///     .build()?;
    /// assert_eq!(service_name(guard.resource()), "checkout");
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.resource.service_name = Some(name.into());
        self
    }
    /// `service.version`.
    ///
    /// ```
    /// use opentelemetry::Key;
    /// use otel_core::semconv::attribute::SERVICE_VERSION;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .with_service_version(env!("CARGO_PKG_VERSION"))
    ///     .build()?;
    /// let version = guard.resource().get(&Key::from_static_str(SERVICE_VERSION));
    /// assert_eq!(
    ///     version.map(|v| v.to_string()).as_deref(),
    ///     Some(env!("CARGO_PKG_VERSION"))
    /// );
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn with_service_version(mut self, version: impl Into<String>) -> Self {
        self.resource.service_version = Some(version.into());
        self
    }
    /// `service.namespace`.
    ///
    /// ```
    /// use opentelemetry::Key;
    /// use otel_core::semconv::attribute::SERVICE_NAMESPACE;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .with_service_namespace("payments")
    ///     .build()?;
    /// let namespace = guard
    ///     .resource()
    ///     .get(&Key::from_static_str(SERVICE_NAMESPACE));
    /// assert_eq!(
    ///     namespace.map(|v| v.to_string()).as_deref(),
    ///     Some("payments")
    /// );
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn with_service_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.resource.service_namespace = Some(namespace.into());
        self
    }
    /// `deployment.environment.name`.
    ///
    /// ```
    /// use opentelemetry::Key;
    /// use otel_core::semconv::attribute::DEPLOYMENT_ENVIRONMENT_NAME;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([
    ///         (
    ///             "OTEL_RESOURCE_ATTRIBUTES",
    ///             "deployment.environment.name=from-env",
    ///         ),
    ///         ("OTEL_TRACES_EXPORTER", "none"),
    ///     ]))
    ///     .with_deployment_environment("production")
    ///     .build()?;
    /// let environment = guard
    ///     .resource()
    ///     .get(&Key::from_static_str(DEPLOYMENT_ENVIRONMENT_NAME));
    /// assert_eq!(
    ///     environment.map(|v| v.to_string()).as_deref(),
    ///     Some("production")
    /// );
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn with_deployment_environment(mut self, environment: impl Into<String>) -> Self {
        self.resource.deployment_environment = Some(environment.into());
        self
    }
    /// An extra resource attribute (overrides `OTEL_RESOURCE_ATTRIBUTES` for the same key).
    ///
    /// ```
    /// use opentelemetry::{Key, KeyValue};
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([
    ///         ("OTEL_RESOURCE_ATTRIBUTES", "team=risk,region=eu"),
    ///         ("OTEL_TRACES_EXPORTER", "none"),
    ///     ]))
    ///     .with_resource_attribute(KeyValue::new("team", "payments"))
    ///     .build()?;
    /// let get = |key| {
    ///     guard
    ///         .resource()
    ///         .get(&Key::from_static_str(key))
    ///         .map(|v| v.to_string())
    /// };
    /// assert_eq!(get("team").as_deref(), Some("payments"));
    /// assert_eq!(get("region").as_deref(), Some("eu"));
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn with_resource_attribute(mut self, kv: KeyValue) -> Self {
        self.resource.attributes.push(kv);
        self
    }
    /// Skips the host/OS/process/Kubernetes resource detectors.
    ///
    /// ```
    /// use opentelemetry::Key;
    /// use otel_core::semconv::attribute::{PROCESS_PID, TELEMETRY_SDK_LANGUAGE};
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .without_resource_detectors()
    ///     .build()?;
    /// let resource = guard.resource();
    /// assert!(resource.get(&Key::from_static_str(PROCESS_PID)).is_none());
    /// // The SDK's own attributes are always there.
    /// assert!(
    ///     resource
    ///         .get(&Key::from_static_str(TELEMETRY_SDK_LANGUAGE))
    ///         .is_some()
    /// );
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn without_resource_detectors(mut self) -> Self {
        self.resource.skip_detectors = true;
        self
    }
    /// Trace exporters (overrides `OTEL_TRACES_EXPORTER`); empty means none.
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::InMemorySpanExporter;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// // None of the built-in exporters (whatever OTEL_TRACES_EXPORTER says): only the test's own.
    /// let spans = InMemorySpanExporter::default();
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([(
    ///         "OTEL_TRACES_EXPORTER",
    ///         "otlp,console",
    ///     )]))
    ///     .with_traces_exporters([])
    ///     .with_span_exporter(spans.clone())
    ///     .build()?;
    /// let provider = guard.tracer_provider().expect("the SDK is enabled");
    /// provider.tracer("example").in_span("work", |_| {});
    /// provider.force_flush()?;
    /// assert_eq!(spans.get_finished_spans()?.len(), 1);
    /// assert_eq!(guard.stats().spans_ended(), 0); // nothing went to OTLP
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_traces_exporters(
        mut self,
        exporters: impl IntoIterator<Item = TracesExporter>,
    ) -> Self {
        self.traces_exporters = Some(exporters.into_iter().collect());
        self
    }
    /// OTLP base endpoint (overrides `OTEL_EXPORTER_OTLP_ENDPOINT`).
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    ///
    /// let collector = OtlpHttpReceiver::start()?; // http://127.0.0.1:<port>
    /// let mut guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([(
    ///         "OTEL_EXPORTER_OTLP_ENDPOINT",
    ///         "http://elsewhere:4318",
    ///     )]))
    ///     .with_otlp_endpoint(collector.endpoint())
    ///     .with_metrics_export(false)
    ///     .build()?;
    /// let tracer = guard
    ///     .tracer_provider()
    ///     .expect("the SDK is enabled")
    ///     .tracer("example");
    /// tracer.in_span("work", |_| {});
    /// let report = guard.shutdown(Duration::from_secs(5));
    /// assert_eq!(report.spans_exported, 1);
    /// // For HTTP the signal path is appended to the base endpoint.
    /// assert!(
    ///     collector
    ///         .requests()
    ///         .iter()
    ///         .any(|(path, _)| path == "/v1/traces")
    /// );
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.otlp.endpoint = Some(endpoint.into());
        self
    }
    /// OTLP protocol (overrides `OTEL_EXPORTER_OTLP_PROTOCOL`).
    ///
    /// ```
    /// use otel_core::{EnvSource, OtlpProtocol, Telemetry};
    ///
    /// # fn main() -> Result<(), otel_core::ConfigError> {
    /// // The gRPC exporters run on a runtime of the pipeline's own: no tokio runtime is
    /// // needed around the build, and a current-thread one is fine too.
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([(
    ///         "OTEL_EXPORTER_OTLP_PROTOCOL",
    ///         "http/protobuf",
    ///     )]))
    ///     .with_otlp_protocol(OtlpProtocol::Grpc)
    ///     .with_otlp_endpoint("http://localhost:4317")
    ///     .with_metrics_export(false)
    ///     .build()?;
    /// assert!(format!("{guard:?}").contains("http://localhost:4317")); // no `/v1/traces` for gRPC
    ///
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_otlp_protocol(mut self, protocol: OtlpProtocol) -> Self {
        self.otlp.protocol = Some(protocol);
        self
    }
    /// An OTLP request header (adds to / overrides `OTEL_EXPORTER_OTLP_HEADERS`).
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    ///
    /// let collector = OtlpHttpReceiver::start()?;
    /// let mut guard = Telemetry::builder()
    ///     // `api-key` from the environment is replaced, `x-team` kept.
    ///     .with_env(EnvSource::from_pairs([(
    ///         "OTEL_EXPORTER_OTLP_HEADERS",
    ///         "api-key=old,x-team=risk",
    ///     )]))
    ///     .with_otlp_endpoint(collector.endpoint())
    ///     .with_otlp_header("api-key", "s3cr3t")
    ///     .with_metrics_export(false)
    ///     .build()?;
    /// guard
    ///     .tracer_provider()
    ///     .expect("the SDK is enabled")
    ///     .tracer("example")
    ///     .in_span("work", |_| {});
    /// assert_eq!(guard.shutdown(Duration::from_secs(5)).spans_exported, 1);
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_otlp_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.otlp.headers.push((name.into(), value.into()));
        self
    }
    /// OTLP export timeout (overrides `OTEL_EXPORTER_OTLP_TIMEOUT`).
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::{Duration, Instant};
    ///
    /// // A collector that is not there: nothing can listen on port 0.
    /// let mut guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs::<&str, &str>([]))
    ///     .with_otlp_endpoint("http://127.0.0.1:0")
    ///     .with_otlp_timeout(Duration::from_millis(200)) // retries included
    ///     .with_metrics_export(false)
    ///     .build()?;
    /// guard
    ///     .tracer_provider()
    ///     .expect("the SDK is enabled")
    ///     .tracer("example")
    ///     .in_span("lost", |_| {});
    /// let started = Instant::now();
    /// let report = guard.shutdown(Duration::from_secs(5));
    /// assert!(started.elapsed() < Duration::from_secs(5));
    /// assert_eq!(report.spans_dropped, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_otlp_timeout(mut self, timeout: Duration) -> Self {
        self.otlp.timeout = Some(timeout);
        self
    }
    /// Head sampler (overrides `OTEL_TRACES_SAMPLER`/`_ARG`): an SDK [`Sampler`](opentelemetry_sdk::trace::Sampler), or one of
    /// [`crate::sampling`] ([`RateLimitingSampler`](crate::sampling::RateLimitingSampler),
    /// [`RuleSampler`](crate::sampling::RuleSampler)).
    ///
    /// ```
    /// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::Sampler;
    /// use otel_core::sampling::RateLimitingSampler;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([
    ///         ("OTEL_TRACES_SAMPLER", "always_on"),
    ///         ("OTEL_TRACES_EXPORTER", "none"),
    ///     ]))
    ///     .with_sampler(Sampler::AlwaysOff)
    ///     .build()?;
    /// let span = guard
    ///     .tracer_provider()
    ///     .expect("the SDK is enabled")
    ///     .tracer("example")
    ///     .start("health");
    /// assert!(!span.span_context().is_sampled());
    ///
    /// // Or one of this crate's samplers: at most 50 new traces per second.
    /// let _guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .with_sampler(RateLimitingSampler::new(50.0))
    ///     .build()?;
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn with_sampler(mut self, sampler: impl ShouldSample + 'static) -> Self {
        self.sampler = Some(Box::new(sampler));
        self
    }
    /// Propagator (overrides `OTEL_PROPAGATORS`).
    ///
    /// ```
    /// use otel_core::propagation::Propagators;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// // The code's choice wins: OTEL_PROPAGATORS (here invalid) is not even read.
    /// let built = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([
    ///         ("OTEL_PROPAGATORS", "xray"),
    ///         ("OTEL_TRACES_EXPORTER", "none"),
    ///     ]))
    ///     .with_propagator(Propagators::from_names("tracecontext,baggage,b3")?)
    ///     .build();
    /// assert!(built.is_ok());
    /// # Ok::<(), otel_core::propagation::PropagatorConfigError>(())
    /// ```
    pub fn with_propagator(
        mut self,
        propagator: impl TextMapPropagator + Send + Sync + 'static,
    ) -> Self {
        self.propagator = Some(Box::new(propagator));
        self
    }
    /// Turns the whole SDK off or on (overrides `OTEL_SDK_DISABLED`). When off, no provider is
    /// installed, instrumented calls cost almost nothing, and logs are still printed.
    ///
    /// ```
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs::<&str, &str>([]))
    ///     .with_sdk_disabled(true)
    ///     .build()?;
    /// assert!(guard.tracer_provider().is_none());
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn with_sdk_disabled(mut self, disabled: bool) -> Self {
        self.disabled = Some(disabled);
        self
    }
    /// How log lines are printed (overrides `OTEL_CORE_LOG_FORMAT`: `text`, `json`, `off`).
    ///
    /// ```
    /// use otel_core::logs::LogFormat;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// // The code's choice wins over OTEL_CORE_LOG_FORMAT (here invalid, so not read).
    /// let built = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([
    ///         ("OTEL_CORE_LOG_FORMAT", "xml"),
    ///         ("OTEL_TRACES_EXPORTER", "none"),
    ///     ]))
    ///     .with_log_format(LogFormat::Json)
    ///     .build();
    /// assert!(built.is_ok());
    /// ```
    pub fn with_log_format(mut self, format: LogFormat) -> Self {
        self.log_format = Some(format);
        self
    }
    /// Exports `tracing` events as OpenTelemetry log records over OTLP (overrides
    /// `OTEL_LOGS_EXPORTER=otlp|none`; default none).
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use otel_core::logs::LogFormat;
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let collector = OtlpHttpReceiver::start()?;
    /// let mut guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .with_otlp_endpoint(collector.endpoint())
    ///     .with_logs_export(true)
    ///     .with_log_format(LogFormat::Off)
    ///     .build()?;
    /// let subscriber = tracing_subscriber::registry().with(guard.tracing_layer());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::error!(account = "acc-1", "payment declined")
    /// });
    /// let _ = guard.shutdown(Duration::from_secs(5));
    /// let records: Vec<_> = collector
    ///     .log_requests()
    ///     .into_iter()
    ///     .flat_map(|r| r.resource_logs)
    ///     .flat_map(|r| r.scope_logs)
    ///     .flat_map(|s| s.log_records)
    ///     .collect();
    /// assert_eq!(records.len(), 1);
    /// assert_eq!(records[0].severity_text, "ERROR");
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_logs_export(mut self, enabled: bool) -> Self {
        self.logs_export = Some(enabled);
        self
    }
    /// Pushes metrics to the OTLP collector every `OTEL_METRIC_EXPORT_INTERVAL` (overrides
    /// `OTEL_METRICS_EXPORTER=otlp|prometheus|none`; default: on when the traces go to OTLP).
    /// The OpenMetrics `/metrics` handler works either way.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    ///
    /// let collector = OtlpHttpReceiver::start()?;
    /// let mut guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .with_otlp_endpoint(collector.endpoint())
    ///     .with_metrics_export(true)
    ///     .build()?;
    /// guard
    ///     .metrics()
    ///     .u64_counter("orders.accepted")
    ///     .build()
    ///     .add(3, &[]);
    /// let report = guard.shutdown(Duration::from_secs(5)); // a last push on shutdown
    /// assert_eq!(report.metric_exports_failed, 0);
    /// let names: Vec<String> = collector
    ///     .metric_requests()
    ///     .into_iter()
    ///     .flat_map(|r| r.resource_metrics)
    ///     .flat_map(|r| r.scope_metrics)
    ///     .flat_map(|s| s.metrics)
    ///     .map(|m| m.name)
    ///     .collect();
    /// assert!(names.iter().any(|n| n == "orders.accepted"));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_metrics_export(mut self, enabled: bool) -> Self {
        self.metrics_export = Some(enabled);
        self
    }
    /// Whether `install` sets the global `tracing` subscriber (default yes). Turn it off when the
    /// application builds its own subscriber with [`TelemetryGuard::tracing_layer`].
    ///
    /// ```no_run
    /// use otel_core::Telemetry;
    /// use tracing_subscriber::prelude::*;
    ///
    /// // Compose the subscriber yourself, with this pipeline's layers in it.
    /// let guard = Telemetry::builder()
    ///     .with_tracing_subscriber(false)
    ///     .install()?;
    /// tracing_subscriber::registry()
    ///     .with(guard.tracing_layer())
    ///     .with(tracing_subscriber::EnvFilter::new("info,my_app=debug"))
    ///     .init();
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn with_tracing_subscriber(mut self, install: bool) -> Self {
        self.install_subscriber = Some(install);
        self
    }
    /// How long dropping the guard may take to flush and shut down (default 5 s).
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    ///
    /// let collector = OtlpHttpReceiver::start()?;
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs::<&str, &str>([]))
    ///     .with_otlp_endpoint(collector.endpoint())
    ///     .with_metrics_export(false)
    ///     .with_shutdown_timeout(Duration::from_secs(2))
    ///     .build()?;
    /// guard
    ///     .tracer_provider()
    ///     .expect("the SDK is enabled")
    ///     .tracer("example")
    ///     .in_span("last", |_| {});
    /// drop(guard); // flushes, waiting at most 2 s
    /// assert_eq!(collector.trace_requests().len(), 1);
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }
    /// An extra span exporter, batched like the others (for example a test's in-memory one).
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::InMemorySpanExporter;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let spans = InMemorySpanExporter::default();
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .with_service_name("checkout")
    ///     .with_span_exporter(spans.clone())
    ///     .build()?;
    /// let provider = guard.tracer_provider().expect("the SDK is enabled");
    /// provider.tracer("example").in_span("GET /cart", |_| {});
    /// provider.force_flush()?; // batched: flush before looking
    /// let finished = spans.get_finished_spans()?;
    /// assert_eq!(finished[0].name, "GET /cart");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_span_exporter<E: SpanExporter + 'static>(mut self, exporter: E) -> Self {
        self.extra_exporter = Some(ProcessorFactory(Box::new(move || {
            Box::new(BatchSpanProcessor::builder(exporter).build()) as BoxedSpanProcessor
        })));
        self
    }

    // --- sampling/redaction options ---
    /// Turns tail mode on (overrides `OTEL_CORE_TAIL_SAMPLING` and its `OTEL_CORE_TAIL_*`
    /// settings): spans the head sampler drops are still recorded, and the local part of a
    /// trace is exported when one of its spans failed or was slow. See
    /// [`crate::sampling::tail`] and `docs/sampling.md`.
    ///
    /// ```
    /// use opentelemetry::trace::{Span as _, Status, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler};
    /// use otel_core::sampling::tail::TailConfig;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let spans = InMemorySpanExporter::default();
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .with_sampler(Sampler::AlwaysOff) // the head sampler keeps nothing…
    ///     .with_tail_sampling(TailConfig::new())
    ///     .with_span_exporter(spans.clone())
    ///     .build()?;
    /// let provider = guard.tracer_provider().expect("the SDK is enabled");
    /// let tracer = provider.tracer("example");
    /// tracer.start("fine").end();
    /// let mut failed = tracer.start("failed");
    /// failed.set_status(Status::error("timeout"));
    /// failed.end();
    /// provider.force_flush()?;
    /// // …but the trace with an error is exported all the same.
    /// let names: Vec<_> = spans
    ///     .get_finished_spans()?
    ///     .into_iter()
    ///     .map(|s| s.name)
    ///     .collect();
    /// assert_eq!(names, ["failed"]);
    /// let stats = guard.tail_stats().expect("tail mode is on");
    /// assert_eq!((stats.traces_kept(), stats.traces_discarded()), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_tail_sampling(mut self, config: TailConfig) -> Self {
        self.tail = Some(config);
        self
    }
    /// Masks secrets and personal data in printed log lines and in span attributes before
    /// export (overrides `OTEL_CORE_REDACTION=true|false`, default false). See
    /// [`crate::redact`].
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::InMemorySpanExporter;
    /// use otel_core::redact::Redactor;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let spans = InMemorySpanExporter::default();
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .with_redaction(Redactor::new())
    ///     .with_span_exporter(spans.clone())
    ///     .build()?;
    /// let provider = guard.tracer_provider().expect("the SDK is enabled");
    /// let mut span = provider.tracer("example").start("sign-up");
    /// span.set_attribute(KeyValue::new("user.email", "ann@example.com"));
    /// span.set_attribute(KeyValue::new("plan", "pro"));
    /// span.end();
    /// provider.force_flush()?;
    /// let exported = &spans.get_finished_spans()?[0];
    /// assert!(
    ///     exported
    ///         .attributes
    ///         .contains(&KeyValue::new("user.email", "[REDACTED]"))
    /// );
    /// assert!(exported.attributes.contains(&KeyValue::new("plan", "pro")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_redaction(mut self, redactor: Redactor) -> Self {
        self.redaction = Some(redactor);
        self
    }

    /// Truncates span, event, link and exported log record attribute values longer than
    /// `limit` characters, after redaction and before tail mode and the exporters (overrides
    /// `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, `OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT`
    /// and `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`; default: no limit). See [`crate::limits`].
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::InMemorySpanExporter;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let spans = InMemorySpanExporter::default();
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .with_attribute_value_length_limit(12)
    ///     .with_span_exporter(spans.clone())
    ///     .build()?;
    /// let provider = guard.tracer_provider().expect("the SDK is enabled");
    /// let mut span = provider.tracer("example").start("GET");
    /// span.set_attribute(KeyValue::new("url.query", "q=".repeat(10_000)));
    /// span.end();
    /// provider.force_flush()?;
    /// assert_eq!(
    ///     spans.get_finished_spans()?[0].attributes,
    ///     [KeyValue::new("url.query", "q=q=q=q=q=q=")]
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_attribute_value_length_limit(mut self, limit: usize) -> Self {
        self.value_length_limit = Some(limit);
        self
    }
    // --- end sampling/redaction options ---

    /// Builds the pipeline without installing anything global.
    ///
    /// Errors name the variable (or option) and value that could not be used.
    ///
    /// ```
    /// use otel_core::{ConfigError, EnvSource, Telemetry};
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .build()?;
    /// assert!(guard.tracer_provider().is_some());
    /// // Nothing global was installed: the global tracer provider is still the no-op one.
    ///
    /// let err = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_BSP_MAX_QUEUE_SIZE", "0")]))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(
    ///     &err,
    ///     ConfigError::InvalidValue { variable, value, .. }
    ///         if variable == "OTEL_BSP_MAX_QUEUE_SIZE" && value == "0"
    /// ));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn build(self) -> Result<TelemetryGuard, ConfigError> {
        let env = self.env.clone().unwrap_or_default();
        let disabled = match self.disabled {
            Some(d) => d,
            None => match env.get("OTEL_SDK_DISABLED") {
                Some(v) => crate::config::parse_bool("OTEL_SDK_DISABLED", &v)?,
                None => false,
            },
        };
        let log_format = match self.log_format {
            Some(f) => f,
            None => match env.get("OTEL_CORE_LOG_FORMAT") {
                Some(v) => LogFormat::parse("OTEL_CORE_LOG_FORMAT", &v)?,
                None => LogFormat::Text,
            },
        };
        let resource = self.resource.build(&env)?;
        let redactor = match self.redaction {
            Some(r) => Some(r),
            None => match env.get("OTEL_CORE_REDACTION") {
                Some(v) if crate::config::parse_bool("OTEL_CORE_REDACTION", &v)? => {
                    Some(Redactor::new())
                }
                _ => None,
            },
        };
        let (value_length_limit, log_value_length_limit) = match self.value_length_limit {
            Some(limit) => (Some(limit), Some(limit)),
            None => (
                value_length_limit_from_env(&env, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT")?,
                value_length_limit_from_env(&env, "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT")?,
            ),
        };
        let propagator: Box<dyn TextMapPropagator + Send + Sync> = match self.propagator {
            Some(p) => p,
            None => propagator_from_env(&env)?,
        };
        let mut guard = TelemetryGuard {
            inner: Arc::new(GuardInner {
                stats: ExportStats::default(),
                endpoint: None,
            }),
            tracer_provider: None,
            logger_provider: None,
            metrics: Metrics::noop(),
            metrics_exporter: None,
            resource: resource.clone(),
            propagator: Some(propagator),
            log_format,
            install_subscriber: self.install_subscriber.unwrap_or(true),
            shutdown_timeout: self.shutdown_timeout.unwrap_or(Duration::from_secs(5)),
            redactor: redactor.clone(),
            tail_stats: None,
            export_runtime: None,
        };
        if disabled {
            return Ok(guard);
        }

        let sampler = match self.sampler {
            Some(s) => s,
            None => crate::sampling::sampler_from_env(&env)?,
        };
        let tail = match self.tail {
            Some(t) => Some(t),
            None => TailConfig::from_env(&env)?,
        };
        let sampler: Box<dyn ShouldSample> = match tail {
            Some(_) => Box::new(TailSampler::from_boxed(sampler)),
            None => sampler,
        };
        let mut processors: Vec<BoxedSpanProcessor> = Vec::new();
        let exporters = match self.traces_exporters {
            Some(e) => e,
            None => match env.get("OTEL_TRACES_EXPORTER") {
                Some(v) => TracesExporter::parse_list("OTEL_TRACES_EXPORTER", &v)?,
                None => vec![TracesExporter::Otlp],
            },
        };
        let batch = BatchSettings::from_env(&env)?;
        let metrics_export = match self.metrics_export {
            Some(b) => b,
            None => match env.get("OTEL_METRICS_EXPORTER") {
                None => exporters.contains(&TracesExporter::Otlp),
                Some(v) => match v.to_ascii_lowercase().as_str() {
                    "otlp" => true,
                    "none" | "prometheus" => false,
                    _ => {
                        return Err(ConfigError::invalid(
                            "OTEL_METRICS_EXPORTER",
                            v,
                            "expected otlp, prometheus or none",
                        ));
                    }
                },
            },
        };
        let lookup = |name: &str| env.get(name);
        let filter = ExemplarFilter::from_lookup(lookup).map_err(metrics_error)?;
        guard.metrics = Metrics::new(
            MetricsConfig::default()
                .with_resource(resource.clone())
                .with_exemplar_filter(filter),
        );
        let mut metrics_exporter = None;
        if metrics_export {
            let settings = OtlpSettings::resolve(&env, Signal::Metrics, &self.otlp)?;
            let exporter = OtlpMetricsExporter::new(OtlpMetricsConfig {
                endpoint: None,
                metrics_endpoint: Some(settings.endpoint.clone()),
                protocol: settings.protocol,
                headers: settings.headers.clone(),
                timeout: settings.timeout,
            })
            .map_err(metrics_error)?;
            // `OTEL_METRIC_EXPORT_TIMEOUT` caps one periodic export; the OTLP timeout caps
            // each request inside the exporter (the smaller wins).
            let periodic = PeriodicConfig::from_lookup(lookup).map_err(metrics_error)?;
            // Started last, once nothing can fail: a guard dropped on a configuration error
            // must not push (or wait to push) anything.
            metrics_exporter = Some((exporter, periodic));
        }
        let mut endpoint = None;
        let stats = Arc::new(ExportStats::default());
        let mut builder = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_sampler(sampler);
        for exporter in exporters {
            match exporter {
                TracesExporter::Otlp => {
                    let settings = OtlpSettings::resolve(&env, Signal::Traces, &self.otlp)?;
                    endpoint = Some(settings.endpoint.clone());
                    let exporter = otlp_span_exporter(&settings, &mut guard.export_runtime)?;
                    let counted = CountingExporter {
                        inner: exporter,
                        stats: stats.clone(),
                        health: ExportHealth::new(
                            &guard.metrics,
                            opentelemetry_semantic_conventions::metric::OTEL_SDK_EXPORTER_SPAN_EXPORTED,
                            "spans",
                            &settings.endpoint,
                        ),
                    };
                    let processor = BatchSpanProcessor::builder(counted)
                        .with_batch_config(batch.config())
                        .build();
                    processors.push(Box::new(CountingProcessor {
                        inner: processor,
                        stats: stats.clone(),
                    }));
                }
                TracesExporter::Console => {
                    processors.push(Box::new(
                        BatchSpanProcessor::builder(ConsoleExporter::stdout())
                            .with_batch_config(
                                BatchSettings {
                                    scheduled_delay: Some(Duration::from_millis(100)),
                                    ..batch.clone()
                                }
                                .config(),
                            )
                            .build(),
                    ));
                }
            }
        }
        if let Some(extra) = self.extra_exporter {
            processors.push((extra.0)());
        }
        // Redaction, the value length limit and tail mode see every span before any exporter
        // does, in that order: redaction first, so that no pattern (an e-mail address, a card
        // number) is cut in half before it is masked; the limit next, so that the tail
        // buffer and the export queues never hold a longer value.
        if tail.is_none() && redactor.is_none() && value_length_limit.is_none() {
            for p in processors {
                builder = builder.with_span_processor(BoxedProcessor(p));
            }
        } else {
            let mut exporting: BoxedSpanProcessor = Box::new(FanOut(processors));
            if let Some(config) = tail {
                let tail = TailSpanProcessor::new(BoxedProcessor(exporting), config);
                guard.tail_stats = Some(tail.stats());
                exporting = Box::new(tail);
            }
            if let Some(limit) = value_length_limit {
                exporting = Box::new(ValueLengthLimitProcessor::new(
                    BoxedProcessor(exporting),
                    limit,
                ));
            }
            if let Some(r) = &redactor {
                exporting = Box::new(RedactingSpanProcessor::new(
                    BoxedProcessor(exporting),
                    r.clone(),
                ));
            }
            builder = builder.with_span_processor(BoxedProcessor(exporting));
        }
        guard.tracer_provider = Some(builder.build());

        let logs_export = match self.logs_export {
            Some(b) => b,
            None => match env.get("OTEL_LOGS_EXPORTER") {
                None => false,
                Some(v) if v.eq_ignore_ascii_case("none") => false,
                Some(v) if v.eq_ignore_ascii_case("otlp") => true,
                Some(v) => {
                    return Err(ConfigError::invalid(
                        "OTEL_LOGS_EXPORTER",
                        v,
                        "expected otlp or none",
                    ));
                }
            },
        };
        if logs_export {
            let settings = OtlpSettings::resolve(&env, Signal::Logs, &self.otlp)?;
            let exporter = CountingLogExporter {
                health: ExportHealth::new(
                    &guard.metrics,
                    opentelemetry_semantic_conventions::metric::OTEL_SDK_EXPORTER_LOG_EXPORTED,
                    "log records",
                    &settings.endpoint,
                ),
                inner: otlp_log_exporter(&settings, &mut guard.export_runtime)?,
            };
            // Redaction, then the limit, then the export queue: exported log records are
            // masked and cut like spans are.
            let batch = BatchLogProcessor::builder(exporter).build();
            let builder = SdkLoggerProvider::builder().with_resource(resource);
            let builder = match (&redactor, log_value_length_limit) {
                (None, None) => builder.with_log_processor(batch),
                (Some(r), None) => {
                    builder.with_log_processor(RedactingLogProcessor::new(batch, r.clone()))
                }
                (None, Some(limit)) => {
                    builder.with_log_processor(ValueLengthLimitLogProcessor::new(batch, limit))
                }
                (Some(r), Some(limit)) => builder.with_log_processor(RedactingLogProcessor::new(
                    ValueLengthLimitLogProcessor::new(batch, limit),
                    r.clone(),
                )),
            };
            guard.logger_provider = Some(builder.build());
        }
        if let Some((exporter, periodic)) = metrics_exporter {
            guard.metrics_exporter = Some(
                PeriodicMetricsExporter::start(guard.metrics.clone(), exporter, periodic)
                    .map_err(metrics_error)?,
            );
        }
        guard.inner = Arc::new(GuardInner {
            stats: ExportStats::shared(stats),
            endpoint,
        });
        Ok(guard)
    }

    /// Builds the pipeline and installs it globally: tracer provider, propagator and (unless
    /// turned off) the `tracing` subscriber with log correlation.
    ///
    /// If a global `tracing` subscriber is already set, that one is kept and a warning is
    /// printed on standard error; spans and propagation are installed all the same.
    ///
    /// ```no_run
    /// use otel_core::Telemetry;
    ///
    /// fn main() -> Result<(), otel_core::ConfigError> {
    ///     let _guard = Telemetry::builder()
    ///         .with_service_name("checkout")
    ///         .with_service_version(env!("CARGO_PKG_VERSION"))
    ///         .install()?;
    ///     // Adapters, `#[traced]` functions and `tracing` events now use the pipeline.
    ///     tracing::info!("started");
    ///     Ok(())
    /// } // the guard drops here: queued telemetry is flushed
    /// ```
    pub fn install(self) -> Result<TelemetryGuard, ConfigError> {
        let mut guard = self.build()?;
        INSTALLED_WITHOUT_TRACES.store(
            guard.tracer_provider.is_none(),
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Some(provider) = &guard.tracer_provider {
            opentelemetry::global::set_tracer_provider(provider.clone());
            if let Ok(mut installed) = INSTALLED.write() {
                *installed = Some(provider.clone());
            }
        }
        Metrics::set_global(guard.metrics.clone());
        if let Some(p) = guard.propagator.take() {
            opentelemetry::global::set_text_map_propagator(BoxedPropagator(p));
        }
        if guard.install_subscriber {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            let result = tracing_subscriber::registry()
                .with(guard.tracing_layer())
                .with(filter)
                .try_init();
            if let Err(e) = result {
                eprintln!(
                    "otel-core: a global tracing subscriber is already set; keeping it ({e})"
                );
            }
        }
        Ok(guard)
    }
}

/// `OTEL_BSP_*` settings, validated once and applied to each batch processor.
#[derive(Debug, Clone, Default)]
struct BatchSettings {
    max_queue_size: Option<usize>,
    max_export_batch_size: Option<usize>,
    scheduled_delay: Option<Duration>,
}

impl BatchSettings {
    fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        let mut b = Self::default();
        if let Some(v) = env.get("OTEL_BSP_MAX_QUEUE_SIZE") {
            b.max_queue_size = Some(parse_count("OTEL_BSP_MAX_QUEUE_SIZE", &v)?);
        }
        if let Some(v) = env.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            b.max_export_batch_size = Some(parse_count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &v)?);
        }
        if let Some(v) = env.get("OTEL_BSP_SCHEDULE_DELAY") {
            b.scheduled_delay = Some(parse_millis("OTEL_BSP_SCHEDULE_DELAY", &v)?);
        }
        Ok(b)
    }

    /// The batch configuration: every setting from the configured environment (or the SDK's
    /// default), none from the process environment, which `BatchConfigBuilder::default` reads
    /// (it would override an `EnvSource` of fixed pairs).
    fn config(&self) -> opentelemetry_sdk::trace::BatchConfig {
        use opentelemetry_sdk::trace::{
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE_DEFAULT, OTEL_BSP_MAX_QUEUE_SIZE_DEFAULT,
            OTEL_BSP_SCHEDULE_DELAY_DEFAULT,
        };
        BatchConfigBuilder::default()
            .with_max_queue_size(
                self.max_queue_size
                    .unwrap_or(OTEL_BSP_MAX_QUEUE_SIZE_DEFAULT),
            )
            .with_max_export_batch_size(
                self.max_export_batch_size
                    .unwrap_or(OTEL_BSP_MAX_EXPORT_BATCH_SIZE_DEFAULT),
            )
            .with_scheduled_delay(
                self.scheduled_delay
                    .unwrap_or(OTEL_BSP_SCHEDULE_DELAY_DEFAULT),
            )
            .build()
    }
}

/// An attribute value length limit of the environment: the signal's own variable
/// (`specific`) wins over the general one, as the specification says.
fn value_length_limit_from_env(
    env: &EnvSource,
    specific: &str,
) -> Result<Option<usize>, ConfigError> {
    for variable in [specific, "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"] {
        if let Some(value) = env.get(variable) {
            return match value.parse::<usize>() {
                Ok(limit) => Ok(Some(limit)),
                Err(_) => Err(ConfigError::invalid(
                    variable,
                    value,
                    "expected a whole number of characters (0 or more)",
                )),
            };
        }
    }
    Ok(None)
}

fn propagator_from_env(
    env: &EnvSource,
) -> Result<Box<dyn TextMapPropagator + Send + Sync>, ConfigError> {
    let value = env
        .get("OTEL_PROPAGATORS")
        .unwrap_or_else(|| "tracecontext,baggage".to_owned());
    crate::propagation::Propagators::from_names(&value)
        .map(|p| Box::new(p) as Box<dyn TextMapPropagator + Send + Sync>)
        .map_err(|e| ConfigError::invalid("OTEL_PROPAGATORS", value, e.to_string()))
}

/// A tokio runtime of the pipeline's own, with one worker thread, for the tonic channels of the
/// gRPC span and log exporters.
///
/// On the application's runtime those channels would stop whenever that runtime cannot run
/// them: built outside any runtime (tonic panics), or on a current-thread runtime whose only
/// thread is waiting in [`TelemetryGuard::shutdown`] for the last export, which then never
/// happens. On their own runtime, exports go on whatever the application's runtime does.
struct ExportRuntime(Option<tokio::runtime::Runtime>);

impl ExportRuntime {
    fn new() -> Result<Self, ConfigError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otel-core-grpc")
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
            .map_err(|e| ConfigError::Build {
                component: "OTLP gRPC runtime",
                reason: e.to_string(),
            })
    }

    /// Runs `f` (which builds a tonic channel) with this runtime as the current one.
    fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.0 {
            Some(rt) => {
                let _entered = rt.enter();
                f()
            }
            None => f(),
        }
    }
}

impl fmt::Debug for ExportRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExportRuntime")
    }
}

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        // Dropping a runtime where blocking is not allowed (inside the application's async
        // code) would panic; this never blocks.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The guard's export runtime, made on first use.
fn export_runtime(slot: &mut Option<ExportRuntime>) -> Result<&ExportRuntime, ConfigError> {
    if slot.is_none() {
        *slot = Some(ExportRuntime::new()?);
    }
    Ok(slot.as_ref().expect("just set"))
}

/// The provider [`TelemetryBuilder::install`] made global, kept typed so that adapters built
/// afterwards start SDK spans without the API's extra box.
static INSTALLED: std::sync::RwLock<Option<SdkTracerProvider>> = std::sync::RwLock::new(None);

/// The tracer provider installed by [`TelemetryBuilder::install`], if any.
pub(crate) fn installed_tracer_provider() -> Option<SdkTracerProvider> {
    INSTALLED.read().ok().and_then(|p| p.clone())
}

/// The last [`TelemetryBuilder::install`] installed no tracer provider (`OTEL_SDK_DISABLED`,
/// or no traces): the global provider is then the API's no-op one.
static INSTALLED_WITHOUT_TRACES: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Whether the last [`TelemetryBuilder::install`] left tracing off.
pub(crate) fn installed_without_traces() -> bool {
    INSTALLED_WITHOUT_TRACES.load(std::sync::atomic::Ordering::Relaxed)
}

fn metrics_error(e: MetricsError) -> ConfigError {
    match e {
        MetricsError::InvalidEnv { var, value, reason } => ConfigError::invalid(var, value, reason),
        other => ConfigError::Build {
            component: "OTLP metrics exporter",
            reason: other.to_string(),
        },
    }
}

fn headers_map(settings: &OtlpSettings) -> std::collections::HashMap<String, String> {
    settings.headers.iter().cloned().collect()
}

/// Builds an OTLP exporter for `settings`: with `http` over HTTP, or with `grpc` (given the
/// headers as metadata) over gRPC, its channel made on the pipeline's own runtime.
fn otlp_exporter<E>(
    settings: &OtlpSettings,
    runtime: &mut Option<ExportRuntime>,
    component: &'static str,
    http: impl FnOnce(&OtlpSettings) -> Result<E, opentelemetry_otlp::ExporterBuildError>,
    grpc: impl FnOnce(
        &OtlpSettings,
        tonic::metadata::MetadataMap,
    ) -> Result<E, opentelemetry_otlp::ExporterBuildError>,
) -> Result<E, ConfigError> {
    let built = match settings.protocol {
        OtlpProtocol::HttpProtobuf => http(settings),
        OtlpProtocol::Grpc => {
            let metadata = grpc_metadata(settings)?;
            export_runtime(runtime)?.enter(|| grpc(settings, metadata))
        }
    };
    built.map_err(|e| ConfigError::Build {
        component,
        reason: e.to_string(),
    })
}

/// The OTLP headers a pipeline resolved, put on each export request exactly.
///
/// opentelemetry-otlp adds the headers of `OTEL_EXPORTER_OTLP_{SIGNAL}_HEADERS` (else
/// `OTEL_EXPORTER_OTLP_HEADERS`) from the process environment after the ones it is given
/// (0.33: `exporter/http/mod.rs`, `exporter/tonic/mod.rs`), which would override
/// `with_otlp_header` and the values of an [`EnvSource`]. Each request gets ours back and loses
/// the process environment's headers that ours do not hold.
#[derive(Debug, Clone)]
struct ExactHeaders {
    ours: http::HeaderMap,
    foreign: Vec<http::HeaderName>,
}

impl ExactHeaders {
    fn new(settings: &OtlpSettings, signal: Signal) -> Self {
        let mut ours = http::HeaderMap::new();
        for (k, v) in &settings.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                ours.insert(name, value);
            }
        }
        let process = std::env::var(format!("OTEL_EXPORTER_OTLP_{}HEADERS", signal.env_infix()))
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_HEADERS"))
            .unwrap_or_default();
        let foreign = process
            .split(',')
            .filter_map(|pair| pair.split_once('=').map(|(k, _)| k.trim()))
            .filter_map(|k| http::HeaderName::from_bytes(k.as_bytes()).ok())
            .filter(|k| !ours.contains_key(k) && k != http::header::CONTENT_TYPE)
            .collect();
        Self { ours, foreign }
    }

    fn apply(&self, headers: &mut http::HeaderMap) {
        for name in &self.foreign {
            headers.remove(name);
        }
        for (name, value) in &self.ours {
            headers.insert(name, value.clone());
        }
    }
}

/// The blocking `reqwest` client opentelemetry-otlp would make, sending [`ExactHeaders`].
#[derive(Debug)]
struct ExactHeadersClient {
    inner: reqwest::blocking::Client,
    headers: ExactHeaders,
}

impl ExactHeadersClient {
    fn new(settings: &OtlpSettings, signal: Signal) -> Result<Self, ConfigError> {
        let timeout = settings.timeout;
        // A blocking client must not be made on an async runtime's thread: make it on one of
        // its own, as opentelemetry-otlp does.
        let inner = std::thread::Builder::new()
            .name("otel-core-http".into())
            .spawn(move || {
                reqwest::blocking::Client::builder()
                    .timeout(timeout)
                    .build()
            })
            .ok()
            .and_then(|t| t.join().ok())
            .and_then(Result::ok)
            .ok_or_else(|| ConfigError::Build {
                component: "OTLP HTTP client",
                reason: "the blocking HTTP client could not be built".to_owned(),
            })?;
        Ok(Self {
            inner,
            headers: ExactHeaders::new(settings, signal),
        })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ExactHeadersClient {
    async fn send_bytes(
        &self,
        mut request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        self.headers.apply(request.headers_mut());
        self.inner.send_bytes(request).await
    }
}

/// A tonic interceptor sending [`ExactHeaders`] as the request metadata.
fn exact_metadata(
    headers: ExactHeaders,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |mut request: tonic::Request<()>| {
        let mut map = std::mem::take(request.metadata_mut()).into_headers();
        headers.apply(&mut map);
        *request.metadata_mut() = tonic::metadata::MetadataMap::from_headers(map);
        Ok(request)
    }
}

/// Builds an OTLP exporter of type `$exporter` (`SpanExporter` or `LogExporter` of
/// opentelemetry-otlp: builders of the same shape, with no trait in common) for `$signal`,
/// sending exactly the resolved headers.
macro_rules! otlp_signal_exporter {
    ($exporter:ident, $signal:expr, $component:literal, $settings:expr, $runtime:expr) => {{
        use opentelemetry_otlp::$exporter;
        let settings: &OtlpSettings = $settings;
        let client = match settings.protocol {
            OtlpProtocol::HttpProtobuf => Some(ExactHeadersClient::new(settings, $signal)?),
            OtlpProtocol::Grpc => None,
        };
        let exact = ExactHeaders::new(settings, $signal);
        otlp_exporter(
            settings,
            $runtime,
            $component,
            |s| {
                let builder = $exporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(s.endpoint.clone())
                    .with_timeout(s.timeout)
                    .with_headers(headers_map(s));
                match client {
                    Some(client) => builder.with_http_client(client).build(),
                    None => builder.build(),
                }
            },
            |s, metadata| {
                $exporter::builder()
                    .with_tonic()
                    .with_endpoint(s.endpoint.clone())
                    .with_timeout(s.timeout)
                    .with_metadata(metadata)
                    .with_interceptor(exact_metadata(exact))
                    .build()
            },
        )
    }};
}

fn otlp_span_exporter(
    settings: &OtlpSettings,
    runtime: &mut Option<ExportRuntime>,
) -> Result<opentelemetry_otlp::SpanExporter, ConfigError> {
    otlp_signal_exporter!(
        SpanExporter,
        Signal::Traces,
        "OTLP span exporter",
        settings,
        runtime
    )
}

fn otlp_log_exporter(
    settings: &OtlpSettings,
    runtime: &mut Option<ExportRuntime>,
) -> Result<opentelemetry_otlp::LogExporter, ConfigError> {
    otlp_signal_exporter!(
        LogExporter,
        Signal::Logs,
        "OTLP log exporter",
        settings,
        runtime
    )
}

fn grpc_metadata(settings: &OtlpSettings) -> Result<tonic::metadata::MetadataMap, ConfigError> {
    let mut map = tonic::metadata::MetadataMap::new();
    for (k, v) in &settings.headers {
        let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|_| {
                ConfigError::invalid("OTEL_EXPORTER_OTLP_HEADERS", k, "not a valid header name")
            })?;
        let value = v.parse().map_err(|_| {
            ConfigError::invalid("OTEL_EXPORTER_OTLP_HEADERS", v, "not a valid header value")
        })?;
        map.insert(key, value);
    }
    Ok(map)
}

/// Counts of what the trace pipeline did with sampled spans, for the shutdown report and for
/// monitoring the pipeline itself.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
/// use otel_core::testing::OtlpHttpReceiver;
/// use otel_core::{EnvSource, Telemetry};
/// use std::time::Duration;
///
/// let collector = OtlpHttpReceiver::start()?;
/// let mut guard = Telemetry::builder()
///     .with_env(EnvSource::from_pairs::<&str, &str>([]))
///     .with_otlp_endpoint(collector.endpoint())
///     .with_metrics_export(false)
///     .build()?;
/// let tracer = guard
///     .tracer_provider()
///     .expect("the SDK is enabled")
///     .tracer("example");
/// for _ in 0..3 {
///     tracer.in_span("work", |_| {});
/// }
/// let _ = guard.shutdown(Duration::from_secs(5));
/// let stats = guard.stats();
/// assert_eq!(
///     (
///         stats.spans_ended(),
///         stats.spans_exported(),
///         stats.spans_dropped()
///     ),
///     (3, 3, 0)
/// );
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct ExportStats {
    shared: Option<Arc<ExportStats>>,
    ended: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
}

impl ExportStats {
    fn shared(inner: Arc<ExportStats>) -> Self {
        Self {
            shared: Some(inner),
            ..Default::default()
        }
    }
    fn get(&self) -> &ExportStats {
        self.shared.as_deref().unwrap_or(self)
    }
    /// Sampled spans that ended and were handed to the OTLP exporter's queue.
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::Sampler;
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs::<&str, &str>([]))
    ///     .with_otlp_endpoint("http://127.0.0.1:0") // nothing listens: no export succeeds
    ///     .with_otlp_timeout(Duration::from_millis(200))
    ///     .with_metrics_export(false)
    ///     .build()?;
    /// let tracer = guard
    ///     .tracer_provider()
    ///     .expect("the SDK is enabled")
    ///     .tracer("example");
    /// tracer.in_span("work", |_| {});
    /// // Counted as soon as the span ends, before any export.
    /// assert_eq!(guard.stats().spans_ended(), 1);
    ///
    /// // Unsampled spans are not counted.
    /// let unsampled = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs::<&str, &str>([]))
    ///     .with_otlp_endpoint("http://127.0.0.1:0")
    ///     .with_metrics_export(false)
    ///     .with_sampler(Sampler::AlwaysOff)
    ///     .build()?;
    /// let tracer = unsampled
    ///     .tracer_provider()
    ///     .expect("the SDK is enabled")
    ///     .tracer("example");
    /// tracer.in_span("work", |_| {});
    /// assert_eq!(unsampled.stats().spans_ended(), 0);
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn spans_ended(&self) -> u64 {
        self.get().ended.load(Ordering::Relaxed)
    }
    /// Spans the collector accepted.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    ///
    /// let collector = OtlpHttpReceiver::start()?;
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs::<&str, &str>([]))
    ///     .with_otlp_endpoint(collector.endpoint())
    ///     .with_metrics_export(false)
    ///     .build()?;
    /// let provider = guard.tracer_provider().expect("the SDK is enabled");
    /// provider.tracer("example").in_span("work", |_| {});
    /// provider.force_flush()?;
    /// assert_eq!(guard.stats().spans_exported(), 1);
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spans_exported(&self) -> u64 {
        self.get().exported.load(Ordering::Relaxed)
    }
    /// Spans lost: export failed, the queue was full, or shutdown came first.
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    ///
    /// // A collector that is not there: nothing can listen on port 0.
    /// let mut guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs::<&str, &str>([]))
    ///     .with_otlp_endpoint("http://127.0.0.1:0")
    ///     .with_otlp_timeout(Duration::from_millis(200))
    ///     .with_metrics_export(false)
    ///     .build()?;
    /// let tracer = guard
    ///     .tracer_provider()
    ///     .expect("the SDK is enabled")
    ///     .tracer("example");
    /// tracer.in_span("a", |_| {});
    /// tracer.in_span("b", |_| {});
    /// let _ = guard.shutdown(Duration::from_secs(5));
    /// assert_eq!(guard.stats().spans_dropped(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spans_dropped(&self) -> u64 {
        let s = self.get();
        s.ended
            .load(Ordering::Relaxed)
            .saturating_sub(s.exported.load(Ordering::Relaxed))
    }
    /// Spans in batches whose export returned an error.
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    ///
    /// // Nothing can listen on port 0: every export attempt is refused.
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs::<&str, &str>([]))
    ///     .with_otlp_endpoint("http://127.0.0.1:0")
    ///     .with_otlp_timeout(Duration::from_millis(200))
    ///     .with_metrics_export(false)
    ///     .build()?;
    /// let provider = guard.tracer_provider().expect("the SDK is enabled");
    /// provider.tracer("example").in_span("lost", |_| {});
    /// let _ = provider.force_flush(); // the export is refused
    /// assert_eq!(guard.stats().spans_failed(), 1);
    /// assert_eq!(guard.stats().spans_exported(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spans_failed(&self) -> u64 {
        self.get().failed.load(Ordering::Relaxed)
    }
}

/// The pipeline's own health: every export outcome counted in the suite's metrics
/// (`otel.sdk.exporter.{span,log}.exported`, with `error.type` on failures) and, on failure,
/// a warning on standard error at most once every [`WARN_INTERVAL`] with the count lost since
/// the last one.
#[derive(Debug)]
struct ExportHealth {
    counter: crate::metrics::Counter,
    what: &'static str,
    endpoint: String,
    lost_since_warning: AtomicU64,
    last_warning: std::sync::Mutex<Option<std::time::Instant>>,
}

/// Least time between two warnings about failed exports.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

impl ExportHealth {
    fn new(metrics: &Metrics, name: &'static str, what: &'static str, endpoint: &str) -> Self {
        Self {
            counter: metrics
                .u64_counter(name)
                .with_unit(if what == "spans" {
                    "{span}"
                } else {
                    "{log_record}"
                })
                .with_description("Items the exporter handled; error.type set when lost.")
                .build(),
            what,
            endpoint: endpoint.to_owned(),
            lost_since_warning: AtomicU64::new(0),
            last_warning: std::sync::Mutex::new(None),
        }
    }

    fn record(&self, n: u64, result: &OTelSdkResult) {
        match result {
            Ok(()) => self.counter.add(n, &[]),
            Err(e) => {
                self.counter.add(
                    n,
                    &[KeyValue::new(
                        opentelemetry_semantic_conventions::attribute::ERROR_TYPE,
                        "export_failed",
                    )],
                );
                let lost = self.lost_since_warning.fetch_add(n, Ordering::Relaxed) + n;
                let Ok(mut last) = self.last_warning.lock() else {
                    return;
                };
                if last.is_none_or(|t| t.elapsed() >= WARN_INTERVAL) {
                    *last = Some(std::time::Instant::now());
                    self.lost_since_warning.store(0, Ordering::Relaxed);
                    eprintln!(
                        "otel-core: {lost} {} could not be exported to {} ({e}); export goes on in the background",
                        self.what, self.endpoint
                    );
                }
            }
        }
    }
}

#[derive(Debug)]
struct CountingExporter<E> {
    inner: E,
    stats: Arc<ExportStats>,
    health: ExportHealth,
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => self.stats.exported.fetch_add(n, Ordering::Relaxed),
            Err(_) => self.stats.failed.fetch_add(n, Ordering::Relaxed),
        };
        self.health.record(n, &result);
        result
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[derive(Debug)]
struct CountingLogExporter<E> {
    inner: E,
    health: ExportHealth,
}

impl<E: opentelemetry_sdk::logs::LogExporter> opentelemetry_sdk::logs::LogExporter
    for CountingLogExporter<E>
{
    async fn export(&self, batch: opentelemetry_sdk::logs::LogBatch<'_>) -> OTelSdkResult {
        let n = batch.iter().count() as u64;
        let result = self.inner.export(batch).await;
        self.health.record(n, &result);
        result
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn event_enabled(
        &self,
        level: opentelemetry::logs::Severity,
        target: &str,
        name: Option<&str>,
    ) -> bool {
        self.inner.event_enabled(level, target, name)
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[derive(Debug)]
struct CountingProcessor<P> {
    inner: P,
    stats: Arc<ExportStats>,
}

wrapping_span_processor!(CountingProcessor, |self, span| {
    if span.span_context.is_sampled() {
        self.stats.ended.fetch_add(1, Ordering::Relaxed);
    }
    self.inner.on_end(span);
});

#[derive(Debug)]
struct BoxedProcessor(BoxedSpanProcessor);

impl SpanProcessor for BoxedProcessor {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.0.on_start(span, cx);
    }
    fn on_end(&self, span: SpanData) {
        self.0.on_end(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

#[derive(Debug)]
struct BoxedPropagator(Box<dyn TextMapPropagator + Send + Sync>);

impl TextMapPropagator for BoxedPropagator {
    fn inject_context(
        &self,
        cx: &Context,
        injector: &mut dyn opentelemetry::propagation::Injector,
    ) {
        self.0.inject_context(cx, injector);
    }
    fn extract_with_context(
        &self,
        cx: &Context,
        extractor: &dyn opentelemetry::propagation::Extractor,
    ) -> Context {
        self.0.extract_with_context(cx, extractor)
    }
    fn fields(&self) -> opentelemetry::propagation::text_map_propagator::FieldIter<'_> {
        self.0.fields()
    }
}

#[derive(Debug)]
struct GuardInner {
    stats: ExportStats,
    endpoint: Option<String>,
}

/// The installed pipeline. Dropping it flushes what is queued and shuts the exporters down,
/// waiting at most the shutdown timeout (default 5 s), then reports on standard error how many
/// spans could not be delivered, if any.
///
/// ```
/// use otel_core::{EnvSource, Telemetry};
/// use std::time::Duration;
///
/// let mut guard = Telemetry::builder()
///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
///     .build()?;
/// // … run the service …
/// // Dropping the guard shuts down within the shutdown timeout; or do it explicitly:
/// let report = guard.shutdown(Duration::from_secs(2));
/// assert!(report.completed_in_time);
/// # Ok::<(), otel_core::ConfigError>(())
/// ```
#[must_use = "dropping the guard shuts the pipeline down"]
pub struct TelemetryGuard {
    inner: Arc<GuardInner>,
    tracer_provider: Option<SdkTracerProvider>,
    logger_provider: Option<SdkLoggerProvider>,
    metrics: Metrics,
    metrics_exporter: Option<PeriodicMetricsExporter>,
    resource: Resource,
    propagator: Option<Box<dyn TextMapPropagator + Send + Sync>>,
    log_format: LogFormat,
    install_subscriber: bool,
    shutdown_timeout: Duration,
    redactor: Option<Redactor>,
    tail_stats: Option<TailStats>,
    /// Where the gRPC exporters' channels run; dropped after the providers (field order).
    export_runtime: Option<ExportRuntime>,
}

impl fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("enabled", &self.tracer_provider.is_some())
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

/// What shutdown managed to do.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
/// use otel_core::testing::OtlpHttpReceiver;
/// use otel_core::{EnvSource, ShutdownReport, Telemetry};
/// use std::time::Duration;
///
/// let collector = OtlpHttpReceiver::start()?;
/// let mut guard = Telemetry::builder()
///     .with_env(EnvSource::from_pairs::<&str, &str>([]))
///     .with_otlp_endpoint(collector.endpoint())
///     .build()?;
/// guard
///     .tracer_provider()
///     .expect("the SDK is enabled")
///     .tracer("example")
///     .in_span("work", |_| {});
/// let report = guard.shutdown(Duration::from_secs(5));
/// assert_eq!(
///     report,
///     ShutdownReport {
///         spans_ended: 1,
///         spans_exported: 1,
///         spans_dropped: 0,
///         metric_exports_failed: 0,
///         completed_in_time: true,
///     }
/// );
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Sampled spans handed to the OTLP exporter.
    pub spans_ended: u64,
    /// Spans the collector accepted.
    pub spans_exported: u64,
    /// Spans lost (export errors, full queue, or not flushed before the deadline).
    pub spans_dropped: u64,
    /// Metric exports that failed over the pipeline's life (the final one included).
    pub metric_exports_failed: u64,
    /// Whether everything shut down before the deadline.
    pub completed_in_time: bool,
}

impl TelemetryGuard {
    /// The tracer provider, when the SDK is enabled.
    ///
    /// ```
    /// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .build()?;
    /// // Hand it to adapters (`with_tracer_provider`) or start spans directly.
    /// let provider = guard.tracer_provider().expect("the SDK is enabled");
    /// assert!(provider.tracer("example").start("work").is_recording());
    ///
    /// let disabled = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_SDK_DISABLED", "true")]))
    ///     .build()?;
    /// assert!(disabled.tracer_provider().is_none());
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.tracer_provider.as_ref()
    }
    /// The metrics registry of the pipeline (installed as [`Metrics::global`] by `install`);
    /// mount [`crate::metrics::openmetrics`]'s service over it for a `/metrics` endpoint.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::SnapshotExt as _;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .build()?;
    /// let orders = guard.metrics().u64_counter("orders.accepted").build();
    /// orders.add(2, &[KeyValue::new("channel", "web")]);
    /// let snapshot = guard.metrics().snapshot();
    /// let web = snapshot
    ///     .find("orders.accepted")
    ///     .and_then(|m| m.find_series(&[KeyValue::new("channel", "web")]))
    ///     .and_then(|s| s.counter());
    /// assert_eq!(web, Some(2));
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    /// The resource every signal carries.
    ///
    /// ```
    /// use otel_core::resource::service_name;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .with_service_name("checkout")
    ///     .build()?;
    /// assert_eq!(service_name(guard.resource()), "checkout");
    /// assert_eq!(
    ///     guard.resource().schema_url(),
    ///     Some(otel_core::semconv::SCHEMA_URL)
    /// );
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn resource(&self) -> &Resource {
        &self.resource
    }
    /// Counters of tail mode, when it is on.
    ///
    /// ```
    /// use otel_core::sampling::tail::TailConfig;
    /// use otel_core::{EnvSource, Telemetry};
    ///
    /// let env = EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]);
    /// let guard = Telemetry::builder().with_env(env.clone()).build()?;
    /// assert!(guard.tail_stats().is_none());
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(env)
    ///     .with_tail_sampling(TailConfig::new())
    ///     .build()?;
    /// assert_eq!(guard.tail_stats().map(|s| s.spans_buffered()), Some(0));
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn tail_stats(&self) -> Option<&TailStats> {
        self.tail_stats.as_ref()
    }
    /// Export counters of the trace pipeline.
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    ///
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs::<&str, &str>([]))
    ///     .with_otlp_endpoint("http://127.0.0.1:0") // nothing listens: no export succeeds
    ///     .with_otlp_timeout(Duration::from_millis(200))
    ///     .with_metrics_export(false)
    ///     .build()?;
    /// let stats = guard.stats();
    /// assert_eq!(stats.spans_ended(), 0);
    /// guard
    ///     .tracer_provider()
    ///     .expect("the SDK is enabled")
    ///     .tracer("example")
    ///     .in_span("work", |_| {});
    /// assert_eq!(stats.spans_ended(), 1);
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn stats(&self) -> &ExportStats {
        &self.inner.stats
    }

    /// The `tracing` layers of this pipeline (fmt with log correlation, spans bridged to
    /// OpenTelemetry, and log export when enabled), for an application composing its own
    /// subscriber. [`TelemetryBuilder::install`] installs these unless told otherwise.
    ///
    /// ```
    /// use opentelemetry_sdk::trace::InMemorySpanExporter;
    /// use otel_core::logs::LogFormat;
    /// use otel_core::{EnvSource, Telemetry};
    /// use tracing_subscriber::prelude::*;
    ///
    /// let spans = InMemorySpanExporter::default();
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .with_log_format(LogFormat::Off)
    ///     .with_span_exporter(spans.clone())
    ///     .build()?;
    /// let subscriber = tracing_subscriber::registry().with(guard.tracing_layer());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     // `tracing` spans (and `#[tracing::instrument]`) become OpenTelemetry spans.
    ///     tracing::info_span!("load_config").in_scope(|| tracing::info!("loaded"));
    /// });
    /// guard
    ///     .tracer_provider()
    ///     .expect("the SDK is enabled")
    ///     .force_flush()?;
    /// assert_eq!(spans.get_finished_spans()?[0].name, "load_config");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tracing_layer<S>(&self) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
    {
        let fmt = fmt_layer_with_redaction::<S, _>(
            self.log_format,
            std::io::stdout,
            self.redactor.clone(),
        );
        let otel = self.tracer_provider.as_ref().map(|p| {
            tracing_opentelemetry::layer()
                .with_tracer(p.tracer("otel-core"))
                .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                    !is_exporter_internal(m.target())
                }))
        });
        let logs = self.logger_provider.as_ref().map(|p| {
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(p).with_filter(
                tracing_subscriber::filter::filter_fn(|m| !is_exporter_internal(m.target())),
            )
        });
        let mut layers: Vec<Box<dyn tracing_subscriber::Layer<S> + Send + Sync>> = Vec::new();
        layers.extend(fmt);
        if let Some(l) = otel {
            layers.push(Box::new(l));
        }
        if let Some(l) = logs {
            layers.push(Box::new(l));
        }
        Box::new(layers)
    }

    /// Flushes and shuts down now, waiting at most `timeout`.
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    ///
    /// let mut guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_TRACES_EXPORTER", "none")]))
    ///     .build()?;
    /// guard
    ///     .tracer_provider()
    ///     .expect("the SDK is enabled")
    ///     .tracer("example")
    ///     .in_span("work", |_| {});
    /// let report = guard.shutdown(Duration::from_secs(1));
    /// assert!(report.completed_in_time);
    /// // Shut down once: the guard has nothing left to drop.
    /// assert!(guard.tracer_provider().is_none());
    /// # Ok::<(), otel_core::ConfigError>(())
    /// ```
    pub fn shutdown(&mut self, timeout: Duration) -> ShutdownReport {
        let tracer = self.tracer_provider.take();
        let logger = self.logger_provider.take();
        let metrics = self.metrics_exporter.take();
        let mut completed = true;
        let mut metric_exports_failed = 0;
        if let Some(m) = &metrics {
            metric_exports_failed = m.stats().failed;
        }
        if tracer.is_some() || logger.is_some() || metrics.is_some() {
            let (tx, rx) = std::sync::mpsc::channel();
            let spawned = std::thread::Builder::new()
                .name("otel-core-shutdown".into())
                .spawn(move || {
                    if let Some(t) = tracer {
                        let _ = t.shutdown_with_timeout(timeout);
                    }
                    if let Some(l) = logger {
                        let _ = l.shutdown_with_timeout(timeout);
                    }
                    let failed = metrics.map(|m| {
                        let _ = m.shutdown(timeout);
                        m.stats().failed
                    });
                    let _ = tx.send(failed);
                });
            match rx.recv_timeout(timeout) {
                Ok(failed) if spawned.is_ok() => {
                    metric_exports_failed = failed.unwrap_or(metric_exports_failed);
                }
                _ => completed = false,
            }
        }
        let s = &self.inner.stats;
        ShutdownReport {
            spans_ended: s.spans_ended(),
            spans_exported: s.spans_exported(),
            spans_dropped: s.spans_dropped(),
            metric_exports_failed,
            completed_in_time: completed,
        }
    }
}

/// Targets whose events come from the export machinery itself; bridging them back into the
/// pipeline would loop.
fn is_exporter_internal(target: &str) -> bool {
    ["opentelemetry", "hyper", "h2", "tonic", "reqwest", "tower"]
        .iter()
        .any(|p| target.starts_with(p))
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if self.tracer_provider.is_none()
            && self.logger_provider.is_none()
            && self.metrics_exporter.is_none()
        {
            return;
        }
        let report = self.shutdown(self.shutdown_timeout);
        if report.metric_exports_failed > 0 {
            eprintln!(
                "otel-core: {} metric exports failed",
                report.metric_exports_failed
            );
        }
        if report.spans_dropped > 0 || !report.completed_in_time {
            eprintln!(
                "otel-core: {} of {} spans could not be exported to {}{}",
                report.spans_dropped,
                report.spans_ended,
                self.inner.endpoint.as_deref().unwrap_or("the collector"),
                if report.completed_in_time {
                    ""
                } else {
                    " (shutdown deadline reached)"
                }
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Marks the child run of `batch_settings_ignore_the_process_environment`.
    const BSP_CHILD: &str = "OTEL_CORE_TEST_BSP_CHILD";

    /// The batch settings come from the configured environment only: the process
    /// environment's `OTEL_BSP_*` does not override an `EnvSource` of fixed pairs. Run in a
    /// child process that has them set.
    #[test]
    fn batch_settings_ignore_the_process_environment() {
        const NAME: &str = "pipeline::tests::batch_settings_ignore_the_process_environment";
        if std::env::var_os(BSP_CHILD).is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", NAME, "--nocapture"])
                .env(BSP_CHILD, "1")
                .env("OTEL_BSP_MAX_QUEUE_SIZE", "1")
                .env("OTEL_BSP_SCHEDULE_DELAY", "1")
                .output()
                .unwrap();
            let log = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "the child run failed:\n{log}");
            assert!(log.contains("1 passed"), "the child ran no test:\n{log}");
            return;
        }
        assert_eq!(std::env::var("OTEL_BSP_MAX_QUEUE_SIZE").as_deref(), Ok("1"));
        let fixed = EnvSource::from_pairs([("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64")]);
        let config = format!("{:?}", BatchSettings::from_env(&fixed).unwrap().config());
        assert!(config.contains("max_queue_size: 2048"), "{config}");
        assert!(config.contains("scheduled_delay: 5s"), "{config}");
        assert!(config.contains("max_export_batch_size: 64"), "{config}");
    }

    #[test]
    fn each_traces_exporter_once_wherever_it_repeats() {
        let list = TracesExporter::parse_list("OTEL_TRACES_EXPORTER", "otlp,console,otlp").unwrap();
        assert_eq!(list, [TracesExporter::Otlp, TracesExporter::Console]);
    }
}
