//! The risk-analysis system of the original brief, as three processes that share one trace:
//!
//! - [`gateway`]: `GET /analyze/{account_id}` → PostgreSQL (two-hop neighbourhood), Redis
//!   (cache), the analyzer over HTTP, and a `risk.flagged` message on RabbitMQ when a ring is
//!   found;
//! - [`analyzer`]: `POST /analyze`, communities and money cycles of a subgraph ([`graph`]);
//! - [`worker`]: consumes `risk.flagged` and raises `risk_level` in PostgreSQL;
//! - [`demo`]: starts the three as child processes and prints the waterfall of one request
//!   (with [`demo::Analyzer::python`], the analyzer is the Python implementation in
//!   `analyzer-py/`: the trace crosses from Rust into Python and back).
//!
//! See the README for the analyzer's HTTP API and how to run it.

pub mod analyzer;
pub mod db;
pub mod demo;
pub mod gateway;
pub mod graph;
pub mod http_util;
pub mod settings;
pub mod spans;
pub mod telemetry;
pub mod worker;

/// Opens a PostgreSQL pool on `url`, instrumented with the global tracer provider (install
/// the pipeline first).
pub async fn connect_postgres(url: &str) -> Result<otel_sqlx::InstrumentedPgPool, sqlx::Error> {
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    // Quiet the "already exists, skipping" notices of the idempotent schema creation.
    let options = options.options([("client_min_messages", "warning")]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(otel_sqlx::PoolBuilder::from(pool).build())
}

/// Host and port of an AMQP URL, for `server.address` / `server.port` (defaults
/// `127.0.0.1:5672`).
pub fn amqp_server(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(5672)),
        None if host_port.is_empty() => ("127.0.0.1".to_owned(), 5672),
        None => (host_port.to_owned(), 5672),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn amqp_server_from_url() {
        assert_eq!(
            super::amqp_server("amqp://guest:guest@127.0.0.1:5672/%2f"),
            ("127.0.0.1".to_owned(), 5672)
        );
        assert_eq!(
            super::amqp_server("amqp://rabbit"),
            ("rabbit".to_owned(), 5672)
        );
    }
}
