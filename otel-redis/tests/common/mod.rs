//! Test capture for this crate's integration tests.
//!
//! Interim: mirrors the surface of `otel_core::testing::TestTelemetry` (in-memory spans, an
//! always-on sampler, nothing global) with the SDK's in-memory exporters, until that harness is
//! on the integration branch. Metrics go through the SDK meter, which fills no exemplars.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, HistogramDataPoint, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SdkTracer, SdkTracerProvider, SpanData,
};

pub(crate) const REDIS_ADDR: &str = "127.0.0.1:6379";
pub(crate) const REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// Fails the test (never skips) when Redis is not reachable on loopback.
pub(crate) fn require_redis() {
    let addr = REDIS_ADDR.to_socket_addrs().unwrap().next().unwrap();
    if let Err(error) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        panic!(
            "Redis is not reachable on {REDIS_ADDR} ({error}); these tests need it: \
             start the test services with scripts/services.sh"
        );
    }
}

/// A key prefix no other test (or test run) uses.
pub(crate) fn unique_prefix(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("otel-redis-test:{test}:{}:{nanos}:{n}:", std::process::id())
}

/// In-memory spans and metrics, isolated per test.
pub(crate) struct TestTelemetry {
    tracer_provider: SdkTracerProvider,
    spans: InMemorySpanExporter,
    meter_provider: SdkMeterProvider,
    metrics: InMemoryMetricExporter,
}

impl TestTelemetry {
    pub(crate) fn new() -> Self {
        Self::with_sampler(Sampler::AlwaysOn)
    }

    pub(crate) fn with_sampler(sampler: Sampler) -> Self {
        let spans = InMemorySpanExporter::default();
        let tracer_provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_simple_exporter(spans.clone())
            .build();
        let metrics = InMemoryMetricExporter::default();
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(metrics.clone()).build())
            .build();
        Self {
            tracer_provider,
            spans,
            meter_provider,
            metrics,
        }
    }

    pub(crate) fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    pub(crate) fn meter_provider(&self) -> &SdkMeterProvider {
        &self.meter_provider
    }

    /// A tracer for the "request" span a test puts around its calls.
    pub(crate) fn tracer(&self) -> SdkTracer {
        self.tracer_provider.tracer("test-request")
    }

    pub(crate) fn spans(&self) -> Vec<SpanData> {
        self.tracer_provider.force_flush().unwrap();
        self.spans.get_finished_spans().unwrap()
    }

    pub(crate) fn spans_named(&self, name: &str) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|span| span.name == name)
            .collect()
    }

    pub(crate) fn span(&self, name: &str) -> SpanData {
        let spans = self.spans();
        let names: Vec<String> = spans.iter().map(|s| s.name.to_string()).collect();
        spans
            .into_iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("no span named {name:?}; exported: {names:?}"))
    }

    /// The data points of the histogram `name`, from a fresh collection.
    pub(crate) fn histogram_points(&self, name: &str) -> Vec<HistogramDataPoint<f64>> {
        self.meter_provider.force_flush().unwrap();
        let exported = self.metrics.get_finished_metrics().unwrap();
        let Some(last) = exported.last() else {
            return Vec::new();
        };
        let mut points = Vec::new();
        for scope in last.scope_metrics() {
            for metric in scope.metrics() {
                if metric.name() != name {
                    continue;
                }
                if let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = metric.data() {
                    points.extend(histogram.data_points().cloned());
                }
            }
        }
        points
    }

    /// Everything exported so far, spans and metrics, in Debug form (to search for leaks).
    pub(crate) fn everything_exported(&self) -> String {
        let spans = self.spans();
        self.meter_provider.force_flush().unwrap();
        let metrics = self.metrics.get_finished_metrics().unwrap();
        format!("{spans:#?}\n{metrics:#?}")
    }
}

pub(crate) fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

#[track_caller]
pub(crate) fn assert_attr(span: &SpanData, key: &str, expected: impl Into<Value>) {
    let expected = expected.into();
    assert_eq!(
        attr(span, key),
        Some(&expected),
        "attribute {key} of span {:?}: {:#?}",
        span.name,
        span.attributes
    );
}

#[track_caller]
pub(crate) fn assert_no_attr(span: &SpanData, key: &str) {
    assert!(
        attr(span, key).is_none(),
        "span {:?} has {key}: {:?}",
        span.name,
        attr(span, key)
    );
}

#[track_caller]
pub(crate) fn assert_child_of(child: &SpanData, parent: &SpanData) {
    assert_eq!(
        child.span_context.trace_id(),
        parent.span_context.trace_id(),
        "same trace"
    );
    assert_eq!(
        child.parent_span_id,
        parent.span_context.span_id(),
        "{:?} is a child of {:?}",
        child.name,
        parent.name
    );
}

pub(crate) fn point_attr<'a>(point: &'a HistogramDataPoint<f64>, key: &str) -> Option<&'a Value> {
    point
        .attributes()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// The one data point whose attributes include all of `expected`.
#[track_caller]
pub(crate) fn point_with<'a>(
    points: &'a [HistogramDataPoint<f64>],
    expected: &[KeyValue],
) -> &'a HistogramDataPoint<f64> {
    let matching: Vec<_> = points
        .iter()
        .filter(|point| {
            expected
                .iter()
                .all(|kv| point_attr(point, kv.key.as_str()) == Some(&kv.value))
        })
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "one point with {expected:?} among {:#?}",
        points
            .iter()
            .map(|p| p.attributes().cloned().collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    matching[0]
}
