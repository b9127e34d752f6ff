//! The scenarios every database runs, generated per database by `db_scenarios!` so each test
//! is concrete code against one sqlx driver.

/// Code generic over the database, as a user's shared data layer would be: bounded by
/// `SupportedDatabase` alone.
pub mod generic {
    use otel_sqlx::{InstrumentedConnection, InstrumentedPool, SupportedDatabase};
    use sqlx::AssertSqlSafe;

    /// The rows of `table`, read through the pool.
    pub async fn count_rows<DB: SupportedDatabase>(
        pool: &InstrumentedPool<DB>,
        table: &str,
    ) -> sqlx::Result<usize> {
        let rows = sqlx::raw_sql(AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(pool)
            .await?;
        Ok(rows.len())
    }

    /// The same on a connection held by the caller.
    pub async fn count_on<DB: SupportedDatabase>(
        conn: &mut InstrumentedConnection<DB>,
        table: &str,
    ) -> sqlx::Result<usize> {
        let rows = sqlx::raw_sql(AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(conn)
            .await?;
        Ok(rows.len())
    }

    /// `DELETE` everything in a transaction; the rows deleted.
    pub async fn purge_in_transaction<DB: SupportedDatabase>(
        pool: &InstrumentedPool<DB>,
        table: &str,
    ) -> sqlx::Result<u64> {
        let mut tx = pool.begin().await?;
        let done = sqlx::raw_sql(AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(DB::rows_affected(&done))
    }
}

/// Expands to the integration tests for one database.
///
/// `$pool` is `async fn(&Harness, QueryTextMode) -> InstrumentedPool<DB>`.
#[macro_export]
macro_rules! db_scenarios {
    (
        pool: $pool:path,
        p1: $p1:literal,
        p2: $p2:literal,
        system: $system:literal,
        namespace: $namespace:expr,
        server: $server:expr,
        syntax_error: $syntax:literal,
        unique_violation: $unique:literal $(,)?
    ) => {
        use futures_util::TryStreamExt as _;
        use opentelemetry::context::FutureExt as _;
        use sqlx::AssertSqlSafe;
        use $crate::common::*;

        fn assert_connection_attrs(span: &opentelemetry_sdk::trace::SpanData) {
            assert_attr(span, "db.system.name", $system);
            let namespace: Option<&str> = $namespace;
            match namespace {
                Some(ns) => assert_attr(span, "db.namespace", ns.to_owned()),
                None => assert_no_attr(span, "db.namespace"),
            }
            let server: Option<(&str, i64)> = $server;
            match server {
                Some((address, port)) => {
                    assert_attr(span, "server.address", address.to_owned());
                    assert_attr(span, "server.port", port);
                }
                None => {
                    assert_no_attr(span, "server.address");
                    assert_no_attr(span, "server.port");
                }
            }
        }

        async fn create_table(pool: &otel_sqlx::InstrumentedPool<Db>, table: &str) {
            sqlx::query(AssertSqlSafe(format!(
                "CREATE TABLE IF NOT EXISTS {table} (id BIGINT PRIMARY KEY, name VARCHAR(64) UNIQUE)"
            )))
            .execute(pool)
            .await
            .unwrap();
        }

        async fn insert(
            executor: impl sqlx::Executor<'_, Database = Db>,
            table: &str,
            id: i64,
            name: &str,
        ) -> Result<u64, sqlx::Error> {
            let sql = format!("INSERT INTO {table} (id, name) VALUES ({}, {})", $p1, $p2);
            sqlx::query(AssertSqlSafe(sql))
                .bind(id)
                .bind(name.to_owned())
                .execute(executor)
                .await
                .map(|done| done.rows_affected())
        }

        #[tokio::test]
        async fn statements_are_client_spans_under_the_request() {
            let h = Harness::new();
            let pool = $pool(&h, QueryTextMode::Obfuscated).await;
            let t = unique_table("spans");
            let cx = h.request();
            async {
                create_table(&pool, &t).await;
                assert_eq!(insert(&pool, &t, 1, "ada").await.unwrap(), 1);
                assert_eq!(insert(&pool, &t, 2, "bob").await.unwrap(), 1);
                let sql = format!("SELECT id, name FROM {t} WHERE id >= {} ORDER BY id", $p1);
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(1_i64)
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                assert_eq!(rows.len(), 2);
                let sql = format!("SELECT COUNT(*) FROM {t}");
                let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                assert_eq!(n, 2);
            }
            .with_context(cx.clone())
            .await;
            end_request(&cx);

            let request = h.span("request");
            let selects = h.spans_named(&format!("SELECT {t}"));
            assert_eq!(selects.len(), 2, "one fetch_all and one fetch_one");
            let select = selects
                .iter()
                .find(|s| attr(s, "db.response.returned_rows") == Some(&2_i64.into()))
                .expect("the fetch_all span reports 2 rows");
            assert_child_of(select, &request);
            assert_client_ok(select);
            assert_connection_attrs(select);
            assert_attr(select, "db.operation.name", "SELECT");
            assert_attr(select, "db.collection.name", t.clone());
            assert_attr(select, "db.query.summary", format!("SELECT {t}"));
            assert_attr(
                select,
                "db.query.text",
                format!("SELECT id, name FROM {t} WHERE id >= {} ORDER BY id", $p1),
            );
            assert_eq!(
                select.instrumentation_scope.name(),
                "otel-sqlx",
                "instrumentation scope"
            );
            assert!(select.instrumentation_scope.version().is_some());

            let inserts = h.spans_named(&format!("INSERT {t}"));
            assert_eq!(inserts.len(), 2);
            for span in &inserts {
                assert_child_of(span, &request);
                assert_client_ok(span);
                assert_attr(span, "db.response.affected_rows", 1_i64);
                assert_attr(
                    span,
                    "db.query.text",
                    format!("INSERT INTO {t} (id, name) VALUES ({}, {})", $p1, $p2),
                );
            }
            let create = h.span(&format!("CREATE {t}"));
            assert_child_of(&create, &request);
            assert_attr(&create, "db.operation.name", "CREATE");

            let points = h.histogram("db.client.operation.duration");
            let select_point = points
                .iter()
                .find(|(a, _)| {
                    has(a, "db.operation.name", "SELECT") && has(a, "db.collection.name", t.clone())
                })
                .expect("a SELECT point");
            assert_eq!(select_point.1, 2);
            assert!(has(&select_point.0, "db.system.name", $system));
            assert!(has(&select_point.0, "db.query.summary", format!("SELECT {t}")));
            assert!(!select_point.0.iter().any(|kv| kv.key.as_str() == "db.query.text"));
            // Every exemplar of the duration histogram points at an exported span.
            let exported = h.spans();
            let n = assert_exemplars_point_at_exported(
                h.metrics(),
                "db.client.operation.duration",
                &exported,
            );
            assert!(n >= 1);
            let insert_point = points
                .iter()
                .find(|(a, _)| {
                    has(a, "db.operation.name", "INSERT") && has(a, "db.collection.name", t.clone())
                })
                .expect("an INSERT point");
            assert_eq!(insert_point.1, 2);
        }

        #[tokio::test]
        async fn failures_record_the_database_code() {
            let h = Harness::new();
            let pool = $pool(&h, QueryTextMode::Obfuscated).await;
            let t = unique_table("fail");
            let cx = h.request();
            async {
                create_table(&pool, &t).await;
                insert(&pool, &t, 1, "ada").await.unwrap();
                let err = insert(&pool, &t, 2, "ada").await.unwrap_err();
                assert!(matches!(err, sqlx::Error::Database(_)), "{err:?}");
                let err = sqlx::query("SELEC 1 FROM nowhere")
                    .execute(&pool)
                    .await
                    .unwrap_err();
                assert!(matches!(err, sqlx::Error::Database(_)), "{err:?}");
            }
            .with_context(cx.clone())
            .await;
            end_request(&cx);
            let request = h.span("request");

            let inserts = h.spans_named(&format!("INSERT {t}"));
            assert_eq!(inserts.len(), 2);
            let failed = inserts
                .iter()
                .find(|s| attr(s, "error.type").is_some())
                .expect("the duplicate insert failed");
            assert_child_of(failed, &request);
            assert_error(failed, $unique);
            let exception = failed
                .events
                .iter()
                .find(|e| e.name == "exception")
                .expect("an exception event");
            assert!(
                !format!("{:?}", exception.attributes).contains("ada"),
                "the server message (which quotes the value) is not recorded by default"
            );

            // An unreadable statement is named after the database system.
            let syntax = h.span($system);
            assert_child_of(&syntax, &request);
            assert_error(&syntax, $syntax);
            assert_no_attr(&syntax, "db.operation.name");
            assert_attr(&syntax, "db.query.text", "SELEC ? FROM nowhere");

            let points = h.histogram("db.client.operation.duration");
            assert!(
                points.iter().any(|(a, n)| {
                    *n == 1
                        && has(a, "error.type", $unique)
                        && has(a, "db.response.status_code", $unique)
                        && has(a, "db.operation.name", "INSERT")
                }),
                "failed INSERT point: {points:?}"
            );
            assert!(
                points.iter().any(|(a, _)| has(a, "error.type", $syntax)),
                "failed statement point: {points:?}"
            );
        }

        #[tokio::test]
        async fn transactions_show_begin_commit_and_rollback() {
            let h = Harness::new();
            let pool = $pool(&h, QueryTextMode::Obfuscated).await;
            let t = unique_table("tx");
            let cx = h.request();
            async {
                create_table(&pool, &t).await;
                let mut tx = pool.begin().await.unwrap();
                insert(&mut tx, &t, 1, "kept").await.unwrap();
                tx.commit().await.unwrap();

                let mut tx = pool.begin().await.unwrap();
                insert(&mut tx, &t, 2, "undone").await.unwrap();
                tx.rollback().await.unwrap();

                // A connection held across statements, with a transaction on it.
                let mut conn = pool.acquire().await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                insert(&mut tx, &t, 3, "conn").await.unwrap();
                tx.commit().await.unwrap();
                let sql = format!("SELECT COUNT(*) FROM {t}");
                let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                assert_eq!(n, 2);
            }
            .with_context(cx.clone())
            .await;
            end_request(&cx);
            let request = h.span("request");

            let begins = h.spans_named("BEGIN");
            assert_eq!(begins.len(), 3);
            let commits = h.spans_named("COMMIT");
            assert_eq!(commits.len(), 2);
            let rollbacks = h.spans_named("ROLLBACK");
            assert_eq!(rollbacks.len(), 1);
            for span in begins.iter().chain(&commits).chain(&rollbacks) {
                assert_child_of(span, &request);
                assert_client_ok(span);
                assert_connection_attrs(span);
                assert_attr(span, "db.operation.name", span.name.to_string());
            }
            let inserts = h.spans_named(&format!("INSERT {t}"));
            assert_eq!(inserts.len(), 3);
            for span in &inserts {
                assert_child_of(span, &request);
            }
            let acquire = h.span("acquire");
            assert_child_of(&acquire, &request);
            assert_client_ok(&acquire);
            assert!(attr(&acquire, "db.client.connection.pool.name").is_some());

            let points = h.histogram("db.client.operation.duration");
            for op in ["BEGIN", "COMMIT", "ROLLBACK"] {
                assert!(
                    points.iter().any(|(a, _)| has(a, "db.operation.name", op)),
                    "{op} point in {points:?}"
                );
            }
        }

        #[tokio::test]
        async fn a_stream_dropped_early_ends_its_span_with_the_rows_read() {
            let h = Harness::new();
            let pool = $pool(&h, QueryTextMode::Obfuscated).await;
            let t = unique_table("stream");
            create_table(&pool, &t).await;
            for i in 0..5 {
                insert(&pool, &t, i, &format!("n{i}")).await.unwrap();
            }
            let cx = h.request();
            async {
                let sql = format!("SELECT id FROM {t} ORDER BY id");
                let mut rows = sqlx::query(AssertSqlSafe(sql)).fetch(&pool);
                assert!(rows.try_next().await.unwrap().is_some());
                assert!(rows.try_next().await.unwrap().is_some());
                drop(rows);
                // The full stream, read to the end.
                let sql = format!("SELECT name FROM {t}");
                let all: Vec<_> = sqlx::query(AssertSqlSafe(sql))
                    .fetch(&pool)
                    .try_collect()
                    .await
                    .unwrap();
                assert_eq!(all.len(), 5);
            }
            .with_context(cx.clone())
            .await;
            end_request(&cx);
            let request = h.span("request");
            let selects = h.spans_named(&format!("SELECT {t}"));
            assert_eq!(selects.len(), 2);
            let dropped = selects
                .iter()
                .find(|s| attr(s, "db.query.text").map(|v| v.as_str().contains("ORDER BY")) == Some(true))
                .unwrap();
            assert_child_of(dropped, &request);
            assert_client_ok(dropped);
            assert_attr(dropped, "db.response.returned_rows", 2_i64);
            let full = selects.iter().find(|s| !std::ptr::eq(*s, dropped)).unwrap();
            assert_attr(full, "db.response.returned_rows", 5_i64);
        }

        #[tokio::test]
        async fn literals_are_removed_unless_asked_otherwise() {
            let h = Harness::new();
            let t = unique_table("lit");
            let sql = format!(
                "SELECT id FROM {t} WHERE name = 'top secret' AND id IN (1, 2, 3) AND id > 7"
            );
            for mode in [QueryTextMode::Obfuscated, QueryTextMode::Raw, QueryTextMode::Off] {
                let pool = $pool(&h, mode).await;
                // (SQLite: each pool is its own in-memory database.)
                create_table(&pool, &t).await;
                sqlx::query(AssertSqlSafe(sql.clone()))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            }
            let spans = h.spans_named(&format!("SELECT {t}"));
            assert_eq!(spans.len(), 3);
            assert_attr(
                &spans[0],
                "db.query.text",
                format!("SELECT id FROM {t} WHERE name = ? AND id IN (?) AND id > ?"),
            );
            assert_attr(&spans[1], "db.query.text", sql.clone());
            assert_no_attr(&spans[2], "db.query.text");
            for span in &spans {
                assert_attr(span, "db.collection.name", t.clone());
                assert_attr(span, "db.response.returned_rows", 0_i64);
            }
        }

        #[tokio::test]
        async fn calls_dropped_while_waiting_are_measured_as_cancelled() {
            let h = Harness::new();
            let pool = $pool(&h, QueryTextMode::Obfuscated).await;
            // Every connection taken (outside the wrapper): the calls below wait for one.
            let max = pool.get_ref().options().get_max_connections();
            let mut held = Vec::new();
            for _ in 0..max {
                held.push(pool.get_ref().acquire().await.unwrap());
            }
            let cx = h.request();
            let wait = std::time::Duration::from_millis(10);
            async {
                assert!(tokio::time::timeout(wait, pool.begin()).await.is_err());
                let one = sqlx::query("SELECT 1").fetch_one(&pool);
                assert!(tokio::time::timeout(wait, one).await.is_err());
                let all = sqlx::query("SELECT 2").fetch_all(&pool);
                assert!(tokio::time::timeout(wait, all).await.is_err());
            }
            .with_context(cx.clone())
            .await;
            end_request(&cx);
            drop(held);

            let request = h.span("request");
            let begin = h.span("BEGIN");
            assert_child_of(&begin, &request);
            let (attributes, exemplars) = assert_cancelled_and_measured(&h, &begin);
            assert!(has(&attributes, "db.operation.name", "BEGIN"));
            assert_eq!(exemplars, [begin.span_context.span_id()]);
            let selects = h.spans_named("SELECT");
            assert_eq!(selects.len(), 2, "the fetch_one future and the fetch_all stream");
            for select in &selects {
                assert_child_of(select, &request);
                assert_cancelled_and_measured(&h, select);
            }
            let points = cancelled_points(&h);
            let counts: u64 = points.iter().map(|(_, data)| data.count).sum();
            assert_eq!(counts, 3, "{points:#?}");
            for (_, data) in &points {
                assert!(data.sum >= 0.01 * data.count as f64, "waited until the drop: {data:?}");
            }
            assert_exemplars_point_at_exported(
                h.metrics(),
                "db.client.operation.duration",
                &h.spans(),
            );
        }

        #[tokio::test]
        async fn affected_rows_only_on_statements_that_change_rows() {
            let h = Harness::new();
            let pool = $pool(&h, QueryTextMode::Obfuscated).await;
            let t = unique_table("affected");
            let copy = unique_table("affected_copy");
            create_table(&pool, &t).await;
            create_table(&pool, &copy).await;
            let mut conn = pool.acquire().await.unwrap();
            insert(&mut conn, &t, 1, "a").await.unwrap();
            insert(&mut conn, &t, 2, "b").await.unwrap();
            // Right after an INSERT on the same connection: SQLite's change count still says 1,
            // PostgreSQL's `SELECT 2` tag says 2. Neither is rows affected by the SELECT.
            let sql = format!("SELECT id FROM {t}");
            let rows = sqlx::query(AssertSqlSafe(sql.clone()))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            assert_eq!(rows.len(), 2);
            sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
            let sql = format!("INSERT INTO {copy} (id, name) SELECT id, name FROM {t}");
            let done = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
            assert_eq!(done.rows_affected(), 2);
            let sql = format!("DELETE FROM {copy} WHERE id = 1");
            sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
            drop(conn);

            let selects = h.spans_named(&format!("SELECT {t}"));
            assert_eq!(selects.len(), 2);
            for select in &selects {
                assert_attr(select, "db.response.returned_rows", 2_i64);
                assert_no_attr(select, "db.response.affected_rows");
            }
            for span in h.spans_named(&format!("INSERT {t}")) {
                assert_attr(&span, "db.response.affected_rows", 1_i64);
            }
            let copied = h.span(&format!("INSERT {copy} SELECT {t}"));
            assert_attr(&copied, "db.response.affected_rows", 2_i64);
            assert_attr(&h.span(&format!("DELETE {copy}")), "db.response.affected_rows", 1_i64);

            // A batch of statements: the server's counts, summed.
            let sql = format!("DELETE FROM {t} WHERE id = 1; DELETE FROM {t} WHERE id = 2");
            let mut conn = pool.acquire().await.unwrap();
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
            drop(conn);
            let batch = h
                .spans()
                .into_iter()
                .find(|s| {
                    otel_core::testing::attr(s, "db.query.text")
                        .is_some_and(|v| v.as_str().contains("; DELETE"))
                })
                .expect("the batch's span");
            assert_attr(&batch, "db.response.affected_rows", 2_i64);
        }

        /// A stream dropped before it was ever polled ran no query: cancelled, like a
        /// future dropped mid-flight.
        #[tokio::test]
        async fn a_stream_dropped_before_its_first_poll_is_cancelled() {
            let h = Harness::new();
            let pool = $pool(&h, QueryTextMode::Obfuscated).await;
            drop(sqlx::query("SELECT 1").fetch(&pool));
            let span = h.span("SELECT");
            assert_cancelled_and_measured(&h, &span);
        }

        #[tokio::test]
        async fn several_tables_are_summarized_not_named() {
            let h = Harness::new();
            let pool = $pool(&h, QueryTextMode::Obfuscated).await;
            let t = unique_table("multi");
            let u = unique_table("multi_other");
            create_table(&pool, &t).await;
            create_table(&pool, &u).await;
            let sql = format!("SELECT a.id FROM {t} a JOIN {u} b ON a.id = b.id");
            sqlx::query(AssertSqlSafe(sql)).fetch_all(&pool).await.unwrap();
            let sql = format!("INSERT INTO {u} (id, name) SELECT id, name FROM {t}");
            sqlx::query(AssertSqlSafe(sql)).execute(&pool).await.unwrap();

            let join = h.span(&format!("SELECT {t} {u}"));
            assert_client_ok(&join);
            assert_attr(&join, "db.query.summary", format!("SELECT {t} {u}"));
            assert_attr(&join, "db.operation.name", "SELECT");
            assert_no_attr(&join, "db.collection.name");
            let copy = h.span(&format!("INSERT {u} SELECT {t}"));
            assert_attr(&copy, "db.query.summary", format!("INSERT {u} SELECT {t}"));
            assert_no_attr(&copy, "db.operation.name");
            assert_no_attr(&copy, "db.collection.name");

            let points = h.histogram("db.client.operation.duration");
            let join_point = points
                .iter()
                .find(|(a, _)| has(a, "db.query.summary", format!("SELECT {t} {u}")))
                .expect("a point for the join");
            assert!(has(&join_point.0, "db.operation.name", "SELECT"));
            assert!(!join_point.0.iter().any(|kv| kv.key.as_str() == "db.collection.name"));
            let copy_point = points
                .iter()
                .find(|(a, _)| has(a, "db.query.summary", format!("INSERT {u} SELECT {t}")))
                .expect("a point for the INSERT … SELECT");
            assert!(!copy_point.0.iter().any(|kv| {
                kv.key.as_str() == "db.operation.name" || kv.key.as_str() == "db.collection.name"
            }));
        }

        #[tokio::test]
        async fn pool_metrics_follow_the_pool() {
            let h = Harness::new();
            let pool = $pool(&h, QueryTextMode::Obfuscated).await;
            let conn = pool.acquire().await.unwrap();
            sqlx::query("SELECT 1").fetch_one(&pool).await.unwrap();
            let waits = h.histogram("db.client.connection.wait_time");
            assert_eq!(waits.len(), 1, "{waits:?}");
            assert_eq!(waits[0].1, 2);
            assert!(waits[0].0.iter().any(|kv| kv.key.as_str() == "db.client.connection.pool.name"));
            let counts = h.sum("db.client.connection.count");
            let used = counts
                .iter()
                .find(|(a, _)| has(a, "db.client.connection.state", "used"))
                .map(|(_, v)| *v)
                .expect("a used series");
            let idle = counts
                .iter()
                .find(|(a, _)| has(a, "db.client.connection.state", "idle"))
                .map_or(0, |(_, v)| *v);
            assert!(used >= 1, "the held connection is in use: {counts:?}");
            assert_eq!(
                used + idle,
                i64::from(pool.get_ref().size()),
                "counts add up to the pool size: {counts:?}"
            );
            drop(conn);
        }

        /// Once the connection is back in the pool, the next collection counts it idle (sqlx
        /// returns it after the operation ended); dropping the wrapper takes its counts back.
        #[tokio::test]
        async fn connection_counts_come_back_to_idle() {
            let h = Harness::new();
            let pool = $pool(&h, QueryTextMode::Obfuscated).await;
            sqlx::query("SELECT 1").fetch_one(&pool).await.unwrap();
            for _ in 0..500 {
                let inner = pool.get_ref();
                if inner.num_idle() == inner.size() as usize {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            let counts = h.sum("db.client.connection.count");
            let of = |state: &'static str| {
                counts
                    .iter()
                    .find(|(a, _)| has(a, "db.client.connection.state", state))
                    .map_or(0, |(_, v)| *v)
            };
            assert_eq!(of("used"), 0, "{counts:?}");
            assert_eq!(of("idle"), i64::from(pool.get_ref().size()), "{counts:?}");
            drop(pool);
            let counts = h.sum("db.client.connection.count");
            assert!(counts.iter().all(|(_, v)| *v == 0), "{counts:?}");
        }

        #[tokio::test]
        async fn generic_code_needs_no_bound_beyond_supported_database() {
            let h = Harness::new();
            let pool = $pool(&h, QueryTextMode::Obfuscated).await;
            let t = unique_table("generic");
            let cx = h.request();
            async {
                create_table(&pool, &t).await;
                // Called without naming the database: inferred from the argument.
                assert_eq!($crate::common::scenarios::generic::count_rows(&pool, &t).await.unwrap(), 0);
                let mut conn = pool.acquire().await.unwrap();
                assert_eq!($crate::common::scenarios::generic::count_on(&mut conn, &t).await.unwrap(), 0);
                assert_eq!($crate::common::scenarios::generic::purge_in_transaction(&pool, &t).await.unwrap(), 0);
            }
            .with_context(cx.clone())
            .await;
            end_request(&cx);
            let request = h.span("request");
            let selects = h.spans_named(&format!("SELECT {t}"));
            assert_eq!(selects.len(), 2);
            let deletes = h.spans_named(&format!("DELETE {t}"));
            assert_eq!(deletes.len(), 1);
            for span in selects.iter().chain(&deletes) {
                assert_child_of(span, &request);
                assert_client_ok(span);
            }
            assert_eq!(h.spans_named("COMMIT").len(), 1);
        }

        #[tokio::test]
        async fn statements_inside_a_tracing_span_are_its_children() {
            let h = Harness::new();
            let _guard = h.set_tracing_default();
            let pool = $pool(&h, QueryTextMode::Obfuscated).await;
            use tracing::Instrument as _;
            async {
                sqlx::query("SELECT 1").fetch_one(&pool).await.unwrap();
            }
            .instrument(tracing::info_span!("handler"))
            .await;
            let handler = h.span("handler");
            let select = h.span("SELECT");
            assert_child_of(&select, &handler);
        }
    };
}
