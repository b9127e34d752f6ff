//! Test harness for the integration tests: `otel_core::testing` plus what it does not have yet.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};
use opentelemetry::Value;
use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::SpanData;
use otel_core::metrics::{SeriesSnapshot, SnapshotExt};
use otel_core::propagation::Propagators;
pub(crate) use otel_core::testing::{
    TestTelemetry, assert_attr, assert_child_of, assert_exemplars_point_at_exported,
    assert_no_attr, attr, require_server,
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

/// A test pipeline (`otel_core::testing`), with the default propagators (W3C trace context and
/// baggage) installed globally: the adapter writes and reads headers with the global
/// propagator, which an application's `otel-core` pipeline installs; every test installs the
/// same one.
pub(crate) fn test_telemetry() -> TestTelemetry {
    opentelemetry::global::set_text_map_propagator(Propagators::default());
    TestTelemetry::new()
}

/// [`test_telemetry`] with a given head sampler.
pub(crate) fn telemetry_with_sampler(sampler: opentelemetry_sdk::trace::Sampler) -> TestTelemetry {
    opentelemetry::global::set_text_map_propagator(Propagators::default());
    TestTelemetry::with_sampler(sampler)
}

/// The series of instrument `name`; panics naming the instruments present when it is absent.
pub(crate) fn series(telemetry: &TestTelemetry, name: &str) -> Vec<SeriesSnapshot> {
    let snapshot = telemetry.metrics().snapshot();
    match snapshot.find(name) {
        Some(metric) => metric.series.clone(),
        None => panic!(
            "no instrument {name}; have {:?}",
            snapshot.iter().map(|m| m.name.as_str()).collect::<Vec<_>>()
        ),
    }
}

/// Values of a series, for counters and histograms alike.
pub(crate) trait SeriesExt {
    /// A counter series' value.
    fn value(&self) -> u64;
    /// A histogram series' count.
    fn count(&self) -> u64;
}

impl SeriesExt for SeriesSnapshot {
    fn value(&self) -> u64 {
        self.counter().expect("a counter series")
    }

    fn count(&self) -> u64 {
        self.histogram().expect("a histogram series").count
    }
}

/// The value of attribute `key` of a series.
pub(crate) fn point_attr(series: &SeriesSnapshot, key: &str) -> Option<Value> {
    series.attribute(key).cloned()
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
