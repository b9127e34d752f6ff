//! The analyzer service: `POST /analyze` with a [`Subgraph`], answers an
//! [`Analysis`](crate::graph::Analysis).
//! Stateless; any implementation of the API in the README can stand in for it.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use otel_tower::Config;
use otel_tower::http::server::HttpServerLayer;

use crate::graph::{self, Subgraph};
use crate::http_util::{SIMULATE_FAILURE_HEADER, error, json};

/// The analyzer's routes, instrumented with the suite's HTTP server layer.
pub fn router() -> Router {
    Router::new()
        .route("/analyze", post(analyze))
        .route("/health", get(|| async { "ok" }))
        .layer(HttpServerLayer::new(Config::default()))
}

/// Serves the analyzer on `listen` until `stop` resolves.
pub async fn serve(
    listen: std::net::SocketAddr,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "analyzer listening");
    axum::serve(listener, router())
        .with_graceful_shutdown(stop)
        .await
}

async fn analyze(headers: HeaderMap, body: Bytes) -> Response {
    if headers
        .get(SIMULATE_FAILURE_HEADER)
        .is_some_and(|v| v.as_bytes() == b"analyzer")
    {
        tracing::error!("simulated analyzer failure");
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulated analyzer failure",
        );
    }
    let subgraph: Subgraph = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid subgraph: {e}")),
    };
    match run_analysis(&subgraph) {
        Ok(analysis) => json(StatusCode::OK, &analysis),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    }
}

#[otel_core::traced(skip_all, fields(app.accounts = subgraph.accounts.len() as i64, app.transactions = subgraph.transactions.len() as i64), err)]
fn run_analysis(subgraph: &Subgraph) -> Result<graph::Analysis, graph::InvalidSubgraph> {
    let analysis = graph::analyze(subgraph)?;
    tracing::info!(
        root = %analysis.root,
        accounts = subgraph.accounts.len(),
        communities = analysis.communities.len(),
        cycles = analysis.cycles.len(),
        "analysed subgraph"
    );
    Ok(analysis)
}
