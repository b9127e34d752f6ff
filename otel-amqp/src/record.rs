//! Interim recording layer.
//!
//! This module mirrors the small part of `otel_core::instrument` and `otel_core::metrics` that
//! this crate uses (see `CORE_API.md`): an [`Instrumentation`] that starts spans as
//! [`Operation`]s, and a [`Metrics`] handle that builds histograms and counters. Everything else
//! in the crate records only through these types, so moving to the shared `otel-core`
//! implementation is a matter of replacing this module by re-exports.
//!
//! Until then, histograms are recorded through the OpenTelemetry metrics API, which does not
//! attach exemplars.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use opentelemetry::global::BoxedTracer;
use opentelemetry::metrics::Meter;
use opentelemetry::trace::{
    Link, SpanBuilder, SpanKind, Status, TraceContextExt, Tracer, TracerProvider,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue, Value};
use opentelemetry_semantic_conventions as semconv;

/// Handle to the meter that this crate's instruments are created from.
///
/// Pass one to [`InstrumentedChannelBuilder::with_metrics`](crate::InstrumentedChannelBuilder::with_metrics)
/// to record into a specific pipeline; by default the global meter provider is used.
///
/// This is a stand-in for `otel_core::metrics::Metrics` and will be replaced by it.
#[derive(Clone, Debug)]
pub struct Metrics {
    meter: Meter,
}

impl Metrics {
    /// Metrics recorded through the globally installed meter provider, with this crate's
    /// instrumentation scope.
    pub fn global() -> Self {
        Self::from_meter(opentelemetry::global::meter_with_scope(scope()))
    }

    /// Metrics recorded through `meter` (for example one taken from a test pipeline).
    pub fn from_meter(meter: Meter) -> Self {
        Self { meter }
    }

    pub(crate) fn f64_histogram(&self, name: &'static str) -> HistogramBuilder<'_> {
        HistogramBuilder {
            meter: &self.meter,
            name,
            unit: None,
            description: None,
            boundaries: None,
        }
    }

    pub(crate) fn u64_counter(&self, name: &'static str) -> CounterBuilder<'_> {
        CounterBuilder {
            meter: &self.meter,
            name,
            unit: None,
            description: None,
        }
    }
}

pub(crate) struct HistogramBuilder<'a> {
    meter: &'a Meter,
    name: &'static str,
    unit: Option<&'static str>,
    description: Option<&'static str>,
    boundaries: Option<Vec<f64>>,
}

impl HistogramBuilder<'_> {
    pub(crate) fn with_unit(mut self, unit: &'static str) -> Self {
        self.unit = Some(unit);
        self
    }

    pub(crate) fn with_description(mut self, description: &'static str) -> Self {
        self.description = Some(description);
        self
    }

    pub(crate) fn with_boundaries(mut self, boundaries: &[f64]) -> Self {
        self.boundaries = Some(boundaries.to_vec());
        self
    }

    pub(crate) fn build(self) -> Histogram {
        let mut builder = self.meter.f64_histogram(self.name);
        if let Some(unit) = self.unit {
            builder = builder.with_unit(unit);
        }
        if let Some(description) = self.description {
            builder = builder.with_description(description);
        }
        if let Some(boundaries) = self.boundaries {
            builder = builder.with_boundaries(boundaries);
        }
        Histogram(builder.build())
    }
}

pub(crate) struct CounterBuilder<'a> {
    meter: &'a Meter,
    name: &'static str,
    unit: Option<&'static str>,
    description: Option<&'static str>,
}

impl CounterBuilder<'_> {
    pub(crate) fn with_unit(mut self, unit: &'static str) -> Self {
        self.unit = Some(unit);
        self
    }

    pub(crate) fn with_description(mut self, description: &'static str) -> Self {
        self.description = Some(description);
        self
    }

    pub(crate) fn build(self) -> Counter {
        let mut builder = self.meter.u64_counter(self.name);
        if let Some(unit) = self.unit {
            builder = builder.with_unit(unit);
        }
        if let Some(description) = self.description {
            builder = builder.with_description(description);
        }
        Counter(builder.build())
    }
}

/// A duration histogram (seconds).
#[derive(Clone)]
pub(crate) struct Histogram(opentelemetry::metrics::Histogram<f64>);

impl Histogram {
    /// Records `value` for the span active in `cx` (the exemplar, once `otel-core` lands).
    pub(crate) fn record_with_context(&self, value: f64, attributes: &[KeyValue], _cx: &Context) {
        self.0.record(value, attributes);
    }
}

