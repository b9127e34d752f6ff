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

/// A query still running on the server when the caller gives up (`tokio::time::timeout`) is
/// in `db.client.operation.duration` as `cancelled`, its exemplar pointing at its span.
#[tokio::test]
async fn a_query_timed_out_mid_flight_is_measured_as_cancelled() {
    let h = Harness::new();
    let pool = pool(&h, QueryTextMode::Obfuscated).await;
    // Two idle connections, so the queries below start at once rather than while connecting.
    two_idle_connections(pool.get_ref()).await;
    let wait = std::time::Duration::from_millis(10);
    let sleep = sqlx::query("SELECT pg_sleep(1)").execute(&pool);
    assert!(tokio::time::timeout(wait, sleep).await.is_err());
    let sleep = sqlx::query("SELECT pg_sleep(1)").fetch_optional(&pool);
    assert!(tokio::time::timeout(wait, sleep).await.is_err());

    assert_two_selects_cancelled_mid_flight(&h, "SELECT pg_sleep(?)", "postgresql");
}
