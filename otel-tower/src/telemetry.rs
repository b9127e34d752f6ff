//! The one place where this crate touches the OpenTelemetry recording machinery.
//!
//! Everything the layers record goes through this module: starting and ending spans
//! ([`Operation`]), the duration histograms and active-request counters ([`Metrics`],
//! [`Histogram`], [`UpDownCounter`]) and the header carriers used for propagation.
//!
//! The shapes mirror `otel_core::instrument`, `otel_core::metrics` and
//! `otel_core::propagation` (see the suite's `CORE_API.md`): when those land, this module
//! becomes a handful of re-exports and the layers do not change.
//!
//! Interim state: [`Metrics`] wraps an `opentelemetry` [`Meter`](opentelemetry::metrics::Meter),
//! so histograms are recorded through the metrics API but carry no exemplars yet (the span
//! context is passed to [`Histogram::record_with_context`] and ignored until `otel-core`'s
//! exemplar histogram replaces it).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, InstrumentationScope, KeyValue, Value};

/// Name of this crate, used as the instrumentation scope name.
const SCOPE_NAME: &str = env!("CARGO_PKG_NAME");
/// Version of this crate, used as the instrumentation scope version.
const SCOPE_VERSION: &str = env!("CARGO_PKG_VERSION");

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE_NAME)
        .with_version(SCOPE_VERSION)
        .with_schema_url(opentelemetry_semantic_conventions::SCHEMA_URL)
        .build()
}

/// The tracer the layers start spans with, behind one object-safe box.
#[derive(Clone)]
pub(crate) struct Instrumentation {
    tracer: Arc<opentelemetry::global::BoxedTracer>,
}

impl fmt::Debug for Instrumentation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumentation").finish_non_exhaustive()
    }
}

impl Instrumentation {
    /// Tracer from the global tracer provider installed at the time of the call.
    pub(crate) fn global() -> Self {
        Self {
            tracer: Arc::new(opentelemetry::global::tracer_with_scope(scope())),
        }
    }

    /// Tracer from `provider`.
    pub(crate) fn from_provider<P>(provider: &P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        let tracer = provider.tracer_with_scope(scope());
        Self {
            tracer: Arc::new(opentelemetry::global::BoxedTracer::new(Box::new(tracer))),
        }
    }

