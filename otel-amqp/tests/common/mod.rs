//! Test harness for the integration tests: `otel_core::testing` plus what it does not have yet.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};
use opentelemetry::metrics::MeterProvider;
use opentelemetry::trace::SpanId;
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, HistogramDataPoint, MetricData, ResourceMetrics, SumDataPoint,
};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SpanData;
use otel_amqp::Metrics;
pub(crate) use otel_core::testing::{
    TestTelemetry, assert_attr, assert_child_of, assert_no_attr, attr, require_server,
};

pub(crate) const AMQP_ADDR: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Connects to the RabbitMQ on loopback, failing the test (not skipping it) when it cannot.
pub(crate) async fn connect() -> Connection {
    require_server("RabbitMQ", "127.0.0.1:5672");
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

/// `otel_core::testing::TestTelemetry` (spans, assertions) plus an in-memory metrics pipeline.
///
/// The metrics half is interim, until `otel-core`'s exemplar histograms land and
/// `TestTelemetry::metrics` snapshots what this crate records.
pub(crate) struct TestPipeline {
    telemetry: TestTelemetry,
    metric_exporter: InMemoryMetricExporter,
    meter_provider: SdkMeterProvider,
}

impl std::ops::Deref for TestPipeline {
    type Target = TestTelemetry;
    fn deref(&self) -> &TestTelemetry {
        &self.telemetry
    }
}

impl TestPipeline {
    pub(crate) fn new() -> Self {
        Self::with_telemetry(TestTelemetry::new())
    }

    /// With a given head sampler for the spans.
    pub(crate) fn with_sampler(sampler: opentelemetry_sdk::trace::Sampler) -> Self {
        Self::with_telemetry(TestTelemetry::with_sampler(sampler))
    }

    fn with_telemetry(telemetry: TestTelemetry) -> Self {
        // The adapter writes and reads headers with the global propagator (the pipeline of
        // `otel-core` installs it in an application); every test installs the same W3C one.
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let metric_exporter = InMemoryMetricExporter::default();
        let meter_provider = SdkMeterProvider::builder()
            .with_periodic_exporter(metric_exporter.clone())
            .build();
        Self {
            telemetry,
            metric_exporter,
            meter_provider,
        }
    }

    pub(crate) fn metrics(&self) -> Metrics {
        Metrics::from_meter(self.meter_provider.meter("otel-amqp-tests"))
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
