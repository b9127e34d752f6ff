//! Log correlation: `tracing` events that carry the trace id and span id of the call they
//! belong to.
//!
//! [`fmt_layer`] is a `tracing-subscriber` fmt layer whose lines end with
//! `trace_id=… span_id=…` (text) or carry `"trace_id"`/`"span_id"` keys (JSON) whenever the event
//! happens inside a span, whether the span was opened by an adapter of this suite (through the
//! OpenTelemetry API) or by `tracing` (`#[tracing::instrument]`, bridged by
//! `tracing-opentelemetry` with context activation on). The ids are those of the innermost
//! active span, read from [`opentelemetry::Context::current`].
//!
//! The pipeline (`crate::Telemetry`) installs this layer for you; use it directly when you
//! compose your own subscriber:
//!
//! ```
//! use otel_core::logs::{LogFormat, fmt_layer};
//! use tracing_subscriber::prelude::*;
//!
//! let subscriber =
//!     tracing_subscriber::registry().with(fmt_layer(LogFormat::Json, std::io::stderr));
//! tracing::subscriber::with_default(subscriber, || tracing::info!(order = 42, "accepted"));
//! ```

use std::fmt::{self, Write as _};

use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::redact::Redactor;

/// How log lines are printed.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use otel_core::logs::{LogFormat, fmt_layer};
/// use otel_core::testing::LogBuffer;
/// use tracing_subscriber::prelude::*;
///
/// let out = LogBuffer::default();
/// let subscriber = tracing_subscriber::registry().with(fmt_layer(LogFormat::Json, out.clone()));
/// tracing::subscriber::with_default(subscriber, || tracing::warn!(queue = "orders", "backlog"));
/// let line: serde_json::Value = serde_json::from_str(out.contents().trim())?;
/// assert_eq!(line["level"], "WARN");
/// assert_eq!(line["message"], "backlog");
/// assert_eq!(line["fields"]["queue"], "orders");
/// # }
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogFormat {
    /// One human-readable line per event, ids at the end (default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
    /// Print nothing (log records may still be exported over OTLP).
    Off,
}

impl LogFormat {
    /// Parses `text`, `json` or `off` (the value of `OTEL_CORE_LOG_FORMAT`).
    ///
    /// ```
    /// use otel_core::logs::LogFormat;
    ///
    /// assert_eq!(
    ///     LogFormat::parse("OTEL_CORE_LOG_FORMAT", "JSON"),
    ///     Ok(LogFormat::Json)
    /// );
    /// assert_eq!(
    ///     LogFormat::parse("OTEL_CORE_LOG_FORMAT", "none"),
    ///     Ok(LogFormat::Off)
    /// );
    /// let err = LogFormat::parse("OTEL_CORE_LOG_FORMAT", "xml").unwrap_err();
    /// assert!(err.to_string().contains("OTEL_CORE_LOG_FORMAT"));
    /// ```
    pub fn parse(variable: &str, value: &str) -> Result<Self, crate::ConfigError> {
        match value.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            "off" | "none" => Ok(Self::Off),
            _ => Err(crate::ConfigError::invalid(
                variable,
                value,
                "expected `text`, `json` or `off`",
            )),
        }
    }
}

/// A fmt layer printing events in `format` to `writer`, with trace and span ids.
///
/// Returns `None` for [`LogFormat::Off`] (an `Option` of a layer is itself a layer).
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use otel_core::logs::{LogFormat, fmt_layer};
/// use otel_core::testing::LogBuffer;
/// use tracing_subscriber::prelude::*;
///
/// let out = LogBuffer::default();
/// let subscriber = tracing_subscriber::registry().with(fmt_layer(LogFormat::Text, out.clone()));
/// let tracer = SdkTracerProvider::builder().build().tracer("example");
/// let trace_id = tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(order = 42, "received");
///     tracer.in_span("checkout", |cx| {
///         tracing::info!("charged");
///         cx.span().span_context().trace_id()
///     })
/// });
/// let text = out.contents();
/// let lines: Vec<&str> = text.lines().collect();
/// assert!(lines[0].contains(" INFO ") && lines[0].ends_with(": received order=42"));
/// assert!(lines[1].contains(&format!("charged trace_id={trace_id} span_id=")));
///
/// // `Off` is no layer at all.
/// assert!(
///     fmt_layer::<tracing_subscriber::Registry, _>(LogFormat::Off, std::io::stderr).is_none()
/// );
/// # }
/// ```
pub fn fmt_layer<S, W>(
    format: LogFormat,
    writer: W,
) -> Option<Box<dyn tracing_subscriber::Layer<S> + Send + Sync>>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fmt_layer_with_redaction(format, writer, None)
}

