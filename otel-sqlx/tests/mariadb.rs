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
