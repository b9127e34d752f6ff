//! The B3 propagator (Zipkin): single header `b3` and multiple `X-B3-*` headers.
//!
//! Hand-written rather than taken from `opentelemetry-zipkin`: that crate is an exporter, and
//! depending on it for its propagator pulls in its HTTP client stack. Its propagator also
//! stores B3's "deferred" decision in trace flag `0x02`, which W3C Trace Context Level 2 now
//! defines as `random`, and "debug" in a reserved bit that OTLP exports.

use std::fmt::Write as _;
use std::sync::LazyLock;

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

use super::debug::{is_debug, with_debug};
use super::syntax::{HexCase, parse_hex_u64, parse_hex_u128, trim_ows};

const B3: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const SAMPLED: &str = "x-b3-sampled";
const FLAGS: &str = "x-b3-flags";
/// Longest single-header value: 32 + 1 + 16 + 1 + 1 + 1 + 16.
const MAX_SINGLE_LEN: usize = 68;

static SINGLE_FIELDS: LazyLock<[String; 1]> = LazyLock::new(|| [B3.to_owned()]);
static MULTI_FIELDS: LazyLock<[String; 4]> =
    LazyLock::new(|| [TRACE_ID, SPAN_ID, SAMPLED, FLAGS].map(str::to_owned));
static ALL_FIELDS: LazyLock<[String; 5]> =
    LazyLock::new(|| [B3, TRACE_ID, SPAN_ID, SAMPLED, FLAGS].map(str::to_owned));

/// Which B3 headers [`B3Propagator`] writes. Extraction always reads both forms.
///
/// ```
/// use opentelemetry::Context;
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::{
///     SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
/// };
/// use otel_core::propagation::{B3Encoding, B3Propagator};
/// use std::collections::HashMap;
///
/// let cx = Context::new().with_remote_span_context(SpanContext::new(
///     TraceId::from(0x80f198ee56343ba864fe8b2a57d3eff7),
///     SpanId::from(0xe457b5a2e4d86bd1),
///     TraceFlags::SAMPLED,
///     true,
///     TraceState::NONE,
/// ));
/// let mut headers = HashMap::new();
/// B3Propagator::with_encoding(B3Encoding::SingleAndMultipleHeaders)
///     .inject_context(&cx, &mut headers);
/// assert_eq!(
///     headers["b3"],
///     "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"
/// );
/// assert_eq!(headers["x-b3-traceid"], "80f198ee56343ba864fe8b2a57d3eff7");
/// assert_eq!(headers["x-b3-spanid"], "e457b5a2e4d86bd1");
/// assert_eq!(headers["x-b3-sampled"], "1");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum B3Encoding {
    /// The single `b3` header (`OTEL_PROPAGATORS` name `b3`).
    #[default]
    SingleHeader,
    /// `X-B3-TraceId`, `X-B3-SpanId` and `X-B3-Sampled` or `X-B3-Flags`
    /// (`OTEL_PROPAGATORS` name `b3multi`).
    MultipleHeaders,
    /// Both forms, for peers of either kind.
    SingleAndMultipleHeaders,
}

/// Propagates a span context in Zipkin's B3 headers.
///
/// Use it through [`Propagators`](super::Propagators) (names `b3` and `b3multi`) or alone.
///
/// Extraction reads the single header `b3: {trace-id}-{span-id}[-{sampling}[-{parent-id}]]`
/// first and, when it is missing or invalid, the multiple headers `X-B3-TraceId`,
/// `X-B3-SpanId`, `X-B3-Sampled` and `X-B3-Flags`. Ids are lower-case hex; a 64-bit trace id
/// (16 digits) is left-padded with zeros; all-zero ids are invalid. Sampling is `1` (accept),
/// `0` (deny) or `d` (debug) in the single header; `X-B3-Sampled` is `1`/`0` (or the legacy
/// `true`/`false`, anything else invalidates the headers) and `X-B3-Flags: 1` is debug.
/// Debug implies sampled, and is sent on as debug by this propagator and by
/// [`JaegerPropagator`](super::JaegerPropagator). A missing sampling decision ("deferred")
/// cannot be represented by OpenTelemetry's flags and is read as not sampled, as the Java
/// implementation does. A sampling-only `b3: 0` carries no ids and is ignored. The parent
/// span id is checked in the single header and otherwise ignored; it is never sent.
///
/// Injection writes the form(s) chosen by [`B3Encoding`], always with a sampling decision, and
/// nothing for an invalid span context.
///
/// ```
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::TraceContextExt;
/// use otel_core::propagation::B3Propagator;
/// use std::collections::HashMap;
///
/// let mut headers = HashMap::new();
/// headers.insert(
///     "b3".to_owned(),
///     "80f198ee56343ba8-e457b5a2e4d86bd1-1".to_owned(),
/// );
/// let cx = B3Propagator::single_header().extract(&headers);
/// assert_eq!(
///     cx.span().span_context().trace_id().to_string(),
///     "000000000000000080f198ee56343ba8"
/// );
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct B3Propagator {
    encoding: B3Encoding,
}