// --- redaction hook (sampling/redaction work, see crate::redact) ---
/// Like [`fmt_layer`], masking secrets and personal data in messages and fields with
/// `redactor` when it is `Some` (see [`crate::redact`]).
///
/// ```
/// use otel_core::logs::{LogFormat, fmt_layer_with_redaction};
/// use otel_core::redact::Redactor;
/// use tracing_subscriber::prelude::*;
///
/// let layer = fmt_layer_with_redaction(LogFormat::Json, std::io::stderr, Some(Redactor::new()));
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || tracing::info!(password = "hunter2", "login"));
/// ```
pub fn fmt_layer_with_redaction<S, W>(
    format: LogFormat,
    writer: W,
    redactor: Option<Redactor>,
) -> Option<Box<dyn tracing_subscriber::Layer<S> + Send + Sync>>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Off => None,
        LogFormat::Text => Some(Box::new(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .event_format(CorrelatedFormat {
                    json: false,
                    redactor,
                }),
        )),
        LogFormat::Json => Some(Box::new(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .event_format(CorrelatedFormat {
                    json: true,
                    redactor,
                }),
        )),
    }
}

/// The event formatter behind [`fmt_layer`].
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use otel_core::logs::CorrelatedFormat;
/// use otel_core::testing::LogBuffer;
/// use tracing_subscriber::prelude::*;
///
/// let out = LogBuffer::default();
/// let layer = tracing_subscriber::fmt::layer()
///     .with_writer(out.clone())
///     .with_ansi(false)
///     .event_format(CorrelatedFormat::text());
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     tracing::error!(code = 503, "upstream down")
/// });
/// let line = out.contents();
/// assert!(line.contains(" ERROR ") && line.trim_end().ends_with(": upstream down code=503"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CorrelatedFormat {
    json: bool,
    redactor: Option<Redactor>,
}

impl CorrelatedFormat {
    /// Text lines: `2026-01-01T00:00:00.000Z  INFO target: message k=v trace_id=… span_id=…`.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use otel_core::logs::CorrelatedFormat;
    /// use otel_core::testing::LogBuffer;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let out = LogBuffer::default();
    /// let layer = tracing_subscriber::fmt::layer()
    ///     .with_writer(out.clone())
    ///     .with_ansi(false)
    ///     .event_format(CorrelatedFormat::text());
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info!(user = "ada", "signed in")
    /// });
    /// let line = out.contents();
    /// // `2026-01-01T00:00:00.000Z  INFO my_app::auth: signed in user="ada"`
    /// assert_eq!(&line[23..30], "Z  INFO");
    /// assert!(line.trim_end().ends_with(r#": signed in user="ada""#));
    /// # }
    /// ```
    pub fn text() -> Self {
        Self {
            json: false,
            redactor: None,
        }
    }

    /// JSON lines: `{"timestamp":…,"level":…,"target":…,"message":…,"fields":{…},"trace_id":…,"span_id":…}`.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// use otel_core::logs::CorrelatedFormat;
    /// use otel_core::testing::LogBuffer;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let out = LogBuffer::default();
    /// let layer = tracing_subscriber::fmt::layer()
    ///     .with_writer(out.clone())
    ///     .event_format(CorrelatedFormat::json());
    /// let tracer = SdkTracerProvider::builder().build().tracer("example");
    /// let span_id =
    ///     tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///         tracer.in_span("checkout", |cx| {
    ///             tracing::info!(amount = 12.5, "charged");
    ///             cx.span().span_context().span_id()
    ///         })
    ///     });
    /// let line: serde_json::Value = serde_json::from_str(out.contents().trim())?;
    /// assert_eq!(line["message"], "charged");
    /// assert_eq!(line["fields"]["amount"], 12.5);
    /// assert_eq!(line["span_id"], span_id.to_string());
    /// # }
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn json() -> Self {
        Self {
            json: true,
            redactor: None,
        }
    }

