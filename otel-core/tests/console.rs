//! The console waterfall: a trace whose server part continues a caller in the same process
//! prints as one tree; errors are marked; memory stays bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracerProvider;
use otel_core::console::ConsoleExporter;

#[test]
fn client_and_in_process_server_print_as_one_tree() {
    let out = Arc::new(Mutex::new(String::new()));
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(ConsoleExporter::to_buffer(out.clone()))
        .build();
    let tracer = provider.tracer("t");
    let client = tracer
        .span_builder("GET")
        .with_kind(SpanKind::Client)
        .start(&tracer);
    let sc = client.span_context().clone();
    let client_cx = Context::current_with_span(client);
    // The server continues the caller's trace through (simulated) headers: a remote parent.
    let remote = SpanContext::new(
        sc.trace_id(),
        sc.span_id(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let server_parent = Context::new().with_remote_span_context(remote);
    let mut server = tracer
        .span_builder("GET /accounts/{id}")
        .with_kind(SpanKind::Server)
        .with_attributes([KeyValue::new("http.response.status_code", 500)])
        .start_with_context(&tracer, &server_parent);
    server.set_status(Status::error("boom"));
    server.end();
    // The server part waits for its caller instead of printing alone.
    assert!(out.lock().unwrap().is_empty(), "{}", out.lock().unwrap());
    client_cx.span().end();
    let text = out.lock().unwrap().clone();
    assert_eq!(text.matches("trace ").count(), 1, "{text}");
    assert!(
        text.contains(&format!("trace {} · 2 spans", sc.trace_id())),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].starts_with("GET "), "{text}");
    assert!(lines[2].starts_with("  ✗ GET /accounts/{id}"), "{text}");
    assert!(lines[2].contains("http.response.status_code=500") && lines[2].ends_with("ERROR boom"));
}

#[test]
fn remote_rooted_part_alone_prints_at_shutdown() {
    let out = Arc::new(Mutex::new(String::new()));
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(ConsoleExporter::to_buffer(out.clone()))
        .build();
    let tracer = provider.tracer("t");
    let remote = SpanContext::new(
        opentelemetry::trace::TraceId::from(7u128),
        opentelemetry::trace::SpanId::from(9u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let parent = Context::new().with_remote_span_context(remote);
    tracer.start_with_context("handler", &parent).end();
    provider.shutdown().unwrap();
    let text = out.lock().unwrap().clone();
    assert!(
        text.contains("· 1 spans") && text.contains("handler"),
        "{text}"
    );
}
