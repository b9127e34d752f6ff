//! The one place this crate names the recording API: `otel_core`'s instrument helper and
//! exemplar-tagged metrics. Everything else records through these re-exports.

use opentelemetry::Context;

pub(crate) use otel_core::instrument::{Instrumentation, InstrumentationBuilder, Operation};
pub use otel_core::metrics::Metrics;
pub(crate) use otel_core::metrics::{Counter, Histogram, UpDownCounter};

/// A builder with this crate's instrumentation scope (name, version, schema URL).
pub(crate) fn instrumentation() -> InstrumentationBuilder {
    Instrumentation::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
}

/// Bucket boundaries of the duration histograms (seconds), as the database semantic
/// conventions advise for `db.client.operation.duration`.
const DURATION_BOUNDARIES: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// A duration histogram (unit `s`).
pub(crate) fn duration_histogram(
    metrics: &Metrics,
    name: &'static str,
    description: &'static str,
) -> Histogram {
    metrics
        .f64_histogram(name)
        .with_unit("s")
        .with_description(description)
        .with_boundaries(DURATION_BOUNDARIES.to_vec())
        .build()
}

/// An up-down counter.
pub(crate) fn up_down_counter(
    metrics: &Metrics,
    name: &'static str,
    unit: &'static str,
    description: &'static str,
) -> UpDownCounter {
    metrics
        .i64_up_down_counter(name)
        .with_unit(unit)
        .with_description(description)
        .build()
}

/// A counter.
pub(crate) fn counter(
    metrics: &Metrics,
    name: &'static str,
    unit: &'static str,
    description: &'static str,
) -> Counter {
    metrics
        .u64_counter(name)
        .with_unit(unit)
        .with_description(description)
        .build()
}

/// The context new operations are children of: the current OpenTelemetry context (inside a
/// `tracing` span bridged by otel-core, that span's context).
pub(crate) fn parent_context() -> Context {
    Context::current()
}
