//! Test helpers shared by the integration tests, on top of `otel_core::testing`.
#![allow(dead_code, unused_imports, unreachable_pub, clippy::unwrap_used)]

pub mod scenarios;

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::trace::SpanData;
use otel_core::metrics::{HistogramData, SeriesData, SnapshotExt as _};
pub use otel_core::testing::{
    TestTelemetry as Harness, assert_attr, assert_child_of, assert_exemplars_point_at_exported,
    assert_no_attr, attr, require_server,
};

/// What the tests need from the harness beyond `TestTelemetry` itself.
pub trait HarnessExt {
    /// A started SERVER span named "request" and the context holding it.
    fn request(&self) -> Context;
    /// Series of histogram `name`: (attributes, count).
    fn histogram(&self, name: &str) -> Vec<(Vec<KeyValue>, u64)>;
    /// Series of counter or up-down counter `name`: (attributes, value).
    fn sum(&self, name: &str) -> Vec<(Vec<KeyValue>, i64)>;
}

impl HarnessExt for Harness {
    fn request(&self) -> Context {
        let tracer = self.tracer();
        let span = tracer
            .span_builder("request")
            .with_kind(SpanKind::Server)
            .start(&tracer);
        Context::current_with_span(span)
    }

    fn histogram(&self, name: &str) -> Vec<(Vec<KeyValue>, u64)> {
        let snapshot = self.metrics().snapshot();
        let Some(metric) = snapshot.find(name) else {
            return Vec::new();
        };
        metric
            .series
            .iter()
            .filter_map(|s| match &s.data {
                SeriesData::Histogram(h) => Some((s.attributes.clone(), h.count)),
                _ => None,
            })
            .collect()
    }

    fn sum(&self, name: &str) -> Vec<(Vec<KeyValue>, i64)> {
        let snapshot = self.metrics().snapshot();
        let Some(metric) = snapshot.find(name) else {
            return Vec::new();
        };
        metric
            .series
            .iter()
            .filter_map(|s| match &s.data {
                SeriesData::Counter(v) => Some((s.attributes.clone(), i64::try_from(*v).unwrap())),
                SeriesData::UpDownCounter(v) => Some((s.attributes.clone(), *v)),
                _ => None,
            })
            .collect()
    }
}

#[track_caller]
pub fn assert_client_ok(span: &SpanData) {
    assert_eq!(span.span_kind, SpanKind::Client, "{:?}", span.name);
    assert!(
        !matches!(span.status, Status::Error { .. }),
        "{:?} has status {:?}",
        span.name,
        span.status
    );
}

#[track_caller]
pub fn assert_error(span: &SpanData, code: &str) {
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?} should have failed: {:?}",
        span.name,
        span.status
    );
    assert_attr(span, "db.response.status_code", code.to_owned());
    assert_attr(span, "error.type", code.to_owned());
}

/// The `db.client.operation.duration` series recorded for cancelled calls (`error.type` =
/// `cancelled`), with their data.
pub fn cancelled_points(h: &Harness) -> Vec<(Vec<KeyValue>, HistogramData)> {
    let snapshot = h.metrics().snapshot();
    let Some(metric) = snapshot.find("db.client.operation.duration") else {
        return Vec::new();
    };
    metric
        .series
        .iter()
        .filter(|s| has(&s.attributes, "error.type", "cancelled"))
        .filter_map(|s| match &s.data {
            SeriesData::Histogram(h) => Some((s.attributes.clone(), (**h).clone())),
            _ => None,
        })
        .collect()
}

/// Asserts that `span` ended as cancelled and that `db.client.operation.duration` has a
/// cancelled point with the span's operation attributes, whose exemplars all open spans
/// exported as cancelled with those attributes; returns the point's attributes and the span
/// ids its exemplars point at.
#[track_caller]
pub fn assert_cancelled_and_measured(
    h: &Harness,
    span: &SpanData,
) -> (Vec<KeyValue>, Vec<opentelemetry::trace::SpanId>) {
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?} should be cancelled: {:?}",
        span.name,
        span.status
    );
    assert_attr(span, "error.type", "cancelled");
    const SHARED: [&str; 3] = ["db.operation.name", "db.query.summary", "db.system.name"];
    let same = |attributes: &[KeyValue], other: &SpanData| {
        SHARED.iter().all(|key| {
            attributes
                .iter()
                .find(|kv| kv.key.as_str() == *key)
                .map(|kv| &kv.value)
                == attr(other, key)
        })
    };
    let points = cancelled_points(h);
    let (attributes, data) = points
        .iter()
        .find(|(attributes, _)| same(attributes, span))
        .unwrap_or_else(|| panic!("no cancelled point for {:?} in {points:#?}", span.name));
    assert!(data.count >= 1);
    assert!(!data.exemplars.is_empty(), "{data:?}");
    let exported = h.spans();
    let mut exemplar_spans = Vec::new();
    for exemplar in &data.exemplars {
        let opened = exported
            .iter()
            .find(|s| {
                s.span_context.span_id() == exemplar.span_id
                    && s.span_context.trace_id() == exemplar.trace_id
            })
            .unwrap_or_else(|| panic!("exemplar {exemplar:?} opens no exported span"));
        assert_attr(opened, "error.type", "cancelled");
        assert!(same(attributes, opened), "{:?}", opened.name);
        exemplar_spans.push(exemplar.span_id);
    }
    (attributes.clone(), exemplar_spans)
}

/// After two `SELECT`s (an `execute` and a `fetch_optional`) given up on by a timeout while
/// the server ran them: both spans cancelled and measured, one `cancelled` series of two
/// points whose exemplars open those spans, timed until the drops.
#[track_caller]
pub fn assert_two_selects_cancelled_mid_flight(h: &Harness, query_text: &str, system: &str) {
    let spans = h.spans_named("SELECT");
    assert_eq!(
        spans.len(),
        2,
        "the execute stream and the fetch_optional future"
    );
    for span in &spans {
        otel_core::testing::assert_attr(span, "db.query.text", query_text.to_owned());
        let (attributes, exemplars) = assert_cancelled_and_measured(h, span);
        // One exemplar per bucket: it opens one of the two cancelled calls.
        assert!(
            exemplars
                .iter()
                .all(|id| spans.iter().any(|s| s.span_context.span_id() == *id))
        );
        assert!(has(&attributes, "db.system.name", system.to_owned()));
        assert!(has(&attributes, "db.operation.name", "SELECT"));
    }
    let points = cancelled_points(h);
    assert_eq!(points.len(), 1, "{points:#?}");
    let data = &points[0].1;
    assert_eq!(data.count, 2);
    assert!(
        data.sum >= 0.02 && data.sum < 1.0,
        "until the drops: {}",
        data.sum
    );
}

/// Opens two connections of `pool` and waits until both are back in it, idle (sqlx checks a
/// returned connection before it is idle again), so that the next two queries start on them
/// at once instead of while connecting.
pub async fn two_idle_connections<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) {
    let warm = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
    drop(warm);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pool.num_idle() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the connections did not come back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// True when `kvs` holds `key` = `value`.
pub fn has(kvs: &[KeyValue], key: &str, value: impl Into<Value>) -> bool {
    let value = value.into();
    kvs.iter()
        .any(|kv| kv.key.as_str() == key && kv.value == value)
}

/// A table name no other test (or earlier run) uses.
pub fn unique_table(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// Ends the request span held in `cx`.
pub fn end_request(cx: &Context) {
    cx.span().end();
}
