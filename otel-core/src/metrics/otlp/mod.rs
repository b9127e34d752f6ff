//! OTLP export of the registry: the protobuf request built from a snapshot, a blocking exporter
//! for gRPC and HTTP/protobuf, and a periodic exporter running on its own thread.
//!
//! Data points use cumulative temporality: histograms as explicit-bucket histograms with
//! count, sum, min, max and exemplars (trace id, span id, value, time, filtered attributes);
//! counters as monotonic sums; up-down counters as non-monotonic sums. The request carries the
//! registry's resource and the instrumentation scope `otel-core`.
//!
//! Configuration follows the OTLP exporter environment variables, the same ones the trace
//! exporter reads ([`OtlpMetricsConfig::from_env`]):
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` | full URL for metrics, used as is | — |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL; HTTP appends `/v1/metrics` | `http://localhost:4318` (HTTP), `http://localhost:4317` (gRPC) |
//! | `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL` | `grpc` or `http/protobuf` | `http/protobuf` |
//! | `OTEL_EXPORTER_OTLP_METRICS_HEADERS`, `OTEL_EXPORTER_OTLP_HEADERS` | `k=v,k2=v2` (values percent-decoded; metrics-specific keys win) | none |
//! | `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`, `OTEL_EXPORTER_OTLP_TIMEOUT` | per-export timeout, ms | 10000 |
//! | `OTEL_METRIC_EXPORT_INTERVAL` | period of [`PeriodicMetricsExporter`], ms | 60000 |
//! | `OTEL_METRIC_EXPORT_TIMEOUT` | cap on one periodic export, ms | 30000 |
//!
//! Requests are sent uncompressed (`OTEL_EXPORTER_OTLP_COMPRESSION` is not applied to
//! metrics). Only `http://` endpoints work unless the TLS features of `reqwest` / `tonic` are
//! enabled by the application.
//!
//! ```
//! use opentelemetry::KeyValue;
//! use otel_core::metrics::Metrics;
//! use otel_core::metrics::otlp::{OtlpMetricsConfig, OtlpMetricsExporter, to_otlp_request};
//!
//! let metrics = Metrics::default();
//! metrics
//!     .u64_counter("app.calls")
//!     .build()
//!     .add(1, &[KeyValue::new("route", "/")]);
//!
//! // The request an export sends:
//! let request = to_otlp_request(&metrics.snapshot_without_percentiles(), &metrics.resource());
//! let scope = &request.resource_metrics[0].scope_metrics[0];
//! assert_eq!(scope.metrics[0].name, "app.calls");
//!
//! // An exporter configured from `OTEL_EXPORTER_OTLP_*` (nothing is sent until an export):
//! let config = OtlpMetricsConfig::from_lookup(|var| {
//!     (var == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://collector:4318".to_owned())
//! })
//! .expect("valid settings");
//! let exporter = OtlpMetricsExporter::new(config).expect("valid configuration");
//! assert_eq!(exporter.url(), "http://collector:4318/v1/metrics");
//! ```

mod periodic;

pub use periodic::{ExportStats, PeriodicConfig, PeriodicMetricsExporter};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1 as pb;
use opentelemetry_proto::tonic::resource::v1::Resource as PbResource;
use opentelemetry_proto::transform::common::tonic::Attributes;
use opentelemetry_sdk::Resource;
use prost::Message;

use super::Metrics;
use super::config::MetricsError;
use super::snapshot::{Exemplar, HistogramData, MetricSnapshot, SeriesData, SeriesSnapshot};

/// Name of the instrumentation scope of every exported metric.
///
/// ```
/// use otel_core::metrics::Metrics;
/// use otel_core::metrics::otlp::{SCOPE_NAME, to_otlp_request};
///
/// let metrics = Metrics::default();
/// metrics.u64_counter("app.calls").build().add(1, &[]);
/// let request = to_otlp_request(&metrics.snapshot(), &metrics.resource());
/// let scope = request.resource_metrics[0].scope_metrics[0].scope.as_ref();
/// assert_eq!(scope.map(|s| s.name.as_str()), Some(SCOPE_NAME));
/// ```
pub const SCOPE_NAME: &str = "otel-core";

