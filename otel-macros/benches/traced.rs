//! Cost of `#[traced]`: `cargo bench -p otel-macros --bench traced`.
//!
//! All in one run, on the same tiny function:
//! - `call/bare`: the function without instrumentation;
//! - `call/traced`: `#[traced(metrics)]`, span sampled (global provider, always-on sampler,
//!   a span processor that drops finished spans, so export is not measured);
//! - `call/traced_unsampled`: the same function under a remote parent that was not sampled
//!   (parent-based sampler), the common case of an unsampled request;
//! - `call/hand_written`: the equivalent written by hand against the OpenTelemetry API (the
//!   same span, kind and attributes, context made current) plus one record into the same
//!   exemplar histogram: what `call/traced` should not cost more than;
//! - `call/hand_written_unsampled`: the same under the unsampled parent.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, Span, SpanData, SpanProcessor};
use opentelemetry_semantic_conventions::attribute::{
    CODE_COLUMN_NUMBER, CODE_FILE_PATH, CODE_FUNCTION_NAME, CODE_LINE_NUMBER,
};
use otel_core::macro_support::{CALL_DURATION, RESULT};
use otel_core::metrics::{Histogram, Metrics, MetricsConfig};
use otel_core::traced;

/// Receives finished spans and drops them.
#[derive(Debug)]
struct Discard;

impl SpanProcessor for Discard {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}
    fn on_end(&self, span: SpanData) {
        black_box(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[inline(never)]
fn bare(a: u64, b: u64) -> u64 {
    black_box(a) + black_box(b)
}

#[traced(metrics)]
#[inline(never)]
fn traced_call(a: u64, b: u64) -> u64 {
    black_box(a) + black_box(b)
}

struct HandWritten {
    tracer: BoxedTracer,
    histogram: Histogram,
}

fn hand_written_state() -> &'static HandWritten {
    static STATE: OnceLock<HandWritten> = OnceLock::new();
    STATE.get_or_init(|| HandWritten {
        tracer: opentelemetry::global::tracer_provider().tracer_with_scope(
            InstrumentationScope::builder("bench")
                .with_version("0")
                .with_schema_url(opentelemetry_semantic_conventions::SCHEMA_URL)
                .build(),
        ),
        histogram: Metrics::global()
            .f64_histogram(CALL_DURATION)
            .with_unit("s")
            .build(),
    })
}

#[inline(never)]
fn hand_written(a: u64, b: u64) -> u64 {
    let state = hand_written_state();
    let start = Instant::now();
    let parent = Context::current();
    let span = state
        .tracer
        .span_builder("hand_written")
        .with_kind(SpanKind::Internal)
        .with_attributes(vec![
            KeyValue::new(CODE_FUNCTION_NAME, "traced::hand_written"),
            KeyValue::new(CODE_FILE_PATH, file!()),
            KeyValue::new(CODE_LINE_NUMBER, i64::from(line!())),
            KeyValue::new(CODE_COLUMN_NUMBER, 4),
        ])
        .start_with_context(&state.tracer, &parent);
    let cx = parent.with_span(span);
    let guard = cx.clone().attach();
    if cx.span().is_recording() {
        cx.span()
            .set_attributes([KeyValue::new("a", a as i64), KeyValue::new("b", b as i64)]);
    }
    let result = black_box(a) + black_box(b);
    drop(guard);
    state.histogram.record_with_context(
        start.elapsed().as_secs_f64(),
        &[
            KeyValue::new(CODE_FUNCTION_NAME, "traced::hand_written"),
            KeyValue::new(RESULT, "ok"),
        ],
        &cx,
    );
    cx.span().end();
    result
}

fn bench(c: &mut Criterion) {
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .with_span_processor(Discard)
        .build();
    opentelemetry::global::set_tracer_provider(provider);
    Metrics::set_global(Metrics::new(MetricsConfig::default()));

    // A request whose caller decided not to sample it.
    let unsampled_parent = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_bytes([7; 16]),
        SpanId::from_bytes([7; 8]),
        TraceFlags::default(),
        true,
        TraceState::default(),
    ));

    let mut group = c.benchmark_group("call");
    group.bench_function("bare", |b| b.iter(|| bare(black_box(1), black_box(2))));
    group.bench_function("traced", |b| {
        b.iter(|| traced_call(black_box(1), black_box(2)));
    });
    group.bench_function("traced_unsampled", |b| {
        let _g = unsampled_parent.clone().attach();
        b.iter(|| traced_call(black_box(1), black_box(2)));
    });
    group.bench_function("hand_written", |b| {
        b.iter(|| hand_written(black_box(1), black_box(2)));
    });
    group.bench_function("hand_written_unsampled", |b| {
        let _g = unsampled_parent.clone().attach();
        b.iter(|| hand_written(black_box(1), black_box(2)));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