    /// Starts a span named `name` of `kind` as a child of `parent`, with `attributes`
    /// (visible to the sampler).
    ///
    /// Callers pass attributes here only when the span is expected to be sampled (the
    /// parent is); otherwise they pass none and add them when
    /// [`Operation::is_recording`] is true, so an unsampled request builds none.
    pub(crate) fn start(
        &self,
        parent: &Context,
        name: Cow<'static, str>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Operation {
        // One clock read serves as the span's start and the duration's origin, so the
        // histogram records exactly the span's duration.
        let start = SystemTime::now();
        let builder = SpanBuilder {
            name,
            span_kind: Some(kind),
            start_time: Some(start),
            attributes: (!attributes.is_empty()).then_some(attributes),
            ..SpanBuilder::default()
        };
        let span = self.tracer.build_with_context(builder, parent);
        let recording = opentelemetry::trace::Span::is_recording(&span);
        Operation {
            cx: parent.with_span(span),
            start,
            recording,
        }
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

/// One in-flight operation: its span (inside a [`Context`]) and its start time.
#[derive(Debug)]
pub(crate) struct Operation {
    cx: Context,
    start: SystemTime,
    recording: bool,
}

impl Operation {
    /// An operation without a span of its own, for a request whose remote parent did not
    /// sample the trace: inner work runs in the parent's context (so it is not sampled
    /// either) and only the duration is recorded.
    pub(crate) fn without_span(parent: Context) -> Self {
        Operation {
            cx: parent,
            start: SystemTime::now(),
            recording: false,
        }
    }

    /// The context holding this operation's span; attach it while running inner work.
    pub(crate) fn context(&self) -> &Context {
        &self.cx
    }

    /// Whether the span records attributes (it is sampled); skip attribute work when false.
    pub(crate) fn is_recording(&self) -> bool {
        self.recording
    }

    /// Adds attributes to the span.
    pub(crate) fn set_attributes(&self, attributes: Vec<KeyValue>) {
        self.cx.span().set_attributes(attributes);
    }

    /// Adds one attribute to the span.
    pub(crate) fn set_attribute(&self, kv: KeyValue) {
        self.cx.span().set_attribute(kv);
    }

    /// Renames the span (used once the route or RPC method is known).
    pub(crate) fn update_name(&self, name: String) {
        self.cx.span().update_name(name);
    }

    /// Sets `error.type`, span status Error with `message`, and records an `exception` event.
    pub(crate) fn record_error(&self, error_type: impl Into<Value>, message: Cow<'static, str>) {
        let span = self.cx.span();
        if self.recording {
            let error_type = error_type.into();
            span.add_event(
                "exception",
                vec![
                    KeyValue::new(
                        opentelemetry_semantic_conventions::attribute::EXCEPTION_TYPE,
                        error_type.clone(),
                    ),
                    KeyValue::new(
                        opentelemetry_semantic_conventions::attribute::EXCEPTION_MESSAGE,
                        message.clone(),
                    ),
                ],
            );
            span.set_attribute(KeyValue::new(
                opentelemetry_semantic_conventions::attribute::ERROR_TYPE,
                error_type,
            ));
        }
        span.set_status(Status::Error {
            description: message,
        });
    }

    /// Sets span status Error with `description` (no event, no `error.type`).
    pub(crate) fn set_error_status(&self, description: Cow<'static, str>) {
        self.cx.span().set_status(Status::Error { description });
    }

    /// Time since the operation started.
    #[allow(dead_code)]
    pub(crate) fn elapsed(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.start)
            .unwrap_or_default()
    }

    /// Ends the span and records its duration in seconds into `histogram` with
    /// `attributes`.
    pub(crate) fn end_with_duration(self, histogram: &Histogram, attributes: &[KeyValue]) {
        let end = SystemTime::now();
        let elapsed = end.duration_since(self.start).unwrap_or_default();
        histogram.record_with_context(elapsed.as_secs_f64(), attributes, &self.cx);
        self.cx.span().end_with_timestamp(end);
    }
}

/// Handle on the meter the layers create their instruments from.
///
/// Interim: wraps an `opentelemetry` [`Meter`](opentelemetry::metrics::Meter). It becomes a
/// re-export of `otel_core::metrics::Metrics` (exemplar-tagged histograms) once that lands;
/// [`Metrics::global`] keeps its meaning.
#[derive(Clone)]
pub struct Metrics {
    meter: opentelemetry::metrics::Meter,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::global()
    }
}

impl Metrics {
    /// Instruments from the global meter provider installed at the time of the call.
    pub fn global() -> Self {
        Self {
            meter: opentelemetry::global::meter_with_scope(scope()),
        }
    }

    /// Instruments from `provider` (for example an SDK meter provider in tests).
    pub fn from_meter_provider<P>(provider: &P) -> Self
    where
        P: opentelemetry::metrics::MeterProvider,
    {
        Self {
            meter: provider.meter_with_scope(scope()),
        }
    }

    /// A duration histogram in seconds with the HTTP/RPC semantic-convention bucket advice.
    pub(crate) fn duration_histogram(
        &self,
        name: &'static str,
        description: &'static str,
    ) -> Histogram {
        Histogram(
            self.meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
        )
    }

