//! An axum handler marked `#[traced]` stays a valid handler, is routed and called over
//! loopback, and its span nests under the SERVER span of otel-tower's `HttpServerLayer`.
//!
//! This test binary (its own process) uses the **global** tracer provider, installed once
//! before any traced call, because server tasks do not inherit the test's context: it covers
//! the default path where a traced function builds its instrumentation from the globals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_semantic_conventions::attribute::{CODE_FUNCTION_NAME, ERROR_TYPE, HTTP_ROUTE};
use otel_core::macro_support::{CALL_DURATION, RESULT};
use otel_core::metrics::{Metrics, SnapshotExt as _};
use otel_core::testing::{TestTelemetry, assert_attr, assert_child_of, assert_no_attr};
use otel_core::traced;
use otel_tower::http::server::HttpServerLayer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn telemetry() -> &'static TestTelemetry {
    static TT: OnceLock<TestTelemetry> = OnceLock::new();
    TT.get_or_init(|| {
        let tt = TestTelemetry::new();
        opentelemetry::global::set_tracer_provider(tt.tracer_provider().clone());
        Metrics::set_global(tt.metrics().clone());
        tt
    })
}

#[derive(Clone)]
struct AppState {
    accounts: Arc<Vec<(u64, &'static str)>>,
}

#[traced(skip(state), fields(app.accounts = state.accounts.len()), err(Debug), metrics)]
async fn get_account(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<String, StatusCode> {
    tokio::task::yield_now().await;
    state
        .accounts
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, name)| (*name).to_owned())
        .ok_or(StatusCode::NOT_FOUND)
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traced_handler_is_routed_and_called_over_loopback() {
    let tt = telemetry();
    let state = AppState {
        accounts: Arc::new(vec![(7, "alice")]),
    };
    let app = Router::new()
        .route("/accounts/{id}", get(get_account))
        .layer(HttpServerLayer::new(
            otel_tower::Config::builder()
                .with_tracer_provider(tt.tracer_provider().clone())
                .with_metrics(tt.metrics().clone())
                .build(),
        ))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let ok = http_get(addr, "/accounts/7").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.ends_with("alice"), "{ok}");
    let missing = http_get(addr, "/accounts/8").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

    // The server span ends when the response body is done, possibly after the client read it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while tt.spans_named("GET /accounts/{id}").len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let handlers = tt.spans_named("get_account");
    let servers = tt.spans_named("GET /accounts/{id}");
    assert_eq!((handlers.len(), servers.len()), (2, 2));
    for (handler, server) in handlers.iter().zip(&servers) {
        assert_child_of(handler, server);
        assert_eq!(server.span_kind, SpanKind::Server);
        assert_attr(server, HTTP_ROUTE, "/accounts/{id}");
        assert_eq!(handler.span_kind, SpanKind::Internal);
        assert_attr(handler, CODE_FUNCTION_NAME, "axum_handler::get_account");
        assert_attr(handler, "app.accounts", 1);
        assert_no_attr(handler, "state");
        // The crate defining the function names the instrumentation scope.
        assert_eq!(handler.instrumentation_scope.name(), "otel-macros");
    }
    assert_attr(&handlers[0], "id", 7);
    assert_eq!(handlers[0].status, Status::Unset);
    assert_attr(&handlers[1], "id", 8);
    assert_eq!(handlers[1].status, Status::error("404"));
    assert_attr(&handlers[1], ERROR_TYPE, "http::status::StatusCode");

    // The duration histogram in the global registry, its exemplars on the handler spans.
    let snapshot = tt.metrics().snapshot();
    let metric = snapshot.find(CALL_DURATION).unwrap();
    let f = KeyValue::new(CODE_FUNCTION_NAME, "axum_handler::get_account");
    let count = |attrs: &[KeyValue]| {
        metric
            .find_series(attrs)
            .unwrap()
            .histogram()
            .unwrap()
            .count
    };
    assert_eq!(count(&[f.clone(), KeyValue::new(RESULT, "ok")]), 1);
    assert_eq!(
        count(&[
            f,
            KeyValue::new(RESULT, "error"),
            KeyValue::new(ERROR_TYPE, "http::status::StatusCode")
        ]),
        1
    );
    otel_core::testing::assert_exemplars_point_at_exported(tt.metrics(), CALL_DURATION, &handlers);
}
