//! Run with `cargo run -p quickstart`. Set `OTEL_EXPORTER_OTLP_ENDPOINT` to also export to a
//! collector.
//!
//! Everything runs in this one process on embedded defaults, with no server to install:
//!
//! - an axum service on a loopback port behind `otel-tower`'s [`HttpServerLayer`], with
//!   `/metrics` served by `otel-core`'s [`MetricsService`] over the pipeline's registry;
//! - SQLite in memory behind `otel-sqlx`'s [`InstrumentedPool`];
//! - a hyper client behind `otel-tower`'s [`HttpClientLayer`] that sends three requests to the
//!   service: one fast, one slow, one failing. Each is one trace: client span → server span →
//!   SQL spans, and the spans of the handler marked with `#[otel_core::traced]`.
//!
//! The console exporter prints each trace as a waterfall; then the `/metrics` text
//! (OpenMetrics, asked for with `Accept: application/openmetrics-text`) is fetched and its
//! `http_server_request_duration_seconds` lines are printed: the buckets carry exemplars whose
//! `trace_id` is one of the traces above. On exit the pipeline reports what it could not
//! deliver.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use otel_core::metrics::openmetrics::{Format, MetricsService};
use otel_core::{Telemetry, TracesExporter, traced};
use otel_sqlx::{InstrumentedPool, PoolBuilder};
use otel_tower::Config;
use otel_tower::config::SkipPaths;
use otel_tower::http::client::HttpClientLayer;
use otel_tower::http::server::HttpServerLayer;
use sqlx::Sqlite;
use sqlx::sqlite::SqlitePoolOptions;
use tower::{Service as _, ServiceBuilder, ServiceExt as _};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Db = InstrumentedPool<Sqlite>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let exporters = if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        vec![TracesExporter::Console, TracesExporter::Otlp]
    } else {
        vec![TracesExporter::Console]
    };
    let guard = Telemetry::builder()
        .with_service_name("quickstart")
        .with_service_version(env!("CARGO_PKG_VERSION"))
        .with_traces_exporters(exporters)
        .with_shutdown_timeout(Duration::from_secs(3))
        .install()?;

    // Built after `install`, so the pool and the layers take the installed global tracer
    // provider and metrics.
    let db = database().await?;
    let addr = serve(db, MetricsService::new(guard.metrics().clone())).await?;

    let mut client = ServiceBuilder::new()
        .layer(HttpClientLayer::new(Config::default()))
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    for (method, path) in [
        (http::Method::GET, "/accounts/1"),
        (http::Method::GET, "/analyze/1"),
        (http::Method::POST, "/transfer"),
    ] {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .body(Empty::new())?;
        let response = client.ready().await?.call(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        tracing::info!(path, %status, body = %String::from_utf8_lossy(&body), "response");
    }

    // Every span has ended: have the console exporter print the waterfalls now, before the
    // metrics text (flushing waits for the exporters, so it runs off the async workers).
    if let Some(provider) = guard.tracer_provider().cloned() {
        // An OTLP export failing here is counted and reported when the guard is dropped.
        let _ = tokio::task::spawn_blocking(move || provider.force_flush()).await?;
    }
    let text = scrape(addr).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nGET http://{addr}/metrics (Accept: {}), http_server_request_duration_seconds only:",
        Format::OpenMetrics.content_type()
    )?;
    for line in text.lines().filter(|l| {
        l.starts_with("http_server_request_duration_seconds")
            || l.starts_with("# TYPE http_server_request_duration_seconds")
            || *l == "# EOF"
    }) {
        writeln!(out, "{line}")?;
    }
    drop(out);
    drop(guard);
    Ok(())
}

/// One in-memory SQLite database (one connection: each `sqlite::memory:` connection is its own
/// database), filled without instrumentation so the setup is not traced.
async fn database() -> Result<Db, Error> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE accounts (
             id INTEGER PRIMARY KEY,
             owner TEXT NOT NULL,
             balance INTEGER NOT NULL CHECK (balance >= 0)
         );
         CREATE TABLE transactions (
             id INTEGER PRIMARY KEY,
             from_account INTEGER NOT NULL REFERENCES accounts(id),
             to_account INTEGER NOT NULL REFERENCES accounts(id),
             amount INTEGER NOT NULL
         );
         INSERT INTO accounts (id, owner, balance) VALUES (1, 'ada', 120), (2, 'grace', 80);
         INSERT INTO transactions (from_account, to_account, amount)
             VALUES (1, 2, 30), (2, 1, 10), (1, 2, 5);",
    )
    .execute(&pool)
    .await?;
    Ok(PoolBuilder::from(pool).build())
}

/// Serves the API on a free loopback port; returns its address.
async fn serve(db: Db, metrics: MetricsService) -> Result<SocketAddr, Error> {
    let config = Config::builder()
        .with_filter(SkipPaths::new(["/metrics"]))
        .build();
    let app = Router::new()
        .route("/accounts/{id}", get(account))
        .route("/analyze/{id}", get(analyze))
        .route("/transfer", post(transfer))
        .with_state(db)
        .route_service("/metrics", metrics)
        .layer(HttpServerLayer::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok(addr)
}

/// Fast: one indexed lookup.
async fn account(State(db): State<Db>, Path(id): Path<i64>) -> Result<String, StatusCode> {
    tracing::info!(id, "handling request");
    let owner: String = sqlx::query_scalar("SELECT owner FROM accounts WHERE id = ?")
        .bind(id)
        .fetch_one(&db)
        .await
        .map_err(|_| StatusCode::NOT_FOUND)?;
    Ok(owner)
}

/// Slow: reads the account's transactions, then spends a while "scoring" them.
///
/// `#[traced]` makes each call a span of its own (child of the server span, parent of the
/// SQL span) recording the `id` argument; the database handle is skipped.
#[traced(skip(db))]
async fn analyze(State(db): State<Db>, Path(id): Path<i64>) -> Result<String, StatusCode> {
    tracing::info!(id, "handling request");
    let amounts: Vec<i64> = sqlx::query_scalar(
        "SELECT amount FROM transactions WHERE from_account = ? OR to_account = ?",
    )
    .bind(id)
    .bind(id)
    .fetch_all(&db)
    .await
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(format!("risk score {}", score(&amounts).await))
}

/// The slow part of `/analyze/{id}`, a span of its own, so the waterfall shows where the time
/// went.
#[traced(skip_all)]
async fn score(amounts: &[i64]) -> i64 {
    tokio::time::sleep(Duration::from_millis(60)).await;
    amounts.iter().sum::<i64>() % 100
}

/// Failing: moves more than the account holds, which the table's CHECK constraint refuses.
async fn transfer(State(db): State<Db>) -> Result<&'static str, StatusCode> {
    tracing::info!("handling request");
    let mut tx = db
        .begin()
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let moved = sqlx::query("UPDATE accounts SET balance = balance - ? WHERE id = ?")
        .bind(1_000_i64)
        .bind(1_i64)
        .execute(&mut tx)
        .await;
    match moved {
        Ok(_) => {
            tx.commit()
                .await
                .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
            Ok("moved")
        }
        Err(e) => {
            tracing::warn!(error = %e, "transfer refused");
            let _ = tx.rollback().await;
            Err(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// `GET /metrics` in the OpenMetrics format, with a client that is not instrumented.
async fn scrape(addr: SocketAddr) -> Result<String, Error> {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::builder()
        .uri(format!("http://{addr}/metrics"))
        .header(http::header::ACCEPT, Format::OpenMetrics.content_type())
        .body(Empty::new())?;
    let response = client.oneshot(request).await?;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8(body.to_vec())?)
}