    /// The in-flight request counter `name`, one series per method and scheme.
    pub(crate) fn active_requests(
        &self,
        name: &'static str,
        description: &'static str,
    ) -> ActiveRequests {
        let counts: Arc<[AtomicI64; ACTIVE_SLOTS]> =
            Arc::new(std::array::from_fn(|_| AtomicI64::new(0)));
        let seen: Arc<[std::sync::atomic::AtomicBool; ACTIVE_SLOTS]> =
            Arc::new(std::array::from_fn(|_| std::sync::atomic::AtomicBool::new(false)));
        let (counts_cb, seen_cb) = (Arc::clone(&counts), Arc::clone(&seen));
        let instrument = self
            .meter
            .i64_observable_up_down_counter(name)
            .with_unit("{request}")
            .with_description(description)
            .with_callback(move |observer| {
                for (slot, count) in counts_cb.iter().enumerate() {
                    if seen_cb[slot].load(Ordering::Relaxed) {
                        let (method, scheme) = ActiveRequests::labels(slot);
                        observer.observe(
                            count.load(Ordering::Relaxed),
                            &[
                                KeyValue::new(
                                    opentelemetry_semantic_conventions::attribute::HTTP_REQUEST_METHOD,
                                    method,
                                ),
                                KeyValue::new(
                                    opentelemetry_semantic_conventions::attribute::URL_SCHEME,
                                    scheme,
                                ),
                            ],
                        );
                    }
                }
            })
            .build();
        ActiveRequests {
            counts,
            seen,
            _instrument: Arc::new(instrument),
        }
    }
}

/// Bucket boundaries (seconds) the HTTP and RPC semantic conventions advise for durations.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Duration histogram; the value is recorded with the span context for its exemplar.
#[derive(Clone, Debug)]
pub(crate) struct Histogram(opentelemetry::metrics::Histogram<f64>);

impl Histogram {
    /// Records `value` with `attributes`; `cx` carries the span the exemplar points at.
    pub(crate) fn record_with_context(&self, value: f64, attributes: &[KeyValue], _cx: &Context) {
        self.0.record(value, attributes);
    }
}

/// Method names indexed by [`crate::attributes::KnownMethod::index`].
pub(crate) const METHOD_NAMES: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE", "_OTHER",
];
const ACTIVE_SLOTS: usize = METHOD_NAMES.len() * 2;

/// In-flight requests per (method, scheme): an atomic add per request start and end,
/// reported through an observable up-down counter when metrics are collected, so the
/// request path does no attribute hashing for it.
#[derive(Clone)]
pub(crate) struct ActiveRequests {
    counts: Arc<[AtomicI64; ACTIVE_SLOTS]>,
    seen: Arc<[std::sync::atomic::AtomicBool; ACTIVE_SLOTS]>,
    _instrument: Arc<opentelemetry::metrics::ObservableUpDownCounter<i64>>,
}

impl fmt::Debug for ActiveRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveRequests").finish_non_exhaustive()
    }
}

impl ActiveRequests {
    fn slot(method_index: usize, https: bool) -> usize {
        method_index.min(METHOD_NAMES.len() - 1) * 2 + usize::from(https)
    }

    fn labels(slot: usize) -> (&'static str, &'static str) {
        (
            METHOD_NAMES[slot / 2],
            if slot % 2 == 1 { "https" } else { "http" },
        )
    }

    /// One more request in flight.
    pub(crate) fn inc(&self, method_index: usize, https: bool) {
        let slot = Self::slot(method_index, https);
        if !self.seen[slot].load(Ordering::Relaxed) {
            self.seen[slot].store(true, Ordering::Relaxed);
        }
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// One request fewer in flight.
    pub(crate) fn dec(&self, method_index: usize, https: bool) {
        self.counts[Self::slot(method_index, https)].fetch_sub(1, Ordering::Relaxed);
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
        let extractor = HeaderExtractor(headers);
        match &self.custom {
            Some(p) => p.extract(&extractor),
            None => opentelemetry::global::get_text_map_propagator(|p| p.extract(&extractor)),
        }
    }

    /// Writes `cx` into `headers`.
    pub(crate) fn inject(&self, cx: &Context, headers: &mut HeaderMap) {
        let mut injector = HeaderInjector(headers);
        match &self.custom {
            Some(p) => p.inject_context(cx, &mut injector),
            None => opentelemetry::global::get_text_map_propagator(|p| {
                p.inject_context(cx, &mut injector);
            }),
        }
    }
}

static TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
static TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");
static BAGGAGE: http::HeaderName = http::HeaderName::from_static("baggage");

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

