//! An SDK tracer provider installed through `opentelemetry::global` (not through otel-core or
//! `with_tracer_provider`) still gets the request's name and sampling attributes at span
//! start, so its sampler's rules work. Its own binary: it sets the global provider.
#![allow(clippy::unwrap_used, missing_docs)]

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
use otel_core::sampling::{RuleMatch, RuleSampler};
use otel_tower::Config;
use otel_tower::http::server::HttpServerLayer;
use tower::ServiceExt;

#[tokio::test]
async fn rules_of_a_global_sdk_provider_see_the_route() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(
            RuleSampler::builder()
                .rule(RuleMatch::route("/health"), Sampler::AlwaysOff)
                .fallback(Sampler::AlwaysOn)
                .build(),
        )
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());

    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/orders", get(|| async { "orders" }))
        .layer(HttpServerLayer::new(Config::default()));
    for path in ["/health", "/orders"] {
        let response = app
            .clone()
            .oneshot(http::Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
    }
    let names: Vec<String> = exporter
        .get_finished_spans()
        .unwrap()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["GET /orders"]);
}
