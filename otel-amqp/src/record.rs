//! The one place this crate records through.
//!
//! Spans go through `otel_core::instrument` ([`Instrumentation`], [`Operation`]). Metrics go,
//! for now, through a stand-in for `otel_core::metrics` (a [`Metrics`] handle over an
//! OpenTelemetry meter, which attaches no exemplars), because the exemplar histograms and
//! counters of `otel-core` have not landed yet. Switching is local to this module: re-export
//! `otel_core::metrics::{Metrics, Histogram, Counter}` and let [`end_with_duration`] call
//! `Operation::end_with_duration`.

use std::borrow::Cow;

use opentelemetry::metrics::Meter;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_semantic_conventions as semconv;
pub(crate) use otel_core::instrument::{Instrumentation, InstrumentationBuilder, Operation};

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

/// A builder of this crate's [`Instrumentation`] (scope name and version of this crate).
pub(crate) fn instrumentation_builder() -> InstrumentationBuilder {
    Instrumentation::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
}

/// Starts an operation, child of `parent`, linked to `links`.
///
/// `otel_core`'s `Instrumentation::start` takes no links; they are added right after the span
/// starts (samplers do not see them).
pub(crate) fn start(
    instrumentation: &Instrumentation,
    parent: &Context,
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
    links: Vec<Link>,
) -> Operation {
    let operation = instrumentation.start(parent, name, kind, attributes);
    if !links.is_empty() && operation.is_recording() {
        let span = operation.context().span();
        for link in links {
            span.add_link(link.span_context, link.attributes);
        }
    }
    operation
}

/// Ends `operation` and records its duration into `histogram` (with the operation's context,
/// for the exemplar).
pub(crate) fn end_with_duration(
    operation: Operation,
    histogram: &Histogram,
    metric_attributes: &[KeyValue],
) {
    histogram.record_with_context(
        operation.elapsed().as_secs_f64(),
        metric_attributes,
        operation.context(),
    );
    operation.end();
}
