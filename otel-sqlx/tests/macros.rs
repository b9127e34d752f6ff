//! sqlx's compile-time checked `query!` macros run unchanged against the wrapper.
//!
//! The macros read their type information from `otel-sqlx/.sqlx` (generated once with
//! `DATABASE_URL=sqlite::memory: SQLX_OFFLINE_DIR=$PWD/.sqlx cargo test --test macros`), so
//! building this test needs no database.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, HarnessExt as _, assert_attr, assert_child_of, end_request};
use opentelemetry::context::FutureExt as _;
use otel_sqlx::PoolBuilder;
use sqlx::sqlite::SqlitePoolOptions;

#[tokio::test]
async fn query_macros_are_recorded() {
    let h = Harness::new();
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let pool = PoolBuilder::from(pool)
        .with_tracer_provider(h.tracer_provider().clone())
        .with_metrics(h.metrics().clone())
        .build();
    let cx = h.request();
    async {
        let row = sqlx::query!("SELECT 1 AS one, 'x' AS label")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(row.one, 1);
        assert_eq!(row.label, "x");
        let answer = sqlx::query_scalar!("SELECT 40 + ?1 AS answer", 2_i64)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(answer, Some(42));
    }
    .with_context(cx.clone())
    .await;
    end_request(&cx);

    let request = h.span("request");
    let selects = h.spans_named("SELECT");
    assert_eq!(selects.len(), 2);
    for span in &selects {
        assert_child_of(span, &request);
        assert_attr(span, "db.operation.name", "SELECT");
    }
    assert_attr(&selects[0], "db.query.text", "SELECT ? AS one, ? AS label");
    assert_attr(&selects[1], "db.query.text", "SELECT ? + ?1 AS answer");
}
