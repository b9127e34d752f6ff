//! The one place where this crate touches the OpenTelemetry recording machinery.
//!
//! Spans are started and ended through `otel_core::instrument` ([`Operation`] wraps its
//! operation), durations go to `otel_core::metrics` exemplar-tagged histograms (the
//! exemplar points at the request's span when it is sampled) and context crosses process
//! boundaries through `otel_core::propagation`'s header carriers. The layers only use what
//! this module exposes.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue, Value};
use otel_core::instrument::{Instrumentation as CoreInstrumentation, InstrumentationBuilder};
use otel_core::propagation::{HeaderExtractor, HeaderInjector};

pub use otel_core::metrics::Metrics;
pub(crate) use otel_core::metrics::{
    BoundCache, BoundHistogram, BoundUpDownCounter, Histogram, UpDownCounter,
};

/// A builder for the instrumentation (tracer + metrics) of this crate's scope.
pub(crate) fn instrumentation_builder() -> InstrumentationBuilder {
    CoreInstrumentation::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
}

/// The tracer and metrics the layers record through.
#[derive(Clone, Debug)]
pub(crate) struct Instrumentation(CoreInstrumentation);

impl Instrumentation {
    pub(crate) fn new(inner: CoreInstrumentation) -> Self {
        Self(inner)
    }

    /// The metrics registry instruments are created from.
    pub(crate) fn metrics(&self) -> &Metrics {
        self.0.metrics()
    }

    /// Whether spans are known to go nowhere (the API's no-op tracer): then nothing is built
    /// before a span is known to record.
    pub(crate) fn is_noop(&self) -> bool {
        self.0.is_noop()
    }

    /// Starts a span named `name` of `kind` as a child of `parent`, with `attributes`
    /// (visible to the sampler).
    ///
    /// Callers pass the attributes and the final name here whenever the sampler makes a
    /// real decision (no parent, a remote parent, or a sampled parent, the semantic
    /// conventions asking for sampling-relevant attributes at span creation); only under an
    /// unsampled parent, whose decision samplers follow, do they pass none and add them when
    /// [`Operation::is_recording`] is true, so such a call builds none.
    pub(crate) fn start(
        &self,
        parent: &Context,
        name: Cow<'static, str>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Operation {
        let op = self.0.start(parent, name, kind, attributes);
        let recording = op.is_recording();
        Operation {
            inner: Inner::Span(Box::new(op)),
            recording,
        }
    }

    /// A duration histogram in seconds (the semantic conventions' bucket advice is
    /// `otel_core`'s default for unit `s`).
    pub(crate) fn duration_histogram(
        &self,
        name: &'static str,
        description: &'static str,
    ) -> Histogram {
        self.metrics()
            .f64_histogram(name)
            .with_unit("s")
            .with_description(description)
            .build()
    }

    /// An up-down counter (in-flight requests).
    pub(crate) fn up_down_counter(
        &self,
        name: &'static str,
        unit: &'static str,
        description: &'static str,
    ) -> UpDownCounter {
        self.metrics()
            .i64_up_down_counter(name)
            .with_unit(unit)
            .with_description(description)
            .build()
    }
}

/// How a new span relates to its parent's sampling decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParentSampling {
    /// No valid parent, or a local one: ask the sampler.
    Unknown,
    /// A remote parent that sampled the trace: the span will very likely be recorded.
    Sampled,
    /// A remote parent that did not sample the trace.
    Unsampled,
}

impl ParentSampling {
    /// Whether `parent` holds a valid span context (local or remote) that is not sampled:
    /// samplers follow that decision, so a child span's attributes are built only if it
    /// records anyway.
    pub(crate) fn unsampled_parent(parent: &Context) -> bool {
        let span = parent.span();
        let sc = span.span_context();
        sc.is_valid() && !sc.is_sampled()
    }