/// OTLP transport protocol: the same type the trace pipeline uses.
pub use crate::config::OtlpProtocol;

/// Where and how an [`OtlpMetricsExporter`] sends.
///
/// ```
/// use otel_core::metrics::otlp::{OtlpMetricsConfig, OtlpProtocol};
/// use std::time::Duration;
///
/// let config = OtlpMetricsConfig {
///     endpoint: Some("http://collector:4318".into()),
///     protocol: OtlpProtocol::HttpProtobuf,
///     headers: vec![("x-tenant".into(), "blue".into())],
///     timeout: Duration::from_secs(5),
///     ..OtlpMetricsConfig::default()
/// };
/// assert_eq!(config.url(), "http://collector:4318/v1/metrics");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpMetricsConfig {
    /// Base endpoint, as `OTEL_EXPORTER_OTLP_ENDPOINT`: gRPC uses it as is, HTTP appends
    /// `/v1/metrics`. `None`: the protocol's default on localhost.
    pub endpoint: Option<String>,
    /// Full metrics URL, as `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`: used as is, wins over
    /// `endpoint`.
    pub metrics_endpoint: Option<String>,
    /// Transport protocol.
    pub protocol: OtlpProtocol,
    /// Extra request headers (gRPC metadata), e.g. authentication.
    pub headers: Vec<(String, String)>,
    /// Timeout of one export (connection included).
    pub timeout: Duration,
}

