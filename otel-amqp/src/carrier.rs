//! Carriers that move an OpenTelemetry context in and out of AMQP header tables.

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};

/// Writes propagation fields (for example `traceparent`, `tracestate`, `baggage`) into an
/// AMQP header table, as long strings.
///
/// Keys already in the table are kept; a key the propagator writes replaces an entry of the same
/// name. Empty values are not written (an empty `tracestate` is the same as none), except over
/// an existing entry. Keys longer than an AMQP short string (255 bytes) cannot be represented
/// and are skipped.
///
/// ```
/// use lapin::types::FieldTable;
/// use opentelemetry::propagation::Injector;
/// use otel_amqp::AmqpHeaderInjector;
///
/// let mut headers = FieldTable::default();
/// AmqpHeaderInjector(&mut headers).set("traceparent", "00-…".to_owned());
/// assert!(headers.contains_key("traceparent"));
/// ```
#[derive(Debug)]
pub struct AmqpHeaderInjector<'a>(pub &'a mut FieldTable);

impl Injector for AmqpHeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // An empty field (the W3C propagator always writes `tracestate`, mostly empty) means the
        // same as an absent one: leave it out, unless it would leave a stale value in place.
        if value.is_empty() && !self.0.contains_key(key) {
            return;
        }
        if let Ok(key) = ShortString::try_new(key) {
            self.0
                .insert(key, AMQPValue::LongString(LongString::from(value)));
        }
    }
}

/// Reads propagation fields from an AMQP header table.
///
/// Long strings and short strings are read as UTF-8; byte arrays are tolerated when they hold
/// UTF-8 text. Values of any other type (numbers, nested tables, …) or invalid UTF-8 are treated
/// as absent, so a malformed header never fails extraction — it only yields an empty context.
/// Keys are matched exactly first and then without regard to ASCII case.
///
/// ```
/// use lapin::types::{AMQPValue, FieldTable, LongString};
/// use opentelemetry::propagation::Extractor;
/// use otel_amqp::AmqpHeaderExtractor;
///
/// let mut headers = FieldTable::default();
/// headers.insert(
///     "traceparent".into(),
///     AMQPValue::LongString(LongString::from("abc")),
/// );
/// headers.insert("retries".into(), AMQPValue::LongInt(3));
/// let extractor = AmqpHeaderExtractor(&headers);
/// assert_eq!(extractor.get("traceparent"), Some("abc"));
/// assert_eq!(extractor.get("retries"), None);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AmqpHeaderExtractor<'a>(pub &'a FieldTable);

fn value_as_str(value: &AMQPValue) -> Option<&str> {
    match value {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        AMQPValue::ByteArray(b) => std::str::from_utf8(b.as_slice()).ok(),
        _ => None,
    }
}

impl Extractor for AmqpHeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.0.inner().get(key) {
            Some(value) => value_as_str(value),
            None => self
                .0
                .inner()
                .iter()
                .find(|(k, _)| k.as_str().eq_ignore_ascii_case(key))
                .and_then(|(_, value)| value_as_str(value)),
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.inner().keys().map(ShortString::as_str).collect()
    }
}

/// Injects `cx` into `headers` with the globally installed text-map propagator
/// (`otel_core::propagation::inject_context`).
///
/// Entries already in `headers` other than the propagator's fields are kept.
///
/// ```
/// use lapin::BasicProperties;
/// use lapin::types::FieldTable;
/// use opentelemetry::propagation::Extractor;
/// use opentelemetry::trace::TraceContextExt;
/// use otel_amqp::{AmqpHeaderExtractor, inject_context};
/// use otel_core::testing::TestTelemetry;
///
/// opentelemetry::global::set_text_map_propagator(
///     otel_core::propagation::TraceContextPropagator::new(),
/// );
/// let tt = TestTelemetry::new();
/// let cx = tt.root_context("publish by hand");
///
/// // A message published without `InstrumentedChannel`, still carrying the trace.
/// let mut headers = FieldTable::default();
/// inject_context(&cx, &mut headers);
/// let properties = BasicProperties::default().with_headers(headers);
///
/// let headers = AmqpHeaderExtractor(properties.headers().as_ref().unwrap());
/// let traceparent = headers.get("traceparent").unwrap();
/// let trace_id = cx.span().span_context().trace_id().to_string();
/// assert!(traceparent.contains(&trace_id));
/// ```
pub fn inject_context(cx: &Context, headers: &mut FieldTable) {
    otel_core::propagation::inject_context(cx, &mut AmqpHeaderInjector(headers));
}

