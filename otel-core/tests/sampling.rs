//! Head samplers, asserted on exported spans.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, ShouldSample};
use otel_core::sampling::{RateLimitingSampler, RuleMatch, RuleSampler};
use otel_core::semconv::attribute::HTTP_ROUTE;

fn pipeline(sampler: impl ShouldSample + 'static) -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

#[test]
fn rate_limit_is_respected_over_a_window_and_children_follow() {
    let rate = 50.0;
    let (provider, exporter) = pipeline(RateLimitingSampler::new(rate));
    let tracer = provider.tracer("t");
    let start = Instant::now();
    let mut attempts = 0u64;
    while start.elapsed() < Duration::from_millis(1500) {
        attempts += 1;
        tracer.in_span("request", |cx| {
            // A child: must follow the root's decision.
            tracer.start_with_context("child", &cx).end();
        });
        std::thread::sleep(Duration::from_micros(200));
    }
    let window = start.elapsed().as_secs_f64();
    let spans = exporter.get_finished_spans().unwrap();
    let roots = spans.iter().filter(|s| s.name == "request").count() as f64;
    let children = spans.iter().filter(|s| s.name == "child").count() as f64;
    // Far more attempts than the rate allows (the loop sleeps 200 µs; a loaded machine sleeps longer).
    assert!(
        attempts as f64 > rate * window * 3.0,
        "only {attempts} attempts"
    );
    // The bucket holds one second's worth, so at most rate * (window + 1).
    assert!(
        roots <= rate * (window + 1.0),
        "{roots} roots in {window} s"
    );
    assert!(roots >= rate * window * 0.9, "{roots} roots in {window} s");
    assert_eq!(roots, children, "children follow their root");
    for c in spans.iter().filter(|s| s.name == "child") {
        assert!(
            spans
                .iter()
                .any(|r| r.name == "request" && r.span_context.span_id() == c.parent_span_id)
        );
    }
}

#[test]
fn route_rules_decide_entry_spans() {
    let sampler = RuleSampler::builder()
        .rule(
            RuleMatch::route("/health"),
            opentelemetry_sdk::trace::Sampler::AlwaysOff,
        )
        .rule(
            RuleMatch::route("/pay*"),
            opentelemetry_sdk::trace::Sampler::AlwaysOn,
        )
        .fallback(opentelemetry_sdk::trace::Sampler::TraceIdRatioBased(0.0))
        .build();
    let (provider, exporter) = pipeline(sampler);
    let tracer = provider.tracer("t");
    for route in ["/health", "/pay/{id}", "/other"] {
        for _ in 0..20 {
            let span = tracer
                .span_builder(format!("GET {route}"))
                .with_attributes([KeyValue::new(HTTP_ROUTE, route)])
                .start(&tracer);
            let cx = opentelemetry::Context::current_with_span(span);
            tracer.start_with_context("db", &cx).end();
            cx.span().end();
        }
    }
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 40, "20 payments with their db child");
    assert!(
        spans
            .iter()
            .all(|s| s.name == "GET /pay/{id}" || s.name == "db")
    );
}
