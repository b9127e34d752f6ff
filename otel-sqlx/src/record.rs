//! The one place this crate touches the OpenTelemetry API to record spans and metrics.
//!
//! This module mirrors the contract of `otel_core::instrument` (`Instrumentation`,
//! `Operation`) and `otel_core::metrics` (`Metrics`, `Histogram`, `UpDownCounter`, `Counter`)
//! with the same method names, so that when those land the rest of the crate switches by
//! changing the imports here. Until then histograms carry no exemplars.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::global::{BoxedTracer, ObjectSafeTracerProvider};
use opentelemetry::trace::{
    SpanBuilder, SpanKind, Status, TraceContextExt, Tracer, TracerProvider,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue, Value};
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, EXCEPTION_MESSAGE, EXCEPTION_TYPE,
};

/// The meter handle the adapter records its metrics through.
///
/// Until `otel_core::metrics::Metrics` is available this is the OpenTelemetry API's
/// [`Meter`](opentelemetry::metrics::Meter); build one with
/// `meter_provider.meter_with_scope(..)` or let the builder take the global meter provider.
pub type Metrics = opentelemetry::metrics::Meter;

/// Tracer and meter with this crate's instrumentation scope.
pub(crate) struct Instrumentation {
    tracer: BoxedTracer,
    metrics: Metrics,
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
        .with_version(env!("CARGO_PKG_VERSION"))
        .with_schema_url(opentelemetry_semantic_conventions::SCHEMA_URL)
        .build()
}

impl Instrumentation {
    pub(crate) fn builder() -> InstrumentationBuilder {
        InstrumentationBuilder::default()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts a span of `kind` as a child of `parent`.
    pub(crate) fn start(
        &self,
        parent: &Context,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Operation {
        let builder = SpanBuilder::from_name(name)
            .with_kind(kind)
            .with_attributes(attributes);
        let span = self.tracer.build_with_context(builder, parent);
        Operation {
            cx: parent.with_span(span),
            start: Instant::now(),
            ended: false,
        }
    }
}

/// Collects the tracer provider and meter before the [`Instrumentation`] is built.
#[derive(Default)]
pub(crate) struct InstrumentationBuilder {
    provider: Option<Arc<dyn ObjectSafeTracerProvider + Send + Sync>>,
    metrics: Option<Metrics>,
}

impl InstrumentationBuilder {
    pub(crate) fn with_tracer_provider<P>(mut self, provider: P) -> Self
    where
        P: TracerProvider + Send + Sync + 'static,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        self.provider = Some(Arc::new(provider));
        self
    }

    pub(crate) fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub(crate) fn build(self) -> Instrumentation {
        let tracer = match self.provider {
            Some(provider) => BoxedTracer::new(provider.boxed_tracer(scope())),
            None => opentelemetry::global::tracer_with_scope(scope()),
        };
        let metrics = self
            .metrics
            .unwrap_or_else(|| opentelemetry::global::meter_with_scope(scope()));
        Instrumentation { tracer, metrics }
    }
}

/// One in-flight operation: its span (inside a [`Context`]) and its start time.
///
/// Dropped without [`end`](Self::end) or [`end_with_duration`](Self::end_with_duration), the
/// span ends with status Error and `error.type` `cancelled`.
pub(crate) struct Operation {
    cx: Context,
    start: Instant,
    ended: bool,
}

impl Operation {
    pub(crate) fn is_recording(&self) -> bool {
        self.cx.span().is_recording()
    }

    pub(crate) fn set_attribute(&mut self, kv: KeyValue) {
        self.cx.span().set_attribute(kv);
    }

    /// Sets `error.type`, status Error with `message`, and adds an `exception` event.
    pub(crate) fn record_error(
        &mut self,
        error_type: impl Into<Value>,
        message: impl Into<Cow<'static, str>>,
    ) {
        let error_type = error_type.into();
        let message = message.into();
        let span = self.cx.span();
        span.add_event(
            "exception",
            vec![
                KeyValue::new(EXCEPTION_TYPE, error_type.clone()),
                KeyValue::new(EXCEPTION_MESSAGE, message.clone()),
            ],
        );
        span.set_attribute(KeyValue::new(ERROR_TYPE, error_type));
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
        histogram.record_with_context(self.elapsed().as_secs_f64(), metric_attributes, &self.cx);
        self.finish();
    }

    /// Ends the span only.
    pub(crate) fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.ended = true;
        self.cx.span().end();
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        if !self.ended {
            self.record_error("cancelled", "operation dropped before it completed");
            self.finish();
        }
    }
}

/// An `f64` histogram (seconds).
pub(crate) struct Histogram(opentelemetry::metrics::Histogram<f64>);

impl Histogram {
    pub(crate) fn new(metrics: &Metrics, name: &'static str, description: &'static str) -> Self {
        Self(
            metrics
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0])
                .build(),
        )
    }

    pub(crate) fn record(&self, value: f64, attributes: &[KeyValue]) {
        self.0.record(value, attributes);
    }

    /// Records with the span context in `cx` (for exemplars once otel-core's histogram is used).
    pub(crate) fn record_with_context(&self, value: f64, attributes: &[KeyValue], _cx: &Context) {
        self.0.record(value, attributes);
    }
}

/// An `i64` up-down counter.
pub(crate) struct UpDownCounter(opentelemetry::metrics::UpDownCounter<i64>);

impl UpDownCounter {
    pub(crate) fn new(
        metrics: &Metrics,
        name: &'static str,
        unit: &'static str,
        description: &'static str,
    ) -> Self {
        Self(
            metrics
                .i64_up_down_counter(name)
                .with_unit(unit)
                .with_description(description)
                .build(),
        )
    }

    pub(crate) fn add(&self, value: i64, attributes: &[KeyValue]) {
        self.0.add(value, attributes);
    }
}

/// A `u64` counter.
pub(crate) struct Counter(opentelemetry::metrics::Counter<u64>);

impl Counter {
    pub(crate) fn new(
        metrics: &Metrics,
        name: &'static str,
        unit: &'static str,
        description: &'static str,
    ) -> Self {
        Self(
            metrics
                .u64_counter(name)
                .with_unit(unit)
                .with_description(description)
                .build(),
        )
    }

    pub(crate) fn add(&self, value: u64, attributes: &[KeyValue]) {
        self.0.add(value, attributes);
    }
}

/// The context new operations are children of: the current OpenTelemetry context.
pub(crate) fn parent_context() -> Context {
    Context::current()
}
