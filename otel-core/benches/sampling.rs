//! Cost of head-dropped spans, tail-recorded-then-dropped spans and redacted log lines.
//!
//! `cargo bench -p otel-core --bench sampling`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracerProvider, SimpleSpanProcessor, SpanData, SpanExporter,
};
use otel_core::logs::{LogFormat, fmt_layer_with_redaction};
use otel_core::redact::Redactor;
use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
use tracing_subscriber::prelude::*;

#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

fn attrs() -> [KeyValue; 2] {
    [
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.route", "/orders/{id}"),
    ]
}

fn one_span(tracer: &opentelemetry_sdk::trace::SdkTracer) {
    let mut s = tracer
        .span_builder("GET /orders/{id}")
        .with_attributes(attrs())
        .start(tracer);
    s.set_attribute(KeyValue::new("http.response.status_code", 200));
    s.end();
}

fn spans(c: &mut Criterion) {
    let mut g = c.benchmark_group("span");

    let head = SdkTracerProvider::builder()
        .with_sampler(Sampler::TraceIdRatioBased(0.0))
        .with_simple_exporter(Discard)
        .build();
    let tracer = head.tracer("bench");
    g.bench_function("head_sampled_out", |b| b.iter(|| one_span(&tracer)));

    let tail = TailSpanProcessor::new(
        SimpleSpanProcessor::new(Discard),
        TailConfig::new().with_slow_threshold(Duration::from_secs(1)),
    );
    let tail_provider = SdkTracerProvider::builder()
        .with_sampler(TailSampler::new(Sampler::TraceIdRatioBased(0.0)))
        .with_span_processor(tail)
        .build();
    let tracer = tail_provider.tracer("bench");
    g.bench_function("tail_recorded_dropped", |b| b.iter(|| one_span(&tracer)));
    g.finish();
}

fn logs(c: &mut Criterion) {
    let mut g = c.benchmark_group("log");
    let redactor = Redactor::new();
    let line = || {
        tracing::info!(
            user.email = "ann@example.com",
            password = "hunter2",
            order = 42,
            path = "/orders/42",
            "payment accepted"
        );
    };
    for (id, r) in [
        ("plain_json", None),
        ("redacted_json", Some(redactor.clone())),
    ] {
        let sub = tracing_subscriber::registry().with(fmt_layer_with_redaction(
            LogFormat::Json,
            std::io::sink,
            r,
        ));
        tracing::subscriber::with_default(sub, || {
            g.bench_function(id, |b| b.iter(line));
        });
    }
    let text = "payment accepted for order 42 on /orders/42 by user 7 at 2026-01-01";
    g.bench_function("redact_str_clean", |b| {
        b.iter(|| black_box(redactor.redact_str(black_box(text))).len());
    });
    let fields = serde_json::json!({
        "user.email": "ann@example.com", "password": "hunter2", "order": 42, "path": "/orders/42"
    });
    g.bench_function("redact_fields_json", |b| {
        b.iter_batched(
            || fields.clone(),
            |mut f| {
                redactor.redact_json(&mut f);
                f
            },
            criterion::BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group!(benches, spans, logs);
criterion_main!(benches);
