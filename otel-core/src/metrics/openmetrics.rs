//! OpenMetrics (and classic Prometheus) text exposition with exemplars, and a tower service
//! that serves it.
//!
//! ```
//! use opentelemetry::KeyValue;
//! use otel_core::metrics::Metrics;
//! use otel_core::metrics::openmetrics::{Format, render};
//!
//! let metrics = Metrics::default();
//! metrics
//!     .f64_histogram("http.server.request.duration")
//!     .with_unit("s")
//!     .build()
//!     .record(0.2, &[KeyValue::new("http.request.method", "GET")]);
//! let text = render(&metrics, Format::OpenMetrics);
//! assert!(text.contains(
//!     "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"0.25\"} 1"
//! ));
//! assert!(text.ends_with("# EOF\n"));
//! ```
//!
//! Mount [`MetricsService`] on any tower stack, e.g. with axum
//! `Router::new().route_service("/metrics", MetricsService::new(metrics))`; it answers `GET`
//! and `HEAD`, choosing the format from the `Accept` header ([`Format::from_accept`]).
//!
//! # Why the encoder is written here
//!
//! `prometheus-client` (0.25) was the candidate. It cannot encode this data: its
//! [`Exemplar`](https://docs.rs/prometheus-client/0.25/prometheus_client/metrics/exemplar/struct.Exemplar.html)
//! type has no public constructor, so a custom `Collector` cannot hand the exemplars we
//! already recorded to `MetricEncoder::encode_histogram` (only its own
//! `HistogramWithExemplars`, which would have to re-observe every value, can); it writes
//! `# HELP` text unescaped; and it has no classic Prometheus text format, which Prometheus
//! asks for via `Accept` and which would need a second encoder anyway. The text formats are
//! small and fully specified, so one encoder for both lives here, with the escaping and name
//! translation tested (including property tests) in this crate.

use std::collections::HashSet;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::Resource;

use super::Metrics;
use super::snapshot::{Exemplar, HistogramData, InstrumentKind, MetricSnapshot, SeriesData};

/// Content type of the OpenMetrics 1.0 text format.
///
/// ```
/// use otel_core::metrics::openmetrics::{Format, OPENMETRICS_CONTENT_TYPE};
///
/// assert_eq!(Format::OpenMetrics.content_type(), OPENMETRICS_CONTENT_TYPE);
/// assert!(OPENMETRICS_CONTENT_TYPE.starts_with("application/openmetrics-text"));
/// ```
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the classic Prometheus text format 0.0.4.
///
/// ```
/// use otel_core::metrics::openmetrics::{Format, PROMETHEUS_CONTENT_TYPE};
///
/// assert_eq!(Format::Prometheus.content_type(), PROMETHEUS_CONTENT_TYPE);
/// assert_eq!(
///     Format::from_accept(Some("text/plain; version=0.0.4")).content_type(),
///     PROMETHEUS_CONTENT_TYPE
/// );
/// ```
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Most characters of an exemplar's label names and values together (OpenMetrics 1.0).
const EXEMPLAR_LABELS_MAX_CHARS: usize = 128;

/// An exposition format.
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_core::metrics::Metrics;
/// use otel_core::metrics::openmetrics::{Format, render};
///
/// let metrics = Metrics::default();
/// metrics
///     .u64_counter("app.calls")
///     .build()
///     .add(3, &[KeyValue::new("route", "/")]);
///
/// let openmetrics = render(&metrics, Format::OpenMetrics);
/// assert!(openmetrics.contains("# TYPE app_calls counter\n"));
/// assert!(openmetrics.ends_with("# EOF\n"));
///
/// let prometheus = render(&metrics, Format::Prometheus);
/// assert!(prometheus.contains("# TYPE app_calls_total counter\n"));
/// assert!(prometheus.contains("app_calls_total{route=\"/\"} 3\n"));
/// assert!(!prometheus.contains("# EOF"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Format {
    /// OpenMetrics 1.0 text: exemplars on histogram buckets, `# UNIT`, `# EOF`.
    #[default]
    OpenMetrics,
    /// Classic Prometheus text format 0.0.4 (no exemplars, no `# EOF`).
    Prometheus,
}