/// A monotonic counter.
#[derive(Clone)]
pub(crate) struct Counter(opentelemetry::metrics::Counter<u64>);

impl Counter {
    pub(crate) fn add(&self, value: u64, attributes: &[KeyValue]) {
        self.0.add(value, attributes);
    }
}

/// The instrumentation scope of this crate.
fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
        .with_version(env!("CARGO_PKG_VERSION"))
        .with_schema_url(semconv::SCHEMA_URL)
        .build()
}

/// Tracer and metrics that the adapter records through.
#[derive(Clone)]
pub(crate) struct Instrumentation {
    tracer: std::sync::Arc<BoxedTracer>,
    metrics: Metrics,
}

impl std::fmt::Debug for Instrumentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumentation").finish_non_exhaustive()
    }
}

/// Builder of [`Instrumentation`]; defaults are the global tracer and meter providers.
#[derive(Default)]
pub(crate) struct InstrumentationBuilder {
    tracer: Option<BoxedTracer>,
    metrics: Option<Metrics>,
}

impl InstrumentationBuilder {
    pub(crate) fn with_tracer_provider<P>(mut self, provider: P) -> Self
    where
        P: TracerProvider + Send + Sync + 'static,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        self.tracer = Some(BoxedTracer::new(Box::new(
            provider.tracer_with_scope(scope()),
        )));
        self
    }

    pub(crate) fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub(crate) fn build(self) -> Instrumentation {
        Instrumentation {
            tracer: std::sync::Arc::new(
                self.tracer
                    .unwrap_or_else(|| opentelemetry::global::tracer_with_scope(scope())),
            ),
            metrics: self.metrics.unwrap_or_else(Metrics::global),
        }
    }
}

impl Instrumentation {
    pub(crate) fn builder() -> InstrumentationBuilder {
        InstrumentationBuilder::default()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts a span, child of `parent`, with `links`.
    pub(crate) fn start(
        &self,
        parent: &Context,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
        links: Vec<Link>,
    ) -> Operation {
        let mut builder = SpanBuilder::from_name(name)
            .with_kind(kind)
            .with_attributes(attributes);
        if !links.is_empty() {
            builder = builder.with_links(links);
        }
        let span = self.tracer.build_with_context(builder, parent);
        Operation {
            cx: parent.with_span(span),
            start: Instant::now(),
            ended: false,
        }
    }
}

/// One in-flight operation: its span (in a [`Context`]) and its start time.
///
/// Dropped without [`end`](Self::end) or [`end_with_duration`](Self::end_with_duration), the
/// span ends with status Error and `error.type` "cancelled".
pub(crate) struct Operation {
    cx: Context,
    start: Instant,
    ended: bool,
}

impl Operation {
    /// The context holding this operation's span: the parent for inner work.
    pub(crate) fn context(&self) -> &Context {
        &self.cx
    }

    pub(crate) fn is_recording(&self) -> bool {
        self.cx.span().is_recording()
    }

    pub(crate) fn set_attribute(&mut self, kv: KeyValue) {
        self.cx.span().set_attribute(kv);
    }

    /// Sets `error.type`, span status Error with `message`, and adds an "exception" event.
    pub(crate) fn record_error(
        &mut self,
        error_type: impl Into<Value>,
        message: impl Into<Cow<'static, str>>,
    ) {
        let span = self.cx.span();
        if !span.is_recording() {
            return;
        }
        let error_type = error_type.into();
        let message = message.into();
        span.set_attribute(KeyValue::new(
            semconv::attribute::ERROR_TYPE,
            error_type.clone(),
        ));
        span.add_event(
            "exception",
            vec![
                KeyValue::new(semconv::trace::EXCEPTION_TYPE, error_type),
                KeyValue::new(semconv::trace::EXCEPTION_MESSAGE, message.clone()),
            ],
        );
        span.set_status(Status::error(message));
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Ends the span and records the elapsed seconds into `histogram`.
    pub(crate) fn end_with_duration(
        mut self,
        histogram: &Histogram,
        metric_attributes: &[KeyValue],
    ) {
        let elapsed = self.elapsed().as_secs_f64();
        histogram.record_with_context(elapsed, metric_attributes, &self.cx);
        self.ended = true;
        self.cx.span().end();
    }

    /// Ends the span only.
    pub(crate) fn end(mut self) {
        self.ended = true;
        self.cx.span().end();
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        if !self.ended {
            self.record_error("cancelled", "operation dropped before completion");
            self.cx.span().end();
        }
    }
}
