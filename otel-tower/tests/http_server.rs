//! HTTP server layer against a real axum server on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderName, Request, StatusCode};
use axum::routing::get;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry_semantic_conventions::attribute as semconv;
use opentelemetry_semantic_conventions::metric;
use otel_tower::config::{HeaderAttribute, RequestView, SkipPaths};
use otel_tower::http::server::HttpServerLayer;
use tower::ServiceExt as _;

/// Serves `app` on an ephemeral loopback port with peer addresses available.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

fn app(telemetry: &Telemetry, layer: HttpServerLayer) -> Router {
    let tracer = telemetry.tracer();
    Router::new()
        .route(
            "/users/{id}",
            get(move |Path(id): Path<String>| {
                let tracer = tracer.clone();
                async move {
                    // A span the handler opens: must be a child of the request's span.
                    tracer.in_span("load user", |_cx| format!("user {id}"))
                }
            }),
        )
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("handler panicked on purpose");
                }
                "unreachable"
            }),
        )
        .route(
            "/stream",
            get(|| async {
                let chunks = futures_util::stream::unfold(0u32, |i| async move {
                    if i == 3 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from(format!("chunk {i}\n"))),
                        i + 1,
                    ))
                });
                Body::from_stream(chunks)
            }),
        )
        .route("/health", get(|| async { "ok" }))
        .layer(layer)
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> hyper::Response<hyper::body::Incoming> {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    client()
        .request(req.body(Empty::new()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn ok_request_has_every_attribute_and_a_child_span() {
    let t = Telemetry::new();
    let layer = HttpServerLayer::new(
        t.config()
            .with_capture_request_headers([
                HeaderName::from_static("x-request-id"),
                http::header::AUTHORIZATION,
                http::header::COOKIE,
            ])
            .with_capture_response_headers([http::header::CONTENT_TYPE, http::header::SET_COOKIE])
            .with_request_attributes(HeaderAttribute::new(
                HeaderName::from_static("x-tenant"),
                "tenant.id",
            ))
            .build(),
    );
    let addr = serve(app(&t, layer)).await;
    let tp = traceparent();
    let res = get_with(
        addr,
        "GET",
        "/users/42?sig=secret&page=2",
        &[
            ("traceparent", &tp),
            ("user-agent", "otel-test/1.0"),
            ("x-request-id", "req-1"),
            ("authorization", "Bearer secret"),
            ("cookie", "session=secret"),
            ("x-tenant", "acme"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("traceresponse").is_none(),
        "off by default"
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"user 42");

    let server = t.wait_span("GET /users/{id}", SpanKind::Server).await;
    let inner = t.wait_span("load user", SpanKind::Internal).await;
    assert_eq!(server.span_context.trace_id(), remote_trace_id());
    assert_eq!(server.parent_span_id, remote_span_id());
    assert!(server.parent_span_is_remote);
    assert_child_of(&inner, &server);
    assert_unset_status(&server);

    assert_attr(&server, semconv::HTTP_REQUEST_METHOD, "GET");
    assert_no_attr(&server, semconv::HTTP_REQUEST_METHOD_ORIGINAL);
    assert_attr(&server, semconv::URL_PATH, "/users/42");
    assert_attr(&server, semconv::URL_QUERY, "sig=REDACTED&page=2");
    assert_attr(&server, semconv::URL_SCHEME, "http");
    assert_attr(&server, semconv::HTTP_ROUTE, "/users/{id}");
    assert_attr(&server, semconv::HTTP_RESPONSE_STATUS_CODE, 200_i64);
    assert_attr(&server, semconv::NETWORK_PROTOCOL_VERSION, "1.1");
    assert_attr(&server, semconv::SERVER_ADDRESS, "127.0.0.1");
    assert_attr(&server, semconv::SERVER_PORT, i64::from(addr.port()));
    assert_attr(&server, semconv::CLIENT_ADDRESS, "127.0.0.1");
    assert_attr(&server, semconv::USER_AGENT_ORIGINAL, "otel-test/1.0");
    assert_attr(&server, "tenant.id", "acme");
    assert_no_attr(&server, semconv::ERROR_TYPE);
    assert_attr(
        &server,
        "http.request.header.x-request-id",
        opentelemetry::Value::Array(vec![opentelemetry::StringValue::from("req-1")].into()),
    );
    assert_attr(
        &server,
        "http.response.header.content-type",
        opentelemetry::Value::Array(
            vec![opentelemetry::StringValue::from(
                "text/plain; charset=utf-8",
            )]
            .into(),
        ),
    );
    for never in [
        "http.request.header.authorization",
        "http.request.header.cookie",
        "http.response.header.set-cookie",
    ] {
        assert_no_attr(&server, never);
    }
    // Nothing secret anywhere on the span.
    for kv in &server.attributes {
        let v = kv.value.to_string();
        assert!(!v.contains("secret"), "{} leaks a secret: {v}", kv.key);
    }

    let points = t.histogram(metric::HTTP_SERVER_REQUEST_DURATION);
    let point = points
        .iter()
        .find(|p| point_has(p, semconv::HTTP_ROUTE, "/users/{id}"))
        .expect("duration point for the route");
    assert_eq!(count(point), 1);
    assert!(point_has(point, semconv::HTTP_REQUEST_METHOD, "GET"));
    assert!(point_has(
        point,
        semconv::HTTP_RESPONSE_STATUS_CODE,
        200_i64
    ));
    assert!(point_has(point, semconv::URL_SCHEME, "http"));
    assert!(point_has(point, semconv::NETWORK_PROTOCOL_VERSION, "1.1"));
    assert!(point_attr(point, semconv::ERROR_TYPE).is_none());
    assert!(
        point_attr(point, "tenant.id").is_none(),
        "no span-only attributes on metrics"
    );
    let span_secs = server
        .end_time
        .duration_since(server.start_time)
        .unwrap()
        .as_secs_f64();
    assert!(sum(point) > 0.0 && sum(point) <= span_secs + 0.01);
    // The duration's exemplar opens this very request's span.
    assert!(
        exemplar_for(point, &server),
        "no exemplar for the server span"
    );
    t.assert_exemplars(metric::HTTP_SERVER_REQUEST_DURATION);

    let active = t.up_down(metric::HTTP_SERVER_ACTIVE_REQUESTS);
    assert!(!active.is_empty());
    assert!(active.iter().all(|(_, v)| *v == 0), "{active:?}");
}

#[tokio::test]
async fn each_request_has_its_own_host_as_server_address() {
    let t = Telemetry::new();
    let addr = serve(app(&t, HttpServerLayer::new(t.config().build()))).await;
    let hosts = [
        "127.0.0.1",
        "api.example:8443",
        "[::1]:9000",
        "127.0.0.1:80",
    ];
    for host in hosts {
        let res = get_with(addr, "GET", "/nope", &[("host", host)]).await;
        assert_eq!(res.status(), 404);
    }
    let spans = t.wait_count(hosts.len()).await;
    let mut seen: Vec<(String, Option<i64>)> = spans
        .iter()
        .map(|span| {
            let address = attr(span, semconv::SERVER_ADDRESS).map(|v| v.as_str().into_owned());
            let port = match attr(span, semconv::SERVER_PORT) {
                Some(opentelemetry::Value::I64(port)) => Some(*port),
                _ => None,
            };
            (address.expect("server.address"), port)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("127.0.0.1".to_owned(), None),
            ("127.0.0.1".to_owned(), Some(80)),
            ("::1".to_owned(), Some(9000)),
            ("api.example".to_owned(), Some(8443)),
        ]
    );
}

#[tokio::test]
async fn not_found_has_no_route_and_no_error() {
    let t = Telemetry::new();
    let addr = serve(app(&t, HttpServerLayer::new(t.config().build()))).await;
    let res = get_with(addr, "GET", "/nope/123", &[]).await;
    assert_eq!(res.status(), 404);
    let span = t.wait_span("GET", SpanKind::Server).await;
    assert_attr(&span, semconv::HTTP_RESPONSE_STATUS_CODE, 404_i64);
    assert_attr(&span, semconv::URL_PATH, "/nope/123");
    assert_no_attr(&span, semconv::HTTP_ROUTE);
    assert_no_attr(&span, semconv::ERROR_TYPE);
    assert_unset_status(&span);
    let points = t.histogram(metric::HTTP_SERVER_REQUEST_DURATION);
    assert!(points.iter().any(
        |p| point_has(p, semconv::HTTP_RESPONSE_STATUS_CODE, 404_i64)
            && point_attr(p, semconv::HTTP_ROUTE).is_none()
    ));
}

#[tokio::test]
async fn server_error_sets_status_and_error_type() {
    let t = Telemetry::new();
    let addr = serve(app(&t, HttpServerLayer::new(t.config().build()))).await;
    let res = get_with(addr, "GET", "/fail", &[]).await;
    assert_eq!(res.status(), 500);
    let span = t.wait_span("GET /fail", SpanKind::Server).await;
    assert_attr(&span, semconv::HTTP_RESPONSE_STATUS_CODE, 500_i64);
    assert_attr(&span, semconv::ERROR_TYPE, "500");
    assert_error_status(&span);
    let points = t.histogram(metric::HTTP_SERVER_REQUEST_DURATION);
    assert!(
        points
            .iter()
            .any(|p| point_has(p, semconv::ERROR_TYPE, "500")
                && point_has(p, semconv::HTTP_ROUTE, "/fail"))
    );
}

#[tokio::test]
async fn panicking_handler_still_ends_the_span_with_an_error() {
    let t = Telemetry::new();
    let addr = serve(app(&t, HttpServerLayer::new(t.config().build()))).await;
    let req = Request::builder()
        .uri(format!("http://{addr}/panic"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let result = client().request(req).await;
    assert!(result.is_err(), "the connection is closed by the panic");
    let span = t.wait_span("GET /panic", SpanKind::Server).await;
    assert_attr(&span, semconv::ERROR_TYPE, "panic");
    assert_no_attr(&span, semconv::HTTP_RESPONSE_STATUS_CODE);
    assert_error_status(&span);
    assert!(span.events.iter().any(|e| e.name == "exception"));
    let points = t.histogram(metric::HTTP_SERVER_REQUEST_DURATION);
    let point = points
        .iter()
        .find(|p| point_has(p, semconv::ERROR_TYPE, "panic"))
        .expect("duration recorded for the panicked request");
    assert!(exemplar_for(point, &span));
    let active = t.up_down(metric::HTTP_SERVER_ACTIVE_REQUESTS);
    assert!(active.iter().all(|(_, v)| *v == 0), "{active:?}");
}

#[tokio::test]
async fn streaming_response_is_timed_until_its_last_chunk() {
    let t = Telemetry::new();
    let addr = serve(app(&t, HttpServerLayer::new(t.config().build()))).await;
    let started = std::time::Instant::now();
    let res = get_with(addr, "GET", "/stream", &[]).await;
    let head_after = started.elapsed();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let body_after = started.elapsed();
    // The head came well before the body ended (chunks are 150 ms apart).
    assert!(
        head_after + Duration::from_millis(200) < body_after,
        "head after {head_after:?}, body after {body_after:?}"
    );
    assert_eq!(&body[..], b"chunk 0\nchunk 1\nchunk 2\n");
    let span = t.wait_span("GET /stream", SpanKind::Server).await;
    let span_time = span.end_time.duration_since(span.start_time).unwrap();
    assert!(
        span_time >= Duration::from_millis(440),
        "span lasted {span_time:?}, the body took 3 x 150 ms"
    );
    let point = t
        .histogram(metric::HTTP_SERVER_REQUEST_DURATION)
        .into_iter()
        .find(|p| point_has(p, semconv::HTTP_ROUTE, "/stream"))
        .unwrap();
    assert!(sum(&point) >= 0.44, "recorded {}", sum(&point));
    assert!(exemplar_for(&point, &span));
}

#[tokio::test]
async fn unknown_method_is_other() {
    let t = Telemetry::new();
    let app = Router::new()
        .fallback(|| async { "any" })
        .layer(HttpServerLayer::new(t.config().build()));
    let addr = serve(app).await;
    let res = get_with(addr, "PURGE", "/cache", &[]).await;
    assert_eq!(res.status(), 200);
    let span = t.wait_span("HTTP", SpanKind::Server).await;
    assert_attr(&span, semconv::HTTP_REQUEST_METHOD, "_OTHER");
    assert_attr(&span, semconv::HTTP_REQUEST_METHOD_ORIGINAL, "PURGE");
    let points = t.histogram(metric::HTTP_SERVER_REQUEST_DURATION);
    assert!(
        points
            .iter()
            .any(|p| point_has(p, semconv::HTTP_REQUEST_METHOD, "_OTHER"))
    );
}

#[tokio::test]
async fn filter_skips_health_checks() {
    let t = Telemetry::new();
    let layer = HttpServerLayer::new(t.config().with_filter(SkipPaths::new(["/health"])).build());
    let addr = serve(app(&t, layer)).await;
    assert_eq!(get_with(addr, "GET", "/health", &[]).await.status(), 200);
    assert_eq!(get_with(addr, "GET", "/fail", &[]).await.status(), 500);
    t.wait_span("GET /fail", SpanKind::Server).await;
    assert!(!t.span_names().iter().any(|n| n.contains("health")));
    let points = t.histogram(metric::HTTP_SERVER_REQUEST_DURATION);
    assert!(
        !points
            .iter()
            .any(|p| point_has(p, semconv::HTTP_ROUTE, "/health"))
    );
}

#[tokio::test]
async fn trace_response_header_and_span_name_override() {
    let t = Telemetry::new();
    let layer = HttpServerLayer::new(
        t.config()
            .with_trace_response(true)
            .with_span_name(|req: &RequestView<'_>| {
                format!("custom {}", req.route().unwrap_or("?")).into()
            })
            .build(),
    );
    let addr = serve(app(&t, layer)).await;
    let tp = traceparent();
    let res = get_with(addr, "GET", "/users/7", &[("traceparent", &tp)]).await;
    let header = res
        .headers()
        .get("traceresponse")
        .expect("traceresponse header")
        .to_str()
        .unwrap()
        .to_owned();
    let span = t.wait_span("custom /users/{id}", SpanKind::Server).await;
    assert_eq!(
        header,
        format!(
            "00-{}-{}-01",
            span.span_context.trace_id(),
            span.span_context.span_id()
        )
    );
    assert_attr(&span, semconv::HTTP_ROUTE, "/users/{id}");
}

#[tokio::test]
async fn unsampled_requests_record_metrics_but_no_spans() {
    let t = Telemetry::with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
        opentelemetry_sdk::trace::Sampler::AlwaysOn,
    )));
    let addr = serve(app(&t, HttpServerLayer::new(t.config().build()))).await;
    let unsampled = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-00");
    let res = get_with(addr, "GET", "/users/1", &[("traceparent", &unsampled)]).await;
    assert_eq!(res.status(), 200);
    let _ = res.into_body().collect().await.unwrap();
    for _ in 0..50 {
        let points = t.histogram(metric::HTTP_SERVER_REQUEST_DURATION);
        if let Some(p) = points
            .iter()
            .find(|p| point_has(p, semconv::HTTP_ROUTE, "/users/{id}"))
        {
            assert!(t.spans().is_empty(), "{:?}", t.span_names());
            // No exemplar can point at a span that was never sampled.
            assert!(p.histogram().unwrap().exemplars.is_empty());
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no duration recorded for the unsampled request");
}

/// A plain hyper service (no axum) behind the layer: no route, span named by method.
#[tokio::test]
async fn plain_hyper_service() {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceBuilder;

    let t = Telemetry::new();
    let tracer = t.tracer();
    let svc = ServiceBuilder::new()
        .layer(HttpServerLayer::new(t.config().build()))
        .service_fn(move |_req: http::Request<hyper::body::Incoming>| {
            let tracer = tracer.clone();
            async move {
                // The request's context is current inside the service.
                let cx = opentelemetry::Context::current();
                assert!(cx.span().span_context().is_valid());
                let _span = tracer.start("inner");
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                    Bytes::from_static(b"hi"),
                )))
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
            .await
            .unwrap();
    });
    let res = get_with(
        addr,
        "POST",
        "/x?y=1",
        &[("x-forwarded-for", "203.0.113.9")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let span = t.wait_span("POST", SpanKind::Server).await;
    let inner = t.wait_span("inner", SpanKind::Internal).await;
    assert_child_of(&inner, &span);
    assert_attr(&span, semconv::URL_PATH, "/x");
    assert_attr(&span, semconv::URL_QUERY, "y=1");
    assert_attr(&span, semconv::CLIENT_ADDRESS, "203.0.113.9");
    assert_no_attr(&span, semconv::HTTP_ROUTE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_requests_count_requests_in_flight_across_worker_threads() {
    let t = Telemetry::new();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let handler_gate = gate.clone();
    let router = Router::new()
        .route(
            "/wait",
            get(move || {
                let gate = handler_gate.clone();
                async move {
                    gate.acquire().await.unwrap().forget();
                    "done"
                }
            }),
        )
        .layer(HttpServerLayer::new(t.config().build()));
    let addr = serve(router).await;
    let in_flight: i64 = 6;
    let requests: Vec<_> = (0..in_flight)
        .map(|_| tokio::spawn(async move { get_with(addr, "GET", "/wait", &[]).await }))
        .collect();

    // All six wait in the handler, spread over the two worker threads: the counter's
    // stripes add up to six.
    wait_for_active_requests(&t, in_flight).await;

    gate.add_permits(in_flight as usize);
    for request in requests {
        let response = request.await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
    }
    // Every body has been read: the spans end and the counter is back to zero.
    wait_for_active_requests(&t, 0).await;
    let waited = t
        .span_names()
        .iter()
        .filter(|name| *name == "GET /wait")
        .count();
    assert_eq!(waited, in_flight as usize);
}

/// Waits (10 s at most) until `http.server.active_requests`, summed over its series, is
/// `expected`.
async fn wait_for_active_requests(t: &Telemetry, expected: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let active = t.up_down(metric::HTTP_SERVER_ACTIVE_REQUESTS);
        if active.iter().map(|(_, v)| v).sum::<i64>() == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected {expected} active requests: {active:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An axum router with `/health` and `/pay/{id}`, the layer on every route.
fn payments_app(layer: HttpServerLayer) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/pay/{id}", get(|| async { "paid" }))
        .route("/orders", get(|| async { "orders" }))
        .layer(layer)
}

/// Sends `request` through `app` and drains the response body (the span ends with it).
async fn send(app: &Router, request: Request<Body>) -> http::Response<Body> {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    http::Response::from_parts(parts, Body::from(body))
}

fn get_request(uri: &str, traceparent: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    request.body(Body::empty()).unwrap()
}

/// A request without `traceparent` is an entry span: the sampler decides with the route,
/// path and final name in hand, so a `RuleSampler` rule on `/health` drops health checks.
#[tokio::test]
async fn rule_sampler_sees_route_and_name_of_requests_without_traceparent() {
    use opentelemetry_sdk::trace::Sampler;
    use otel_core::sampling::{RuleMatch, RuleSampler};

    let rules = RuleSampler::builder()
        .rule(RuleMatch::route("/health"), Sampler::AlwaysOff)
        .fallback(Sampler::AlwaysOn)
        .build();
    let t = Telemetry::with_sampler(Sampler::ParentBased(Box::new(rules)));
    let app = payments_app(HttpServerLayer::new(t.config().build()));

    assert_eq!(send(&app, get_request("/health", None)).await.status(), 200);
    assert_eq!(send(&app, get_request("/pay/1", None)).await.status(), 200);

    let spans = t.spans();
    assert_eq!(
        spans.iter().map(|s| s.name.to_string()).collect::<Vec<_>>(),
        ["GET /pay/{id}"]
    );
    assert_attr(&spans[0], semconv::HTTP_ROUTE, "/pay/{id}");
    assert_attr(&spans[0], semconv::URL_PATH, "/pay/1");
    // The dropped health check still counts in the duration metric.
    let health = t
        .histogram(metric::HTTP_SERVER_REQUEST_DURATION)
        .into_iter()
        .find(|p| point_has(p, semconv::HTTP_ROUTE, "/health"))
        .expect("a /health duration series");
    assert_eq!(count(&health), 1);
}

/// With `skip_unsampled(false)` the sampler is asked about requests whose caller did not
/// sample the trace, so a `RuleSampler` rule `/pay*` → always keeps them; with the default
/// it is never asked.
#[tokio::test]
async fn rule_sampler_keeps_unsampled_callers_payments_with_skip_unsampled_off() {
    use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
    use otel_core::metrics::{Metrics, MetricsConfig};
    use otel_core::sampling::{RuleMatch, RuleSampler};

    let exporter = InMemorySpanExporter::default();
    // The rule sampler itself, not under a parent-based one: it decides entry spans even
    // when the caller sent a decision.
    let provider = SdkTracerProvider::builder()
        .with_sampler(
            RuleSampler::builder()
                .rule(RuleMatch::route("/pay*"), Sampler::AlwaysOn)
                .fallback(Sampler::AlwaysOff)
                .build(),
        )
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = |skip_unsampled: bool| {
        HttpServerLayer::new(
            otel_tower::Config::builder()
                .with_tracer_provider(provider.clone())
                .with_metrics(Metrics::new(MetricsConfig::default()))
                .with_propagator(otel_core::propagation::TraceContextPropagator::new())
                .with_skip_unsampled(skip_unsampled)
                .build(),
        )
    };
    let unsampled = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-00");

    // Default: no span, whatever the rules say.
    let app = payments_app(layer(true));
    send(&app, get_request("/pay/1", Some(&unsampled))).await;
    assert!(exporter.get_finished_spans().unwrap().is_empty());

    let app = payments_app(layer(false));
    send(&app, get_request("/pay/1", Some(&unsampled))).await;
    send(&app, get_request("/orders", Some(&unsampled))).await;
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(
        spans.iter().map(|s| s.name.to_string()).collect::<Vec<_>>(),
        ["GET /pay/{id}"]
    );
    assert!(spans[0].span_context.is_sampled());
    assert_eq!(spans[0].span_context.trace_id(), remote_trace_id());
    assert_eq!(spans[0].parent_span_id, remote_span_id());
}

/// With the default `skip_unsampled`, a request whose caller did not sample runs in the
/// caller's context with no server span; the spans its handler opens (a database call here)
/// follow the caller's decision under a `RuleSampler` too, instead of being exported as entry
/// spans without their server span.
#[tokio::test]
async fn handler_spans_under_a_skipped_unsampled_request_follow_the_caller() {
    use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};

    // Every entry span would be sampled.
    let (provider, exporter) = entry_sampling_provider();
    let tracer = provider.tracer("db");
    let app = Router::new()
        .route(
            "/pay/{id}",
            get(move || {
                tracer
                    .span_builder("SELECT payments")
                    .with_kind(SpanKind::Client)
                    .start(&tracer)
                    .end();
                async { "paid" }
            }),
        )
        .layer(w3c_layer(&provider));

    let unsampled = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-00");
    send(&app, get_request("/pay/1", Some(&unsampled))).await;
    assert!(exporter.get_finished_spans().unwrap().is_empty());

    // A sampled caller: server span and its child, in the caller's trace.
    let sampled = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    send(&app, get_request("/pay/1", Some(&sampled))).await;
    let spans = exporter.get_finished_spans().unwrap();
    let server = spans.iter().find(|s| s.name == "GET /pay/{id}").unwrap();
    let child = spans.iter().find(|s| s.name == "SELECT payments").unwrap();
    assert_eq!(child.parent_span_id, server.span_context.span_id());
    assert_eq!(server.span_context.trace_id(), remote_trace_id());
}

/// QUERY is a known method; `with_known_methods` replaces the list.
#[tokio::test]
async fn query_is_known_and_known_methods_can_be_replaced() {
    let request = |method: &str| {
        Request::builder()
            .method(method)
            .uri("/orders")
            .body(Body::empty())
            .unwrap()
    };
    let handler = || axum::routing::any(|| async { "ok" });

    let t = Telemetry::new();
    let app = Router::new()
        .route("/orders", handler())
        .layer(HttpServerLayer::new(t.config().build()));
    send(&app, request("QUERY")).await;
    let span = t.wait_span("QUERY /orders", SpanKind::Server).await;
    assert_attr(&span, semconv::HTTP_REQUEST_METHOD, "QUERY");
    assert_no_attr(&span, semconv::HTTP_REQUEST_METHOD_ORIGINAL);

    let t = Telemetry::new();
    let app = Router::new()
        .route("/orders", handler())
        .layer(HttpServerLayer::new(
            t.config().with_known_methods(["GET", "PURGE"]).build(),
        ));
    send(&app, request("PURGE")).await;
    send(&app, request("POST")).await;
    let purge = t.wait_span("PURGE /orders", SpanKind::Server).await;
    assert_attr(&purge, semconv::HTTP_REQUEST_METHOD, "PURGE");
    // No longer in the list: `_OTHER`, the method as sent kept on the span only.
    let post = t.wait_span("HTTP /orders", SpanKind::Server).await;
    assert_attr(&post, semconv::HTTP_REQUEST_METHOD, "_OTHER");
    assert_attr(&post, semconv::HTTP_REQUEST_METHOD_ORIGINAL, "POST");
    let points = t.histogram(metric::HTTP_SERVER_REQUEST_DURATION);
    let mut methods: Vec<String> = points
        .iter()
        .map(|p| {
            point_attr(p, semconv::HTTP_REQUEST_METHOD)
                .unwrap()
                .to_string()
        })
        .collect();
    methods.sort();
    assert_eq!(methods, ["PURGE", "_OTHER"]);
    assert!(
        t.up_down(metric::HTTP_SERVER_ACTIVE_REQUESTS)
            .iter()
            .any(|(attrs, _)| attrs.iter().any(|kv| kv.value.as_str() == "PURGE"))
    );
}

/// A service error is classified as the client and gRPC layers classify it: a tower
/// `Timeout` inside the layer is `timeout`, not a Rust type name.
#[tokio::test]
async fn service_error_from_a_timeout_is_classified_as_timeout() {
    use tower::Layer as _;

    let t = Telemetry::new();
    let slow = tower::service_fn(|_req: Request<Body>| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
    });
    let service = HttpServerLayer::new(t.config().build()).layer(tower::timeout::Timeout::new(
        slow,
        Duration::from_millis(20),
    ));
    let Err(err) = service.oneshot(get_request("/slow", None)).await else {
        panic!("the timeout did not fire");
    };
    assert!(err.to_string().contains("timed out"), "{err}");

    let span = t.wait_span("GET", SpanKind::Server).await;
    assert_attr(&span, semconv::ERROR_TYPE, "timeout");
    assert_error_status(&span);
    let points = t.histogram(metric::HTTP_SERVER_REQUEST_DURATION);
    assert_eq!(points.len(), 1);
    assert!(point_has(&points[0], semconv::ERROR_TYPE, "timeout"));
}

/// A service whose `call` panics before returning a future.
#[derive(Clone)]
struct PanicsInCall;

impl tower::Service<Request<Body>> for PanicsInCall {
    type Response = http::Response<Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<Body>) -> Self::Future {
        panic!("call panicked on purpose")
    }
}

/// A panic inside the inner service's `call` (not its future) still ends the request:
/// `http.server.active_requests` goes back down, the span ends with `error.type` `panic`
/// and the duration is recorded.
#[tokio::test]
async fn synchronous_panic_in_call_is_recorded_and_not_leaked() {
    use tower::{Layer as _, Service as _};

    let t = Telemetry::new();
    let mut service = HttpServerLayer::new(t.config().build()).layer(PanicsInCall);
    service.ready().await.unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        service.call(get_request("/boom", None))
    }));
    assert!(caught.is_err());

    let active = t.up_down(metric::HTTP_SERVER_ACTIVE_REQUESTS);
    assert!(
        active.iter().all(|(_, value)| *value == 0),
        "active requests leaked: {active:?}"
    );
    let span = t.wait_span("GET", SpanKind::Server).await;
    assert_attr(&span, semconv::ERROR_TYPE, "panic");
    assert_error_status(&span);
    let points = t.histogram(metric::HTTP_SERVER_REQUEST_DURATION);
    assert_eq!(points.len(), 1);
    assert!(point_has(&points[0], semconv::ERROR_TYPE, "panic"));
    assert_eq!(count(&points[0]), 1);
}

/// `traceresponse` names the callee's own span; a request that started none (unsampled
/// caller, `skip_unsampled`) gets no header rather than one naming the caller's span.
#[tokio::test]
async fn trace_response_is_omitted_when_no_span_of_ours_exists() {
    let t = Telemetry::with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
        opentelemetry_sdk::trace::Sampler::AlwaysOn,
    )));
    let app = payments_app(HttpServerLayer::new(
        t.config().with_trace_response(true).build(),
    ));
    let unsampled = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-00");
    let response = send(&app, get_request("/pay/1", Some(&unsampled))).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("traceresponse").is_none(),
        "{:?}",
        response.headers().get("traceresponse")
    );

    let sampled = traceparent();
    let response = send(&app, get_request("/pay/1", Some(&sampled))).await;
    let span = t.wait_span("GET /pay/{id}", SpanKind::Server).await;
    assert_ne!(span.span_context.span_id(), remote_span_id());
    assert_eq!(
        response.headers()["traceresponse"],
        format!(
            "00-{}-{}-01",
            span.span_context.trace_id(),
            span.span_context.span_id()
        )
        .as_str()
    );
}