impl Format {
    /// The `Content-Type` of this format.
    ///
    /// ```
    /// use otel_core::metrics::openmetrics::Format;
    ///
    /// let format = Format::from_accept(Some("text/plain"));
    /// assert_eq!(
    ///     format.content_type(),
    ///     "text/plain; version=0.0.4; charset=utf-8"
    /// );
    /// assert_eq!(
    ///     Format::OpenMetrics.content_type(),
    ///     "application/openmetrics-text; version=1.0.0; charset=utf-8"
    /// );
    /// ```
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Self::Prometheus => PROMETHEUS_CONTENT_TYPE,
        }
    }

    /// Picks the format for an `Accept` header value: the acceptable media range with the
    /// highest `q` among `application/openmetrics-text` and `text/plain` (OpenMetrics wins a
    /// tie; wildcards and a missing or unusable header give OpenMetrics).
    ///
    /// ```
    /// use otel_core::metrics::openmetrics::Format;
    ///
    /// // What Prometheus sends:
    /// let prometheus =
    ///     "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
    /// assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
    /// assert_eq!(Format::from_accept(None), Format::OpenMetrics);
    /// ```
    pub fn from_accept(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Self::OpenMetrics;
        };
        let mut best: Option<(f32, Self)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0_f32;
            for param in parts {
                if let Some((name, value)) = param.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    q = value.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0);
                }
            }
            let format = match media.as_str() {
                "application/openmetrics-text" | "application/*" | "*/*" => Self::OpenMetrics,
                "text/plain" | "text/*" => Self::Prometheus,
                _ => continue,
            };
            if q <= 0.0 {
                continue;
            }
            let better = match best {
                None => true,
                Some((best_q, best_format)) => {
                    q > best_q
                        || (q == best_q && best_format != format && format == Self::OpenMetrics)
                }
            };
            if better {
                best = Some((q, format));
            }
        }
        best.map_or(Self::OpenMetrics, |(_, format)| format)
    }
}

/// Renders every instrument of `metrics` (and `target_info` from its resource) in `format`.
///
/// ```
/// use opentelemetry::KeyValue;
/// use opentelemetry_sdk::Resource;
/// use otel_core::metrics::openmetrics::{Format, render};
/// use otel_core::metrics::{Metrics, MetricsConfig};
///
/// let resource = Resource::builder_empty()
///     .with_service_name("checkout")
///     .build();
/// let metrics = Metrics::new(MetricsConfig::default().with_resource(resource));
/// metrics
///     .i64_up_down_counter("http.server.active_requests")
///     .with_unit("{request}")
///     .build()
///     .add(2, &[KeyValue::new("http.request.method", "GET")]);
///
/// let text = render(&metrics, Format::OpenMetrics);
/// assert!(text.contains("target_info{service_name=\"checkout\"} 1\n"));
/// assert!(text.contains("# TYPE http_server_active_requests gauge\n"));
/// assert!(text.contains("http_server_active_requests{http_request_method=\"GET\"} 2\n"));
/// ```
pub fn render(metrics: &Metrics, format: Format) -> String {
    render_snapshot(
        &metrics.snapshot_without_percentiles(),
        &metrics.resource(),
        format,
    )
}