impl Default for OtlpMetricsConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            metrics_endpoint: None,
            protocol: OtlpProtocol::default(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl OtlpMetricsConfig {
    /// Reads the OTLP exporter environment variables (table in the [module docs](self)).
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidEnv`] naming the variable and value for an unknown protocol, an
    /// endpoint that is not an `http(s)` URL, a malformed header list or a timeout that is not
    /// a whole number of milliseconds.
    ///
    /// ```
    /// use otel_core::metrics::otlp::{OtlpMetricsConfig, OtlpMetricsExporter};
    ///
    /// # fn main() -> Result<(), otel_core::metrics::MetricsError> {
    /// let exporter = OtlpMetricsExporter::new(OtlpMetricsConfig::from_env()?)?;
    /// println!("metrics go to {}", exporter.url());
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_env() -> Result<Self, MetricsError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Like [`OtlpMetricsConfig::from_env`], reading variables through `lookup`.
    ///
    /// # Errors
    ///
    /// As [`OtlpMetricsConfig::from_env`].
    ///
    /// ```
    /// use otel_core::metrics::otlp::{OtlpMetricsConfig, OtlpProtocol};
    /// use std::collections::HashMap;
    /// use std::time::Duration;
    ///
    /// let settings = HashMap::from([
    ///     ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ///     ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
    ///     (
    ///         "OTEL_EXPORTER_OTLP_HEADERS",
    ///         "x-tenant=blue,authorization=Bearer%20abc",
    ///     ),
    ///     ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "2500"),
    /// ]);
    /// let config = OtlpMetricsConfig::from_lookup(|var| settings.get(var).map(|v| v.to_string()))
    ///     .expect("valid settings");
    /// assert_eq!(config.protocol, OtlpProtocol::Grpc);
    /// assert_eq!(config.url(), "http://collector:4317");
    /// assert_eq!(
    ///     config.headers[1],
    ///     ("authorization".to_owned(), "Bearer abc".to_owned())
    /// );
    /// assert_eq!(config.timeout, Duration::from_millis(2500));
    ///
    /// // A bad value names its variable.
    /// let err = OtlpMetricsConfig::from_lookup(|var| {
    ///     (var == "OTEL_EXPORTER_OTLP_TIMEOUT").then(|| "soon".to_owned())
    /// })
    /// .expect_err("not milliseconds");
    /// assert!(err.to_string().contains("OTEL_EXPORTER_OTLP_TIMEOUT"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, MetricsError> {
        let get = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let mut config = Self::default();
        let protocol_var = [
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ]
        .into_iter()
        .find_map(|var| get(var).map(|v| (var, v)));
        if let Some((var, value)) = protocol_var {
            config.protocol =
                OtlpProtocol::parse(var, value.trim()).map_err(|e| MetricsError::InvalidEnv {
                    var: static_var(var),
                    value: value.clone(),
                    reason: e.to_string(),
                })?;
        }
        for (var, field) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &mut config.endpoint),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                &mut config.metrics_endpoint,
            ),
        ] {
            if let Some(value) = get(var) {
                let value = value.trim().to_owned();
                validate_url(&value).map_err(|reason| MetricsError::InvalidEnv {
                    var: static_var(var),
                    value: value.clone(),
                    reason,
                })?;
                *field = Some(value);
            }
        }
        for var in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        ] {
            if let Some(value) = get(var) {
                for (k, v) in parse_headers(&value).map_err(|reason| MetricsError::InvalidEnv {
                    var: static_var(var),
                    value: value.clone(),
                    reason,
                })? {
                    config
                        .headers
                        .retain(|(existing, _)| !existing.eq_ignore_ascii_case(&k));
                    config.headers.push((k, v));
                }
            }
        }
        if let Some((var, value)) = [
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ]
        .into_iter()
        .find_map(|var| get(var).map(|v| (var, v)))
        {
            config.timeout = parse_millis(static_var(var), &value)?;
        }
        Ok(config)
    }

    /// The URL requests go to: `metrics_endpoint` as is; else for HTTP `endpoint` (or the
    /// default) with `/v1/metrics` appended, for gRPC `endpoint` (or the default) as is.
    ///
    /// ```
    /// use otel_core::metrics::otlp::{OtlpMetricsConfig, OtlpProtocol};
    ///
    /// let http = OtlpMetricsConfig::default();
    /// assert_eq!(http.url(), "http://localhost:4318/v1/metrics");
    ///
    /// let grpc = OtlpMetricsConfig {
    ///     protocol: OtlpProtocol::Grpc,
    ///     ..OtlpMetricsConfig::default()
    /// };
    /// assert_eq!(grpc.url(), "http://localhost:4317");
    ///
    /// let full = OtlpMetricsConfig {
    ///     endpoint: Some("http://collector:4318".into()),
    ///     metrics_endpoint: Some("http://metrics-gateway/ingest".into()),
    ///     ..OtlpMetricsConfig::default()
    /// };
    /// assert_eq!(full.url(), "http://metrics-gateway/ingest");
    /// ```
    pub fn url(&self) -> String {
        if let Some(url) = &self.metrics_endpoint {
            return url.clone();
        }
        let base = self
            .endpoint
            .as_deref()
            .unwrap_or(self.protocol.default_endpoint());
        match self.protocol {
            OtlpProtocol::Grpc => base.to_owned(),
            OtlpProtocol::HttpProtobuf => format!("{}/v1/metrics", base.trim_end_matches('/')),
        }
    }
}

/// Turns the variable names used above into `&'static str` for the error.
fn static_var(var: &str) -> &'static str {
    const VARS: [&str; 10] = [
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "OTEL_METRIC_EXPORT_INTERVAL",
        "OTEL_METRIC_EXPORT_TIMEOUT",
    ];
    VARS.into_iter().find(|v| *v == var).unwrap_or("OTEL_*")
}

pub(crate) fn parse_millis(var: &'static str, value: &str) -> Result<Duration, MetricsError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| MetricsError::InvalidEnv {
            var,
            value: value.to_owned(),
            reason: "expected a whole number of milliseconds".to_owned(),
        })
}

fn validate_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("the scheme must be http or https".to_owned()),
    }
    if uri.authority().is_none() {
        return Err("the URL has no host".to_owned());
    }
    Ok(())
}

/// Parses `k1=v1,k2=v2` (W3C baggage-like, values percent-decoded).
fn parse_headers(value: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in value.split(',') {
        if item.trim().is_empty() {
            continue;
        }
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("header entry {item:?} has no '='"))?;
        let k = percent_decode(k.trim())?;
        let v = percent_decode(v.trim())?;
        http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("{k:?} is not a valid header name"))?;
        http::HeaderValue::from_str(&v).map_err(|_| format!("invalid value for header {k:?}"))?;
        out.push((k.to_ascii_lowercase(), v));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