    /// Masks secrets and personal data in messages and fields (see [`crate::redact`]).
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use otel_core::logs::CorrelatedFormat;
    /// use otel_core::redact::Redactor;
    /// use otel_core::testing::LogBuffer;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let out = LogBuffer::default();
    /// let layer = tracing_subscriber::fmt::layer()
    ///     .with_writer(out.clone())
    ///     .event_format(CorrelatedFormat::json().with_redaction(Redactor::new()));
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info!(password = "hunter2", "login by ann@example.com")
    /// });
    /// let line: serde_json::Value = serde_json::from_str(out.contents().trim())?;
    /// assert_eq!(line["message"], "login by [REDACTED]");
    /// assert_eq!(line["fields"]["password"], "[REDACTED]");
    /// # }
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[must_use]
    pub fn with_redaction(mut self, redactor: Redactor) -> Self {
        self.redactor = Some(redactor);
        self
    }
}

impl<S, N> FormatEvent<S, N> for CorrelatedFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let cx = Context::current();
        let span = cx.span();
        let sc = span.span_context();
        let ids = sc.is_valid().then(|| (sc.trace_id(), sc.span_id()));
        let span_name = ctx.lookup_current().map(|s| s.name());

        if self.json {
            // Written straight to the output (no intermediate JSON tree): one line costs about
            // as much as the text format. Field values are escaped by `push_json_str`.
            JSON_SCRATCH.with(|cell| {
                let mut fresh = JsonFields::default();
                let mut borrowed = cell.try_borrow_mut();
                let v: &mut JsonFields = match borrowed.as_mut() {
                    Ok(v) => v,
                    Err(_) => &mut fresh,
                };
                v.reset(self.redactor.clone());
                event.record(v);
                let mut out = std::mem::take(&mut v.out);
                out.push_str("{\"timestamp\":\"");
                let _ = write_timestamp(&mut out);
                out.push_str("\",\"level\":\"");
                out.push_str(meta.level().as_str());
                out.push_str("\",\"target\":");
                push_json_str(&mut out, meta.target());
                if v.has_message {
                    out.push_str(",\"message\":");
                    out.push_str(&v.message);
                }
                if !v.fields.is_empty() {
                    out.push_str(",\"fields\":{");
                    out.push_str(&v.fields);
                    out.push('}');
                }
                if let Some(name) = span_name {
                    out.push_str(",\"span\":");
                    push_json_str(&mut out, name);
                }
                if let Some((t, s)) = ids {
                    let _ = write!(out, ",\"trace_id\":\"{t}\",\"span_id\":\"{s}\"");
                }
                out.push_str("}\n");
                let result = writer.write_str(&out);
                out.clear();
                v.out = out;
                v.redactor = None;
                result
            })
        } else {
            write_timestamp(&mut writer)?;
            write!(writer, " {:>5} {}: ", meta.level(), meta.target())?;
            if let Some(name) = span_name {
                write!(writer, "{name}: ")?;
            }
            match &self.redactor {
                None => ctx.field_format().format_fields(writer.by_ref(), event)?,
                Some(r) => {
                    let mut v = RedactingTextVisitor {
                        redactor: r,
                        writer: writer.by_ref(),
                        first: true,
                        result: Ok(()),
                    };
                    event.record(&mut v);
                    v.result?;
                }
            }
            if let Some((t, s)) = ids {
                write!(writer, " trace_id={t} span_id={s}")?;
            }
            writeln!(writer)
        }
    }
}