/// Renders a snapshot and a resource in `format`.
///
/// Names follow the OpenTelemetry-to-Prometheus translation ([`family_name`], [`label_name`]);
/// an instrument whose translated name was already rendered (e.g. `a.b` after `a_b`) is left
/// out, since a family may appear only once.
///
/// ```
/// use opentelemetry_sdk::Resource;
/// use otel_core::metrics::Metrics;
/// use otel_core::metrics::openmetrics::{Format, render_snapshot};
///
/// let metrics = Metrics::default();
/// metrics.u64_counter("app.calls").build().add(1, &[]);
/// metrics.u64_counter("app.errors").build().add(1, &[]);
///
/// // Render only some instruments, without `target_info`.
/// let mut snapshot = metrics.snapshot_without_percentiles();
/// snapshot.retain(|m| m.name == "app.errors");
/// let text = render_snapshot(
///     &snapshot,
///     &Resource::builder_empty().build(),
///     Format::OpenMetrics,
/// );
/// assert_eq!(
///     text,
///     "# TYPE app_errors counter\napp_errors_total 1\n# EOF\n"
/// );
/// ```
pub fn render_snapshot(snapshot: &[MetricSnapshot], resource: &Resource, format: Format) -> String {
    let mut out = String::with_capacity(1024);
    let mut families: HashSet<String> = HashSet::new();
    families.insert("target".to_owned());
    families.insert("target_info".to_owned());
    write_target_info(&mut out, resource, format);
    for metric in snapshot {
        let family = family_name(&metric.name, &metric.unit, metric.kind);
        let sample_name = match metric.kind {
            InstrumentKind::Counter => format!("{family}_total"),
            _ => family.clone(),
        };
        if families.contains(&family) || families.contains(&sample_name) {
            continue;
        }
        families.insert(family.clone());
        families.insert(sample_name.clone());
        write_metadata(&mut out, metric, &family, &sample_name, format);
        for series in &metric.series {
            let labels = labels_of(&series.attributes);
            match &series.data {
                SeriesData::Histogram(h) => write_histogram(&mut out, &family, &labels, h, format),
                SeriesData::Counter(v) => {
                    write_sample(&mut out, &sample_name, "", &labels, None);
                    let _ = write!(out, " {v}");
                    out.push('\n');
                }
                SeriesData::UpDownCounter(v) => {
                    write_sample(&mut out, &sample_name, "", &labels, None);
                    let _ = write!(out, " {v}");
                    out.push('\n');
                }
            }
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn write_target_info(out: &mut String, resource: &Resource, format: Format) {
    if resource.is_empty() {
        return;
    }
    let attributes: Vec<KeyValue> = resource
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    let labels = labels_of(&attributes);
    match format {
        Format::OpenMetrics => {
            out.push_str("# TYPE target info\n# HELP target Target metadata\n");
        }
        Format::Prometheus => {
            out.push_str("# HELP target_info Target metadata\n# TYPE target_info gauge\n");
        }
    }
    write_sample(out, "target_info", "", &labels, None);
    out.push_str(" 1\n");
}

fn write_metadata(
    out: &mut String,
    metric: &MetricSnapshot,
    family: &str,
    sample_name: &str,
    format: Format,
) {
    let kind = match metric.kind {
        InstrumentKind::Histogram => "histogram",
        InstrumentKind::Counter => "counter",
        InstrumentKind::UpDownCounter => "gauge",
    };
    match format {
        Format::OpenMetrics => {
            let _ = writeln!(out, "# TYPE {family} {kind}");
            let unit = unit_suffix(&metric.unit, metric.kind);
            if !unit.is_empty() && family.ends_with(&format!("_{unit}")) {
                let _ = writeln!(out, "# UNIT {family} {unit}");
            }
            if !metric.description.is_empty() {
                let _ = write!(out, "# HELP {family} ");
                escape_into(out, &metric.description, true);
                out.push('\n');
            }
        }
        Format::Prometheus => {
            if !metric.description.is_empty() {
                let _ = write!(out, "# HELP {sample_name} ");
                escape_into(out, &metric.description, false);
                out.push('\n');
            }
            let _ = writeln!(out, "# TYPE {sample_name} {kind}");
        }
    }
}

fn write_histogram(
    out: &mut String,
    family: &str,
    labels: &[(String, String)],
    h: &HistogramData,
    format: Format,
) {
    let mut cumulative = 0u64;
    for (i, count) in h.bucket_counts.iter().enumerate() {
        cumulative += count;
        let le = h
            .boundaries
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), |b| format_float(*b));
        write_sample(out, family, "_bucket", labels, Some(&le));
        let _ = write!(out, " {cumulative}");
        if format == Format::OpenMetrics
            && let Some(exemplar) = h.exemplar(i)
        {
            write_exemplar(out, exemplar);
        }
        out.push('\n');
    }
    write_sample(out, family, "_count", labels, None);
    let _ = writeln!(out, " {}", h.count);
    // OpenMetrics: a histogram with negative bucket bounds has no `_sum` (the classic
    // Prometheus format has no such rule).
    if format != Format::OpenMetrics || !h.boundaries.iter().any(|b| *b < 0.0) {
        write_sample(out, family, "_sum", labels, None);
        let _ = writeln!(out, " {}", format_float(h.sum));
    }
}

/// Writes `name{suffix}{labels[,le="…"]}` (no value).
fn write_sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(String, String)],
    le: Option<&str>,
) {
    out.push_str(name);
    out.push_str(suffix);
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (name, value) in labels {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value_into(out, value);
        out.push('"');
    }
    if let Some(le) = le {
        if !first {
            out.push(',');
        }
        out.push_str("le=\"");
        out.push_str(le);
        out.push('"');
    }
    out.push('}');
}

