//! Test helpers on top of `otel_core::testing`: an isolated pipeline per test, plus async
//! waiting (server spans end after the body has been sent, a moment after the client has
//! read it) and short accessors for metric series.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use opentelemetry::Value;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry_sdk::trace::{Sampler, SpanData};
use otel_core::metrics::{SeriesSnapshot, SnapshotExt as _};
#[allow(unused_imports)]
pub use otel_core::testing::{
    TestTelemetry, assert_attr, assert_child_of, assert_exemplars_point_at_exported,
    assert_no_attr, attr,
};
use otel_tower::{Config, ConfigBuilder};

pub struct Telemetry {
    pub inner: TestTelemetry,
}

impl Telemetry {
    pub fn new() -> Self {
        Self {
            inner: TestTelemetry::new(),
        }
    }

    pub fn with_sampler(sampler: Sampler) -> Self {
        Self {
            inner: TestTelemetry::with_sampler(sampler),
        }
    }

    /// A config builder wired to this pipeline with otel-core's W3C trace-context
    /// propagator (nothing global is touched).
    pub fn config(&self) -> ConfigBuilder {
        Config::builder()
            .with_tracer_provider(self.inner.tracer_provider().clone())
            .with_metrics(self.inner.metrics().clone())
            .with_propagator(otel_core::propagation::TraceContextPropagator::new())
    }

    pub fn tracer(&self) -> opentelemetry_sdk::trace::SdkTracer {
        self.inner.tracer()
    }

    pub fn spans(&self) -> Vec<SpanData> {
        self.inner.spans()
    }

    pub fn reset_spans(&self) {
        self.inner.reset();
    }

    pub fn span_names(&self) -> Vec<String> {
        self.spans().iter().map(|s| s.name.to_string()).collect()
    }

    /// Waits (up to 5 s) until a span of `kind` named `name` has ended and returns it.
    pub async fn wait_span(&self, name: &str, kind: SpanKind) -> SpanData {
        for _ in 0..500 {
            if let Some(span) = self
                .spans()
                .into_iter()
                .find(|s| s.name == name && s.span_kind == kind)
            {
                return span;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "no {kind:?} span named {name:?}; have {:?}",
            self.spans()
                .iter()
                .map(|s| (s.name.to_string(), s.span_kind.clone()))
                .collect::<Vec<_>>()
        )
    }

    /// Waits until `n` spans have ended.
    pub async fn wait_count(&self, n: usize) -> Vec<SpanData> {
        for _ in 0..500 {
            let spans = self.spans();
            if spans.len() >= n {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} spans, have {:?}", self.span_names())
    }

    /// Series of histogram `name` (unit checked to be seconds).
    pub fn histogram(&self, name: &str) -> Vec<SeriesSnapshot> {
        let snapshot = self.inner.metrics().snapshot();
        match snapshot.find(name) {
            Some(metric) => {
                assert_eq!(metric.unit, "s", "{name} unit");
                metric.series.clone()
            }
            None => Vec::new(),
        }
    }

    /// Series of up-down counter `name`.
    pub fn up_down(&self, name: &str) -> Vec<(Vec<opentelemetry::KeyValue>, i64)> {
        let snapshot = self.inner.metrics().snapshot();
        snapshot
            .find(name)
            .map(|m| {
                m.series
                    .iter()
                    .map(|s| (s.attributes.clone(), s.up_down_counter().unwrap()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every exemplar of histogram `name` points at an exported span; returns how many.
    #[track_caller]
    pub fn assert_exemplars(&self, name: &str) -> usize {
        assert_exemplars_point_at_exported(self.inner.metrics(), name, &self.spans())
    }
}

#[track_caller]
pub fn assert_error_status(span: &SpanData) {
    assert!(
        matches!(span.status, Status::Error { .. }),
        "span {} status {:?}",
        span.name,
        span.status
    );
}

#[track_caller]
pub fn assert_unset_status(span: &SpanData) {
    assert_eq!(span.status, Status::Unset, "span {} status", span.name);
}

/// Whether `series` has the attribute `key` = `value`.
pub fn point_has(series: &SeriesSnapshot, key: &str, value: impl Into<Value>) -> bool {
    series.attribute(key) == Some(&value.into())
}

pub fn point_attr<'a>(series: &'a SeriesSnapshot, key: &str) -> Option<&'a Value> {
    series.attribute(key)
}

pub fn count(series: &SeriesSnapshot) -> u64 {
    series.histogram().expect("a histogram series").count
}

pub fn sum(series: &SeriesSnapshot) -> f64 {
    series.histogram().expect("a histogram series").sum
}

/// The exemplar of `series` that points at `span`, if any.
pub fn exemplar_for(series: &SeriesSnapshot, span: &SpanData) -> bool {
    series.histogram().is_some_and(|h| {
        h.exemplars.iter().any(|e| {
            e.trace_id == span.span_context.trace_id() && e.span_id == span.span_context.span_id()
        })
    })
}

/// A fixed remote parent, as a `traceparent` header value.
pub const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

pub fn traceparent() -> String {
    format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01")
}

pub fn remote_trace_id() -> TraceId {
    TraceId::from_hex(TRACE_ID).unwrap()
}

pub fn remote_span_id() -> SpanId {
    SpanId::from_hex(PARENT_SPAN_ID).unwrap()
}
