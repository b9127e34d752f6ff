//! The Jaeger propagator: `uber-trace-id` and `uberctx-*` baggage.
//!
//! Hand-written rather than taken from `opentelemetry-jaeger-propagator`: that crate is
//! published only for opentelemetry 0.32, so depending on it would put a second version of
//! `opentelemetry` into the lock file. It also keeps `uberctx-*` entries in the trace state
//! instead of baggage, and marks debug with a reserved trace flag bit that OTLP exports.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::LazyLock;

use opentelemetry::baggage::{BaggageExt, BaggageMetadata};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, Key, StringValue};

use super::baggage::{MAX_BYTES, MAX_MEMBERS, with_added_baggage};
use super::debug::{is_debug, with_debug};
use super::syntax::{
    HexCase, is_token, is_url_unreserved, parse_hex_u64, parse_hex_u128, percent_decode,
    percent_encode_into, trim_ows,
};

const HEADER: &str = "uber-trace-id";
const BAGGAGE_PREFIX: &str = "uberctx-";
/// Longest `uber-trace-id` looked at: 32 + 16 + 16 + 2 digits and three `%3A` separators.
const MAX_HEADER_LEN: usize = 75;
const FLAG_SAMPLED: u8 = 0x01;
const FLAG_DEBUG: u8 = 0x02;

static FIELDS: LazyLock<[String; 1]> = LazyLock::new(|| [HEADER.to_owned()]);

/// Propagates a span context in Jaeger's `uber-trace-id` header, and baggage in
/// `uberctx-{key}` headers.
///
/// Use it through [`Propagators`](super::Propagators) (name `jaeger`) or alone.
///
/// Extraction reads `uber-trace-id: {trace-id}:{span-id}:{parent-span-id}:{flags}`, also in
/// its URL-encoded form (`%3A` for `:`). Ids are 1 to 32 (trace) or 16 (span, parent) hex
/// digits of either case, left-padded; all-zero trace or span ids are invalid; the deprecated
/// parent span id is checked and ignored. Flags are one or two hex digits: `0x01` sampled,
/// `0x02` debug (honoured only together with sampled, and sent on as debug by this propagator
/// and [`B3Propagator`](super::B3Propagator)). Every `uberctx-{key}` header becomes the baggage
/// entry `{key}` with the URL-decoded value (`+` is a space), added to the context's baggage;
/// keys that are not HTTP tokens are skipped, and at most 180 such headers and 8192 bytes of
/// values are read.
///
/// Injection writes `uber-trace-id` with a 128-bit trace id, parent `0` and flags `1`
/// (sampled), `3` (debug) or `0`, and one `uberctx-{key}` header per baggage entry with the
/// value URL-encoded (everything except `A-Za-z0-9-._~` escaped), within the same limits.
/// Baggage is written even when there is no valid span context.
///
/// ```
/// use opentelemetry::baggage::BaggageExt;
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::TraceContextExt;
/// use otel_core::propagation::JaegerPropagator;
/// use std::collections::HashMap;
///
/// let mut headers = HashMap::new();
/// headers.insert("uber-trace-id".to_owned(), "4d2%3A17c29%3A0%3A1".to_owned());
/// headers.insert("uberctx-user".to_owned(), "ada+lovelace".to_owned());
/// let cx = JaegerPropagator::new().extract(&headers);
/// assert!(cx.span().span_context().is_sampled());
/// assert_eq!(
///     cx.baggage().get("user").map(|v| v.as_str()),
///     Some("ada lovelace")
/// );
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct JaegerPropagator {
    _private: (),
}

