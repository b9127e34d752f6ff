//! The call-duration histogram of `#[traced(metrics)]`: series by function and result,
//! exemplars pointing at the exported spans.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use opentelemetry::{Context, ContextGuard, KeyValue};
use opentelemetry_sdk::trace::Sampler;
use opentelemetry_semantic_conventions::attribute::{CODE_FUNCTION_NAME, ERROR_TYPE};
use otel_core::context::FutureExt as _;
use otel_core::macro_support::{CALL_DURATION, RESULT, with_instrumentation};
use otel_core::metrics::{MetricSnapshot, SnapshotExt as _};
use otel_core::testing::{TestTelemetry, assert_exemplars_point_at_exported};
use otel_core::traced;

fn capture(tt: &TestTelemetry) -> ContextGuard {
    with_instrumentation(&Context::current(), &tt.instrumentation("test")).attach()
}

fn histogram(tt: &TestTelemetry) -> MetricSnapshot {
    tt.metrics()
        .snapshot()
        .find(CALL_DURATION)
        .cloned()
        .expect("the call-duration histogram exists")
}

fn count(metric: &MetricSnapshot, attributes: &[KeyValue]) -> u64 {
    metric
        .find_series(attributes)
        .and_then(|s| s.histogram())
        .map_or(0, |h| h.count)
}

#[traced(metrics, err)]
fn transfer(amount: u64) -> Result<u64, String> {
    std::thread::sleep(Duration::from_millis(2));
    if amount == 0 {
        return Err("empty transfer".into());
    }
    Ok(amount)
}

#[traced]
fn unmeasured() {}

#[test]
fn calls_are_counted_by_function_and_result_with_exemplars_on_their_spans() {
    let tt = TestTelemetry::new();
    let _g = capture(&tt);
    transfer(5).unwrap();
    transfer(6).unwrap();
    transfer(0).unwrap_err();
    unmeasured();

    let metric = histogram(&tt);
    assert_eq!(metric.unit, "s");
    let f = KeyValue::new(CODE_FUNCTION_NAME, "metrics::transfer");
    assert_eq!(count(&metric, &[f.clone(), KeyValue::new(RESULT, "ok")]), 2);
    assert_eq!(
        count(
            &metric,
            &[
                f.clone(),
                KeyValue::new(RESULT, "error"),
                KeyValue::new(ERROR_TYPE, "alloc::string::String"),
            ]
        ),
        1
    );
    // Only the function that asked for metrics has series.
    assert_eq!(metric.series.len(), 2);
    let ok = metric
        .find_series(&[f, KeyValue::new(RESULT, "ok")])
        .unwrap()
        .histogram()
        .unwrap();
    assert!(ok.min.unwrap() >= 0.002, "{ok:?}");

    // Every exemplar is a span that was exported, and it is a `transfer` span.
    let spans = tt.spans_named("transfer");
    assert!(assert_exemplars_point_at_exported(tt.metrics(), CALL_DURATION, &spans) >= 1);
}

#[traced(metrics)]
fn explode() {
    panic!("boom");
}

#[traced(metrics)]
async fn slow() {
    tokio::time::sleep(Duration::from_secs(10)).await;
}

#[test]
fn panics_and_cancellations_are_errors() {
    let tt = TestTelemetry::new();
    {
        let _g = capture(&tt);
        assert!(std::panic::catch_unwind(explode).is_err());
    }
    let cx = with_instrumentation(&Context::current(), &tt.instrumentation("test"));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(
            async {
                let r = tokio::time::timeout(Duration::from_millis(5), slow()).await;
                assert!(r.is_err());
            }
            .with_context(cx),
        );
    let metric = histogram(&tt);
    let error = |f: &'static str, t: &'static str| {
        [
            KeyValue::new(CODE_FUNCTION_NAME, f),
            KeyValue::new(RESULT, "error"),
            KeyValue::new(ERROR_TYPE, t),
        ]
    };
    assert_eq!(count(&metric, &error("metrics::explode", "panic")), 1);
    assert_eq!(count(&metric, &error("metrics::slow", "cancelled")), 1);
}

#[test]
fn unsampled_calls_are_measured_without_exemplars() {
    let tt = TestTelemetry::with_sampler(Sampler::AlwaysOff);
    let _g = capture(&tt);
    transfer(1).unwrap();
    assert!(tt.spans().is_empty());
    let metric = histogram(&tt);
    assert_eq!(
        count(
            &metric,
            &[
                KeyValue::new(CODE_FUNCTION_NAME, "metrics::transfer"),
                KeyValue::new(RESULT, "ok")
            ]
        ),
        1
    );
    assert_eq!(metric.exemplars().count(), 0);
}