/// Telemetry off (the API's no-op tracer provider): no span, but the handler still runs in
/// the caller's context (so it propagates onwards) and the duration is recorded.
#[tokio::test]
async fn with_the_noop_provider_the_request_runs_in_the_callers_context() {
    let t = Telemetry::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let in_handler = seen.clone();
    let app = Router::new()
        .route(
            "/pay/{id}",
            get(move || {
                let sc = opentelemetry::Context::current()
                    .span()
                    .span_context()
                    .clone();
                *in_handler.lock().unwrap() = Some(sc);
                async { "paid" }
            }),
        )
        .layer(HttpServerLayer::new(
            t.config()
                .with_tracer_provider(opentelemetry::trace::noop::NoopTracerProvider::new())
                .build(),
        ));
    let response = send(&app, get_request("/pay/1", Some(&traceparent()))).await;
    assert_eq!(response.status(), 200);
    let sc = seen.lock().unwrap().clone().expect("the handler ran");
    assert_eq!(sc.trace_id(), remote_trace_id());
    assert_eq!(sc.span_id(), remote_span_id());
    assert!(t.spans().is_empty());
    let points = t.histogram(metric::HTTP_SERVER_REQUEST_DURATION);
    assert_eq!(points.len(), 1);
    assert!(point_has(&points[0], semconv::HTTP_ROUTE, "/pay/{id}"));
}

