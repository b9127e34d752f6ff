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

/// Fails if `needle` shows up in any attribute, event attribute or the status description
/// of `span`.
#[track_caller]
fn assert_nowhere(span: &opentelemetry_sdk::trace::SpanData, needle: &str) {
    for kv in &span.attributes {
        assert!(!kv.value.to_string().contains(needle), "attribute {kv:?}");
    }
    for event in span.events.iter() {
        for kv in &event.attributes {
            assert!(
                !kv.value.to_string().contains(needle),
                "event {} attribute {kv:?}",
                event.name
            );
        }
    }
    if let opentelemetry::trace::Status::Error { description } = &span.status {
        assert!(!description.contains(needle), "status {description:?}");
    }
}

fn exception_message(span: &opentelemetry_sdk::trace::SpanData) -> String {
    span.events
        .iter()
        .find(|e| e.name == "exception")
        .and_then(|e| {
            e.attributes
                .iter()
                .find(|kv| kv.key.as_str() == semconv::EXCEPTION_MESSAGE)
        })
        .map(|kv| kv.value.to_string())
        .expect("an exception event with a message")
}

/// reqwest's error message ends with " for url (<the URL>)": the values `url.full` redacts
/// must not come back through `exception.message` or the span status.
#[tokio::test]
async fn reqwest_error_message_does_not_leak_redacted_url_values() {
    let t = Telemetry::new();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(otel_tower::reqwest::OtelMiddleware::new(
            t.config().with_redaction(["session"]).build(),
        ))
        .build();
    // Nothing listens on port 1: connection refused.
    let err = client
        .get("http://127.0.0.1:1/u?sig=s3cr3t&session=t0k3n&page=2")
        .send()
        .await
        .unwrap_err();
    // The caller's error is untouched.
    assert!(err.to_string().contains("s3cr3t"), "{err}");

    let span = t.wait_span("GET", SpanKind::Client).await;
    assert_attr(&span, semconv::ERROR_TYPE, "connect");
    assert_attr(
        &span,
        semconv::URL_FULL,
        "http://127.0.0.1:1/u?sig=REDACTED&session=REDACTED&page=2",
    );
    assert_error_status(&span);
    assert_nowhere(&span, "s3cr3t");
    assert_nowhere(&span, "t0k3n");
    // The URL is still in the message, redacted.
    let message = exception_message(&span);
    assert!(
        message.contains("for url (http://127.0.0.1:1/u?sig=REDACTED&session=REDACTED&page=2)"),
        "{message}"
    );
}

/// Stands for a middleware after the otel one whose error quotes the URL.
#[derive(Debug)]
struct Unreachable(String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "circuit open for {}", self.0)
    }
}

impl std::error::Error for Unreachable {}

struct CircuitOpen;

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for CircuitOpen {
    async fn handle(
        &self,
        req: reqwest::Request,
        _extensions: &mut http::Extensions,
        _next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        Err(reqwest_middleware::Error::middleware(Unreachable(
            req.url().to_string(),
        )))
    }
}

/// A reqwest client whose every request goes through our middleware, then fails in
/// [`CircuitOpen`] without reaching the network.
fn circuit_open_client(t: &Telemetry) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(otel_tower::reqwest::OtelMiddleware::new(t.config().build()))
        .with(CircuitOpen)
        .build()
}

#[tokio::test]
async fn reqwest_middleware_error_message_does_not_leak_redacted_url_values() {
    let t = Telemetry::new();
    let client = circuit_open_client(&t);
    let url =
        reqwest::Url::parse("http://alice:hunter2@api.internal/u?X-Goog-Signature=s3cr3t").unwrap();
    let err = client
        .execute(reqwest::Request::new(reqwest::Method::GET, url))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("s3cr3t"), "{err}");
    let span = t.wait_span("GET", SpanKind::Client).await;
    assert_attr(&span, semconv::ERROR_TYPE, "_OTHER");
    for secret in ["s3cr3t", "hunter2", "alice"] {
        assert_nowhere(&span, secret);
    }
}