/// ` # {trace_id="…",span_id="…"[,filtered…]} value timestamp`
fn write_exemplar(out: &mut String, exemplar: &Exemplar) {
    out.push_str(" # {");
    let mut used = 0;
    let mut first = true;
    let mut push = |out: &mut String, name: &str, value: &str| {
        let cost = name.chars().count() + value.chars().count();
        if used + cost > EXEMPLAR_LABELS_MAX_CHARS {
            return;
        }
        used += cost;
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value_into(out, value);
        out.push('"');
    };
    if exemplar.has_span() {
        push(out, "trace_id", &exemplar.trace_id.to_string());
        push(out, "span_id", &exemplar.span_id.to_string());
    }
    for (name, value) in labels_of(&exemplar.filtered_attributes) {
        push(out, &name, &value);
    }
    out.push_str("} ");
    out.push_str(&format_float(exemplar.value));
    out.push(' ');
    out.push_str(&format_timestamp(exemplar.time));
}

/// Sanitised, sorted label pairs of an attribute set; attributes whose names collide after
/// sanitising are merged, values joined with `;` in key order (as the OpenTelemetry
/// Prometheus exporters do).
fn labels_of(attributes: &[KeyValue]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, &str, String)> = attributes
        .iter()
        .map(|kv| {
            (
                label_name(kv.key.as_str()),
                kv.key.as_str(),
                value_text(&kv.value),
            )
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (name, _, value) in pairs {
        match out.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push(';');
                joined.push_str(&value);
            }
            _ => out.push((name, value)),
        }
    }
    out
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.as_str().to_owned(),
        other => other.to_string(),
    }
}

/// Escapes a label value: `\` → `\\`, `"` → `\"`, newline → `\n` (both formats).
fn escape_label_value_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes `# HELP` text: `\` and newline in both formats, `"` too in OpenMetrics.
fn escape_into(out: &mut String, text: &str, quote: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Escapes a label value as both text formats require (`\\`, `\"`, `\n`).
///
/// ```
/// use otel_core::metrics::openmetrics::escape_label_value;
///
/// assert_eq!(escape_label_value("plain"), "plain");
/// assert_eq!(escape_label_value("say \"hi\"\n"), "say \\\"hi\\\"\\n");
/// assert_eq!(escape_label_value(r"C:\tmp"), r"C:\\tmp");
/// ```
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    escape_label_value_into(&mut out, value);
    out
}

