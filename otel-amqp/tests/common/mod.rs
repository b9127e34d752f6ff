//! Test harness for the integration tests.
//!
//! Interim stand-in for `otel_core::testing` (`TestTelemetry`, `require_server`, the assertion
//! helpers): an in-memory span and metric pipeline per test, touching no global provider.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};
use opentelemetry::metrics::MeterProvider;
use opentelemetry::trace::{SpanId, TracerProvider};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, HistogramDataPoint, MetricData, ResourceMetrics, SumDataPoint,
};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracer, SdkTracerProvider, SpanData};
use otel_amqp::Metrics;

pub(crate) const AMQP_ADDR: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Connects to the RabbitMQ on loopback, failing the test (not skipping it) when it cannot.
pub(crate) async fn connect() -> Connection {
    let attempt = tokio::time::timeout(
        Duration::from_secs(10),
        Connection::connect(AMQP_ADDR, ConnectionProperties::default()),
    )
    .await;
    match attempt {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => panic!(
            "RabbitMQ is not reachable at {AMQP_ADDR} ({error}); start it with scripts/services.sh"
        ),
        Err(_) => panic!(
            "RabbitMQ did not answer at {AMQP_ADDR} within 10s; start it with scripts/services.sh"
        ),
    }
}

/// A queue name no other test (or test run) uses.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "otel-amqp-{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// One isolated pipeline: spans to memory, metrics to memory.
pub(crate) struct TestTelemetry {
    spans: InMemorySpanExporter,
    tracer_provider: SdkTracerProvider,
    metric_exporter: InMemoryMetricExporter,
    meter_provider: SdkMeterProvider,
}

impl TestTelemetry {
    pub(crate) fn new() -> Self {
        // The global propagator is the one the adapter uses to write and read headers; every
        // test installs the same W3C one.
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let spans = InMemorySpanExporter::default();
        let tracer_provider = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        let metric_exporter = InMemoryMetricExporter::default();
        let meter_provider = SdkMeterProvider::builder()
            .with_periodic_exporter(metric_exporter.clone())
            .build();
        Self {
            spans,
            tracer_provider,
            metric_exporter,
            meter_provider,
        }
    }

    pub(crate) fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    pub(crate) fn metrics(&self) -> Metrics {
        Metrics::from_meter(self.meter_provider.meter("otel-amqp-tests"))
    }

    pub(crate) fn tracer(&self) -> SdkTracer {
        self.tracer_provider.tracer("test")
    }

    pub(crate) fn spans(&self) -> Vec<SpanData> {
        self.tracer_provider.force_flush().unwrap();
        self.spans.get_finished_spans().unwrap()
    }

    pub(crate) fn span(&self, name: &str) -> SpanData {
        let spans = self.spans();
        let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
        let mut matching: Vec<_> = spans.into_iter().filter(|s| s.name == name).collect();
        assert_eq!(
            matching.len(),
            1,
            "expected one span {name:?}, have {names:?}"
        );
        matching.remove(0)
    }

    pub(crate) fn spans_named(&self, name: &str) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    fn collect(&self) -> ResourceMetrics {
        self.meter_provider.force_flush().unwrap();
        self.metric_exporter
            .get_finished_metrics()
            .unwrap()
            .pop()
            .expect("no metrics exported")
    }

    /// The data points of histogram `name`.
    pub(crate) fn histogram(&self, name: &str) -> Vec<HistogramDataPoint<f64>> {
        let metrics = self.collect();
        for scope in metrics.scope_metrics() {
            for metric in scope.metrics() {
                if metric.name() == name {
                    if let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = metric.data()
                    {
                        return histogram.data_points().cloned().collect();
                    }
                    panic!("{name} is not an f64 histogram");
                }
            }
        }
        panic!("no metric {name}");
    }

    /// The data points of counter `name`.
    pub(crate) fn counter(&self, name: &str) -> Vec<SumDataPoint<u64>> {
        let metrics = self.collect();
        for scope in metrics.scope_metrics() {
            for metric in scope.metrics() {
                if metric.name() == name {
                    if let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() {
                        return sum.data_points().cloned().collect();
                    }
                    panic!("{name} is not a u64 counter");
                }
            }
        }
        panic!("no metric {name}");
    }
}

pub(crate) fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

pub(crate) fn assert_attr(span: &SpanData, key: &str, expected: impl Into<Value>) {
    let expected = expected.into();
    assert_eq!(
        attr(span, key),
        Some(&expected),
        "attribute {key} of span {:?}: {:?}",
        span.name,
        span.attributes
    );
}

pub(crate) fn assert_no_attr(span: &SpanData, key: &str) {
    assert_eq!(attr(span, key), None, "span {:?} has {key}", span.name);
}

pub(crate) fn assert_child_of(child: &SpanData, parent: &SpanData) {
    assert_eq!(
        child.span_context.trace_id(),
        parent.span_context.trace_id(),
        "{:?} not in the trace of {:?}",
        child.name,
        parent.name
    );
    assert_eq!(
        child.parent_span_id,
        parent.span_context.span_id(),
        "{:?} is not a child of {:?}",
        child.name,
        parent.name
    );
}

pub(crate) fn assert_root(span: &SpanData) {
    assert_eq!(
        span.parent_span_id,
        SpanId::INVALID,
        "{:?} has a parent",
        span.name
    );
}

/// Whether `span` links to `target`.
pub(crate) fn links_to(span: &SpanData, target: &SpanData) -> bool {
    span.links.iter().any(|link| {
        link.span_context.span_id() == target.span_context.span_id()
            && link.span_context.trace_id() == target.span_context.trace_id()
    })
}

pub(crate) fn point_attr<'a>(
    attributes: impl Iterator<Item = &'a KeyValue>,
    key: &str,
) -> Option<Value> {
    attributes
        .into_iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}
