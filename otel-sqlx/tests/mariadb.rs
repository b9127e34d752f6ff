//! Integration tests against the MariaDB server on 127.0.0.1:3306 (`scripts/services.sh`).
#![cfg(feature = "mysql")]
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, require_server};
use otel_sqlx::{InstrumentedPool, PoolBuilder, QueryTextMode};
use sqlx::mysql::MySqlPoolOptions;

type Db = sqlx::MySql;

async fn pool(h: &Harness, mode: QueryTextMode) -> InstrumentedPool<Db> {
    require_server("MariaDB", "127.0.0.1:3306");
    let pool = MySqlPoolOptions::new()
        .max_connections(4)
        .connect("mysql://root@127.0.0.1:3306/test")
        .await
        .unwrap();
    PoolBuilder::from(pool)
        .with_tracer_provider(h.tracer_provider().clone())
        .with_metrics(h.metrics().clone())
        .with_query_text(mode)
        .detect_mariadb()
        .await
        .unwrap()
        .build()
}

db_scenarios! {
    pool: pool,
    p1: "?",
    p2: "?",
    system: "mariadb",
    namespace: Some("test"),
    server: Some(("127.0.0.1", 3306)),
    syntax_error: "1064",
    unique_violation: "1062",
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
    let sleep = sqlx::query("SELECT SLEEP(1)").execute(&pool);
    assert!(tokio::time::timeout(wait, sleep).await.is_err());
    let sleep = sqlx::query("SELECT SLEEP(1)").fetch_optional(&pool);
    assert!(tokio::time::timeout(wait, sleep).await.is_err());

    assert_two_selects_cancelled_mid_flight(&h, "SELECT SLEEP(?)", "mariadb");
}
