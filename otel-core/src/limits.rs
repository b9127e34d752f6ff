//! Attribute value length limits, which the Rust SDK does not apply itself: for spans
//! `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, for log records
//! `OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT`, each falling back to the general
//! `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`.
//!
//! As the specification says, a string value (or each string of an array) longer than the
//! limit is truncated to at most that many characters; other values are left alone. The
//! limit applies to span attributes, event attributes and link attributes, and to log record
//! attributes (strings nested in their lists and maps too), not to a log record's body.
//!
//! When a limit is set, [`Telemetry::builder`](crate::Telemetry::builder) puts a
//! [`ValueLengthLimitProcessor`] (and, when log records are exported, a
//! [`ValueLengthLimitLogProcessor`]) right after redaction (which must see whole values, or an
//! e-mail address cut in half would escape its pattern) and before tail mode and the
//! exporters, so neither the tail buffer nor an export queue holds a longer value. Without a
//! limit a client can make each span carry whatever its headers and URL can hold; with the
//! export queue full (a slow or unreachable collector) that is up to
//! `OTEL_BSP_MAX_QUEUE_SIZE` such spans in memory.
//!
//! ```
//! use otel_core::{ConfigError, EnvSource, Telemetry};
//!
//! // From the environment, as the specification names it ...
//! let guard = Telemetry::builder()
//!     .with_env(EnvSource::from_pairs([
//!         ("OTEL_TRACES_EXPORTER", "none"),
//!         ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4096"),
//!     ]))
//!     .build()?;
//! # drop(guard);
//! // ... or in code; a value that is not a whole number is an error naming the variable.
//! let err = Telemetry::builder()
//!     .with_env(EnvSource::from_pairs([("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4k")]))
//!     .build()
//!     .unwrap_err();
//! assert!(err.to_string().contains("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"));
//! # Ok::<(), ConfigError>(())
//! ```

use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};

/// A span processor that truncates long string attribute values, then hands the span to
/// `inner`.
///
/// ```
/// use opentelemetry::KeyValue;
/// use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
/// use otel_core::limits::ValueLengthLimitProcessor;
///
/// let spans = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder()
///     .with_span_processor(ValueLengthLimitProcessor::new(
///         SimpleSpanProcessor::new(spans.clone()),
///         8,
///     ))
///     .build();
/// let mut span = provider.tracer("example").start("GET");
/// span.set_attribute(KeyValue::new("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"));
/// span.end();
/// assert_eq!(
///     spans.get_finished_spans()?[0].attributes,
///     [KeyValue::new("user_agent.original", "Mozilla/")]
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ValueLengthLimitProcessor<P> {
    inner: P,
    limit: usize,
}

impl<P: SpanProcessor> ValueLengthLimitProcessor<P> {
    /// Wraps `inner`, truncating string values to at most `limit` characters.
    ///
    /// ```
    /// use opentelemetry_sdk::trace::{BatchSpanProcessor, InMemorySpanExporter, SdkTracerProvider};
    /// use otel_core::limits::ValueLengthLimitProcessor;
    ///
    /// let batch = BatchSpanProcessor::builder(InMemorySpanExporter::default()).build();
    /// let provider = SdkTracerProvider::builder()
    ///     .with_span_processor(ValueLengthLimitProcessor::new(batch, 4096))
    ///     .build();
    /// # let _ = provider.shutdown();
    /// ```
    pub fn new(inner: P, limit: usize) -> Self {
        Self { inner, limit }
    }
}

wrapping_span_processor!(ValueLengthLimitProcessor, |self, span| {
    limit_span(&mut span, self.limit);
    self.inner.on_end(span);
});

/// A log processor that truncates long string attribute values of each log record (strings
/// nested in lists and maps included; the body is left whole), then hands it to `inner`.
///
/// ```
/// use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
/// use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider, SimpleLogProcessor};
/// use otel_core::limits::ValueLengthLimitLogProcessor;
///
/// let logs = InMemoryLogExporter::default();
/// let provider = SdkLoggerProvider::builder()
///     .with_log_processor(ValueLengthLimitLogProcessor::new(
///         SimpleLogProcessor::new(logs.clone()),
///         8,
///     ))
///     .build();
/// let logger = provider.logger("example");
/// let mut record = logger.create_log_record();
/// record.add_attribute("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)");
/// logger.emit(record);
///
/// let exported = &logs.get_emitted_logs()?[0].record;
/// assert_eq!(
///     exported.attributes_iter().next().map(|(_, v)| v),
///     Some(&AnyValue::from("Mozilla/"))
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ValueLengthLimitLogProcessor<P> {
    inner: P,
    limit: usize,
}

