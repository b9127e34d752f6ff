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
//! One more id, not a layer: `server/sdk_span_floor` is the bare service plus one SDK span
//! per request (started as the child of an already extracted sampled parent, no
//! attributes, ended when the handler returns) through the same kind of provider. It is
//! the least any layer that makes its spans with the SDK pays, so its overhead over
//! `server/bare` bounds from below what `server/otel_tower_sampled` can reach.
//!
//! `server/bare_2_threads` and `server/otel_tower_unsampled_2_threads` run two threads at
//! once, each serving unsampled requests through its own clone of one service: the time of
//! one iteration is the wall time for both threads to serve one request each, so the
//! difference from the one-thread ids is what the two threads cost each other (shared
//! reference counts and counters bouncing between the cores).
//!
//! `server/otel_tower_root_dropped`: a request without `traceparent` that the sampler
//! (`AlwaysOff`, standing for a ratio sampler's usual answer) drops, after seeing the final
//! span name and the attributes samplers look at. The `remove` of the header is the only
//! extra work of its iteration.
//!
//! `server/otel_tower_off`: the same request through the layer on the API's no-op tracer
//! provider (telemetry off): the duration is still recorded.
//!
//! And `server/unsampled_floor`: the bare service plus what an unsampled request must cost
//! through the `opentelemetry` API whatever the layer: a context holding the remote parent
//! (parsed once, before the run, so no parsing is counted) attached around the call and
//! around the poll, the duration read from the clock and recorded into otel-core's
//! histogram, and the active-request counter raised and lowered. The instruments are
//! leaked, so no reference count is counted either. It bounds
//! `server/otel_tower_unsampled` from below.
//!
//! `server/sampled_floor` bounds `server/otel_tower_sampled` from below the same way: the
//! bare service plus the least a sampled request can cost through the SDK while doing what
//! the layer must do: a SERVER span started with the request's nine attributes (all static
//! strings, where a real layer copies the path, the query and the user agent), held in a
//! context attached around the call and around the poll so that the handler's spans are its
//! children, the status code set at the end, the duration recorded with the span as its
//! exemplar, and the active-request counter raised and lowered. The parent is parsed once,
//! before the run, and the instruments are leaked.
//!
//! Each iteration builds the request (the same cost in every variant, so it cancels out of
//! the overheads), calls the service and drains the response body, so the span has ended
//! when an iteration finishes.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanContext, TraceContextExt as _, TraceFlags, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use opentelemetry_semantic_conventions as semconv;
use otel_core::metrics::{BoundHistogram, BoundUpDownCounter, MetricsConfig};
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