    pub(crate) fn of(parent: &Context) -> Self {
        let span = parent.span();
        let sc = span.span_context();
        if !sc.is_valid() || !sc.is_remote() {
            ParentSampling::Unknown
        } else if sc.is_sampled() {
            ParentSampling::Sampled
        } else {
            ParentSampling::Unsampled
        }
    }
}

#[derive(Debug)]
enum Inner {
    /// A span of our own (`otel_core`'s operation). Boxed: the operation is a few hundred
    /// bytes, and the request state holding it moves several times per request (service
    /// future, response body), which costs more than the one allocation, and the unsampled
    /// case stays small.
    Span(Box<otel_core::instrument::Operation>),
    /// No span: the request runs in its (unsampled) parent's context.
    NoSpan { cx: Context, start: Instant },
}

/// One in-flight request or call: its span (or its parent's context) and its start time.
#[derive(Debug)]
pub(crate) struct Operation {
    inner: Inner,
    recording: bool,
}

impl Operation {
    /// An operation without a span of its own, for a request whose remote parent did not
    /// sample the trace: inner work runs in the parent's context (so it is not sampled
    /// either) and only the duration is recorded.
    pub(crate) fn without_span(parent: Context) -> Self {
        Operation {
            inner: Inner::NoSpan {
                cx: parent,
                start: Instant::now(),
            },
            recording: false,
        }
    }

    /// The context to run inner work in: the span's, or the parent's without a span.
    pub(crate) fn context(&self) -> &Context {
        match &self.inner {
            Inner::Span(op) => op.context(),
            Inner::NoSpan { cx, .. } => cx,
        }
    }

    /// Whether the span records attributes (it is sampled); skip attribute work when false.
    pub(crate) fn is_recording(&self) -> bool {
        self.recording
    }

    /// Whether a span of our own was started (recording or not); `false` for
    /// [`Operation::without_span`].
    pub(crate) fn has_span(&self) -> bool {
        matches!(self.inner, Inner::Span(_))
    }

    /// Adds attributes to the span (one lock for all of them).
    pub(crate) fn set_attributes(&self, attributes: Vec<KeyValue>) {
        if self.recording {
            self.context().span().set_attributes(attributes);
        }
    }

    /// Adds one attribute to the span.
    pub(crate) fn set_attribute(&mut self, kv: KeyValue) {
        if let Inner::Span(op) = &mut self.inner {
            op.set_attribute(kv);
        }
    }

    /// Renames the span (used once the route or RPC method is known).
    pub(crate) fn update_name(&mut self, name: String) {
        if let Inner::Span(op) = &mut self.inner {
            op.update_name(name);
        }
    }

    /// Sets `error.type`, span status Error with `message`, and records an `exception` event.
    pub(crate) fn record_error(
        &mut self,
        error_type: impl Into<Value>,
        message: Cow<'static, str>,
    ) {
        if let Inner::Span(op) = &mut self.inner {
            op.record_error(error_type, message);
        }
    }

    /// Sets span status Error with `description` (no event, no `error.type`).
    pub(crate) fn set_error_status(&mut self, description: Cow<'static, str>) {
        if let Inner::Span(op) = &mut self.inner {
            op.set_status(Status::Error { description });
        }
    }

    /// Ends the span and records the duration in seconds into `histogram` with
    /// `attributes`; the exemplar points at the span when it is sampled.
    pub(crate) fn end_with_duration(self, histogram: &Histogram, attributes: &[KeyValue]) {
        match self.inner {
            Inner::Span(op) => (*op).end_with_duration(histogram, attributes),
            Inner::NoSpan { cx, start } => {
                histogram.record_with_context(start.elapsed().as_secs_f64(), attributes, &cx);
            }
        }
    }
}

impl Operation {
    /// Ends the span and records the duration in seconds into the bound series
    /// `histogram`; the exemplar points at the span when it is sampled.
    pub(crate) fn end_with_bound(self, histogram: &BoundHistogram) {
        match self.inner {
            Inner::Span(op) => (*op).end_with_bound(histogram),
            Inner::NoSpan { cx, start } => {
                histogram.record_with_context(start.elapsed().as_secs_f64(), &cx);
            }
        }
    }
}