/// The same for the tower client layer: an inner client whose error quotes the URL.
#[tokio::test]
async fn client_layer_error_message_does_not_leak_redacted_url_values() {
    let t = Telemetry::new();
    let upstream = tower::service_fn(|req: http::Request<Empty<Bytes>>| async move {
        Err::<http::Response<Empty<Bytes>>, Box<dyn std::error::Error + Send + Sync>>(
            format!("cannot reach {}", req.uri()).into(),
        )
    });
    let client = ServiceBuilder::new()
        .layer(HttpClientLayer::new(t.config().build()))
        .service(upstream);
    let err = client
        .oneshot(request(
            "http://bob:pa55@api.internal/u?AWSAccessKeyId=AKIAs3cr3t&page=1".into(),
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AKIAs3cr3t"), "{err}");
    let span = t.wait_span("GET", SpanKind::Client).await;
    assert_attr(
        &span,
        semconv::URL_FULL,
        "http://REDACTED:REDACTED@api.internal/u?AWSAccessKeyId=REDACTED&page=1",
    );
    for secret in ["AKIAs3cr3t", "pa55", "bob"] {
        assert_nowhere(&span, secret);
    }
    assert!(exception_message(&span).contains("AWSAccessKeyId=REDACTED&page=1"));
}

/// Sends every request `times` times (stands for a retry middleware): each attempt after
/// the first is a resend of the same request, with the same extensions.
struct Resend {
    times: usize,
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Resend {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        for _ in 1..self.times {
            let copy = req.try_clone().expect("a clonable request");
            let _ = next.clone().run(copy, extensions).await?;
        }
        next.run(req, extensions).await
    }
}

fn client_spans(t: &Telemetry) -> Vec<opentelemetry_sdk::trace::SpanData> {
    let mut spans: Vec<_> = t
        .spans()
        .into_iter()
        .filter(|s| s.span_kind == SpanKind::Client)
        .collect();
    spans.sort_by_key(|s| s.start_time);
    spans
}

/// Semantic conventions: `http.request.resend_count` on each resent request's span.
#[tokio::test]
async fn reqwest_after_a_retry_middleware_counts_resends() {
    let t = Telemetry::new();
    let addr = serve(&t).await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(Resend { times: 3 })
        .with(otel_tower::reqwest::OtelMiddleware::new(t.config().build()))
        .build();
    let res = client
        .get(format!("http://{addr}/users/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    t.wait_count(6).await;
    let spans = client_spans(&t);
    assert_eq!(spans.len(), 3, "{:?}", t.span_names());
    assert_no_attr(&spans[0], semconv::HTTP_REQUEST_RESEND_COUNT);
    assert_attr(&spans[1], semconv::HTTP_REQUEST_RESEND_COUNT, 1_i64);
    assert_attr(&spans[2], semconv::HTTP_REQUEST_RESEND_COUNT, 2_i64);
    // Each attempt is its own span: distinct ids, every one exported.
    assert_ne!(
        spans[0].span_context.span_id(),
        spans[1].span_context.span_id()
    );
    t.reset_spans();

    // A new request starts again from zero.
    client
        .get(format!("http://{addr}/users/2"))
        .send()
        .await
        .unwrap();
    t.wait_count(6).await;
    let spans = client_spans(&t);
    assert_no_attr(&spans[0], semconv::HTTP_REQUEST_RESEND_COUNT);
    assert_attr(&spans[1], semconv::HTTP_REQUEST_RESEND_COUNT, 1_i64);
}

/// Before the retry middleware, one span covers every attempt: no resend count.
#[tokio::test]
async fn reqwest_before_a_retry_middleware_is_one_span() {
    let t = Telemetry::new();
    let addr = serve(&t).await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(otel_tower::reqwest::OtelMiddleware::new(t.config().build()))
        .with(Resend { times: 2 })
        .build();
    client
        .get(format!("http://{addr}/users/1"))
        .send()
        .await
        .unwrap();
    t.wait_count(3).await;
    let spans = client_spans(&t);
    assert_eq!(spans.len(), 1, "{:?}", t.span_names());
    assert_no_attr(&spans[0], semconv::HTTP_REQUEST_RESEND_COUNT);
}

/// One middleware on each side of the retry middleware: each counts its own sends, so the
/// inner one's first attempt is not a resend.
#[tokio::test]
async fn reqwest_middlewares_on_both_sides_of_a_retry_count_apart() {
    let t = Telemetry::new();
    let addr = serve(&t).await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(otel_tower::reqwest::OtelMiddleware::new(t.config().build()))
        .with(Resend { times: 2 })
        .with(otel_tower::reqwest::OtelMiddleware::new(t.config().build()))
        .build();
    client
        .get(format!("http://{addr}/users/1"))
        .send()
        .await
        .unwrap();
    // The outer span, two attempt spans, two server spans.
    t.wait_count(5).await;
    let spans = client_spans(&t);
    assert_eq!(spans.len(), 3, "{:?}", t.span_names());
    let counts: Vec<Option<i64>> = spans
        .iter()
        .map(
            |s| match otel_core::testing::attr(s, semconv::HTTP_REQUEST_RESEND_COUNT) {
                Some(opentelemetry::Value::I64(n)) => Some(*n),
                _ => None,
            },
        )
        .collect();
    // By start time: the outer span (no count), then the attempts: none, then 1.
    assert_eq!(counts, [None, None, Some(1)], "{spans:#?}");
}

/// `url.full` from reqwest's URL itself: the fragment is kept, credentials (in a request
/// built by hand they stay in the URL) are redacted.
#[tokio::test]
async fn reqwest_url_full_keeps_the_fragment_and_redacts_credentials() {
    let t = Telemetry::new();
    let client = circuit_open_client(&t);
    let url =
        reqwest::Url::parse("https://alice:hunter2@api.internal/u?sig=abc&x=1#part-2").unwrap();
    let _ = client
        .execute(reqwest::Request::new(reqwest::Method::GET, url))
        .await;
    let span = t.wait_span("GET", SpanKind::Client).await;
    assert_attr(
        &span,
        semconv::URL_FULL,
        "https://REDACTED:REDACTED@api.internal/u?sig=REDACTED&x=1#part-2",
    );
    assert_attr(&span, semconv::URL_SCHEME, "https");
    assert_attr(&span, semconv::SERVER_ADDRESS, "api.internal");
    assert_attr(&span, semconv::SERVER_PORT, 443_i64);
}

/// A URL longer than `http::Uri` accepts (65534 bytes) keeps its attributes.
#[tokio::test]
async fn reqwest_very_long_url_keeps_its_attributes() {
    let t = Telemetry::new();
    let client = circuit_open_client(&t);
    let padding = "a".repeat(70_000);
    let url = format!("http://[::1]:8080/search?q={padding}&sig=abc");
    let _ = client.get(&url).send().await;
    let span = t.wait_span("GET", SpanKind::Client).await;
    assert_attr(
        &span,
        semconv::URL_FULL,
        format!("http://[::1]:8080/search?q={padding}&sig=REDACTED"),
    );
    assert_attr(&span, semconv::URL_SCHEME, "http");
    assert_attr(&span, semconv::SERVER_ADDRESS, "::1");
    assert_attr(&span, semconv::SERVER_PORT, 8080_i64);
}

/// Semantic conventions: `network.protocol.version` only when known, that is from a
/// response; the request's version is only what the caller asked for.
#[tokio::test]
async fn duration_has_no_protocol_version_without_a_response() {
    let t = Telemetry::new();
    let addr = serve(&t).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let hyper_client = ServiceBuilder::new()
        .layer(HttpClientLayer::new(t.config().build()))
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    let _ = hyper_client
        .clone()
        .oneshot(request(format!("http://{closed}/")))
        .await
        .unwrap_err();
    let reqwest_client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(otel_tower::reqwest::OtelMiddleware::new(t.config().build()))
        .build();
    let _ = reqwest_client
        .get(format!("http://{closed}/r"))
        .send()
        .await
        .unwrap_err();
    // And one that got an answer, for contrast.
    let res = hyper_client
        .oneshot(request(format!("http://{addr}/users/1")))
        .await
        .unwrap();
    let _ = res.into_body().collect().await.unwrap();

    let points = t.histogram(metric::HTTP_CLIENT_REQUEST_DURATION);
    let failed: Vec<_> = points
        .iter()
        .filter(|p| point_has(p, semconv::SERVER_PORT, i64::from(closed.port())))
        .collect();
    assert_eq!(failed.iter().map(|p| count(p)).sum::<u64>(), 2);
    for p in failed {
        assert!(point_attr(p, semconv::ERROR_TYPE).is_some());
        assert_eq!(point_attr(p, semconv::NETWORK_PROTOCOL_VERSION), None);
    }
    assert!(points.iter().any(
        |p| point_has(p, semconv::HTTP_RESPONSE_STATUS_CODE, 200_i64)
            && point_has(p, semconv::NETWORK_PROTOCOL_VERSION, "1.1")
    ));
    for span in client_spans(&t) {
        if attr(&span, semconv::ERROR_TYPE).is_some() {
            assert_no_attr(&span, semconv::NETWORK_PROTOCOL_VERSION);
        }
    }
}
