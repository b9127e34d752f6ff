//! Helpers for this crate's integration tests, on top of `otel_core::testing`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use opentelemetry_semantic_conventions::metric::DB_CLIENT_OPERATION_DURATION;
use otel_core::metrics::{HistogramData, MetricSnapshot, SnapshotExt as _};
use otel_core::testing::{TestTelemetry, require_server};

pub(crate) const REDIS_ADDR: &str = "127.0.0.1:6379";
pub(crate) const REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// Fails the test (never skips) when Redis is not reachable on loopback, saying how to start it.
#[track_caller]
pub(crate) fn require_redis() {
    require_server("Redis", REDIS_ADDR);
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

/// The `db.client.operation.duration` instrument as recorded so far.
#[track_caller]
pub(crate) fn duration_metric(telemetry: &TestTelemetry) -> MetricSnapshot {
    let snapshot = telemetry.metrics().snapshot();
    snapshot
        .find(DB_CLIENT_OPERATION_DURATION)
        .cloned()
        .unwrap_or_else(|| panic!("no {DB_CLIENT_OPERATION_DURATION} recorded"))
}

/// The one series of `metric` whose attributes include all of `expected`.
#[track_caller]
pub(crate) fn series_with(metric: &MetricSnapshot, expected: &[KeyValue]) -> HistogramData {
    let matching: Vec<_> = metric.series_matching(expected).collect();
    assert_eq!(
        matching.len(),
        1,
        "one series with {expected:?} among {:#?}",
        metric
            .series
            .iter()
            .map(|s| &s.attributes)
            .collect::<Vec<_>>()
    );
    matching[0].histogram().expect("a histogram series").clone()
}