/// Extracts the context carried in `headers` with the globally installed text-map propagator.
///
/// The result holds only what the headers carry: unlike
/// `otel_core::propagation::extract_context`, it is not layered on the current context, so it
/// holds no valid span when the headers carry no context or a malformed one (a consumer must
/// not mistake its own current span for the producer's).
///
/// ```
/// use lapin::types::{AMQPValue, FieldTable, LongString};
/// use opentelemetry::trace::{TraceContextExt, TraceId};
/// use otel_amqp::extract_context;
///
/// opentelemetry::global::set_text_map_propagator(
///     otel_core::propagation::TraceContextPropagator::new(),
/// );
/// let mut headers = FieldTable::default();
/// headers.insert(
///     "traceparent".into(),
///     AMQPValue::LongString(LongString::from(
///         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
///     )),
/// );
/// let producer = extract_context(&headers);
/// let span_context = producer.span().span_context().clone();
/// assert!(span_context.is_remote());
/// assert_eq!(
///     span_context.trace_id(),
///     TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
/// );
///
/// // No context in the headers: no valid span, whatever is current.
/// assert!(
///     !extract_context(&FieldTable::default())
///         .span()
///         .span_context()
///         .is_valid()
/// );
/// ```
pub fn extract_context(headers: &FieldTable) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract_with_context(&Context::new(), &AmqpHeaderExtractor(headers))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use lapin::types::{ByteArray, FieldArray};
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn long(s: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(s))
    }

    fn extract(headers: &FieldTable) -> Context {
        TraceContextPropagator::new().extract(&AmqpHeaderExtractor(headers))
    }

    #[test]
    fn round_trip_keeps_existing_headers() {
        let span_context = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let cx = Context::new().with_remote_span_context(span_context.clone());
        let mut headers = FieldTable::default();
        headers.insert("x-user".into(), long("kept"));
        headers.insert("x-count".into(), AMQPValue::LongInt(7));
        TraceContextPropagator::new().inject_context(&cx, &mut AmqpHeaderInjector(&mut headers));

        assert_eq!(headers.inner().get("x-user"), Some(&long("kept")));
        assert_eq!(headers.inner().get("x-count"), Some(&AMQPValue::LongInt(7)));
        assert_eq!(headers.inner().get("traceparent"), Some(&long(TRACEPARENT)));
        assert!(
            !headers.contains_key("tracestate"),
            "empty tracestate left out"
        );

        let extracted = extract(&headers);
        let extracted = extracted.span().span_context().clone();
        assert_eq!(extracted.trace_id(), span_context.trace_id());
        assert_eq!(extracted.span_id(), span_context.span_id());
        assert!(extracted.is_remote());
    }

    /// Each row: headers that must not yield a valid context, and why.
    #[test]
    fn malformed_headers_yield_empty_context() {
        let rows: Vec<(&str, FieldTable)> = vec![
            ("no headers at all", FieldTable::default()),
            (
                "garbage text",
                table("traceparent", long("not a traceparent")),
            ),
            ("empty value", table("traceparent", long(""))),
            (
                "all-zero trace id",
                table(
                    "traceparent",
                    long("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
                ),
            ),
            (
                "all-zero span id",
                table(
                    "traceparent",
                    long("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
                ),
            ),
            (
                "version ff is forbidden",
                table(
                    "traceparent",
                    long("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                ),
            ),
            (
                "non-hex characters",
                table(
                    "traceparent",
                    long("00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01"),
                ),
            ),
            (
                "invalid UTF-8",
                table(
                    "traceparent",
                    AMQPValue::LongString(LongString::from(vec![0xff, 0xfe, 0x00])),
                ),
            ),
            (
                "integer value",
                table("traceparent", AMQPValue::LongLongInt(42)),
            ),
            (
                "nested table",
                table("traceparent", AMQPValue::FieldTable(FieldTable::default())),
            ),
            (
                "array value",
                table(
                    "traceparent",
                    AMQPValue::FieldArray(FieldArray::from(vec![long(TRACEPARENT)])),
                ),
            ),
            (
                "huge value",
                table("traceparent", long(&"0".repeat(1 << 20))),
            ),
        ];
        for (why, headers) in rows {
            let cx = extract(&headers);
            assert!(
                !cx.span().span_context().is_valid(),
                "{why}: extracted a valid context"
            );
        }
    }

    #[test]
    fn byte_arrays_and_case_are_tolerated() {
        let headers = table(
            "TraceParent",
            AMQPValue::ByteArray(ByteArray::from(TRACEPARENT.as_bytes())),
        );
        assert_eq!(
            AmqpHeaderExtractor(&headers).get("traceparent"),
            Some(TRACEPARENT)
        );
        assert!(extract(&headers).span().span_context().is_valid());
    }

    #[test]
    fn extraction_ignores_the_current_context() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let ambient = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let _guard = Context::new().with_remote_span_context(ambient).attach();
        let cx = extract_context(&table("traceparent", long("garbage")));
        assert!(!cx.span().span_context().is_valid());
    }

    #[test]
    fn empty_values_overwrite_but_are_not_added() {
        let mut headers = table("tracestate", long("stale=1"));
        let mut injector = AmqpHeaderInjector(&mut headers);
        injector.set("tracestate", String::new());
        injector.set("baggage", String::new());
        assert_eq!(headers.inner().get("tracestate"), Some(&long("")));
        assert!(!headers.contains_key("baggage"));
    }

    #[test]
    fn keys_lists_every_header() {
        let mut headers = table("a", long("1"));
        headers.insert("b".into(), AMQPValue::Boolean(true));
        assert_eq!(AmqpHeaderExtractor(&headers).keys(), vec!["a", "b"]);
    }

    #[test]
    fn over_long_keys_are_skipped_not_panicking() {
        let mut headers = FieldTable::default();
        AmqpHeaderInjector(&mut headers).set(&"k".repeat(300), "v".to_owned());
        assert!(headers.inner().is_empty());
    }

    fn table(key: &str, value: AMQPValue) -> FieldTable {
        let mut t = FieldTable::default();
        t.insert(key.into(), value);
        t
    }
}