/// Propagator used to extract and inject context: the global one unless overridden.
#[derive(Clone, Default)]
pub(crate) struct Propagation {
    custom: Option<Arc<dyn TextMapPropagator + Send + Sync>>,
    /// The custom propagator is W3C trace-context (optionally with baggage).
    custom_is_w3c: bool,
}

impl fmt::Debug for Propagation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Propagation")
            .field("custom", &self.custom.is_some())
            .finish()
    }
}

impl Propagation {
    pub(crate) fn new(custom: Option<Arc<dyn TextMapPropagator + Send + Sync>>) -> Self {
        let custom_is_w3c = custom.as_ref().is_some_and(|p| is_w3c(p.as_ref()));
        Self {
            custom,
            custom_is_w3c,
        }
    }

    /// The custom propagator, if any.
    fn custom(&self) -> Option<&dyn TextMapPropagator> {
        self.custom.as_deref().map(|p| p as &dyn TextMapPropagator)
    }

    /// Parent context found in `headers` (on top of the current context).
    ///
    /// When the propagator is W3C trace-context (alone or with baggage, recognised by the
    /// fields it declares) and the request carries a single `traceparent` and neither
    /// `tracestate` nor `baggage`, the header is parsed here without the generic
    /// propagator machinery (same acceptance rules, see the tests); anything else goes
    /// through the propagator.
    pub(crate) fn extract(&self, headers: &HeaderMap) -> Context {
        let w3c = match &self.custom {
            Some(_) => self.custom_is_w3c,
            None => opentelemetry::global::get_text_map_propagator(|p| is_w3c(p)),
        };
        if w3c && let Some(cx) = fast_w3c_extract(headers) {
            return cx;
        }
        otel_core::propagation::extract_context_with(self.custom(), &HeaderExtractor(headers))
    }

    /// Writes `cx` into `headers`.
    pub(crate) fn inject(&self, cx: &Context, headers: &mut HeaderMap) {
        otel_core::propagation::inject_context_with(
            self.custom(),
            cx,
            &mut HeaderInjector(headers),
        );
    }
}

/// Whether `propagator` declares exactly the W3C trace-context fields (plus, optionally,
/// W3C baggage).
fn is_w3c(propagator: &dyn TextMapPropagator) -> bool {
    let mut has_traceparent = false;
    for field in propagator.fields() {
        match field {
            "traceparent" => has_traceparent = true,
            "tracestate" | "baggage" => {}
            _ => return false,
        }
    }
    has_traceparent
}

/// The context of a lone version-00 `traceparent`, or `None` to use the propagator.
fn fast_w3c_extract(headers: &HeaderMap) -> Option<Context> {
    // One pass over the (few) headers compares names instead of hashing three lookups.
    let mut traceparent = None;
    for (name, value) in headers {
        let name = name.as_str();
        if name == "traceparent" {
            if traceparent.is_some() {
                return None;
            }
            traceparent = Some(value);
        } else if name == "tracestate" || name == "baggage" {
            return None;
        }
    }
    let Some(value) = traceparent else {
        return Some(Context::current());
    };
    let span_context = parse_traceparent(value.as_bytes())?;
    Some(Context::map_current(|cx| {
        cx.with_remote_span_context(span_context)
    }))
}

