//! HTTP client layer (hyper-util) and reqwest middleware against a real axum server, with
//! the server layer on the other side: one trace from the caller to the handler's spans.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry_semantic_conventions::attribute as semconv;
use opentelemetry_semantic_conventions::metric;
use otel_tower::http::client::HttpClientLayer;
use otel_tower::http::server::HttpServerLayer;
use tower::{ServiceBuilder, ServiceExt};

async fn serve(t: &Telemetry) -> SocketAddr {
    let tracer = t.tracer();
    let app = Router::new()
        .route(
            "/users/{id}",
            get(move || {
                let tracer = tracer.clone();
                async move { tracer.in_span("query accounts", |_| "user") }
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "late"
            }),
        )
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .layer(HttpServerLayer::new(t.config().build()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn request(uri: String) -> http::Request<Empty<Bytes>> {
    http::Request::builder()
        .uri(uri)
        .body(Empty::new())
        .unwrap()
}

#[tokio::test]
async fn hyper_client_to_axum_server_is_one_trace() {
    let t = Telemetry::new();
    let addr = serve(&t).await;
    let client = ServiceBuilder::new()
        .layer(HttpClientLayer::new(t.config().build()))
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());

    let root = t.tracer().start("checkout");
    let cx = Context::current_with_span(root);
    let res = client
        .clone()
        .oneshot(request(format!(
            "http://{addr}/users/42?page=1&X-Goog-Signature=s3cr3t"
        )))
        .with_context(cx.clone())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let _ = res.into_body().collect().await.unwrap();
    cx.span().end();

    let root = t.wait_span("checkout", SpanKind::Internal).await;
    let client_span = t.wait_span("GET", SpanKind::Client).await;
    let server_span = t.wait_span("GET /users/{id}", SpanKind::Server).await;
    let inner = t.wait_span("query accounts", SpanKind::Internal).await;
    assert_child_of(&client_span, &root);
    assert_child_of(&server_span, &client_span);
    assert_child_of(&inner, &server_span);
    assert!(server_span.parent_span_is_remote);

    assert_attr(&client_span, semconv::HTTP_REQUEST_METHOD, "GET");
    assert_attr(&client_span, semconv::SERVER_ADDRESS, "127.0.0.1");
    assert_attr(&client_span, semconv::SERVER_PORT, i64::from(addr.port()));
    assert_attr(
        &client_span,
        semconv::URL_FULL,
        format!("http://{addr}/users/42?page=1&X-Goog-Signature=REDACTED"),
    );
    assert_attr(&client_span, semconv::URL_SCHEME, "http");
    assert_attr(&client_span, semconv::HTTP_RESPONSE_STATUS_CODE, 200_i64);
    assert_attr(&client_span, semconv::NETWORK_PROTOCOL_VERSION, "1.1");
    assert_no_attr(&client_span, semconv::ERROR_TYPE);
    assert_unset_status(&client_span);

    let points = t.histogram(metric::HTTP_CLIENT_REQUEST_DURATION);
    assert_eq!(points.len(), 1);
    let p = &points[0];
    assert_eq!(count(p), 1);
    assert!(point_has(p, semconv::HTTP_REQUEST_METHOD, "GET"));
    assert!(point_has(p, semconv::SERVER_ADDRESS, "127.0.0.1"));
    assert!(point_has(p, semconv::SERVER_PORT, i64::from(addr.port())));
    assert!(point_has(p, semconv::HTTP_RESPONSE_STATUS_CODE, 200_i64));
    assert!(exemplar_for(p, &client_span));
    t.assert_exemplars(metric::HTTP_CLIENT_REQUEST_DURATION);
    t.assert_exemplars(metric::HTTP_SERVER_REQUEST_DURATION);
}

#[tokio::test]
async fn hyper_client_error_status_timeout_and_refused() {
    let t = Telemetry::new();
    let addr = serve(&t).await;
    let client = ServiceBuilder::new()
        .layer(HttpClientLayer::new(t.config().build()))
        .timeout(Duration::from_millis(200))
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());

    // 404: an error for a client span.
    let res = client
        .clone()
        .oneshot(request(format!("http://{addr}/missing")))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let spans = t.wait_count(2).await;
    let span = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .unwrap();
    assert_attr(span, semconv::HTTP_RESPONSE_STATUS_CODE, 404_i64);
    assert_attr(span, semconv::ERROR_TYPE, "404");
    assert_error_status(span);
    t.reset_spans();

    // Timeout inside the layer.
    let err = client
        .clone()
        .oneshot(request(format!("http://{addr}/slow")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    let span = t.wait_span("GET", SpanKind::Client).await;
    assert_attr(&span, semconv::ERROR_TYPE, "timeout");
    assert_no_attr(&span, semconv::HTTP_RESPONSE_STATUS_CODE);
    assert_error_status(&span);
    assert!(span.events.iter().any(|e| e.name == "exception"));
    t.reset_spans();

    // Connection refused: nothing listens on the port of a dropped listener.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = client
        .clone()
        .oneshot(request(format!("http://{closed}/")))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("timed out"), "{err}");
    let span = t.wait_span("GET", SpanKind::Client).await;
    assert_attr(&span, semconv::ERROR_TYPE, "ConnectionRefused");
    assert_error_status(&span);

    let points = t.histogram(metric::HTTP_CLIENT_REQUEST_DURATION);
    assert!(
        points
            .iter()
            .any(|p| point_has(p, semconv::ERROR_TYPE, "404"))
    );
    assert!(
        points
            .iter()
            .any(|p| point_has(p, semconv::ERROR_TYPE, "timeout")
                && point_attr(p, semconv::HTTP_RESPONSE_STATUS_CODE).is_none())
    );
    assert!(
        points
            .iter()
            .any(|p| point_has(p, semconv::SERVER_PORT, i64::from(closed.port())))
    );
}

#[tokio::test]
async fn outer_timeout_drops_the_future_and_ends_the_span_cancelled() {
    let t = Telemetry::new();
    let addr = serve(&t).await;
    let client = ServiceBuilder::new()
        .layer(HttpClientLayer::new(t.config().build()))
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    let result = tokio::time::timeout(
        Duration::from_millis(150),
        client.oneshot(request(format!("http://{addr}/slow"))),
    )
    .await;
    assert!(result.is_err());
    let span = t.wait_span("GET", SpanKind::Client).await;
    assert_attr(&span, semconv::ERROR_TYPE, "cancelled");
    assert_error_status(&span);
}

#[tokio::test]
async fn reqwest_middleware_is_one_line() {
    let t = Telemetry::new();
    let addr = serve(&t).await;
    let client = reqwest_middleware::ClientBuilder::new(
        reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    )
    .with(otel_tower::reqwest::OtelMiddleware::new(t.config().build()))
    .build();

    let root = t.tracer().start("job");
    let cx = Context::current_with_span(root);
    let res = client
        .get(format!("http://alice:hunter2@{addr}/users/9?sig=abc"))
        .send()
        .with_context(cx.clone())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "user");
    cx.span().end();

    let root = t.wait_span("job", SpanKind::Internal).await;
    let client_span = t.wait_span("GET", SpanKind::Client).await;
    let server_span = t.wait_span("GET /users/{id}", SpanKind::Server).await;
    let inner = t.wait_span("query accounts", SpanKind::Internal).await;
    assert_child_of(&client_span, &root);
    assert_child_of(&server_span, &client_span);
    assert_child_of(&inner, &server_span);
    // reqwest moves URL credentials into an Authorization header before middlewares run;
    // neither may show up (the layer redacts `user:password@` in other clients).
    assert_attr(
        &client_span,
        semconv::URL_FULL,
        format!("http://{addr}/users/9?sig=REDACTED"),
    );
    assert_attr(&client_span, semconv::SERVER_ADDRESS, "127.0.0.1");
    assert_attr(&client_span, semconv::SERVER_PORT, i64::from(addr.port()));
    assert_attr(&client_span, semconv::HTTP_RESPONSE_STATUS_CODE, 200_i64);
    for kv in &client_span.attributes {
        let v = kv.value.to_string();
        assert!(!v.contains("hunter2") && !v.contains("alice"), "{kv:?}");
    }
    let mut exported = t.spans();
    t.reset_spans();

    let err = client
        .get(format!("http://{addr}/slow"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let span = t.wait_span("GET", SpanKind::Client).await;
    assert_attr(&span, semconv::ERROR_TYPE, "timeout");
    assert_error_status(&span);

    let points = t.histogram(metric::HTTP_CLIENT_REQUEST_DURATION);
    assert!(
        points
            .iter()
            .any(|p| point_has(p, semconv::HTTP_RESPONSE_STATUS_CODE, 200_i64))
    );
    assert!(
        points
            .iter()
            .any(|p| point_has(p, semconv::ERROR_TYPE, "timeout"))
    );
    exported.extend(t.spans());
    assert_exemplars_point_at_exported(
        t.inner.metrics(),
        metric::HTTP_CLIENT_REQUEST_DURATION,
        &exported,
    );
}

/// A sampler that drops spans to one `server.address`: it needs the attributes at start.
#[derive(Debug, Clone)]
struct DropServer(&'static str);

impl opentelemetry_sdk::trace::ShouldSample for DropServer {
    fn should_sample(
        &self,
        _parent: Option<&Context>,
        _trace_id: opentelemetry::trace::TraceId,
        _name: &str,
        _kind: &SpanKind,
        attributes: &[opentelemetry::KeyValue],
        _links: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        use opentelemetry::trace::TraceState;
        use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult};
        let dropped = attributes
            .iter()
            .any(|kv| kv.key.as_str() == semconv::SERVER_ADDRESS && kv.value.as_str() == self.0);
        SamplingResult {
            decision: if dropped {
                SamplingDecision::Drop
            } else {
                SamplingDecision::RecordAndSample
            },
            attributes: Vec::new(),
            trace_state: TraceState::NONE,
        }
    }
}

/// The CLIENT span of a call with no parent starts with its attributes, so the sampler can
/// decide on them (semantic conventions: sampling-relevant attributes at span creation).
#[tokio::test]
async fn sampler_sees_client_request_attributes_at_span_start() {
    use opentelemetry_sdk::trace::Sampler;

    let t = Telemetry::with_sampler(Sampler::ParentBased(Box::new(DropServer(
        "metadata.internal",
    ))));
    let upstream = tower::service_fn(|_req: http::Request<Empty<Bytes>>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Empty::<Bytes>::new()))
    });
    let client = ServiceBuilder::new()
        .layer(HttpClientLayer::new(t.config().build()))
        .service(upstream);
    for uri in [
        "http://metadata.internal/latest/token",
        "http://api.internal/users/7",
    ] {
        client.clone().oneshot(request(uri.into())).await.unwrap();
    }
    let spans = t.spans();
    assert_eq!(spans.len(), 1, "{:?}", t.span_names());
    assert_attr(&spans[0], semconv::SERVER_ADDRESS, "api.internal");
    assert_attr(&spans[0], semconv::URL_FULL, "http://api.internal/users/7");
    // Both calls are in the duration metric.
    let total: u64 = t
        .histogram(metric::HTTP_CLIENT_REQUEST_DURATION)
        .iter()
        .map(count)
        .sum();
    assert_eq!(total, 2);
}
