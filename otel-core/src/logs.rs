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
//! use otel_core::logs::{fmt_layer, LogFormat};
//! use tracing_subscriber::prelude::*;
//!
//! let subscriber = tracing_subscriber::registry().with(fmt_layer(LogFormat::Json, std::io::stderr));
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
/// use otel_core::logs::{fmt_layer_with_redaction, LogFormat};
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
#[derive(Debug, Clone)]
pub struct CorrelatedFormat {
    json: bool,
    redactor: Option<Redactor>,
}

impl CorrelatedFormat {
    /// Text lines: `2026-01-01T00:00:00.000Z  INFO target: message k=v trace_id=… span_id=…`.
    pub fn text() -> Self {
        Self {
            json: false,
            redactor: None,
        }
    }

    /// JSON lines: `{"timestamp":…,"level":…,"target":…,"message":…,"fields":{…},"trace_id":…,"span_id":…}`.
    pub fn json() -> Self {
        Self {
            json: true,
            redactor: None,
        }
    }

    /// Masks secrets and personal data in messages and fields (see [`crate::redact`]).
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
        let now = humantime_now();
        let span_name = ctx.lookup_current().map(|s| s.name());

        if self.json {
            let mut visitor = JsonVisitor::default();
            event.record(&mut visitor);
            if let Some(r) = &self.redactor {
                visitor.redact(r);
            }
            let mut obj = serde_json::Map::new();
            obj.insert("timestamp".into(), now.into());
            obj.insert("level".into(), meta.level().as_str().into());
            obj.insert("target".into(), meta.target().into());
            if let Some(m) = visitor.message {
                obj.insert("message".into(), m.into());
            }
            if !visitor.fields.is_empty() {
                obj.insert("fields".into(), visitor.fields.into());
            }
            if let Some(name) = span_name {
                obj.insert("span".into(), name.into());
            }
            if let Some((t, s)) = ids {
                obj.insert("trace_id".into(), t.to_string().into());
                obj.insert("span_id".into(), s.to_string().into());
            }
            let line = serde_json::Value::Object(obj).to_string();
            writeln!(writer, "{line}")
        } else {
            write!(writer, "{now} {:>5} {}: ", meta.level(), meta.target())?;
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

// --- redaction hook ---
impl JsonVisitor {
    fn redact(&mut self, r: &Redactor) {
        if let Some(m) = &mut self.message
            && let std::borrow::Cow::Owned(red) = r.redact_str(m)
        {
            *m = red;
        }
        let mut fields = serde_json::Value::Object(std::mem::take(&mut self.fields));
        r.redact_json(&mut fields);
        if let serde_json::Value::Object(map) = fields {
            self.fields = map;
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
        let s = format!("{value:?}");
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

#[derive(Default)]
struct JsonVisitor {
    message: Option<String>,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Visit for JsonVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        if field.name() == "message" {
            self.message = Some(s);
        } else {
            self.fields.insert(field.name().into(), s.into());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.fields.insert(field.name().into(), value.into());
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().into(), value.into());
    }
}

/// RFC 3339 UTC timestamp with milliseconds, without pulling in a date crate.
fn humantime_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
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

    #[test]
    fn calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