impl<P: opentelemetry_sdk::logs::LogProcessor> ValueLengthLimitLogProcessor<P> {
    /// Wraps `inner`, truncating string attribute values to at most `limit` characters.
    ///
    /// ```
    /// use opentelemetry_sdk::logs::{BatchLogProcessor, InMemoryLogExporter, SdkLoggerProvider};
    /// use otel_core::limits::ValueLengthLimitLogProcessor;
    ///
    /// let batch = BatchLogProcessor::builder(InMemoryLogExporter::default()).build();
    /// let provider = SdkLoggerProvider::builder()
    ///     .with_log_processor(ValueLengthLimitLogProcessor::new(batch, 4096))
    ///     .build();
    /// # let _ = provider.shutdown();
    /// ```
    pub fn new(inner: P, limit: usize) -> Self {
        Self { inner, limit }
    }
}

crate::log_rewrite::wrapping_log_processor!(ValueLengthLimitLogProcessor, |self, record| {
    let limit = self.limit;
    crate::log_rewrite::rewrite(
        record,
        |_| None,
        |_, value| {
            crate::log_rewrite::map_strings(
                value,
                None,
                &|_, v| match v {
                    opentelemetry::logs::AnyValue::String(s) => {
                        let mut cut = s.clone();
                        limit_string(&mut cut, limit);
                        (cut.as_str().len() != s.as_str().len())
                            .then_some(opentelemetry::logs::AnyValue::String(cut))
                    }
                    _ => None,
                },
                0,
            )
        },
    );
});

/// Truncates every string value of the span's, its events' and its links' attributes.
fn limit_span(span: &mut SpanData, limit: usize) {
    limit_attributes(&mut span.attributes, limit);
    for event in &mut span.events.events {
        limit_attributes(&mut event.attributes, limit);
    }
    for link in &mut span.links.links {
        limit_attributes(&mut link.attributes, limit);
    }
}

fn limit_attributes(attributes: &mut [KeyValue], limit: usize) {
    for kv in attributes {
        match &mut kv.value {
            Value::String(s) => limit_string(s, limit),
            Value::Array(Array::String(strings)) => {
                for s in strings {
                    limit_string(s, limit);
                }
            }
            _ => {}
        }
    }
}

/// `s` cut to its first `limit` characters (a string within the limit is left as it is).
fn limit_string(s: &mut StringValue, limit: usize) {
    // A string of at most `limit` bytes has at most `limit` characters: no scan needed.
    if s.as_str().len() <= limit {
        return;
    }
    if let Some((end, _)) = s.as_str().char_indices().nth(limit) {
        *s = StringValue::from(s.as_str()[..end].to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Event, Link, SpanContext};

    fn string(kv: &KeyValue) -> &str {
        match &kv.value {
            Value::String(s) => s.as_str(),
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn strings_are_cut_at_characters_not_bytes() {
        let mut attrs = [
            KeyValue::new("ascii", "abcdefgh"),
            KeyValue::new("short", "abc"),
            // Five characters, ten bytes: within a limit of five.
            KeyValue::new("cyrillic", "привет"),
            KeyValue::new("emoji", "🦀🦀🦀🦀🦀🦀"),
            KeyValue::new("exact", "abcde"),
            KeyValue::new("number", 1_234_567_890_i64),
        ];
        limit_attributes(&mut attrs, 5);
        assert_eq!(string(&attrs[0]), "abcde");
        assert_eq!(string(&attrs[1]), "abc");
        assert_eq!(string(&attrs[2]), "приве");
        assert_eq!(string(&attrs[3]), "🦀🦀🦀🦀🦀");
        assert_eq!(string(&attrs[4]), "abcde");
        assert_eq!(attrs[5].value, Value::I64(1_234_567_890));
    }

    #[test]
    fn zero_empties_strings_and_arrays_are_cut_element_by_element() {
        let mut attrs = [
            KeyValue::new("s", "abc"),
            KeyValue::new(
                "a",
                Value::Array(Array::String(vec!["abcdef".into(), "ab".into()])),
            ),
        ];
        limit_attributes(&mut attrs[1..], 3);
        assert_eq!(
            attrs[1].value,
            Value::Array(Array::String(vec!["abc".into(), "ab".into()]))
        );
        limit_attributes(&mut attrs[..1], 0);
        assert_eq!(string(&attrs[0]), "");
    }

    #[test]
    fn events_and_links_are_limited_too() {
        let mut span = SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: opentelemetry::trace::SpanKind::Internal,
            name: "op".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes: vec![KeyValue::new("a", "123456")],
            dropped_attributes_count: 0,
            events: opentelemetry_sdk::trace::SpanEvents::default(),
            links: opentelemetry_sdk::trace::SpanLinks::default(),
            status: opentelemetry::trace::Status::Unset,
            instrumentation_scope: opentelemetry::InstrumentationScope::default(),
        };
        span.events.events.push(Event::new(
            "exception",
            std::time::SystemTime::UNIX_EPOCH,
            vec![KeyValue::new("exception.message", "a long message")],
            0,
        ));
        span.links.links.push(Link::new(
            SpanContext::empty_context(),
            vec![KeyValue::new("reason", "because")],
            0,
        ));
        limit_span(&mut span, 4);
        assert_eq!(string(&span.attributes[0]), "1234");
        assert_eq!(string(&span.events.events[0].attributes[0]), "a lo");
        assert_eq!(string(&span.links.links[0].attributes[0]), "beca");
    }
}