    /// Up to 16 lower-case hex digits as a `u64`.
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

    let value = value.trim_ascii();
    if value.len() != 55
        || &value[..3] != b"00-"
        || value[35] != b'-'
        || value[52] != b'-'
    {
        return None;
    }
    let trace_id = (u128::from(hex(&value[3..19])?) << 64) | u128::from(hex(&value[19..35])?);
    let span_id = hex(&value[36..52])?;
    let flags = u8::try_from(hex(&value[53..55])?).ok()?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some(SpanContext::new(
        TraceId::from(trace_id),
        SpanId::from(span_id),
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    ))
}

/// Reads propagation fields from an [`http::HeaderMap`].
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        // Common fields by their pre-parsed names: no header-name parsing per request.
        let value = match key {
            "traceparent" => self.0.get(&TRACEPARENT),
            "tracestate" => self.0.get(&TRACESTATE),
            "baggage" => self.0.get(&BAGGAGE),
            _ => self.0.get(key),
        };
        value.and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            None
        } else {
            Some(values)
        }
    }
}

/// Writes propagation fields into an [`http::HeaderMap`]; invalid names or values are skipped.
struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

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

    /// The fast path must agree with the SDK's propagator on every input.
    #[test]
    fn fast_traceparent_agrees_with_the_sdk() {
        let rows: &[(&str, &str)] = &[
            ("valid sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("valid unsampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
            ("unknown flags kept to sampled bit", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff"),
            ("padded", "  00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 "),
            ("upper-case trace id", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            ("zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            ("zero span id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            ("version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("future version with extra part", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz"),
            ("version 00 with extra part", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz"),
            ("short trace id", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"),
            ("non-hex", "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"),
            ("plus sign", "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("empty", ""),
            ("garbage", "not a traceparent at all"),
        ];
        let w3c = Propagation::new(Some(Arc::new(TraceContextPropagator::new())));
        let composite = Propagation::new(Some(Arc::new(
            opentelemetry::propagation::TextMapCompositePropagator::new(vec![
                Box::new(TraceContextPropagator::new()),
                Box::new(BaggagePropagator::new()),
            ]),
        )));
        assert!(w3c.custom_is_w3c && composite.custom_is_w3c);
        let sdk = TraceContextPropagator::new();
        for (why, value) in rows {
            let h = headers(&[("traceparent", value)]);
            let expected = sdk.extract(&HeaderExtractor(&h));
            for p in [&w3c, &composite] {
                let got = p.extract(&h);
                assert_eq!(
                    got.span().span_context(),
                    expected.span().span_context(),
                    "{why}: {value:?}"
                );
            }
        }
    }

    #[test]
    fn tracestate_and_baggage_go_through_the_propagator() {
        let composite = Propagation::new(Some(Arc::new(
            opentelemetry::propagation::TextMapCompositePropagator::new(vec![
                Box::new(TraceContextPropagator::new()),
                Box::new(BaggagePropagator::new()),
            ]),
        )));
        let h = headers(&[
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
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
        // Two traceparent headers: ambiguous, left to the propagator.
        let h = headers(&[
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01"),
        ]);
        assert!(fast_w3c_extract(&h).is_none());
    }

    #[test]
    fn b3_like_propagators_are_not_fast_pathed() {
        #[derive(Debug)]
        struct Fields;
        impl TextMapPropagator for Fields {
            fn inject_context(&self, _: &Context, _: &mut dyn Injector) {}
            fn extract_with_context(&self, cx: &Context, _: &dyn Extractor) -> Context {
                cx.clone()
            }
            fn fields(&self) -> opentelemetry::propagation::text_map_propagator::FieldIter<'_> {
                static F: [String; 0] = [];
                opentelemetry::propagation::text_map_propagator::FieldIter::new(&F)
            }
        }
        assert!(!is_w3c(&Fields));
    }
}