/// A float as the text formats expect: `+Inf`, `-Inf`, `NaN`, integers with `.0`, otherwise
/// the shortest representation that parses back to the same value (exponent form for very
/// large or small magnitudes).
///
/// ```
/// use otel_core::metrics::openmetrics::format_float;
///
/// assert_eq!(format_float(f64::INFINITY), "+Inf");
/// assert_eq!(format_float(1.0), "1.0");
/// assert_eq!(format_float(0.25), "0.25");
/// assert_eq!(format_float(1e20), "1e20");
/// assert_eq!(format_float(f64::NAN), "NaN");
/// ```
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if v == 0.0 {
        "0.0".to_owned()
    } else if v.abs() >= 1e15 || v.abs() < 1e-4 {
        format!("{v:e}")
    } else if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// Seconds since the Unix epoch with millisecond precision (`1700000000.123`).
fn format_timestamp(time: SystemTime) -> String {
    let d = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// The Prometheus metric family name of an OpenTelemetry instrument: the name with every run
/// of characters outside `[A-Za-z0-9:]` turned into one `_`, the unit appended as a word
/// (`s` → `_seconds`, `By` → `_bytes`, `{request}` dropped; see the table in the
/// [module docs](super#names-and-units)) unless the name already ends with it, and for a
/// counter a trailing `_total` removed (the samples get `_total` back).
///
/// ```
/// use otel_core::metrics::InstrumentKind;
/// use otel_core::metrics::openmetrics::family_name;
///
/// assert_eq!(
///     family_name(
///         "http.server.request.duration",
///         "s",
///         InstrumentKind::Histogram
///     ),
///     "http_server_request_duration_seconds"
/// );
/// assert_eq!(
///     family_name(
///         "db.client.connection.count",
///         "{connection}",
///         InstrumentKind::UpDownCounter
///     ),
///     "db_client_connection_count"
/// );
/// assert_eq!(
///     family_name("app.sent", "By", InstrumentKind::Counter),
///     "app_sent_bytes"
/// );
/// ```
pub fn family_name(name: &str, unit: &str, kind: InstrumentKind) -> String {
    let mut words: Vec<&str> = name
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|w| !w.is_empty())
        .collect();
    if kind == InstrumentKind::Counter && words.last() == Some(&"total") {
        words.pop();
    }
    let mut family = words.join("_");
    let suffix = unit_suffix(unit, kind);
    if !(suffix.is_empty() || family == suffix || family.ends_with(&format!("_{suffix}"))) {
        if !family.is_empty() {
            family.push('_');
        }
        family.push_str(&suffix);
    }
    if family.is_empty() {
        family.push('_');
    }
    if family.starts_with(|c: char| c.is_ascii_digit()) {
        family.insert(0, '_');
    }
    family
}

/// The unit word a Prometheus name carries for a UCUM unit (empty for none).
fn unit_suffix(unit: &str, kind: InstrumentKind) -> String {
    let unit = strip_annotations(unit);
    let unit = unit.trim();
    if unit.is_empty() {
        return String::new();
    }
    if unit == "1" {
        return if kind == InstrumentKind::UpDownCounter {
            "ratio".to_owned()
        } else {
            String::new()
        };
    }
    let (main, per) = match unit.split_once('/') {
        Some((main, per)) => (main.trim(), Some(per.trim())),
        None => (unit, None),
    };
    let mut words = match main {
        "" => String::new(),
        m => main_unit_word(m).map_or_else(|| sanitize_unit(m), str::to_owned),
    };
    if let Some(per) = per.filter(|p| !p.is_empty()) {
        let per_word = per_unit_word(per).map_or_else(|| sanitize_unit(per), str::to_owned);
        if !per_word.is_empty() {
            if words.is_empty() {
                words = format!("per_{per_word}");
            } else {
                words = format!("{words}_per_{per_word}");
            }
        }
    }
    words
}

