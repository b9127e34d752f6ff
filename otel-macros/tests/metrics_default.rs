//! `set_metrics_by_default`: process-wide, so in a test binary of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute::CODE_FUNCTION_NAME;
use otel_core::macro_support::{
    CALL_DURATION, RESULT, metrics_by_default, set_metrics_by_default, with_instrumentation,
};
use otel_core::metrics::SnapshotExt as _;
use otel_core::testing::TestTelemetry;
use otel_core::traced;

#[traced]
fn follows_the_default() {}

#[traced(metrics = false)]
fn opted_out() {}

#[test]
fn the_default_turns_metrics_on_for_functions_that_do_not_opt_out() {
    let tt = TestTelemetry::new();
    let _g = with_instrumentation(&Context::current(), &tt.instrumentation("test")).attach();
    assert!(!metrics_by_default());
    follows_the_default();
    assert!(
        tt.metrics()
            .snapshot()
            .find(CALL_DURATION)
            .is_none_or(|m| m.series.is_empty())
    );

    set_metrics_by_default(true);
    follows_the_default();
    opted_out();
    set_metrics_by_default(false);
    follows_the_default();

    let snapshot = tt.metrics().snapshot();
    let metric = snapshot.find(CALL_DURATION).unwrap();
    assert_eq!(metric.series.len(), 1, "{:?}", metric.series);
    let series = metric
        .find_series(&[
            KeyValue::new(CODE_FUNCTION_NAME, "metrics_default::follows_the_default"),
            KeyValue::new(RESULT, "ok"),
        ])
        .unwrap();
    assert_eq!(series.histogram().unwrap().count, 1);
    assert_eq!(tt.spans().len(), 4);
}
