//! The API gateway: `GET /analyze/{account_id}` loads the account's two-hop neighbourhood
//! (Redis cache, else PostgreSQL), asks the analyzer over HTTP for its communities and money
//! cycles, and publishes a `risk.flagged` message on RabbitMQ when a ring is found.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use otel_amqp::InstrumentedChannel;
use otel_redis::InstrumentedConnection;
use otel_sqlx::InstrumentedPgPool;
use otel_tower::Config;
use otel_tower::http::server::HttpServerLayer;
use otel_tower::reqwest::OtelMiddleware;
use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize};

use crate::db;
use crate::graph::{Analysis, Subgraph};
use crate::http_util::{SIMULATE_FAILURE_HEADER, error, json};
use crate::settings::Settings;

/// How long a loaded neighbourhood stays in Redis.
pub const CACHE_TTL_SECONDS: u64 = 30;

/// The body of a `risk.flagged` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskFlagged {
    /// The account the analysis was asked for.
    pub root: String,
    /// Every account that is part of a ring, sorted, without duplicates.
    pub accounts: Vec<String>,
    /// The rings found, as account ids in the order money flows.
    pub cycles: Vec<Vec<String>>,
}

/// The gateway's response to `GET /analyze/{account_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzeResponse {
    /// The account asked for.
    pub account_id: String,
    /// Whether the neighbourhood came from the Redis cache.
    pub cached: bool,
    /// Accounts in the neighbourhood.
    pub accounts: usize,
    /// Transactions in the neighbourhood.
    pub transactions: usize,
    /// Whether a `risk.flagged` message was published.
    pub flagged: bool,
    /// The analyzer's answer.
    pub analysis: Analysis,
}

/// What the handlers share.
#[derive(Debug)]
struct App {
    settings: Settings,
    pool: InstrumentedPgPool,
    redis: InstrumentedConnection<redis::aio::MultiplexedConnection>,
    http: reqwest_middleware::ClientWithMiddleware,
    channel: InstrumentedChannel,
    _amqp: Connection,
}

/// Connects to PostgreSQL, Redis and RabbitMQ (creating the schema and the queue if missing),
/// then serves on `listen` until `stop` resolves.
pub async fn serve(
    settings: Settings,
    listen: std::net::SocketAddr,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error>> {
    let pool = crate::connect_postgres(&settings.database_url).await?;
    db::create_schema(&pool, &settings.schema).await?;

    let client = redis::Client::open(settings.redis_url.as_str())?;
    let redis = otel_redis::Builder::from(client.get_multiplexed_async_connection().await?)
        .with_client(&client)
        .build();

    let amqp = Connection::connect(&settings.amqp_url, ConnectionProperties::default()).await?;
    let (host, port) = crate::amqp_server(&settings.amqp_url);
    let channel = InstrumentedChannel::builder(amqp.create_channel().await?)
        .with_server(host, port)
        .build();
    declare_queue(&channel, &settings.queue).await?;

    let http = reqwest_middleware::ClientBuilder::new(
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?,
    )
    .with(OtelMiddleware::default())
    .build();

    let app = Arc::new(App {
        settings,
        pool,
        redis,
        http,
        channel,
        _amqp: amqp,
    });
    let router = Router::new()
        .route("/analyze/{account_id}", get(analyze))
        .route("/health", get(|| async { "ok" }))
        .layer(HttpServerLayer::new(Config::default()))
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "gateway listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await?;
    app.pool.close().await;
    Ok(())
}

/// Declares the queue `risk.flagged` messages go to (not durable; deleted by the broker once
/// its last consumer leaves); gateway and worker both call it, whichever starts first
/// creates it.
pub async fn declare_queue(channel: &InstrumentedChannel, queue: &str) -> lapin::Result<()> {
    channel
        .get_ref()
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map(|_| ())
}

/// Whether `id` looks like an account id (bounded length, no odd characters).
fn valid_account_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Why a request failed, and with which status.
enum Failure {
    BadRequest(String),
    NotFound(String),
    Analyzer(String),
    Internal(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadRequest(m) | Self::NotFound(m) | Self::Analyzer(m) | Self::Internal(m) => {
                f.write_str(m)
            }
        }
    }
}