/// A sampling decision as B3 writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sampling {
    Deferred,
    Accept,
    Deny,
    Debug,
}

/// What the B3 headers carried.
pub(crate) type Extracted = (TraceId, SpanId, Sampling);

fn trace_id(s: &str) -> Option<TraceId> {
    if s.len() != 16 && s.len() != 32 {
        return None;
    }
    parse_hex_u128(s.as_bytes(), HexCase::Lower)
        .filter(|id| *id != 0)
        .map(TraceId::from)
}

fn span_id(s: &str) -> Option<SpanId> {
    if s.len() != 16 {
        return None;
    }
    parse_hex_u64(s.as_bytes(), HexCase::Lower)
        .filter(|id| *id != 0)
        .map(SpanId::from)
}

/// Parses a single `b3` header value.
pub(crate) fn parse_single(value: &str) -> Option<Extracted> {
    let value = trim_ows(value);
    if value.len() > MAX_SINGLE_LEN {
        return None;
    }
    let mut parts = value.split('-');
    let trace = trace_id(parts.next()?)?;
    let span = span_id(parts.next()?)?;
    let sampling = match parts.next() {
        None => Sampling::Deferred,
        Some("1") => Sampling::Accept,
        Some("0") => Sampling::Deny,
        Some("d") => Sampling::Debug,
        Some(_) => return None,
    };
    if let Some(parent) = parts.next() {
        span_id(parent)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some((trace, span, sampling))
}

/// Parses the multiple `X-B3-*` headers.
pub(crate) fn parse_multi(extractor: &dyn Extractor) -> Option<Extracted> {
    let trace = trace_id(trim_ows(extractor.get(TRACE_ID)?))?;
    let span = span_id(trim_ows(extractor.get(SPAN_ID)?))?;
    let sampled = match extractor.get(SAMPLED).map(trim_ows) {
        None => Sampling::Deferred,
        Some("1" | "true") => Sampling::Accept,
        Some("0" | "false") => Sampling::Deny,
        Some(_) => return None,
    };
    let sampling = match extractor.get(FLAGS).map(trim_ows) {
        Some("1") => Sampling::Debug,
        _ => sampled,
    };
    Some((trace, span, sampling))
}

impl B3Propagator {
    /// Creates a propagator that writes the single `b3` header.
    ///
    /// ```
    /// use otel_core::propagation::{B3Encoding, B3Propagator};
    ///
    /// assert_eq!(B3Propagator::new().encoding(), B3Encoding::SingleHeader);
    /// ```
    pub const fn new() -> Self {
        Self::single_header()
    }

    /// Creates a propagator that writes the single `b3` header (`OTEL_PROPAGATORS=b3`).
    ///
    /// ```
    /// use opentelemetry::propagation::TextMapPropagator;
    /// use otel_core::propagation::B3Propagator;
    /// use std::collections::HashMap;
    ///
    /// let b3 = B3Propagator::single_header();
    /// assert_eq!(b3.fields().collect::<Vec<_>>(), ["b3"]);
    ///
    /// // Extraction reads either form whatever the encoding.
    /// let mut multi = HashMap::new();
    /// multi.insert(
    ///     "x-b3-traceid".to_owned(),
    ///     "80f198ee56343ba864fe8b2a57d3eff7".to_owned(),
    /// );
    /// multi.insert("x-b3-spanid".to_owned(), "e457b5a2e4d86bd1".to_owned());
    /// multi.insert("x-b3-sampled".to_owned(), "1".to_owned());
    /// let cx = b3.extract(&multi);
    /// let mut out = HashMap::new();
    /// b3.inject_context(&cx, &mut out);
    /// assert_eq!(
    ///     out["b3"],
    ///     "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"
    /// );
    /// ```
    pub const fn single_header() -> Self {
        Self::with_encoding(B3Encoding::SingleHeader)
    }

    /// Creates a propagator that writes the `X-B3-*` headers (`OTEL_PROPAGATORS=b3multi`).
    ///
    /// ```
    /// use opentelemetry::propagation::TextMapPropagator;
    /// use otel_core::propagation::B3Propagator;
    /// use std::collections::HashMap;
    ///
    /// let b3multi = B3Propagator::multiple_headers();
    /// let mut incoming = HashMap::new();
    /// incoming.insert(
    ///     "b3".to_owned(),
    ///     "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d".to_owned(),
    /// );
    /// let cx = b3multi.extract(&incoming);
    ///
    /// let mut out = HashMap::new();
    /// b3multi.inject_context(&cx, &mut out);
    /// assert_eq!(out["x-b3-traceid"], "80f198ee56343ba864fe8b2a57d3eff7");
    /// assert_eq!(out["x-b3-flags"], "1"); // debug is sent on as debug
    /// assert!(!out.contains_key("b3"));
    /// ```
    pub const fn multiple_headers() -> Self {
        Self::with_encoding(B3Encoding::MultipleHeaders)
    }

    /// Creates a propagator that writes the headers `encoding` names.
    ///
    /// ```
    /// use opentelemetry::propagation::TextMapPropagator;
    /// use otel_core::propagation::{B3Encoding, B3Propagator};
    ///
    /// let both = B3Propagator::with_encoding(B3Encoding::SingleAndMultipleHeaders);
    /// assert_eq!(both.encoding(), B3Encoding::SingleAndMultipleHeaders);
    /// assert_eq!(both.fields().count(), 5); // b3 and the four X-B3-* headers
    /// ```
    pub const fn with_encoding(encoding: B3Encoding) -> Self {
        Self { encoding }
    }

    /// The headers this propagator writes.
    ///
    /// ```
    /// use otel_core::propagation::{B3Encoding, B3Propagator};
    ///
    /// assert_eq!(
    ///     B3Propagator::multiple_headers().encoding(),
    ///     B3Encoding::MultipleHeaders
    /// );
    /// assert_eq!(B3Propagator::default().encoding(), B3Encoding::SingleHeader);
    /// ```
    pub const fn encoding(&self) -> B3Encoding {
        self.encoding
    }
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let span_context = span.span_context();
        if !span_context.is_valid() {
            return;
        }
        let debug = is_debug(cx, span_context);
        let sampled = span_context.is_sampled();
        if matches!(
            self.encoding,
            B3Encoding::SingleHeader | B3Encoding::SingleAndMultipleHeaders
        ) {
            let decision = match (debug, sampled) {
                (true, _) => 'd',
                (false, true) => '1',
                (false, false) => '0',
            };
            let mut value = String::with_capacity(51);
            // Writing to a String cannot fail.
            let _ = write!(
                value,
                "{:032x}-{:016x}-{decision}",
                span_context.trace_id(),
                span_context.span_id()
            );
            injector.set(B3, value);
        }
        if matches!(
            self.encoding,
            B3Encoding::MultipleHeaders | B3Encoding::SingleAndMultipleHeaders
        ) {
            injector.set(TRACE_ID, format!("{:032x}", span_context.trace_id()));
            injector.set(SPAN_ID, format!("{:016x}", span_context.span_id()));
            if debug {
                // Debug implies accept: X-B3-Sampled is not sent with it.
                injector.set(FLAGS, "1".to_owned());
            } else {
                injector.set(SAMPLED, if sampled { "1" } else { "0" }.to_owned());
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let extracted = extractor
            .get(B3)
            .and_then(parse_single)
            .or_else(|| parse_multi(extractor));
        let Some((trace_id, span_id, sampling)) = extracted else {
            return cx.clone();
        };
        let flags = match sampling {
            Sampling::Accept | Sampling::Debug => TraceFlags::SAMPLED,
            Sampling::Deny | Sampling::Deferred => TraceFlags::NOT_SAMPLED,
        };
        let span_context = SpanContext::new(trace_id, span_id, flags, true, TraceState::NONE);
        let cx = cx.with_remote_span_context(span_context);
        if sampling == Sampling::Debug {
            with_debug(cx, trace_id)
        } else {
            cx
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(match self.encoding {
            B3Encoding::SingleHeader => SINGLE_FIELDS.as_slice(),
            B3Encoding::MultipleHeaders => MULTI_FIELDS.as_slice(),
            B3Encoding::SingleAndMultipleHeaders => ALL_FIELDS.as_slice(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::type_complexity)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SHORT_TRACE: &str = "a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";
    const PARENT: &str = "00000000000000cd";

    fn ids(trace: &str) -> (TraceId, SpanId) {
        (
            TraceId::from(u128::from_str_radix(trace, 16).unwrap()),
            SpanId::from(u64::from_str_radix(SPAN, 16).unwrap()),
        )
    }

    #[test]
    fn single_header_rows() {
        use Sampling::*;
        #[rustfmt::skip]
        let rows: Vec<(String, Option<(&str, Sampling)>, &str)> = vec![
            (format!("{TRACE}-{SPAN}"), Some((TRACE, Deferred)), "no sampling state"),
            (format!("{TRACE}-{SPAN}-1"), Some((TRACE, Accept)), "accept"),
            (format!("{TRACE}-{SPAN}-0"), Some((TRACE, Deny)), "deny"),
            (format!("{TRACE}-{SPAN}-d"), Some((TRACE, Debug)), "debug"),
            (format!("{TRACE}-{SPAN}-1-{PARENT}"), Some((TRACE, Accept)), "with parent id"),
            (format!("{SHORT_TRACE}-{SPAN}-1"), Some((SHORT_TRACE, Accept)), "64-bit trace id"),
            (format!(" {TRACE}-{SPAN}-1\t"), Some((TRACE, Accept)), "OWS"),
            ("0".to_owned(), None, "sampling only"),
            ("1".to_owned(), None, "sampling only"),
            ("d".to_owned(), None, "sampling only"),
            ("-".to_owned(), None, "just a dash"),
            (String::new(), None, "empty"),
            (format!("ab{TRACE}-{SPAN}-1"), None, "trace id of 34 digits"),
            (format!("{}-{SPAN}-1", &TRACE[..31]), None, "trace id of 31 digits"),
            (format!("{TRACE}-{SPAN}00-1"), None, "span id of 18 digits"),
            (format!("00-{TRACE}-{SPAN}-01"), None, "a traceparent"),
            (format!("{TRACE}-{SPAN}-1-{PARENT}00"), None, "parent id of 18 digits"),
            (format!("{TRACE}-{SPAN}-1-{PARENT}-x"), None, "extra field"),
            (format!("{}-{SPAN}-1", TRACE.to_uppercase()), None, "upper-case trace id"),
            (format!("{TRACE}-{}-1", SPAN.to_uppercase()), None, "upper-case span id"),
            (format!("q{}-{SPAN}-1", &TRACE[1..]), None, "bad trace id digit"),
            (format!("{TRACE}-{SPAN}-q"), None, "bad sampling state"),
            (format!("{TRACE}-{SPAN}-true"), None, "'true' is for X-B3-Sampled only"),
            (format!("{}-{SPAN}-1", "0".repeat(32)), None, "zero trace id"),
            (format!("{TRACE}-{}-1", "0".repeat(16)), None, "zero span id"),
        ];
        for (value, expected, why) in rows {
            let expected = expected.map(|(trace, sampling)| {
                let (t, s) = ids(trace);
                (t, s, sampling)
            });
            assert_eq!(parse_single(&value), expected, "{why}: {value:?}");
        }
    }

    #[test]
    fn multiple_header_rows() {
        use Sampling::*;
        type Row<'a> = ([Option<&'a str>; 4], Option<(&'a str, Sampling)>, &'a str);
        #[rustfmt::skip]
        let rows: Vec<Row<'_>> = vec![
            ([Some(TRACE), Some(SPAN), None, None], Some((TRACE, Deferred)), "no sampling state"),
            ([Some(TRACE), Some(SPAN), Some("1"), None], Some((TRACE, Accept)), "accept"),
            ([Some(TRACE), Some(SPAN), Some("0"), None], Some((TRACE, Deny)), "deny"),
            ([Some(TRACE), Some(SPAN), Some("true"), None], Some((TRACE, Accept)), "legacy true"),
            ([Some(TRACE), Some(SPAN), Some("false"), None], Some((TRACE, Deny)), "legacy false"),
            ([Some(TRACE), Some(SPAN), None, Some("1")], Some((TRACE, Debug)), "debug"),
            ([Some(TRACE), Some(SPAN), Some("0"), Some("1")], Some((TRACE, Debug)), "debug overrides sampled"),
            ([Some(TRACE), Some(SPAN), Some("1"), Some("2")], Some((TRACE, Accept)), "unknown flags ignored"),
            ([Some(SHORT_TRACE), Some(SPAN), Some("1"), None], Some((SHORT_TRACE, Accept)), "64-bit trace id"),
            ([Some(TRACE), Some(SPAN), Some("yes"), None], None, "bad sampled value"),
            ([None, Some(SPAN), Some("1"), None], None, "no trace id"),
            ([Some(TRACE), None, Some("1"), None], None, "no span id"),
            ([None, None, Some("0"), None], None, "sampling only"),
            ([Some("4BF92F3577B34DA6A3CE929D0E0E4736"), Some(SPAN), None, None], None, "upper case"),
        ];
        for (headers, expected, why) in rows {
            let carrier: HashMap<String, String> = [TRACE_ID, SPAN_ID, SAMPLED, FLAGS]
                .iter()
                .zip(headers)
                .filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), v.to_owned())))
                .collect();
            let expected = expected.map(|(trace, sampling)| {
                let (t, s) = ids(trace);
                (t, s, sampling)
            });
            assert_eq!(parse_multi(&carrier), expected, "{why}: {headers:?}");
        }
    }

    fn round_trip(encoding: B3Encoding, input: &[(&str, &str)]) -> HashMap<String, String> {
        let propagator = B3Propagator::with_encoding(encoding);
        let carrier: HashMap<String, String> = input
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let cx = propagator.extract_with_context(&Context::new(), &carrier);
        let mut out = HashMap::new();
        propagator.inject_context(&cx, &mut out);
        out
    }

    #[test]
    fn single_header_wins_and_invalid_single_falls_back() {
        let single = format!("{TRACE}-{SPAN}-1");
        let other = "1111111111111111";
        let out = round_trip(
            B3Encoding::SingleHeader,
            &[("b3", &single), (TRACE_ID, other), (SPAN_ID, other)],
        );
        assert_eq!(out.get("b3"), Some(&single));
        let out = round_trip(
            B3Encoding::SingleHeader,
            &[
                ("b3", "garbage"),
                (TRACE_ID, TRACE),
                (SPAN_ID, SPAN),
                (SAMPLED, "1"),
            ],
        );
        assert_eq!(out.get("b3"), Some(&single));
    }

    #[test]
    fn injection_forms() {
        let out = round_trip(
            B3Encoding::MultipleHeaders,
            &[("b3", &format!("{SHORT_TRACE}-{SPAN}-0"))],
        );
        let expected: HashMap<String, String> = [
            (TRACE_ID, format!("0000000000000000{SHORT_TRACE}")),
            (SPAN_ID, SPAN.to_owned()),
            (SAMPLED, "0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(out, expected);

        let out = round_trip(
            B3Encoding::SingleAndMultipleHeaders,
            &[("b3", &format!("{TRACE}-{SPAN}-d"))],
        );
        assert_eq!(
            out.get("b3"),
            Some(&format!("{TRACE}-{SPAN}-d")),
            "debug sent on"
        );
        assert_eq!(out.get(FLAGS).map(String::as_str), Some("1"));
        assert_eq!(out.get(SAMPLED), None, "no X-B3-Sampled with debug");

        let out = round_trip(
            B3Encoding::SingleHeader,
            &[("b3", &format!("{TRACE}-{SPAN}"))],
        );
        assert_eq!(
            out.get("b3"),
            Some(&format!("{TRACE}-{SPAN}-0")),
            "deferred is not sampled"
        );
    }

    #[test]
    fn debug_is_tied_to_its_trace() {
        let propagator = B3Propagator::single_header();
        let mut carrier = HashMap::new();
        carrier.insert("b3".to_owned(), format!("{TRACE}-{SPAN}-d"));
        let cx = propagator.extract_with_context(&Context::new(), &carrier);
        let other = SpanContext::new(
            TraceId::from(5),
            SpanId::from(6),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        );
        let mut out = HashMap::new();
        propagator.inject_context(&cx.with_remote_span_context(other), &mut out);
        assert_eq!(
            out.get("b3").map(String::as_str),
            Some("00000000000000000000000000000005-0000000000000006-1")
        );
    }

    #[test]
    fn nothing_injected_for_invalid_span_context() {
        let mut out = HashMap::new();
        B3Propagator::with_encoding(B3Encoding::SingleAndMultipleHeaders)
            .inject_context(&Context::new(), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn fields_follow_encoding() {
        let fields = |e| {
            B3Propagator::with_encoding(e)
                .fields()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(B3Encoding::SingleHeader), ["b3"]);
        assert_eq!(
            fields(B3Encoding::MultipleHeaders),
            ["x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags"]
        );
        assert_eq!(fields(B3Encoding::SingleAndMultipleHeaders).len(), 5);
    }
}
