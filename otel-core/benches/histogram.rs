//! Cost of recording one duration into a histogram, side by side:
//!
//! - `record/otel_core`: `otel_core` histogram, no active span (no exemplar);
//! - `record/otel_core_with_exemplar`: same, inside a sampled span (exemplar written on every
//!   call — the worst case);
//! - `record/otel_sdk`: the official `opentelemetry_sdk` histogram (which keeps no exemplars)
//!   with the same attributes and boundaries;
//! - `record/otel_core_2_threads`: two threads recording into the same series at once; the
//!   time reported is wall time per record per thread.
//!
//! Run with `cargo bench -p otel-core --bench histogram`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use otel_core::metrics::{DURATION_BOUNDARIES_SECONDS, Metrics, MetricsConfig};

/// A typical HTTP server series.
fn attributes() -> [KeyValue; 5] {
    [
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.route", "/api/accounts/{id}"),
        KeyValue::new("http.response.status_code", 200_i64),
        KeyValue::new("url.scheme", "https"),
        KeyValue::new("network.protocol.version", "1.1"),
    ]
}

/// Durations spread over the buckets, so branch prediction does not see one value.
const VALUES: [f64; 8] = [0.0031, 0.012, 0.047, 0.09, 0.21, 0.0062, 0.6, 0.033];

fn bench(c: &mut Criterion) {
    let attrs = attributes();
    let mut group = c.benchmark_group("record");

    let metrics = Metrics::new(MetricsConfig::default());
    let histogram = metrics
        .f64_histogram("http.server.request.duration")
        .with_unit("s")
        .build();
    let mut i = 0usize;
    group.bench_function("otel_core", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            histogram.record(black_box(VALUES[i % VALUES.len()]), black_box(&attrs));
        })
    });

    let sampled = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_bytes([7; 16]),
        SpanId::from_bytes([9; 8]),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ));
    {
        let _guard = sampled.clone().attach();
        group.bench_function("otel_core_with_exemplar", |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                histogram.record(black_box(VALUES[i % VALUES.len()]), black_box(&attrs));
            })
        });
    }

    // A reader that never fires during the run (collection is not what is measured).
    let reader = PeriodicReader::builder(InMemoryMetricExporter::default())
        .with_interval(Duration::from_secs(3600))
        .build();
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    let sdk_histogram = provider
        .meter("bench")
        .f64_histogram("http.server.request.duration")
        .with_unit("s")
        .with_boundaries(DURATION_BOUNDARIES_SECONDS.to_vec())
        .build();
    group.bench_function("otel_sdk", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            sdk_histogram.record(black_box(VALUES[i % VALUES.len()]), black_box(&attrs));
        })
    });

    group.bench_function("otel_core_2_threads", |b| {
        b.iter_custom(|iters| two_threads(iters, &histogram, &attrs))
    });
    group.finish();
}

/// Wall time for two threads each recording `iters` values into the same series.
fn two_threads(
    iters: u64,
    histogram: &otel_core::metrics::Histogram,
    attrs: &[KeyValue],
) -> Duration {
    let barrier = Barrier::new(3);
    std::thread::scope(|scope| {
        for t in 0..2 {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                for n in 0..iters {
                    let v = VALUES[(n as usize + t) % VALUES.len()];
                    histogram.record(black_box(v), black_box(attrs));
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
