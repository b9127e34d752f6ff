//! Interoperation with `tracing` and with a layer placed outside the axum router.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::MatchedPath;
use axum::routing::get;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use opentelemetry::trace::SpanKind;
use opentelemetry_semantic_conventions::attribute as semconv;
use otel_tower::http::server::HttpServerLayer;
use tower::ServiceBuilder;

async fn fetch(addr: SocketAddr, path: &str, traceparent: &str) -> String {
    let req = http::Request::builder()
        .uri(format!("http://{addr}{path}"))
        .header("traceparent", traceparent)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = Client::builder(TokioExecutor::new())
        .build_http()
        .request(req)
        .await
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tracing::instrument]
async fn load_account(id: u32) -> u32 {
    tracing::info!(account = id, "loading account");
    id * 2
}

/// A `#[tracing::instrument]` span opened in a handler is a child of the request's span,
/// and `tracing` events inside the request carry its trace id and span id.
///
/// `#[tokio::test]` runs everything on this thread, where the subscriber is installed.
#[tokio::test]
async fn tracing_spans_and_logs_inside_a_request() {
    let t = Telemetry::new();
    let _subscriber = t.inner.set_tracing_default();
    let app = Router::new()
        .route(
            "/accounts/{id}",
            get(|| async {
                tracing::info!("handler started");
                load_account(21).await.to_string()
            }),
        )
        .layer(HttpServerLayer::new(t.config().build()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    assert_eq!(fetch(addr, "/accounts/21", &traceparent()).await, "42");
    let server = t.wait_span("GET /accounts/{id}", SpanKind::Server).await;
    let inner = t.wait_span("load_account", SpanKind::Internal).await;
    assert_child_of(&inner, &server);

    let logs = t.inner.log_output();
    let handler_line = logs
        .lines()
        .find(|l| l.contains("handler started"))
        .unwrap_or_else(|| panic!("no handler log line in {logs}"));
    assert!(
        handler_line.contains(&format!(
            "trace_id={} span_id={}",
            server.span_context.trace_id(),
            server.span_context.span_id()
        )),
        "{handler_line}"
    );
    let inner_line = logs
        .lines()
        .find(|l| l.contains("loading account"))
        .unwrap_or_else(|| panic!("no inner log line in {logs}"));
    assert!(
        inner_line.contains(&format!("span_id={}", inner.span_context.span_id())),
        "{inner_line}"
    );
}

/// Copies axum's `MatchedPath` onto the response, for a layer placed around the router.
async fn copy_matched_path(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.extensions().get::<MatchedPath>().cloned();
    let mut res = next.run(req).await;
    if let Some(path) = path {
        res.extensions_mut().insert(path);
    }
    res
}

/// A layer around the whole router sees no `MatchedPath` on the request; with the route
/// copied onto the response it still names the span after the route template.
#[tokio::test]
async fn layer_outside_the_router_reads_the_route_from_the_response() {
    let t = Telemetry::new();
    let router = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .route_layer(axum::middleware::from_fn(copy_matched_path));
    let app = ServiceBuilder::new()
        .layer(HttpServerLayer::new(t.config().build()))
        .service(router);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
            .await
            .unwrap();
    });
    assert_eq!(fetch(addr, "/items/9", &traceparent()).await, "item");
    let span = t.wait_span("GET /items/{id}", SpanKind::Server).await;
    assert_attr(&span, semconv::HTTP_ROUTE, "/items/{id}");
    assert_attr(&span, semconv::URL_PATH, "/items/9");
    let points =
        t.histogram(opentelemetry_semantic_conventions::metric::HTTP_SERVER_REQUEST_DURATION);
    assert!(
        points
            .iter()
            .any(|p| point_has(p, semconv::HTTP_ROUTE, "/items/{id}"))
    );
}
