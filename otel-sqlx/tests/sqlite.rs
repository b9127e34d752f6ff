//! Integration tests against SQLite in memory.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use otel_sqlx::{InstrumentedPool, PoolBuilder, QueryTextMode};
use sqlx::sqlite::SqlitePoolOptions;

type Db = sqlx::Sqlite;

async fn pool(h: &Harness, mode: QueryTextMode) -> InstrumentedPool<Db> {
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect("sqlite::memory:")
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
    system: "sqlite",
    namespace: None,
    server: None,
    syntax_error: "1",
    unique_violation: "2067",
}
