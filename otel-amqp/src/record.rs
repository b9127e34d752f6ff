//! The one place this crate records through: `otel_core::instrument` for spans and
//! `otel_core::metrics` for the exemplar-tagged histograms and the counters.

use std::borrow::Cow;

use opentelemetry::trace::{Link, SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};
pub(crate) use otel_core::instrument::{Instrumentation, InstrumentationBuilder, Operation};
pub(crate) use otel_core::metrics::{
    BoundCounter, BoundHistogram, Counter, Histogram, RecentCache,
};

/// A builder of this crate's [`Instrumentation`] (scope name and version of this crate).
pub(crate) fn instrumentation_builder() -> InstrumentationBuilder {
    Instrumentation::builder(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
}

/// Starts an operation, child of `parent`, linked to `links`.
///
/// `Instrumentation::start` takes no links; they are added right after the span starts, so
/// samplers do not see them.
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

/// Ends `operation` and records its duration into `histogram`; the exemplar points at the
/// operation's span.
pub(crate) fn end_with_duration(
    operation: Operation,
    histogram: &Histogram,
    metric_attributes: &[KeyValue],
) {
    operation.end_with_duration(histogram, metric_attributes);
}
