//! With tail mode on (otel-core's `TailSpanProcessor` in the process), the server layer
//! starts a span for a request whose caller did not sample the trace, so that tail mode can
//! keep the request whole when it fails. Its own binary: tail mode is process-wide state.
#![allow(clippy::unwrap_used, missing_docs)]

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use opentelemetry::trace::{Span as _, Status, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor,
};
use otel_core::metrics::{Metrics, MetricsConfig};
use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};
use otel_tower::http::server::HttpServerLayer;
use tower::ServiceExt;

#[tokio::test]
async fn an_unsampled_callers_failing_request_is_kept_whole_in_tail_mode() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(TailSampler::new(Sampler::ParentBased(Box::new(
            Sampler::AlwaysOn,
        ))))
        .with_span_processor(TailSpanProcessor::new(
            SimpleSpanProcessor::new(exporter.clone()),
            TailConfig::new(),
        ))
        .build();
    let tracer = provider.tracer("db");
    let app = Router::new()
        .route(
            "/pay/{id}",
            get(move || {
                let mut query = tracer.start("SELECT payments");
                query.set_status(Status::error("deadlock"));
                query.end();
                async { (http::StatusCode::INTERNAL_SERVER_ERROR, "failed") }
            }),
        )
        // The default configuration: `skip_unsampled` not set.
        .layer(HttpServerLayer::new(
            otel_tower::Config::builder()
                .with_tracer_provider(provider.clone())
                .with_metrics(Metrics::new(MetricsConfig::default()))
                .with_propagator(otel_core::propagation::TraceContextPropagator::new())
                .build(),
        ));
    let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let response = app
        .oneshot(
            http::Request::get("/pay/1")
                .header("traceparent", unsampled)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;

    let spans = exporter.get_finished_spans().unwrap();
    let server = spans
        .iter()
        .find(|s| s.name == "GET /pay/{id}")
        .unwrap_or_else(|| panic!("no server span in {spans:#?}"));
    let query = spans.iter().find(|s| s.name == "SELECT payments").unwrap();
    assert_eq!(query.parent_span_id, server.span_context.span_id());
    assert_eq!(
        server.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}