/// Text fields, `message k=v …`, with values redacted (strings quoted like the default
/// formatter's).
struct RedactingTextVisitor<'a, 'w> {
    redactor: &'a Redactor,
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl RedactingTextVisitor<'_, '_> {
    fn write(&mut self, field: &Field, value: &str, quoted: bool) {
        if self.result.is_err() {
            return;
        }
        let sep = if self.first { "" } else { " " };
        self.first = false;
        let value = self.redactor.redact_field(field.name(), value);
        self.result = if field.name() == "message" {
            write!(self.writer, "{sep}{value}")
        } else if quoted {
            write!(self.writer, "{sep}{}={value:?}", field.name())
        } else {
            write!(self.writer, "{sep}{}={value}", field.name())
        };
    }
}

impl Visit for RedactingTextVisitor<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let s = crate::debug_text(value);
        self.write(field, &s, false);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value, true);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.write(field, &value.to_string(), false);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.write(field, &value.to_string(), false);
    }
}
// --- end redaction hook ---

thread_local! {
    static JSON_SCRATCH: std::cell::RefCell<JsonFields> = std::cell::RefCell::default();
}

/// Collects an event's fields as JSON text: `message` (a JSON string literal) and the other
/// fields as `"k":v,…`; string values are redacted when a redactor is set.
#[derive(Default)]
struct JsonFields {
    redactor: Option<Redactor>,
    message: String,
    has_message: bool,
    fields: String,
    scratch: String,
    out: String,
}

impl JsonFields {
    fn reset(&mut self, redactor: Option<Redactor>) {
        self.redactor = redactor;
        self.message.clear();
        self.has_message = false;
        self.fields.clear();
        self.scratch.clear();
        self.out.clear();
    }

    fn key(&mut self, field: &Field) {
        if !self.fields.is_empty() {
            self.fields.push(',');
        }
        push_json_str(&mut self.fields, field.name());
        self.fields.push(':');
    }

    /// A string value (also Debug output), redacted.
    fn string(&mut self, field: &Field, value: &str) {
        let redacted: std::borrow::Cow<'_, str> = match &self.redactor {
            None => value.into(),
            Some(r) => {
                let t = value.trim_start();
                if field.name() != "message" && (t.starts_with('{') || t.starts_with('[')) {
                    let mut v = serde_json::Value::String(value.to_owned());
                    r.redact_json(&mut v);
                    match v {
                        serde_json::Value::String(s) => s.into(),
                        other => other.to_string().into(),
                    }
                } else {
                    r.redact_field(field.name(), value)
                }
            }
        };
        if field.name() == "message" {
            self.has_message = true;
            self.message.clear();
            push_json_str(&mut self.message, &redacted);
        } else {
            self.key(field);
            push_json_str(&mut self.fields, &redacted);
        }
    }

    /// A number: written raw unless the redactor masks it (card or phone numbers as integers).
    fn number(&mut self, field: &Field, value: &dyn fmt::Display) {
        self.scratch.clear();
        let _ = write!(self.scratch, "{value}");
        let scratch = std::mem::take(&mut self.scratch);
        let masked = self
            .redactor
            .as_ref()
            .map(|r| r.redact_field(field.name(), &scratch))
            .filter(|c| matches!(c, std::borrow::Cow::Owned(_)))
            .map(std::borrow::Cow::into_owned);
        match masked {
            Some(m) => {
                self.key(field);
                push_json_str(&mut self.fields, &m);
            }
            None if field.name() == "message" => self.string(field, &scratch),
            None => {
                self.key(field);
                self.fields.push_str(&scratch);
            }
        }
        self.scratch = scratch;
    }
}

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        let _ = write!(s, "{value:?}");
        self.string(field, &s);
        self.scratch = s;
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.string(field, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, &value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, &value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.number(field, &value);
        } else {
            self.string(field, &value.to_string());
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.fields.push_str(if value { "true" } else { "false" });
    }
}

/// Appends `s` as a JSON string literal (quotes included), escaping what JSON requires.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Writes an RFC 3339 UTC timestamp with milliseconds, without pulling in a date crate.
fn write_timestamp(w: &mut impl fmt::Write) -> fmt::Result {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    write!(
        w,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn json_strings_round_trip(s in proptest::prelude::any::<String>()) {
            let mut out = String::new();
            push_json_str(&mut out, &s);
            let back: String = serde_json::from_str(&out).map_err(|e| {
                proptest::test_runner::TestCaseError::fail(format!("{e}: {out}"))
            })?;
            proptest::prop_assert_eq!(back, s);
        }
    }

    #[test]
    fn calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