impl Failure {
    fn into_response(self) -> Response {
        match self {
            Self::BadRequest(m) => error(StatusCode::BAD_REQUEST, &m),
            Self::NotFound(m) => error(StatusCode::NOT_FOUND, &m),
            Self::Analyzer(m) => error(StatusCode::BAD_GATEWAY, &m),
            Self::Internal(m) => error(StatusCode::INTERNAL_SERVER_ERROR, &m),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::Internal(e.to_string())
}

async fn analyze(
    State(app): State<Arc<App>>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match analyze_account(&app, &account_id, &headers).await {
        Ok(body) => json(StatusCode::OK, &body),
        Err(failure) => failure.into_response(),
    }
}

/// The handler's work, as an internal span with the account id (`account_id`) and, on
/// failure, the reason (`err`).
#[otel_core::traced(skip(app, headers), err)]
async fn analyze_account(
    app: &App,
    account_id: &str,
    headers: &HeaderMap,
) -> Result<AnalyzeResponse, Failure> {
    if !valid_account_id(account_id) {
        return Err(Failure::BadRequest(format!(
            "invalid account id {account_id:?}"
        )));
    }
    let (subgraph, cached) = load_neighbourhood(app, account_id).await?;
    let analysis = call_analyzer(app, &subgraph, headers).await?;
    let flagged = if analysis.cycles.is_empty() {
        false
    } else {
        publish_flag(app, &analysis).await?;
        true
    };
    Ok(AnalyzeResponse {
        account_id: account_id.to_owned(),
        cached,
        accounts: subgraph.accounts.len(),
        transactions: subgraph.transactions.len(),
        flagged,
        analysis,
    })
}

/// The neighbourhood from Redis, else from PostgreSQL (then cached). A cache that cannot be
/// read or written is logged and bypassed, never an error for the client.
#[otel_core::traced(skip(app), err)]
async fn load_neighbourhood(app: &App, account_id: &str) -> Result<(Subgraph, bool), Failure> {
    let key = format!("{}:subgraph:{account_id}", app.settings.schema);
    let mut redis = app.redis.clone();
    match redis.get::<_, Option<String>>(&key).await {
        Ok(Some(text)) => match serde_json::from_str(&text) {
            Ok(subgraph) => return Ok((subgraph, true)),
            Err(e) => tracing::warn!(error = %e, "ignoring unreadable cache entry"),
        },
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cache read failed"),
    }
    let subgraph = db::neighbourhood(&app.pool, &app.settings.schema, account_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| Failure::NotFound(format!("no account {account_id:?}")))?;
    let text = serde_json::to_string(&subgraph).map_err(internal)?;
    if let Err(e) = redis
        .set_ex::<_, _, ()>(&key, text, CACHE_TTL_SECONDS)
        .await
    {
        tracing::warn!(error = %e, "cache write failed");
    }
    Ok((subgraph, false))
}

async fn call_analyzer(
    app: &App,
    subgraph: &Subgraph,
    headers: &HeaderMap,
) -> Result<Analysis, Failure> {
    let body = serde_json::to_vec(subgraph).map_err(internal)?;
    let mut request = app
        .http
        .post(format!("{}/analyze", app.settings.analyzer_url))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(value) = headers.get(SIMULATE_FAILURE_HEADER) {
        request = request.header(SIMULATE_FAILURE_HEADER, value.as_bytes());
    }
    let response = request
        .send()
        .await
        .map_err(|e| Failure::Analyzer(format!("analyzer unreachable: {e}")))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Failure::Analyzer(format!("analyzer response: {e}")))?;
    if !status.is_success() {
        let detail = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
        tracing::error!(%status, %detail, "analyzer failed");
        return Err(Failure::Analyzer(format!(
            "analyzer answered {status}: {detail}"
        )));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Failure::Analyzer(format!("analyzer sent an unreadable analysis: {e}")))
}

async fn publish_flag(app: &App, analysis: &Analysis) -> Result<(), Failure> {
    let mut accounts: Vec<String> = analysis
        .cycles
        .iter()
        .flat_map(|c| c.accounts.iter().cloned())
        .collect();
    accounts.sort();
    accounts.dedup();
    let message = RiskFlagged {
        root: analysis.root.clone(),
        accounts,
        cycles: analysis.cycles.iter().map(|c| c.accounts.clone()).collect(),
    };
    let payload = serde_json::to_vec(&message).map_err(internal)?;
    app.channel
        .basic_publish(
            "".into(),
            app.settings.queue.as_str().into(),
            BasicPublishOptions::default(),
            &payload,
            BasicProperties::default()
                .with_content_type("application/json".into())
                .with_type("risk.flagged".into()),
        )
        .await
        .map_err(internal)?
        .await
        .map_err(internal)?;
    tracing::info!(accounts = ?message.accounts, "published risk.flagged");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_account_id;

    #[test]
    fn account_ids() {
        assert!(valid_account_id("acc-001"));
        assert!(valid_account_id("acc-isolated-999"));
        assert!(!valid_account_id(""));
        assert!(!valid_account_id("acc 1"));
        assert!(!valid_account_id(&"a".repeat(65)));
    }
}