impl JaegerPropagator {
    /// Creates the propagator.
    ///
    /// ```
    /// use opentelemetry::baggage::BaggageExt;
    /// use opentelemetry::propagation::TextMapPropagator;
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::propagation::JaegerPropagator;
    /// use std::collections::HashMap;
    ///
    /// // Baggage is written even without a span context.
    /// let cx = Context::new().with_baggage([KeyValue::new("user", "ada lovelace")]);
    /// let mut headers = HashMap::new();
    /// JaegerPropagator::new().inject_context(&cx, &mut headers);
    /// assert_eq!(headers["uberctx-user"], "ada%20lovelace");
    /// assert!(!headers.contains_key("uber-trace-id"));
    /// ```
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

/// What `uber-trace-id` carried: ids and whether sampled / debug.
pub(crate) type Extracted = (TraceId, SpanId, bool, bool);

/// Parses an `uber-trace-id` value.
pub(crate) fn parse_header(value: &str) -> Option<Extracted> {
    let value = trim_ows(value);
    if value.len() > MAX_HEADER_LEN {
        return None;
    }
    let value: Cow<'_, str> = if value.contains(':') {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(value.replace("%3A", ":").replace("%3a", ":"))
    };
    let mut parts = value.split(':');
    let (Some(trace), Some(span), Some(parent), Some(flags), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let trace_id = parse_hex_u128(trace.as_bytes(), HexCase::Any).filter(|id| *id != 0)?;
    let span_id = parse_hex_u64(span.as_bytes(), HexCase::Any).filter(|id| *id != 0)?;
    parse_hex_u64(parent.as_bytes(), HexCase::Any)?;
    if flags.len() > 2 {
        return None;
    }
    let flags = u8::try_from(parse_hex_u128(flags.as_bytes(), HexCase::Any)?).ok()?;
    let sampled = flags & FLAG_SAMPLED != 0;
    let debug = sampled && flags & FLAG_DEBUG != 0;
    Some((
        TraceId::from(trace_id),
        SpanId::from(span_id),
        sampled,
        debug,
    ))
}

/// The `uberctx-*` baggage entries of `extractor`.
fn extract_baggage(extractor: &dyn Extractor) -> Vec<(Key, StringValue, BaggageMetadata)> {
    let mut entries = Vec::new();
    let mut budget = MAX_BYTES;
    let prefixed = extractor.keys().into_iter().filter(|name| {
        name.len() > BAGGAGE_PREFIX.len()
            && name.as_bytes()[..BAGGAGE_PREFIX.len()]
                .eq_ignore_ascii_case(BAGGAGE_PREFIX.as_bytes())
    });
    for name in prefixed.take(MAX_MEMBERS) {
        let key = &name[BAGGAGE_PREFIX.len()..];
        let Some(value) = extractor.get(name) else {
            continue;
        };
        let value = trim_ows(value);
        let cost = key.len() + value.len();
        if !is_token(key) || cost > budget {
            continue;
        }
        budget -= cost;
        entries.push((
            Key::from(key.to_owned()),
            StringValue::from(percent_decode(value, true).into_owned()),
            BaggageMetadata::default(),
        ));
    }
    entries
}

impl TextMapPropagator for JaegerPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let span_context = span.span_context();
        if span_context.is_valid() {
            let flags = match (is_debug(cx, span_context), span_context.is_sampled()) {
                (true, _) => FLAG_SAMPLED | FLAG_DEBUG,
                (false, true) => FLAG_SAMPLED,
                (false, false) => 0,
            };
            let mut value = String::with_capacity(52);
            // Writing to a String cannot fail.
            let _ = write!(
                value,
                "{:032x}:{:016x}:0:{flags:x}",
                span_context.trace_id(),
                span_context.span_id()
            );
            injector.set(HEADER, value);
        }
        let mut budget = MAX_BYTES;
        let mut name = String::new();
        for (key, (value, _)) in cx.baggage().iter().take(MAX_MEMBERS) {
            if !is_token(key.as_str()) {
                continue;
            }
            let mut encoded = String::with_capacity(value.as_str().len());
            percent_encode_into(value.as_str(), is_url_unreserved, &mut encoded);
            let cost = key.as_str().len() + encoded.len();
            if cost > budget {
                continue;
            }
            budget -= cost;
            name.clear();
            name.push_str(BAGGAGE_PREFIX);
            name.push_str(key.as_str());
            injector.set(&name, encoded);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let cx = match extractor.get(HEADER).and_then(parse_header) {
            Some((trace_id, span_id, sampled, debug)) => {
                let flags = if sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::NOT_SAMPLED
                };
                let span_context =
                    SpanContext::new(trace_id, span_id, flags, true, TraceState::NONE);
                let cx = cx.with_remote_span_context(span_context);
                if debug { with_debug(cx, trace_id) } else { cx }
            }
            None => cx.clone(),
        };
        with_added_baggage(&cx, extract_baggage(extractor))
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::type_complexity)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::KeyValue;

    use super::*;

    const TRACE: &str = "000000000000004d0000000000000016";
    const TRACE_ID: u128 = 0x4d_0000_0000_0000_0016;
    const SPAN: &str = "0000000000017c29";
    const SPAN_ID: u64 = 0x17c29;

    #[test]
    fn header_rows() {
        #[rustfmt::skip]
        let rows: Vec<(String, Option<(bool, bool)>, &str)> = vec![
            (format!("{TRACE}:{SPAN}:0:1"), Some((true, false)), "sampled"),
            (format!("{TRACE}:{SPAN}:0:0"), Some((false, false)), "not sampled"),
            (format!("{TRACE}:{SPAN}:0:3"), Some((true, true)), "debug"),
            (format!("{TRACE}:{SPAN}:0:2"), Some((false, false)), "debug without sampled ignored"),
            (format!("{TRACE}:{SPAN}:0:01"), Some((true, false)), "two flag digits"),
            (format!("{TRACE}:{SPAN}:0:ff"), Some((true, true)), "hex flags"),
            ("4d0000000000000016:17c29:0:1".to_owned(), Some((true, false)), "short ids padded"),
            (format!("{}:{}:0:1", TRACE.to_uppercase(), SPAN.to_uppercase()), Some((true, false)), "upper case"),
            (format!("{TRACE}:{SPAN}:{SPAN}:1"), Some((true, false)), "parent span id ignored"),
            (format!("{TRACE}%3A{SPAN}%3A0%3A1"), Some((true, false)), "URL-encoded"),
            (format!("{TRACE}%3a{SPAN}%3a0%3a1"), Some((true, false)), "URL-encoded, lower case"),
            (format!(" {TRACE}:{SPAN}:0:1 "), Some((true, false)), "OWS"),
            (format!("{TRACE}:{SPAN}:0"), None, "three fields"),
            (format!("{TRACE}:{SPAN}:0:1:0"), None, "five fields"),
            (format!("{TRACE}0:{SPAN}:0:1"), None, "trace id of 33 digits"),
            (format!("{TRACE}:{SPAN}0:0:1"), None, "span id of 17 digits"),
            (format!("{TRACE}:{SPAN}:0:100"), None, "flags of 3 digits"),
            (format!("{TRACE}:{SPAN}::1"), None, "empty parent"),
            (format!("{TRACE}:{SPAN}:0:"), None, "empty flags"),
            (format!(":{SPAN}:0:1"), None, "empty trace id"),
            (format!("{TRACE}:xyz:0:1"), None, "bad span id"),
            (format!("+{}:{SPAN}:0:1", &TRACE[1..]), None, "sign in trace id"),
            (format!("{}:{SPAN}:0:1", "0".repeat(32)), None, "zero trace id"),
            (format!("{TRACE}:0:0:1"), None, "zero span id"),
            (format!("{TRACE}:{SPAN}:0:1{}", " ".repeat(100)), Some((true, false)), "trailing OWS is trimmed first"),
            (format!("{TRACE}:{SPAN}:0:1{}", "x".repeat(100)), None, "too long"),
        ];
        for (value, expected, why) in rows {
            let expected = expected.map(|(sampled, debug)| {
                (
                    TraceId::from(TRACE_ID),
                    SpanId::from(SPAN_ID),
                    sampled,
                    debug,
                )
            });
            assert_eq!(parse_header(&value), expected, "{why}: {value:?}");
        }
    }

    #[test]
    fn extracts_and_injects_trace_and_baggage() {
        let mut carrier = HashMap::new();
        carrier.insert("uber-trace-id".to_owned(), format!("{TRACE}:{SPAN}:0:3"));
        carrier.insert("uberctx-user".to_owned(), "ada%20lovelace+x".to_owned());
        carrier.insert("uberctx-bad key".to_owned(), "1".to_owned());
        carrier.insert("uberctx-".to_owned(), "1".to_owned());
        let cx = JaegerPropagator::new().extract_with_context(&Context::new(), &carrier);
        let baggage = cx.baggage();
        assert_eq!(baggage.len(), 1);
        assert_eq!(
            baggage.get("user").map(|v| v.as_str()),
            Some("ada lovelace x")
        );

        let mut out = HashMap::new();
        JaegerPropagator::new().inject_context(&cx, &mut out);
        assert_eq!(
            out.get("uber-trace-id"),
            Some(&format!("{TRACE}:{SPAN}:0:3"))
        );
        assert_eq!(
            out.get("uberctx-user").map(String::as_str),
            Some("ada%20lovelace%20x")
        );
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn baggage_without_trace() {
        let cx = Context::new().with_baggage([KeyValue::new("k", "a/b+c")]);
        let mut out = HashMap::new();
        JaegerPropagator::new().inject_context(&cx, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out.get("uberctx-k").map(String::as_str), Some("a%2Fb%2Bc"));
        let back = JaegerPropagator::new().extract_with_context(&Context::new(), &out);
        assert_eq!(back.baggage().get("k").map(|v| v.as_str()), Some("a/b+c"));
        assert!(!back.span().span_context().is_valid());
    }

    #[test]
    fn invalid_header_keeps_context() {
        let mut carrier = HashMap::new();
        carrier.insert("uber-trace-id".to_owned(), "nonsense".to_owned());
        let cx = JaegerPropagator::new().extract_with_context(&Context::new(), &carrier);
        assert!(!cx.span().span_context().is_valid());
        assert!(cx.baggage().is_empty());
    }
}
