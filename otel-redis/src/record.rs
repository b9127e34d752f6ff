//! The one place where this crate talks to the OpenTelemetry tracer and meter.
//!
//! Everything else in the crate works in terms of [`Recorder`] and [`Operation`], whose surface
//! mirrors `otel_core::instrument::{Instrumentation, Operation}`. Until that API is on the
//! integration branch this module records through the `opentelemetry` API directly (spans through
//! a boxed tracer, the duration through an API histogram, which carries no exemplars); switching
//! is a change to this file only.

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::global::{BoxedSpan, BoxedTracer};
use opentelemetry::metrics::{Histogram, Meter, MeterProvider};
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider};
use opentelemetry::{Context, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_semantic_conventions::attribute::{DB_RESPONSE_STATUS_CODE, ERROR_TYPE};
use opentelemetry_semantic_conventions::metric::DB_CLIENT_OPERATION_DURATION;

/// Bucket boundaries (seconds) the semantic conventions advise for `db.client.operation.duration`.
const DURATION_BOUNDARIES: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// The instrumentation scope every span and metric of this crate is recorded under.
fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
        .with_version(env!("CARGO_PKG_VERSION"))
        .with_schema_url(opentelemetry_semantic_conventions::SCHEMA_URL)
        .build()
}

/// Builds a tracer with this crate's scope from an injected provider.
pub(crate) fn tracer_from_provider<P>(provider: &P) -> BoxedTracer
where
    P: TracerProvider + Send + Sync + 'static,
    P::Tracer: Send + Sync + 'static,
    <P::Tracer as opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
{
    BoxedTracer::new(Box::new(provider.tracer_with_scope(scope())))
}

/// Builds a meter with this crate's scope from an injected provider.
pub(crate) fn meter_from_provider<M: MeterProvider>(provider: &M) -> Meter {
    provider.meter_with_scope(scope())
}

/// Tracer and duration histogram shared by every wrapped connection of one configuration.
pub(crate) struct Recorder {
    tracer: BoxedTracer,
    duration: Histogram<f64>,
}

impl Recorder {
    /// Uses the given tracer and meter, or the global ones (read once, now) when `None`.
    pub(crate) fn new(tracer: Option<BoxedTracer>, meter: Option<Meter>) -> Self {
        let tracer = tracer.unwrap_or_else(|| opentelemetry::global::tracer_with_scope(scope()));
        let meter = meter.unwrap_or_else(|| opentelemetry::global::meter_with_scope(scope()));
        let duration = meter
            .f64_histogram(DB_CLIENT_OPERATION_DURATION)
            .with_unit("s")
            .with_description("Duration of database client operations.")
            .with_boundaries(DURATION_BOUNDARIES.to_vec())
            .build();
        Self { tracer, duration }
    }

    /// Starts a CLIENT span named `name`, a child of the current context, with `attributes`
    /// visible to the sampler.
    pub(crate) fn start(&self, name: &'static str, attributes: Vec<KeyValue>) -> Operation {
        // One clock read serves as the span's start and the duration's: the span's timestamps
        // and the measured duration agree, and the SDK reads no clock of its own.
        let start = SystemTime::now();
        let builder = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes(attributes);
        let span = Context::map_current(|cx| self.tracer.build_with_context(builder, cx));
        Operation {
            span: Some(span),
            start,
        }
    }

    /// The `db.client.operation.duration` histogram.
    pub(crate) fn duration(&self) -> &Histogram<f64> {
        &self.duration
    }
}

/// One in-flight Redis call: its span and start time.
///
/// Dropped without [`Operation::end_with_duration`] (the caller dropped the future), the span
/// ends with status Error and `error.type` `cancelled`.
pub(crate) struct Operation {
    span: Option<BoxedSpan>,
    start: SystemTime,
}

impl Operation {
    /// Whether the span records attributes; attribute work is skipped when it does not.
    pub(crate) fn is_recording(&self) -> bool {
        self.span.as_ref().is_some_and(|span| span.is_recording())
    }

    /// Adds an attribute to the span.
    pub(crate) fn set_attribute(&mut self, kv: KeyValue) {
        if let Some(span) = self.span.as_mut() {
            span.set_attribute(kv);
        }
    }

    /// Marks the span failed: `error.type`, `db.response.status_code` (when the server replied
    /// with an error), status Error with `message`, and an `exception` event.
    pub(crate) fn record_error(
        &mut self,
        error_type: StringValue,
        status_code: Option<StringValue>,
        message: Cow<'static, str>,
    ) {
        let Some(span) = self.span.as_mut() else {
            return;
        };
        if !span.is_recording() {
            return;
        }
        span.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", Value::String(error_type.clone())),
                KeyValue::new("exception.message", Value::String(message.clone().into())),
            ],
        );
        span.set_attribute(KeyValue::new(ERROR_TYPE, Value::String(error_type)));
        if let Some(code) = status_code {
            span.set_attribute(KeyValue::new(DB_RESPONSE_STATUS_CODE, Value::String(code)));
        }
        span.set_status(Status::error(message));
    }

    /// Ends the span and records the elapsed seconds into `histogram` with `metric_attributes`.
    pub(crate) fn end_with_duration(
        mut self,
        histogram: &Histogram<f64>,
        metric_attributes: &[KeyValue],
    ) {
        let end = SystemTime::now();
        // A wall clock stepped back during the call gives 0, not a panic or a huge value.
        let elapsed = end.duration_since(self.start).unwrap_or_default();
        if let Some(mut span) = self.span.take() {
            span.end_with_timestamp(end);
        }
        histogram.record(elapsed.as_secs_f64(), metric_attributes);
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        if let Some(mut span) = self.span.take() {
            if span.is_recording() {
                span.set_attribute(KeyValue::new(ERROR_TYPE, "cancelled"));
                span.set_status(Status::error("the operation was cancelled"));
            }
            span.end();
        }
    }
}