/// Removes `{…}` annotations (`{request}`, `By{packet}` → `By`).
fn strip_annotations(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    let mut depth = 0usize;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn sanitize_unit(unit: &str) -> String {
    unit.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

fn main_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tebibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// The Prometheus label name of an attribute key: characters outside `[A-Za-z0-9_]` become
/// `_`; a leading digit gets the prefix `key_`, a leading `_` the prefix `key`.
///
/// ```
/// use otel_core::metrics::openmetrics::label_name;
///
/// assert_eq!(label_name("http.request.method"), "http_request_method");
/// assert_eq!(label_name("1st"), "key_1st");
/// assert_eq!(label_name("_private"), "key_private");
/// ```
pub fn label_name(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        return "key_".to_owned();
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "key_");
    } else if name.starts_with('_') {
        name.insert_str(0, "key");
    }
    name
}

/// A tower service answering a scrape: `GET`/`HEAD` get the exposition of its [`Metrics`] in
/// the format the `Accept` header asks for ([`Format::from_accept`]); other methods get
/// `405 Method Not Allowed`.
///
/// The response body is a `String`, which implements `http_body::Body<Data = Bytes>`, so the
/// service mounts directly in axum (`route_service`) or hyper.
///
/// ```
/// use otel_core::metrics::Metrics;
/// use otel_core::metrics::openmetrics::MetricsService;
/// use tower_service::Service;
///
/// let mut service = MetricsService::new(Metrics::default());
/// let request = http::Request::get("/metrics")
///     .header("accept", "text/plain")
///     .body(())
///     .expect("valid request");
/// let response = futures_util::FutureExt::now_or_never(service.call(request))
///     .expect("ready")
///     .expect("infallible");
/// assert_eq!(
///     response.headers()["content-type"],
///     "text/plain; version=0.0.4; charset=utf-8"
/// );
/// ```
#[derive(Clone, Debug)]
pub struct MetricsService {
    metrics: Metrics,
}

impl MetricsService {
    /// A service exposing `metrics`.
    ///
    /// ```
    /// use otel_core::metrics::Metrics;
    /// use otel_core::metrics::openmetrics::MetricsService;
    ///
    /// let metrics = Metrics::default();
    /// let service = MetricsService::new(metrics.clone());
    /// // Instruments created later are served too: the service reads the registry per scrape.
    /// metrics.u64_counter("app.calls").build().add(1, &[]);
    /// let response = service.respond(&http::Request::get("/metrics").body(()).expect("request"));
    /// assert!(response.body().contains("app_calls_total 1"));
    /// ```
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }

    /// The response for `request` (what [`Service::call`](tower_service::Service::call)
    /// resolves to).
    ///
    /// ```
    /// use otel_core::metrics::Metrics;
    /// use otel_core::metrics::openmetrics::MetricsService;
    ///
    /// let service = MetricsService::new(Metrics::default());
    /// let get = http::Request::get("/metrics").body(()).expect("request");
    /// let response = service.respond(&get);
    /// assert_eq!(response.status(), http::StatusCode::OK);
    /// assert!(response.body().ends_with("# EOF\n"));
    ///
    /// let post = http::Request::post("/metrics").body(()).expect("request");
    /// let response = service.respond(&post);
    /// assert_eq!(response.status(), http::StatusCode::METHOD_NOT_ALLOWED);
    /// assert_eq!(response.headers()["allow"], "GET, HEAD");
    /// ```
    pub fn respond<B>(&self, request: &http::Request<B>) -> http::Response<String> {
        let method = request.method();
        if method != Method::GET && method != Method::HEAD {
            let mut response = http::Response::new(String::new());
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let accept = request
            .headers()
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let format = Format::from_accept((!accept.is_empty()).then_some(accept.as_str()));
        let body = if method == Method::HEAD {
            String::new()
        } else {
            render(&self.metrics, format)
        };
        let mut response = http::Response::new(body);
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        response
    }
}