/// A streaming body runs in the request's context also when no span of ours records: the
/// work it does follows an unsampled caller's decision instead of starting new traces.
#[tokio::test]
async fn a_streaming_body_of_an_unsampled_caller_runs_in_the_callers_context() {
    use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};

    // Every entry span would be sampled.
    let (provider, exporter) = entry_sampling_provider();
    let tracer = provider.tracer("db");
    let app = Router::new()
        .route(
            "/export",
            get(move || {
                let tracer = tracer.clone();
                let chunks = futures_util::stream::once(async move {
                    tracer
                        .span_builder("SELECT rows")
                        .with_kind(SpanKind::Client)
                        .start(&tracer)
                        .end();
                    Ok::<_, std::convert::Infallible>(Bytes::from_static(b"rows"))
                });
                async move { Body::from_stream(chunks) }
            }),
        )
        .layer(w3c_layer(&provider));

    let unsampled = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-00");
    let response = send(&app, get_request("/export", Some(&unsampled))).await;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"rows");
    let spans = exporter.get_finished_spans().unwrap();
    assert!(
        spans.is_empty(),
        "{:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
}

/// Signed-URL parameters of the current conventions' list are redacted (AWS signature
/// version 4).
#[tokio::test]
async fn aws_v4_signed_url_parameters_are_redacted() {
    let t = Telemetry::new();
    let app = payments_app(HttpServerLayer::new(t.config().build()));
    send(
        &app,
        get_request(
            "/orders?X-Amz-Credential=AKIAX&X-Amz-Signature=abc&X-Amz-Security-Token=t&page=2",
            None,
        ),
    )
    .await;
    let span = t.wait_count(1).await.remove(0);
    assert_attr(
        &span,
        semconv::URL_QUERY,
        "X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&page=2",
    );
}