/// Builds the OTLP request for a snapshot: one resource, one scope (`otel-core`), one metric
/// per instrument, one data point per series, cumulative temporality.
///
/// ```
/// use opentelemetry::KeyValue;
/// use opentelemetry_proto::tonic::metrics::v1::metric::Data;
/// use otel_core::metrics::Metrics;
/// use otel_core::metrics::otlp::to_otlp_request;
///
/// let metrics = Metrics::default();
/// let duration = metrics
///     .f64_histogram("app.call.duration")
///     .with_unit("s")
///     .build();
/// duration.record(0.25, &[KeyValue::new("call", "a")]);
/// duration.record(0.5, &[KeyValue::new("call", "a")]);
/// metrics.u64_counter("app.unused").build(); // no series: left out
///
/// let request = to_otlp_request(&metrics.snapshot_without_percentiles(), &metrics.resource());
/// let exported = &request.resource_metrics[0].scope_metrics[0].metrics;
/// assert_eq!(exported.len(), 1);
/// assert_eq!(
///     (exported[0].name.as_str(), exported[0].unit.as_str()),
///     ("app.call.duration", "s")
/// );
/// let Some(Data::Histogram(histogram)) = &exported[0].data else {
///     panic!("a histogram")
/// };
/// let point = &histogram.data_points[0];
/// assert_eq!(
///     (point.count, point.sum, point.max),
///     (2, Some(0.75), Some(0.5))
/// );
/// ```
pub fn to_otlp_request(
    snapshot: &[MetricSnapshot],
    resource: &Resource,
) -> ExportMetricsServiceRequest {
    let metrics = snapshot
        .iter()
        .filter(|m| !m.series.is_empty())
        .map(metric_to_proto)
        .collect();
    let resource_attributes = Attributes::from(
        resource
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
    )
    .0;
    ExportMetricsServiceRequest {
        resource_metrics: vec![pb::ResourceMetrics {
            resource: Some(PbResource {
                attributes: resource_attributes,
                ..Default::default()
            }),
            scope_metrics: vec![pb::ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        }],
    }
}

fn metric_to_proto(metric: &MetricSnapshot) -> pb::Metric {
    let cumulative = pb::AggregationTemporality::Cumulative as i32;
    let data = match metric.series.first().map(|s| &s.data) {
        Some(SeriesData::Histogram(_)) => pb::metric::Data::Histogram(pb::Histogram {
            data_points: metric
                .series
                .iter()
                .filter_map(|s| s.histogram().map(|h| histogram_point(s, h)))
                .collect(),
            aggregation_temporality: cumulative,
        }),
        Some(SeriesData::Counter(_)) | Some(SeriesData::UpDownCounter(_)) | None => {
            pb::metric::Data::Sum(pb::Sum {
                data_points: metric.series.iter().filter_map(number_point).collect(),
                aggregation_temporality: cumulative,
                is_monotonic: matches!(
                    metric.series.first().map(|s| &s.data),
                    Some(SeriesData::Counter(_))
                ),
            })
        }
    };
    pb::Metric {
        name: metric.name.clone(),
        description: metric.description.clone(),
        unit: metric.unit.clone(),
        metadata: Vec::new(),
        data: Some(data),
    }
}

fn histogram_point(series: &SeriesSnapshot, h: &HistogramData) -> pb::HistogramDataPoint {
    pb::HistogramDataPoint {
        attributes: attributes_to_proto(&series.attributes),
        start_time_unix_nano: nanos(series.start_time),
        time_unix_nano: nanos(series.time),
        count: h.count,
        sum: Some(h.sum),
        bucket_counts: h.bucket_counts.clone(),
        explicit_bounds: h.boundaries.clone(),
        exemplars: h.exemplars.iter().map(exemplar_to_proto).collect(),
        flags: 0,
        min: h.min,
        max: h.max,
    }
}

fn number_point(series: &SeriesSnapshot) -> Option<pb::NumberDataPoint> {
    let value = match series.data {
        SeriesData::Counter(v) => i64::try_from(v).unwrap_or(i64::MAX),
        SeriesData::UpDownCounter(v) => v,
        _ => return None,
    };
    Some(pb::NumberDataPoint {
        attributes: attributes_to_proto(&series.attributes),
        start_time_unix_nano: nanos(series.start_time),
        time_unix_nano: nanos(series.time),
        exemplars: Vec::new(),
        flags: 0,
        value: Some(pb::number_data_point::Value::AsInt(value)),
    })
}

fn exemplar_to_proto(e: &Exemplar) -> pb::Exemplar {
    let (trace_id, span_id) = if e.has_span() {
        (
            e.trace_id.to_bytes().to_vec(),
            e.span_id.to_bytes().to_vec(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    pb::Exemplar {
        filtered_attributes: attributes_to_proto(&e.filtered_attributes),
        time_unix_nano: nanos(e.time),
        span_id,
        trace_id,
        value: Some(pb::exemplar::Value::AsDouble(e.value)),
    }
}

fn attributes_to_proto(
    attributes: &[KeyValue],
) -> Vec<opentelemetry_proto::tonic::common::v1::KeyValue> {
    Attributes::from(attributes.iter().cloned()).0
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A blocking OTLP metrics exporter (gRPC or HTTP/protobuf).
///
/// The transport is created on first use, on the calling thread: for gRPC a small
/// current-thread tokio runtime owned by the exporter, for HTTP a blocking `reqwest` client.
/// Call it from a plain thread (the [`PeriodicMetricsExporter`] does); called on a thread that
/// drives an async runtime it returns [`MetricsError::InsideAsyncRuntime`] instead of blocking
/// the runtime.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::Metrics;
/// use otel_core::metrics::otlp::{OtlpMetricsConfig, OtlpMetricsExporter};
/// use otel_core::testing::OtlpHttpReceiver;
///
/// let collector = OtlpHttpReceiver::start().expect("loopback listener");
/// let config = OtlpMetricsConfig {
///     endpoint: Some(collector.endpoint()),
///     ..OtlpMetricsConfig::default()
/// };
/// let mut exporter = OtlpMetricsExporter::new(config).expect("valid configuration");
///
/// let metrics = Metrics::default();
/// metrics
///     .u64_counter("app.calls")
///     .build()
///     .add(1, &[KeyValue::new("route", "/")]);
/// exporter.export_metrics(&metrics).expect("exported");
///
/// let received = collector.metric_requests();
/// assert_eq!(
///     received[0].resource_metrics[0].scope_metrics[0].metrics[0].name,
///     "app.calls"
/// );
/// # }
/// ```
#[derive(Debug)]
pub struct OtlpMetricsExporter {
    config: OtlpMetricsConfig,
    url: String,
    transport: Option<Transport>,
}

#[expect(
    clippy::large_enum_variant,
    reason = "one value per exporter, never moved"
)]
enum Transport {
    Http(reqwest::blocking::Client),
    Grpc {
        runtime: Option<tokio::runtime::Runtime>,
        client: MetricsServiceClient<tonic::transport::Channel>,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Http(_) => "Transport::Http",
            Self::Grpc { .. } => "Transport::Grpc",
        })
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // Dropping a runtime where blocking is not allowed would panic; this never blocks.
        if let Self::Grpc { runtime, .. } = self
            && let Some(runtime) = runtime.take()
        {
            runtime.shutdown_background();
        }
    }
}

impl OtlpMetricsExporter {
    /// An exporter for `config` (nothing is connected yet).
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidConfig`] if the URL is not an `http(s)` URL or a header name or
    /// value is invalid.
    ///
    /// ```
    /// use otel_core::metrics::MetricsError;
    /// use otel_core::metrics::otlp::{OtlpMetricsConfig, OtlpMetricsExporter};
    ///
    /// let ok = OtlpMetricsExporter::new(OtlpMetricsConfig::default());
    /// assert!(ok.is_ok());
    ///
    /// let bad = OtlpMetricsConfig {
    ///     endpoint: Some("ftp://collector".into()),
    ///     ..OtlpMetricsConfig::default()
    /// };
    /// assert!(matches!(
    ///     OtlpMetricsExporter::new(bad),
    ///     Err(MetricsError::InvalidConfig(_))
    /// ));
    /// ```
    pub fn new(config: OtlpMetricsConfig) -> Result<Self, MetricsError> {
        let url = config.url();
        validate_url(&url)
            .map_err(|reason| MetricsError::InvalidConfig(format!("{url}: {reason}")))?;
        for (k, v) in &config.headers {
            http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| MetricsError::InvalidConfig(format!("invalid header name {k:?}")))?;
            http::HeaderValue::from_str(v).map_err(|_| {
                MetricsError::InvalidConfig(format!("invalid value for header {k:?}"))
            })?;
        }
        Ok(Self {
            config,
            url,
            transport: None,
        })
    }

    /// The URL requests go to.
    ///
    /// ```
    /// use otel_core::metrics::otlp::{OtlpMetricsConfig, OtlpMetricsExporter};
    ///
    /// let config = OtlpMetricsConfig {
    ///     endpoint: Some("http://collector:4318/".into()),
    ///     ..OtlpMetricsConfig::default()
    /// };
    /// let exporter = OtlpMetricsExporter::new(config).expect("valid configuration");
    /// assert_eq!(exporter.url(), "http://collector:4318/v1/metrics");
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The configuration.
    ///
    /// ```
    /// use otel_core::metrics::otlp::{OtlpMetricsConfig, OtlpMetricsExporter};
    /// use std::time::Duration;
    ///
    /// let config = OtlpMetricsConfig {
    ///     timeout: Duration::from_secs(2),
    ///     ..OtlpMetricsConfig::default()
    /// };
    /// let exporter = OtlpMetricsExporter::new(config.clone()).expect("valid configuration");
    /// assert_eq!(exporter.config(), &config);
    /// ```
    pub fn config(&self) -> &OtlpMetricsConfig {
        &self.config
    }

    /// Exports a snapshot of `metrics` (without percentiles) with its resource.
    ///
    /// # Errors
    ///
    /// As [`OtlpMetricsExporter::export`].
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use otel_core::metrics::Metrics;
    /// use otel_core::metrics::otlp::{OtlpMetricsConfig, OtlpMetricsExporter};
    /// use otel_core::testing::OtlpHttpReceiver;
    ///
    /// let collector = OtlpHttpReceiver::start().expect("loopback listener");
    /// let config = OtlpMetricsConfig {
    ///     endpoint: Some(collector.endpoint()),
    ///     ..OtlpMetricsConfig::default()
    /// };
    /// let mut exporter = OtlpMetricsExporter::new(config).expect("valid configuration");
    ///
    /// let metrics = Metrics::default();
    /// let calls = metrics.u64_counter("app.calls").build();
    /// calls.add(1, &[]);
    /// exporter.export_metrics(&metrics).expect("exported");
    /// calls.add(1, &[]);
    /// exporter.export_metrics(&metrics).expect("exported");
    /// // Two requests, each with the cumulative state at its time.
    /// assert_eq!(collector.metric_requests().len(), 2);
    /// # }
    /// ```
    pub fn export_metrics(&mut self, metrics: &Metrics) -> Result<(), MetricsError> {
        let request = to_otlp_request(&metrics.snapshot_without_percentiles(), &metrics.resource());
        self.export(&request)
    }

    /// Sends `request`, waiting at most the configured timeout.
    ///
    /// # Errors
    ///
    /// [`MetricsError::Export`] for a transport failure, timeout or non-success status;
    /// [`MetricsError::InsideAsyncRuntime`] when called on an async runtime thread.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use otel_core::metrics::Metrics;
    /// use otel_core::metrics::otlp::{OtlpMetricsConfig, OtlpMetricsExporter, to_otlp_request};
    /// use otel_core::testing::OtlpHttpReceiver;
    ///
    /// let collector = OtlpHttpReceiver::start().expect("loopback listener");
    /// let config = OtlpMetricsConfig {
    ///     endpoint: Some(collector.endpoint()),
    ///     ..OtlpMetricsConfig::default()
    /// };
    /// let mut exporter = OtlpMetricsExporter::new(config).expect("valid configuration");
    ///
    /// let metrics = Metrics::default();
    /// metrics.u64_counter("app.calls").build().add(1, &[]);
    /// let request = to_otlp_request(&metrics.snapshot_without_percentiles(), &metrics.resource());
    /// exporter.export(&request).expect("exported");
    /// assert_eq!(collector.metric_requests(), [request]);
    /// # }
    /// ```
    pub fn export(&mut self, request: &ExportMetricsServiceRequest) -> Result<(), MetricsError> {
        self.export_with_timeout(request, self.config.timeout)
    }

    /// Sends `request`, waiting at most `timeout` or the configured timeout, whichever is
    /// smaller (connection included).
    ///
    /// # Errors
    ///
    /// As [`OtlpMetricsExporter::export`].
    ///
    /// ```
    /// use otel_core::metrics::otlp::{OtlpMetricsConfig, OtlpMetricsExporter, to_otlp_request};
    /// use otel_core::metrics::{Metrics, MetricsError};
    /// use std::time::Duration;
    ///
    /// // A port nobody listens on: the export fails fast and says where it went.
    /// let port = std::net::TcpListener::bind("127.0.0.1:0")
    ///     .and_then(|l| l.local_addr())
    ///     .expect("free port")
    ///     .port();
    /// let endpoint = format!("http://127.0.0.1:{port}");
    /// let config = OtlpMetricsConfig {
    ///     endpoint: Some(endpoint),
    ///     ..OtlpMetricsConfig::default()
    /// };
    /// let mut exporter = OtlpMetricsExporter::new(config).expect("valid configuration");
    ///
    /// let metrics = Metrics::default();
    /// let request = to_otlp_request(&metrics.snapshot_without_percentiles(), &metrics.resource());
    /// match exporter.export_with_timeout(&request, Duration::from_secs(1)) {
    ///     Err(MetricsError::Export { endpoint, .. }) => assert!(endpoint.ends_with("/v1/metrics")),
    ///     other => panic!("unexpected {other:?}"),
    /// }
    /// ```
    pub fn export_with_timeout(
        &mut self,
        request: &ExportMetricsServiceRequest,
        timeout: Duration,
    ) -> Result<(), MetricsError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(MetricsError::InsideAsyncRuntime);
        }
        // The configured (OTLP) timeout caps every request, as the periodic reader's docs say.
        let timeout = timeout
            .min(self.config.timeout)
            .max(Duration::from_millis(1));
        let url = self.url.clone();
        let err = |reason: String| MetricsError::Export {
            endpoint: url.clone(),
            reason,
        };
        if self.transport.is_none() {
            self.transport = Some(self.connect().map_err(err)?);
        }
        let headers = self.config.headers.clone();
        match self.transport.as_mut() {
            Some(Transport::Http(client)) => {
                let mut builder = client
                    .post(&url)
                    .timeout(timeout)
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                    .body(request.encode_to_vec());
                for (k, v) in &headers {
                    builder = builder.header(k.as_str(), v.as_str());
                }
                let response = builder.send().map_err(|e| err(e.to_string()))?;
                let status = response.status();
                let body = response.bytes().unwrap_or_default();
                if !status.is_success() {
                    return Err(err(format!("HTTP status {status}")));
                }
                if let Ok(decoded) = ExportMetricsServiceResponse::decode(body.as_ref()) {
                    warn_partial(&decoded, &url);
                }
                Ok(())
            }
            Some(Transport::Grpc { runtime, client }) => {
                let Some(runtime) = runtime.as_ref() else {
                    return Err(err("runtime already shut down".to_owned()));
                };
                let mut grpc_request = tonic::Request::new(request.clone());
                for (k, v) in &headers {
                    let key = tonic::metadata::MetadataKey::from_bytes(k.as_bytes())
                        .map_err(|_| err(format!("invalid metadata key {k:?}")))?;
                    let value = tonic::metadata::MetadataValue::try_from(v.as_str())
                        .map_err(|_| err(format!("invalid metadata value for {k:?}")))?;
                    grpc_request.metadata_mut().insert(key, value);
                }
                grpc_request.set_timeout(timeout);
                let mut client = client.clone();
                let result = runtime.block_on(async move {
                    tokio::time::timeout(timeout, client.export(grpc_request)).await
                });
                match result {
                    Err(_) => Err(err(format!("timed out after {timeout:?}"))),
                    Ok(Err(status)) => Err(err(format!(
                        "gRPC status {:?}: {}",
                        status.code(),
                        status.message()
                    ))),
                    Ok(Ok(response)) => {
                        warn_partial(response.get_ref(), &url);
                        Ok(())
                    }
                }
            }
            None => Err(err("no transport".to_owned())),
        }
    }

    fn connect(&self) -> Result<Transport, String> {
        match self.config.protocol {
            OtlpProtocol::HttpProtobuf => reqwest::blocking::Client::builder()
                .timeout(self.config.timeout)
                .build()
                .map(Transport::Http)
                .map_err(|e| format!("cannot build HTTP client: {e}")),
            OtlpProtocol::Grpc => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start gRPC runtime: {e}"))?;
                let endpoint = tonic::transport::Endpoint::from_shared(self.url.clone())
                    .map_err(|e| format!("invalid gRPC endpoint: {e}"))?
                    .connect_timeout(self.config.timeout)
                    .timeout(self.config.timeout);
                // `connect_lazy` spawns the channel's worker: it needs the runtime entered.
                let channel = {
                    let _entered = runtime.enter();
                    endpoint.connect_lazy()
                };
                Ok(Transport::Grpc {
                    runtime: Some(runtime),
                    client: MetricsServiceClient::new(channel),
                })
            }
        }
    }
}