impl From<Metrics> for MetricsService {
    fn from(metrics: Metrics) -> Self {
        Self::new(metrics)
    }
}

impl<B> tower_service::Service<http::Request<B>> for MetricsService {
    type Response = http::Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        std::future::ready(Ok(self.respond(&request)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_and_units() {
        use InstrumentKind::*;
        let cases = [
            (
                "http.server.request.duration",
                "s",
                Histogram,
                "http_server_request_duration_seconds",
            ),
            (
                "http.server.active_requests",
                "{request}",
                UpDownCounter,
                "http_server_active_requests",
            ),
            (
                "db.client.connection.count",
                "{connection}",
                UpDownCounter,
                "db_client_connection_count",
            ),
            (
                "process.cpu.utilization",
                "1",
                UpDownCounter,
                "process_cpu_utilization_ratio",
            ),
            ("app.requests", "{request}", Counter, "app_requests"),
            ("app.requests.total", "", Counter, "app_requests"),
            ("net.io", "By", Counter, "net_io_bytes"),
            (
                "net.rate",
                "By/s",
                UpDownCounter,
                "net_rate_bytes_per_second",
            ),
            ("latency_seconds", "s", Histogram, "latency_seconds"),
            ("queue.wait", "ms", Histogram, "queue_wait_milliseconds"),
            ("temp", "Cel", UpDownCounter, "temp_celsius"),
            ("odd..name--x", "", Counter, "odd_name_x"),
            ("9lives", "", Counter, "_9lives"),
            (
                "weird",
                "furlong/fortnight",
                UpDownCounter,
                "weird_furlong_per_fortnight",
            ),
        ];
        for (name, unit, kind, want) in cases {
            assert_eq!(family_name(name, unit, kind), want, "{name} [{unit}]");
        }
    }

    #[test]
    fn floats() {
        assert_eq!(format_float(1.0), "1.0");
        assert_eq!(format_float(0.005), "0.005");
        assert_eq!(format_float(2.5), "2.5");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(1e-7), "1e-7");
        assert_eq!(format_float(0.0), "0.0");
        for v in [0.1, 1e-7, 123456.789, 1e300, 0.075] {
            assert_eq!(format_float(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(
            Format::from_accept(Some("text/plain;version=0.0.4")),
            Format::Prometheus
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0.2, text/plain;q=0.9")),
            Format::Prometheus
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0, text/plain")),
            Format::Prometheus
        );
        assert_eq!(Format::from_accept(Some("*/*")), Format::OpenMetrics);
        assert_eq!(
            Format::from_accept(Some("application/json")),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_accept(Some(";;;,,q=")), Format::OpenMetrics);
    }

    /// Reverses [`escape_label_value`] the way a scraper does.
    fn unescape(s: &str) -> Option<String> {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next()? {
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    'n' => out.push('\n'),
                    _ => return None,
                },
                '"' | '\n' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn label_escaping_round_trips(value in any::<String>()) {
            let escaped = escape_label_value(&value);
            prop_assert!(!escaped.contains('\n'));
            prop_assert_eq!(unescape(&escaped), Some(value));
        }

        #[test]
        fn label_names_are_valid(key in any::<String>()) {
            let name = label_name(&key);
            prop_assert!(!name.is_empty());
            prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            prop_assert!(!name.starts_with(|c: char| c.is_ascii_digit()));
            prop_assert!(!name.starts_with('_'));
        }

        #[test]
        fn family_names_are_valid(name in any::<String>(), unit in any::<String>()) {
            for kind in [InstrumentKind::Histogram, InstrumentKind::Counter, InstrumentKind::UpDownCounter] {
                let family = family_name(&name, &unit, kind);
                prop_assert!(!family.is_empty());
                prop_assert!(family.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'));
                prop_assert!(!family.starts_with(|c: char| c.is_ascii_digit()));
            }
        }
    }
}