/// Parses a version-00 `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, lower-case hex,
/// non-zero ids) into a remote span context; `None` for anything else.
pub(crate) fn parse_traceparent(value: &[u8]) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    /// Lower-case hex digit values; 0xff marks every other byte.
    const HEX: [u8; 256] = {
        let mut table = [0xff_u8; 256];
        let mut i = 0;
        while i < 10 {
            table[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            table[b'a' as usize + i] = 10 + i as u8;
            i += 1;
        }
        table
    };

    /// Up to 16 lower-case hex digits as a `u64` (for the two flag digits).
    fn hex(bytes: &[u8]) -> Option<u64> {
        let mut out: u64 = 0;
        let mut invalid: u8 = 0;
        for &b in bytes {
            let digit = HEX[usize::from(b)];
            invalid |= digit;
            out = (out << 4) | u64::from(digit & 0x0f);
        }
        // Valid digits are < 16, so any 0xff shows up in the high bits of `invalid`.
        (invalid & 0xf0 == 0).then_some(out)
    }

    /// Sixteen lower-case hex digits as a `u64`, eight at a time.
    fn hex16(bytes: &[u8]) -> Option<u64> {
        let (high, low) = bytes.split_at_checked(8)?;
        Some((u64::from(hex8(high)?) << 32) | u64::from(hex8(low)?))
    }

    /// Eight lower-case hex digits as a `u32`, all at once in one `u64` (SWAR): the ids are
    /// 48 of the 55 bytes, and this is most of what an unsampled request costs to parse.
    fn hex8(bytes: &[u8]) -> Option<u32> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = ONES * 0x80;
        let v = u64::from_be_bytes(bytes.try_into().ok()?);
        // With every byte below 0x80, adding at most 0x50 to each cannot carry into the next.
        if v & HIGH != 0 {
            return None;
        }
        // `v + (0x80 - n)` sets a byte's high bit exactly when the byte is >= n.
        let at_least = |n: u64| v.wrapping_add(ONES * (0x80 - n)) & HIGH;
        let digit = at_least(b'0'.into()) & !at_least(u64::from(b'9') + 1);
        let letter = at_least(b'a'.into()) & !at_least(u64::from(b'f') + 1);
        if digit | letter != HIGH {
            return None;
        }
        // Each byte's value: its low nibble, plus 9 for a letter.
        let mut x = (v & (ONES * 0x0f)) + (letter >> 7) * 9;
        // Pack the eight nibbles (first digit in the highest byte) into 32 bits.
        x = (x | (x >> 4)) & 0x00ff_00ff_00ff_00ff;
        x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
        x = (x | (x >> 16)) & 0xffff_ffff;
        u32::try_from(x).ok()
    }

    // Optional whitespace around the value, as otel-core's W3C propagator trims it.
    let start = value
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |e| e + 1);
    let value = &value[start..end];
    if value.len() != 55 || &value[..3] != b"00-" || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let trace_id = (u128::from(hex16(&value[3..19])?) << 64) | u128::from(hex16(&value[19..35])?);
    let span_id = hex16(&value[36..52])?;
    let flags = u8::try_from(hex(&value[53..55])?).ok()?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some(SpanContext::new(
        TraceId::from(trace_id),
        SpanId::from(span_id),
        // Sampled and random (W3C Trace Context Level 2); other bits are not defined.
        TraceFlags::new(flags & 0x03),
        true,
        TraceState::NONE,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use otel_core::propagation::{Propagators, TraceContextPropagator};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn propagations() -> [Propagation; 2] {
        [
            Propagation::new(Some(Arc::new(TraceContextPropagator::new()))),
            Propagation::new(Some(Arc::new(
                Propagators::from_names("tracecontext,baggage").unwrap(),
            ))),
        ]
    }

    /// The fast path must agree with otel-core's W3C propagator on every input.
    #[test]
    fn fast_traceparent_agrees_with_the_propagator() {
        let rows: &[(&str, &str)] = &[
            (
                "valid sampled",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            (
                "valid unsampled",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            ),
            (
                "random flag kept",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
            ),
            (
                "unknown flags dropped",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff",
            ),
            (
                "padded",
                " \t00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
            ),
            (
                "upper-case trace id",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            ),
            (
                "upper-case flags",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
            ),
            (
                "zero trace id",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            ),
            (
                "zero span id",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            ),
            (
                "version ff",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            (
                "future version with extra part",
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz",
            ),
            (
                "version 00 with extra part",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz",
            ),
            (
                "short trace id",
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            ),
            (
                "non-hex",
                "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            ),
            (
                "plus sign",
                "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            (
                "wrong separator",
                "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("empty", ""),
            ("garbage", "not a traceparent at all"),
        ];
        let reference = TraceContextPropagator::new();
        for p in propagations() {
            assert!(p.custom_is_w3c);
            for (why, value) in rows {
                let h = headers(&[("traceparent", value)]);
                let expected = reference.extract(&HeaderExtractor(&h));
                let got = p.extract(&h);
                assert_eq!(
                    got.span().span_context(),
                    expected.span().span_context(),
                    "{why}: {value:?}"
                );
            }
        }
    }

    /// Every single-byte change to a valid traceparent (every ASCII byte at every position:
    /// hex digits, their neighbours in the ASCII table, upper case), read as the reference
    /// propagator reads it.
    #[test]
    fn fast_traceparent_agrees_on_every_altered_byte() {
        let reference = TraceContextPropagator::new();
        let propagations = propagations();
        let mut fast = 0;
        for position in 0..55 {
            for byte in 0u8..=0x7f {
                let mut value = *b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
                value[position] = byte;
                let Ok(header) = http::HeaderValue::from_bytes(&value) else {
                    continue;
                };
                let mut h = HeaderMap::new();
                h.insert("traceparent", header);
                let expected = reference.extract(&HeaderExtractor(&h));
                let expected = expected.span().span_context().clone();
                // What the fast parse accepts, it reads as the reference does (what it
                // declines, a future version for example, goes to the propagator).
                if let Some(got) = parse_traceparent(&value) {
                    assert_eq!(got, expected, "{value:?}");
                    fast += 1;
                }
                for p in &propagations {
                    let got = p.extract(&h).span().span_context().clone();
                    assert_eq!(got, expected, "{value:?}");
                }
            }
        }
        // The valid variants: each hex digit position with each of its 16 lower-case digits.
        assert!(fast > 50 * 15, "{fast}");
    }

    proptest::proptest! {
        /// Random ids of hex digits: the same trace and span ids as the reference.
        #[test]
        fn fast_traceparent_reads_every_id(trace in "[0-9a-f]{32}", span in "[0-9a-f]{16}", flags in "[0-9a-f]{2}") {
            let value = format!("00-{trace}-{span}-{flags}");
            let mut h = HeaderMap::new();
            h.insert("traceparent", http::HeaderValue::from_str(&value).unwrap());
            let expected = TraceContextPropagator::new().extract(&HeaderExtractor(&h));
            let got = parse_traceparent(value.as_bytes());
            proptest::prop_assert_eq!(
                got.unwrap_or(opentelemetry::trace::SpanContext::NONE),
                expected.span().span_context().clone()
            );
        }
    }

    #[test]
    fn tracestate_baggage_and_repeats_go_through_the_propagator() {
        let [_, composite] = propagations();
        let h = headers(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "vendor=value"),
            ("baggage", "tenant=acme"),
        ]);
        let cx = composite.extract(&h);
        assert_eq!(
            cx.span().span_context().trace_state().get("vendor"),
            Some("value")
        );
        use opentelemetry::baggage::BaggageExt as _;
        assert_eq!(
            cx.baggage().get("tenant").map(|v| v.as_str().to_owned()),
            Some("acme".to_owned())
        );
        // Two traceparent headers are invalid: the propagator ignores both.
        let h = headers(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01",
            ),
        ]);
        assert!(fast_w3c_extract(&h).is_none());
        assert!(!composite.extract(&h).span().span_context().is_valid());
    }

    #[test]
    fn other_propagators_are_not_fast_pathed() {
        let b3 = Propagators::from_names("b3,tracecontext").unwrap();
        assert!(!is_w3c(&b3));
        assert!(is_w3c(&Propagators::from_names("tracecontext").unwrap()));
    }
}