/// Wall time for two threads to serve `iters` unsampled requests each, each thread through
/// its own service from `make`.
fn on_two_threads<S, B>(iters: u64, make: impl Fn() -> S) -> Duration
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible> + Send,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let services = [make(), make()];
    let start = Instant::now();
    std::thread::scope(|scope| {
        for mut svc in services {
            scope.spawn(move || {
                for _ in 0..iters {
                    run(&mut svc, request(UNSAMPLED));
                }
            });
        }
    });
    start.elapsed()
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

    // A request with no `traceparent` that the sampler drops (a ratio sampler's usual
    // case at the edge): the sampler is asked with the final name and the attributes
    // samplers look at, and nothing more is built.
    let dropping_provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(NoopExporter).build())
        .with_sampler(Sampler::AlwaysOff)
        .build();
    let mut root_dropped = HttpServerLayer::new(
        Config::builder()
            .with_tracer_provider(dropping_provider.clone())
            .with_metrics(metrics.clone())
            .with_propagator(TraceContextPropagator::new())
            .build(),
    )
    .layer(tower::service_fn(handler));
    group.bench_function("otel_tower_root_dropped", |b| {
        b.iter(|| {
            let mut req = request(SAMPLED);
            req.headers_mut().remove("traceparent");
            run(&mut root_dropped, req)
        });
    });

    // Telemetry off: the layer on the API's no-op tracer provider (as after
    // `Telemetry::install` with `OTEL_SDK_DISABLED=true`), a request without `traceparent`.
    let mut off = HttpServerLayer::new(
        Config::builder()
            .with_tracer_provider(opentelemetry::trace::noop::NoopTracerProvider::new())
            .with_metrics(metrics.clone())
            .with_propagator(TraceContextPropagator::new())
            .build(),
    )
    .layer(tower::service_fn(handler));
    group.bench_function("otel_tower_off", |b| {
        b.iter(|| {
            let mut req = request(SAMPLED);
            req.headers_mut().remove("traceparent");
            run(&mut off, req)
        });
    });

    // Both cores serving at once through clones of one service: what the layer's shared
    // state costs when two threads touch it on every request.
    group.bench_function("bare_2_threads", |b| {
        b.iter_custom(|iters| on_two_threads(iters, || tower::service_fn(handler)));
    });
    group.bench_function("otel_tower_unsampled_2_threads", |b| {
        b.iter_custom(|iters| on_two_threads(iters, || instrumented.clone()));
    });

    let floor_provider = tracer_provider();
    let floor_tracer = floor_provider.tracer("floor");
    let floor_parent =
        TraceContextPropagator::new().extract(&HeaderExtractor(request(SAMPLED).headers()));
    let remote_parent = floor_parent.span().span_context().clone();
    let floor_parent_for_sampled = floor_parent.clone();
    let mut floor = tower::service_fn(move |req: Request<Full<Bytes>>| {
        let mut span = floor_tracer.start_with_context("GET", &floor_parent);
        let response = handler(req);
        async move {
            let response = response.await;
            span.end();
            response
        }
    });
    group.bench_function("sdk_span_floor", |b| {
        b.iter(|| run(&mut floor, request(SAMPLED)));
    });

    let floor_metrics = Metrics::new(MetricsConfig::default());
    let method = [KeyValue::new(
        semconv::attribute::HTTP_REQUEST_METHOD,
        "GET",
    )];
    let duration: &'static BoundHistogram = Box::leak(Box::new(
        floor_metrics
            .f64_histogram(semconv::metric::HTTP_SERVER_REQUEST_DURATION)
            .with_unit("s")
            .build()
            .bind(&method),
    ));
    let active: &'static BoundUpDownCounter = Box::leak(Box::new(
        floor_metrics
            .i64_up_down_counter(semconv::metric::HTTP_SERVER_ACTIVE_REQUESTS)
            .build()
            .bind(&method),
    ));
    let unsampled_parent = SpanContext::new(
        remote_parent.trace_id(),
        remote_parent.span_id(),
        TraceFlags::default(),
        true,
        TraceState::NONE,
    );
    let mut unsampled_floor = tower::service_fn(move |req: Request<Full<Bytes>>| {
        let start = Instant::now();
        let cx = Context::map_current(|cx| cx.with_remote_span_context(unsampled_parent.clone()));
        active.add(1);
        let response = {
            let _guard = cx.clone().attach();
            handler(req)
        };
        async move {
            let response = {
                let _guard = cx.clone().attach();
                response.now_or_never().expect("ready")
            };
            active.add(-1);
            duration.record_with_context(start.elapsed().as_secs_f64(), &cx);
            response
        }
    });
    group.bench_function("unsampled_floor", |b| {
        b.iter(|| run(&mut unsampled_floor, request(UNSAMPLED)));
    });

    // The least a sampled request can cost through the SDK while doing what the issue asks:
    // a SERVER span with the request's attributes (all static here: a real layer copies the
    // path and the user agent), held in a context the handler runs in (attached around the
    // call and the poll), the status code set at the end, the duration recorded with the
    // span as exemplar, the active-request counter raised and lowered. The parent is parsed
    // once, before the run; the instruments are leaked.
    let sampled_floor_provider = tracer_provider();
    let sampled_floor_tracer = sampled_floor_provider.tracer("floor");
    let sampled_parent = floor_parent_for_sampled.clone();
    let sampled_duration: &'static BoundHistogram = Box::leak(Box::new(
        floor_metrics
            .f64_histogram(semconv::metric::HTTP_SERVER_REQUEST_DURATION)
            .with_unit("s")
            .build()
            .bind(&[
                KeyValue::new(semconv::attribute::HTTP_REQUEST_METHOD, "GET"),
                KeyValue::new(semconv::attribute::HTTP_ROUTE, "/users/{id}"),
                KeyValue::new(semconv::attribute::HTTP_RESPONSE_STATUS_CODE, 200),
            ]),
    ));
    let mut sampled_floor = tower::service_fn(move |req: Request<Full<Bytes>>| {
        let start = std::time::SystemTime::now();
        let span = sampled_floor_tracer.build_with_context(
            opentelemetry::trace::SpanBuilder::from_name("GET /users/{id}")
                .with_kind(opentelemetry::trace::SpanKind::Server)
                .with_start_time(start)
                .with_attributes([
                    KeyValue::new(semconv::attribute::HTTP_REQUEST_METHOD, "GET"),
                    KeyValue::new(semconv::attribute::URL_PATH, "/users/42"),
                    KeyValue::new(semconv::attribute::URL_QUERY, "page=1"),
                    KeyValue::new(semconv::attribute::URL_SCHEME, "http"),
                    KeyValue::new(semconv::attribute::HTTP_ROUTE, "/users/{id}"),
                    KeyValue::new(semconv::attribute::SERVER_ADDRESS, "localhost"),
                    KeyValue::new(semconv::attribute::SERVER_PORT, 8080),
                    KeyValue::new(semconv::attribute::USER_AGENT_ORIGINAL, "bench/1.0"),
                    KeyValue::new(semconv::attribute::NETWORK_PROTOCOL_VERSION, "1.1"),
                ]),
            &sampled_parent,
        );
        let cx = sampled_parent.with_span(span);
        active.add(1);
        let response = {
            let _guard = cx.clone().attach();
            handler(req)
        };
        async move {
            let response = {
                let _guard = cx.clone().attach();
                response.now_or_never().expect("ready")
            };
            active.add(-1);
            let span = cx.span();
            span.set_attribute(KeyValue::new(
                semconv::attribute::HTTP_RESPONSE_STATUS_CODE,
                200,
            ));
            let end = std::time::SystemTime::now();
            span.end_with_timestamp(end);
            let elapsed = end.duration_since(start).unwrap_or_default();
            sampled_duration.record_with_context(elapsed.as_secs_f64(), &cx);
            response
        }
    });
    group.bench_function("sampled_floor", |b| {
        b.iter(|| run(&mut sampled_floor, request(SAMPLED)));
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
    let _ = floor_provider.shutdown();
    let _ = dropping_provider.shutdown();
    let _ = sampled_floor_provider.shutdown();
    drop(metrics);
    drop(floor_metrics);
}

criterion_group!(http_server, benches);
criterion_main!(http_server);
