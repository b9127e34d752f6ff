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
use std::time::{Duration, Instant};

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

    /// Starts a span named `name` of `kind` as a child of `parent`.
    ///
    /// No attributes are passed at creation so that an unsampled request allocates nothing
    /// for them; callers add attributes only when [`Operation::is_recording`] is true.
    pub(crate) fn start(
        &self,
        parent: &Context,
        name: Cow<'static, str>,
        kind: SpanKind,
    ) -> Operation {
        let builder = SpanBuilder {
            name,
            span_kind: Some(kind),
            ..SpanBuilder::default()
        };
        let span = self.tracer.build_with_context(builder, parent);
        let recording = opentelemetry::trace::Span::is_recording(&span);
        Operation {
            cx: parent.with_span(span),
            start: Instant::now(),
            recording,
        }
    }
}

/// One in-flight operation: its span (inside a [`Context`]) and its start time.
#[derive(Debug)]
pub(crate) struct Operation {
    cx: Context,
    start: Instant,
    recording: bool,
}

impl Operation {
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
    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Ends the span and records the elapsed seconds into `histogram` with `attributes`.
    pub(crate) fn end_with_duration(self, histogram: &Histogram, attributes: &[KeyValue]) {
        let elapsed = self.elapsed().as_secs_f64();
        histogram.record_with_context(elapsed, attributes, &self.cx);
        self.cx.span().end();
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

    /// An up-down counter (for in-flight requests).
    pub(crate) fn up_down_counter(
        &self,
        name: &'static str,
        unit: &'static str,
        description: &'static str,
    ) -> UpDownCounter {
        UpDownCounter(
            self.meter
                .i64_up_down_counter(name)
                .with_unit(unit)
                .with_description(description)
                .build(),
        )
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

/// Counter that goes up and down (in-flight requests).
#[derive(Clone, Debug)]
pub(crate) struct UpDownCounter(opentelemetry::metrics::UpDownCounter<i64>);

impl UpDownCounter {
    /// Adds `delta` to the series identified by `attributes`.
    pub(crate) fn add(&self, delta: i64, attributes: &[KeyValue]) {
        self.0.add(delta, attributes);
    }
}

/// Propagator used to extract and inject context: the global one unless overridden.
#[derive(Clone, Default)]
pub(crate) struct Propagation {
    custom: Option<Arc<dyn TextMapPropagator + Send + Sync>>,
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
        Self { custom }
    }

    /// Parent context found in `headers` (on top of the current context).
    pub(crate) fn extract(&self, headers: &HeaderMap) -> Context {
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

/// Reads propagation fields from an [`http::HeaderMap`].
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
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
