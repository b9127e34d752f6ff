//! Integration tests against the PostgreSQL server on 127.0.0.1:5432 (`scripts/services.sh`).
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, require_server};
use otel_sqlx::{InstrumentedPool, PoolBuilder, QueryTextMode};
use sqlx::postgres::PgPoolOptions;

type Db = sqlx::Postgres;

async fn pool(h: &Harness, mode: QueryTextMode) -> InstrumentedPool<Db> {
    require_server("PostgreSQL", "127.0.0.1:5432");
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .unwrap();
    PoolBuilder::from(pool)
        .with_tracer_provider(h.tracer_provider().clone())
        .with_metrics(h.metrics().clone())
        .with_query_text(mode)
        .build()
}

db_scenarios! {
    pool: pool,
    p1: "$1",
    p2: "$2",
    system: "postgresql",
    namespace: Some("test"),
    server: Some(("127.0.0.1", 5432)),
    syntax_error: "42601",
    unique_violation: "23505",
}
