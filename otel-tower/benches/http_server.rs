//! Run with `cargo bench -p otel-tower --bench http_server`.
//!
//! One in-process request through a trivial service, every request carrying a
//! `traceparent` header, measured side by side in one run:
//!
//! - `server/bare`: the service alone;
//! - `server/otel_tower_sampled`: behind `HttpServerLayer`, sampled parent (span exported
//!   through a batch processor to a no-op exporter, duration recorded in otel-core's
//!   exemplar histogram);
//! - `server/otel_tower_unsampled`: the same layer, unsampled parent (`-00` flags with a
//!   parent-based sampler);
//! - `server/tower_http_tracing_otel`: the stack most Rust services use today: tower-http's
//!   `TraceLayer` with a `MakeSpan` that extracts the parent with the same W3C propagator,
//!   `tracing-opentelemetry` and the official SDK with the same batch processor and no-op
//!   exporter, under an INFO level filter.
//!
//! Each iteration builds the request (the same cost in every variant, so it cancels out of
//! the overheads), calls the service and drains the response body, so the span has ended
//! when an iteration finishes.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use otel_core::metrics::MetricsConfig;
use otel_core::propagation::TraceContextPropagator;
use otel_tower::http::server::HttpServerLayer;
use otel_tower::{Config, Metrics};
use tower::{Layer, Service, ServiceExt};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

const SAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const UNSAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

/// Exporter that drops every batch: measures instrumentation, not export.
#[derive(Debug)]
struct NoopExporter;

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(black_box(batch));
        Ok(())
    }
}

fn tracer_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(NoopExporter).build())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .build()
}

fn request(traceparent: &'static str) -> Request<Full<Bytes>> {
    Request::builder()
        .uri("/users/42?page=1")
        .header(http::header::HOST, "localhost:8080")
        .header(http::header::USER_AGENT, "bench/1.0")
        .header("traceparent", traceparent)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn handler(_req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// One request: call, await the (immediately ready) future, drain the body.
fn run<S, B>(svc: &mut S, req: Request<Full<Bytes>>)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let res = svc
        .ready()
        .now_or_never()
        .expect("ready")
        .expect("infallible")
        .call(req)
        .now_or_never()
        .expect("the trivial service is immediately ready")
        .expect("infallible");
    let body = res.into_body().collect().now_or_never().expect("full body");
    black_box(body.is_ok());
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("server");

    let mut bare = tower::service_fn(handler);
    group.bench_function("bare", |b| {
        b.iter(|| run(&mut bare, request(SAMPLED)));
    });

    let provider = tracer_provider();
    let metrics = Metrics::new(MetricsConfig::default());
    let layer = HttpServerLayer::new(
        Config::builder()
            .with_tracer_provider(provider.clone())
            .with_metrics(metrics.clone())
            .with_propagator(TraceContextPropagator::new())
            .build(),
    );
    let mut instrumented = layer.layer(tower::service_fn(handler));
    group.bench_function("otel_tower_sampled", |b| {
        b.iter(|| run(&mut instrumented, request(SAMPLED)));
    });
    group.bench_function("otel_tower_unsampled", |b| {
        b.iter(|| run(&mut instrumented, request(UNSAMPLED)));
    });

    let common_provider = tracer_provider();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(tracing_opentelemetry::layer().with_tracer(common_provider.tracer("bench")));
    let propagator = TraceContextPropagator::new();
    let mut common = tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(move |req: &Request<Full<Bytes>>| {
            let span = tracing::info_span!(
                "HTTP request",
                http.request.method = %req.method(),
                url.path = req.uri().path(),
                otel.kind = "server",
                http.response.status_code = tracing::field::Empty,
            );
            let _ = span.set_parent(propagator.extract(&HeaderExtractor(req.headers())));
            span
        })
        .layer(tower::service_fn(handler));
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("tower_http_tracing_otel", |b| {
            b.iter(|| run(&mut common, request(SAMPLED)));
        });
    });

    group.finish();
    let _ = provider.shutdown();
    let _ = common_provider.shutdown();
    drop(metrics);
}

criterion_group!(http_server, benches);
criterion_main!(http_server);
