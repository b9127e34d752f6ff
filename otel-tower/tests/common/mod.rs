//! In-memory telemetry for the integration tests.
//!
//! Stand-in for `otel_core::testing::TestTelemetry` until it lands: an isolated SDK tracer
//! provider with an in-memory exporter (simple processor, so spans are visible as soon as
//! they end) and an SDK meter provider with an in-memory exporter. Nothing global is set.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, HistogramDataPoint, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SpanData};
use otel_tower::{Config, ConfigBuilder, Metrics};

pub struct Telemetry {
    pub spans: InMemorySpanExporter,
    pub tracer_provider: SdkTracerProvider,
    pub metric_exporter: InMemoryMetricExporter,
    pub meter_provider: SdkMeterProvider,
}

impl Telemetry {
    pub fn new() -> Self {
        Self::with_sampler(Sampler::AlwaysOn)
    }

    pub fn with_sampler(sampler: Sampler) -> Self {
        let spans = InMemorySpanExporter::default();
        let tracer_provider = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .with_sampler(sampler)
            .build();
        let metric_exporter = InMemoryMetricExporter::default();
        let reader = PeriodicReader::builder(metric_exporter.clone())
            .with_interval(Duration::from_secs(3600))
            .build();
        let meter_provider = SdkMeterProvider::builder().with_reader(reader).build();
        Self {
            spans,
            tracer_provider,
            metric_exporter,
            meter_provider,
        }
    }

    /// A config builder wired to this pipeline with the W3C trace-context propagator.
    pub fn config(&self) -> ConfigBuilder {
        Config::builder()
            .with_tracer_provider(self.tracer_provider.clone())
            .with_metrics(Metrics::from_meter_provider(&self.meter_provider))
            .with_propagator(TraceContextPropagator::new())
    }

    pub fn tracer(&self) -> opentelemetry_sdk::trace::SdkTracer {
        use opentelemetry::trace::TracerProvider as _;
        self.tracer_provider.tracer("test")
    }

    pub fn spans(&self) -> Vec<SpanData> {
        self.spans.get_finished_spans().unwrap()
    }

    pub fn span_names(&self) -> Vec<String> {
        self.spans().iter().map(|s| s.name.to_string()).collect()
    }

    /// Waits (up to 5 s) until a span of `kind` named `name` has ended and returns it.
    ///
    /// Server spans end after the body has been sent, which can be a moment after the
    /// client has read the whole response.
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

    /// Data points of histogram `name` (cumulative), flushed now.
    pub fn histogram(&self, name: &str) -> Vec<HistogramDataPoint<f64>> {
        self.metric_exporter.reset();
        self.meter_provider.force_flush().unwrap();
        let metrics = self.metric_exporter.get_finished_metrics().unwrap();
        let mut out = Vec::new();
        for rm in metrics.iter().rev().take(1) {
            for sm in rm.scope_metrics() {
                for m in sm.metrics() {
                    if m.name() != name {
                        continue;
                    }
                    assert_eq!(m.unit(), "s", "{name} unit");
                    if let AggregatedMetrics::F64(MetricData::Histogram(h)) = m.data() {
                        out.extend(h.data_points().cloned());
                    }
                }
            }
        }
        out
    }

    /// Current values of i64 up-down counter `name` with their attributes.
    pub fn up_down(&self, name: &str) -> Vec<(Vec<KeyValue>, i64)> {
        self.metric_exporter.reset();
        self.meter_provider.force_flush().unwrap();
        let metrics = self.metric_exporter.get_finished_metrics().unwrap();
        let mut out = Vec::new();
        for rm in metrics.iter().rev().take(1) {
            for sm in rm.scope_metrics() {
                for m in sm.metrics() {
                    if m.name() != name {
                        continue;
                    }
                    if let AggregatedMetrics::I64(MetricData::Sum(s)) = m.data() {
                        for p in s.data_points() {
                            out.push((p.attributes().cloned().collect(), p.value()));
                        }
                    }
                }
            }
        }
        out
    }
}

pub fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

#[track_caller]
pub fn assert_attr(span: &SpanData, key: &str, expected: impl Into<Value>) {
    let expected = expected.into();
    match attr(span, key) {
        Some(v) => assert_eq!(v, &expected, "attribute {key} of span {}", span.name),
        None => panic!(
            "span {} has no attribute {key}; has {:?}",
            span.name, span.attributes
        ),
    }
}

#[track_caller]
pub fn assert_no_attr(span: &SpanData, key: &str) {
    assert!(
        attr(span, key).is_none(),
        "span {} should not have {key}: {:?}",
        span.name,
        attr(span, key)
    );
}

#[track_caller]
pub fn assert_child_of(child: &SpanData, parent: &SpanData) {
    assert_eq!(
        child.span_context.trace_id(),
        parent.span_context.trace_id(),
        "{} and {} are in different traces",
        child.name,
        parent.name
    );
    assert_eq!(
        child.parent_span_id,
        parent.span_context.span_id(),
        "{} is not a child of {}",
        child.name,
        parent.name
    );
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

/// Whether `point` has exactly the attribute `key` = `value`.
pub fn point_has(point: &HistogramDataPoint<f64>, key: &str, value: impl Into<Value>) -> bool {
    let value = value.into();
    point
        .attributes()
        .any(|kv| kv.key.as_str() == key && kv.value == value)
}

pub fn point_attr<'a>(point: &'a HistogramDataPoint<f64>, key: &str) -> Option<&'a Value> {
    point
        .attributes()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
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
