//! Where this crate meets `otel_core::instrument`: the tracer, the
//! `db.client.operation.duration` histogram, and how a failure is written onto an operation.

use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_semantic_conventions::attribute::DB_RESPONSE_STATUS_CODE;
use opentelemetry_semantic_conventions::metric::DB_CLIENT_OPERATION_DURATION;
use otel_core::instrument::{Instrumentation, Operation};
use otel_core::metrics::{BoundHistogram, Histogram};

use crate::outcome::Failure;

/// Bucket boundaries (seconds) the semantic conventions advise for `db.client.operation.duration`.
const DURATION_BOUNDARIES: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// Tracer and duration histogram shared by every wrapped connection of one configuration.
pub(crate) struct Recorder {
    instrumentation: Instrumentation,
    duration: Histogram,
}

impl Recorder {
    pub(crate) fn new(instrumentation: Instrumentation) -> Self {
        let duration = instrumentation
            .metrics()
            .f64_histogram(DB_CLIENT_OPERATION_DURATION)
            .with_unit("s")
            .with_description("Duration of database client operations.")
            .with_boundaries(DURATION_BOUNDARIES.to_vec())
            .build();
        Self {
            instrumentation,
            duration,
        }
    }

    /// Starts a CLIENT span named `name`, a child of the current context, with `attributes`
    /// visible to the sampler.
    pub(crate) fn start(&self, name: &'static str, attributes: Vec<KeyValue>) -> Operation {
        Context::map_current(|parent| {
            self.instrumentation
                .start_leaf(parent, name, SpanKind::Client, attributes)
        })
    }

    /// Marks `operation` failed: `db.response.status_code` for an error reply, then
    /// `error.type`, status Error and the `exception` event.
    pub(crate) fn fail(operation: &mut Operation, failure: Failure) {
        if !operation.is_recording() {
            return;
        }
        if let Some(code) = failure.status_code {
            operation.set_attribute(KeyValue::new(DB_RESPONSE_STATUS_CODE, Value::String(code)));
        }
        operation.record_error(Value::String(failure.error_type), failure.message);
    }

    /// The `db.client.operation.duration` series of `metric_attributes`, for repeated records.
    pub(crate) fn bind(&self, metric_attributes: &[KeyValue]) -> BoundHistogram {
        self.duration.bind(metric_attributes)
    }

    /// Ends the span and records its duration in the bound series `duration`.
    pub(crate) fn end_bound(operation: Operation, duration: &BoundHistogram) {
        operation.end_with_bound(duration);
    }

    /// Ends the span and records its duration (the exemplar points at the span when sampled).
    pub(crate) fn end(&self, operation: Operation, metric_attributes: &[KeyValue]) {
        operation.end_with_duration(&self.duration, metric_attributes);
    }
}