fn warn_partial(response: &ExportMetricsServiceResponse, url: &str) {
    if let Some(partial) = &response.partial_success
        && (partial.rejected_data_points > 0 || !partial.error_message.is_empty())
    {
        tracing::warn!(
                endpoint = url,
                rejected_data_points = partial.rejected_data_points,
                message = %partial.error_message,
            "OTLP collector rejected part of a metrics export"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn env_defaults() {
        let config = OtlpMetricsConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(config, OtlpMetricsConfig::default());
        assert_eq!(config.url(), "http://localhost:4318/v1/metrics");
        let grpc = OtlpMetricsConfig {
            protocol: OtlpProtocol::Grpc,
            ..OtlpMetricsConfig::default()
        };
        assert_eq!(grpc.url(), "http://localhost:4317");
    }

    #[test]
    fn env_values() {
        let config = OtlpMetricsConfig::from_lookup(lookup(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "a=1,Authorization=Basic%20eA%3D%3D",
            ),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "a=2"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ]))
        .unwrap();
        assert_eq!(config.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(config.url(), "http://collector:4318/v1/metrics");
        assert_eq!(
            config.headers,
            vec![
                ("authorization".to_owned(), "Basic eA==".to_owned()),
                ("a".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(config.timeout, Duration::from_millis(2500));

        let config = OtlpMetricsConfig::from_lookup(lookup(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://other:9000/custom/path",
            ),
        ]))
        .unwrap();
        assert_eq!(config.url(), "http://other:9000/custom/path");
    }

    #[test]
    fn env_errors_name_the_variable() {
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://x"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=%zz"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        ] {
            let err = OtlpMetricsConfig::from_lookup(lookup(&[(var, value)]))
                .err()
                .unwrap_or_else(|| panic!("{var}={value} accepted"))
                .to_string();
            assert!(err.contains(var), "{err}");
            assert!(err.contains(value), "{err}");
        }
    }

    #[test]
    fn exporter_inside_runtime_refuses() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut exporter = OtlpMetricsExporter::new(OtlpMetricsConfig::default()).unwrap();
        let request = to_otlp_request(&[], &Resource::builder_empty().build());
        let result = runtime.block_on(async { exporter.export(&request) });
        assert!(matches!(result, Err(MetricsError::InsideAsyncRuntime)));
    }
}