/// Behind a proxy, `server.address` and `server.port` are the name the client used: the
/// `Forwarded: host=` or `X-Forwarded-Host`, before `Host`.
#[tokio::test]
async fn server_address_comes_from_the_proxys_forwarded_host() {
    let t = Telemetry::new();
    let addr = serve(app(&t, HttpServerLayer::new(t.config().build()))).await;
    get_with(
        addr,
        "GET",
        "/nope",
        &[
            ("host", "backend:8080"),
            ("x-forwarded-host", "shop.example"),
        ],
    )
    .await;
    get_with(
        addr,
        "GET",
        "/nope",
        &[
            ("host", "backend:8080"),
            (
                "forwarded",
                "for=203.0.113.7;host=\"api.example:8443\";proto=https",
            ),
            ("x-forwarded-host", "ignored.example"),
        ],
    )
    .await;
    let spans = t.wait_count(2).await;
    let mut seen: Vec<(String, Option<opentelemetry::Value>)> = spans
        .iter()
        .map(|span| {
            (
                attr(span, semconv::SERVER_ADDRESS)
                    .map(|v| v.as_str().into_owned())
                    .unwrap(),
                attr(span, semconv::SERVER_PORT).cloned(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            (
                "api.example".to_owned(),
                Some(opentelemetry::Value::I64(8443))
            ),
            ("shop.example".to_owned(), None),
        ]
    );
}

/// The attributes of `with_request_attributes` are given to the sampler at span start, also
/// for a request without `traceparent`.
#[tokio::test]
async fn the_sampler_sees_the_request_attributes_you_add() {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{Link, SpanKind, TraceId};
    use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

    /// Drops the requests of the free tenant.
    #[derive(Clone, Debug)]
    struct ByTenant;
    impl ShouldSample for ByTenant {
        fn should_sample(
            &self,
            _: Option<&opentelemetry::Context>,
            _: TraceId,
            _: &str,
            _: &SpanKind,
            attributes: &[KeyValue],
            _: &[Link],
        ) -> SamplingResult {
            let free = attributes
                .iter()
                .any(|kv| kv.key.as_str() == "tenant.id" && kv.value.as_str() == "free");
            SamplingResult {
                decision: if free {
                    SamplingDecision::Drop
                } else {
                    SamplingDecision::RecordAndSample
                },
                attributes: Vec::new(),
                trace_state: Default::default(),
            }
        }
    }

    let t = Telemetry::with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
        ByTenant,
    )));
    let layer = HttpServerLayer::new(
        t.config()
            .with_request_attributes(
                |request: &otel_tower::config::RequestView<'_>, attrs: &mut Vec<KeyValue>| {
                    if let Some(tenant) = request
                        .headers()
                        .get("x-tenant")
                        .and_then(|v| v.to_str().ok())
                    {
                        attrs.push(KeyValue::new("tenant.id", tenant.to_owned()));
                    }
                },
            )
            .build(),
    );
    let app = payments_app(layer);
    for tenant in ["free", "paying"] {
        let mut request = get_request("/orders", None);
        request
            .headers_mut()
            .insert("x-tenant", tenant.parse().unwrap());
        send(&app, request).await;
    }
    let spans = t.wait_count(1).await;
    assert_eq!(spans.len(), 1);
    assert_attr(&spans[0], "tenant.id", "paying");
}

/// A provider whose sampler (otel-core's `RuleSampler` without rules) samples every entry
/// span and follows the parent otherwise, exporting to memory.
fn entry_sampling_provider() -> (
    opentelemetry_sdk::trace::SdkTracerProvider,
    opentelemetry_sdk::trace::InMemorySpanExporter,
) {
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(otel_core::sampling::RuleSampler::builder().build())
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

/// The server layer on `provider`, with W3C trace-context propagation.
fn w3c_layer(provider: &opentelemetry_sdk::trace::SdkTracerProvider) -> HttpServerLayer {
    HttpServerLayer::new(
        otel_tower::Config::builder()
            .with_tracer_provider(provider.clone())
            .with_metrics(otel_core::metrics::Metrics::new(
                otel_core::metrics::MetricsConfig::default(),
            ))
            .with_propagator(otel_core::propagation::TraceContextPropagator::new())
            .build(),
    )
}
