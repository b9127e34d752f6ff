//! [`InstrumentedPool`]: a sqlx [`Pool`] whose queries, transactions and acquisitions are
//! recorded.

use std::fmt;
use std::sync::Arc;

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use sqlx::{Database, Describe, Execute, Executor, Pool, SqlSafeStr, SqlStr, Transaction};

use crate::builder::PoolBuilder;
use crate::connection::InstrumentedConnection;
use crate::database::SupportedDatabase;
use crate::executor::{InFlight, ManyItem, fetch_many_pool, fetch_optional_pool};
use crate::record::parent_context;
use crate::telemetry::{Outcome, Telemetry};
use crate::transaction::{BEGIN, InstrumentedTransaction};

/// A sqlx [`Pool`] wrapped so that every statement run through it is a CLIENT span and a
/// point in `db.client.operation.duration`.
///
/// Use `&InstrumentedPool` wherever sqlx takes an [`Executor`]:
/// `sqlx::query(..).fetch_all(&pool)`, `sqlx::query_as(..).fetch_one(&pool)`,
/// `pool.execute(..)`, the `query!` macros. [`acquire`](Self::acquire) and
/// [`begin`](Self::begin) hand out instrumented connections and transactions.
///
/// Cloning is cheap (the pool and the recording state are reference-counted), like cloning a
/// [`Pool`]. Build one with [`PoolBuilder`], or with `InstrumentedPool::from(pool)` for the
/// defaults (global providers, obfuscated query text).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// use otel_core::testing::{TestTelemetry, assert_attr};
/// use otel_sqlx::PoolBuilder;
///
/// let tt = TestTelemetry::new();
/// let pool = PoolBuilder::from(sqlx::SqlitePool::connect("sqlite::memory:").await?)
///     .with_tracer_provider(tt.tracer_provider().clone())
///     .with_metrics(tt.metrics().clone())
///     .build();
/// # sqlx::query("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)").execute(&pool).await?;
/// # tt.reset();
/// // Ordinary sqlx calls with `&pool` as the executor.
/// sqlx::query("INSERT INTO users (name) VALUES ('ada')").execute(&pool).await?;
/// let names: Vec<String> = sqlx::query_scalar("SELECT name FROM users").fetch_all(&pool).await?;
/// assert_eq!(names, ["ada"]);
///
/// let insert = tt.span("INSERT users");
/// assert_attr(&insert, "db.system.name", "sqlite");
/// assert_attr(&insert, "db.query.text", "INSERT INTO users (name) VALUES (?)");
/// assert_attr(&tt.span("SELECT users"), "db.response.returned_rows", 1);
/// # Ok(())
/// # }
/// ```
pub struct InstrumentedPool<DB: SupportedDatabase> {
    pool: Pool<DB>,
    telemetry: Arc<Telemetry<DB>>,
}

impl<DB: SupportedDatabase> InstrumentedPool<DB> {
    pub(crate) fn from_parts(pool: Pool<DB>, telemetry: Arc<Telemetry<DB>>) -> Self {
        Self { pool, telemetry }
    }

    /// Starts a [`PoolBuilder`] for `pool`; same as `PoolBuilder::from(pool)`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_sqlx::{InstrumentedPool, QueryTextMode};
    ///
    /// let sqlite = sqlx::SqlitePool::connect("sqlite::memory:").await?;
    /// let pool = InstrumentedPool::builder(sqlite)
    ///     .with_query_text(QueryTextMode::Off)
    ///     .build();
    /// # let _ = pool;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(pool: Pool<DB>) -> PoolBuilder<DB> {
        PoolBuilder::from(pool)
    }

    /// The wrapped sqlx pool. Statements run on it directly are not recorded.
    ///
    /// There is no `get_mut`: a [`Pool`] is a shared handle (clone it to own one), and the
    /// wrapper's recording state belongs to this pool.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_core::testing::TestTelemetry;
    /// use otel_sqlx::PoolBuilder;
    ///
    /// let tt = TestTelemetry::new();
    /// let pool = PoolBuilder::from(sqlx::SqlitePool::connect("sqlite::memory:").await?)
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .build();
    /// // Pool statistics, or a statement that should not be recorded (a health check).
    /// assert!(!pool.get_ref().is_closed());
    /// sqlx::query("SELECT 1").execute(pool.get_ref()).await?;
    /// assert!(tt.spans().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_ref(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Unwraps the sqlx pool.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_sqlx::InstrumentedPool;
    ///
    /// let sqlite = sqlx::SqlitePool::connect("sqlite::memory:").await?;
    /// let pool = InstrumentedPool::from(sqlite);
    /// let sqlite: sqlx::SqlitePool = pool.into_inner();
    /// # let _ = sqlite;
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_inner(self) -> Pool<DB> {
        self.pool
    }

    /// Takes a connection from the pool.
    ///
    /// Recorded as a CLIENT span named `acquire` (with `db.client.connection.pool.name`) and a
    /// point in `db.client.connection.wait_time`.
    ///
    /// # Errors
    /// As [`Pool::acquire`]: the pool timed out or is closed, or connecting failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_sqlx::PoolBuilder;
    ///
    /// let tt = TestTelemetry::new();
    /// let pool = PoolBuilder::from(sqlx::SqlitePool::connect("sqlite::memory:").await?)
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .build();
    /// let mut connection = pool.acquire().await?;
    /// // Several statements on one physical connection, each its own span.
    /// sqlx::query("CREATE TEMP TABLE seen (id INTEGER)")
    ///     .execute(&mut connection)
    ///     .await?;
    /// sqlx::query("INSERT INTO seen VALUES (1)")
    ///     .execute(&mut connection)
    ///     .await?;
    /// drop(connection); // back to the pool
    ///
    /// assert_attr(
    ///     &tt.span("acquire"),
    ///     "db.client.connection.pool.name",
    ///     "/sqlite",
    /// );
    /// assert_eq!(tt.spans_named("INSERT seen").len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire(&self) -> Result<InstrumentedConnection<DB>, sqlx::Error> {
        let op = self.telemetry.start_acquire(&parent_context());
        match self.telemetry.acquire().await {
            Ok(conn) => {
                self.telemetry.finish_acquire(op, None);
                Ok(InstrumentedConnection::from_parts(
                    conn,
                    Arc::clone(&self.telemetry),
                ))
            }
            Err(error) => {
                self.telemetry.finish_acquire(op, Some(&error));
                Err(error)
            }
        }
    }

    /// Takes a connection and starts a transaction on it: one `BEGIN` span covering both.
    ///
    /// # Errors
    /// As [`Pool::begin`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_core::testing::TestTelemetry;
    /// use otel_sqlx::PoolBuilder;
    ///
    /// let tt = TestTelemetry::new();
    /// let pool = PoolBuilder::from(sqlx::SqlitePool::connect("sqlite::memory:").await?)
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .build();
    /// # let ddl = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)";
    /// # sqlx::query(ddl).execute(pool.get_ref()).await?;
    /// let mut tx = pool.begin().await?;
    /// sqlx::query("INSERT INTO users (name) VALUES ('ada')").execute(&mut tx).await?;
    /// sqlx::query("INSERT INTO users (name) VALUES ('grace')").execute(&mut tx).await?;
    /// tx.commit().await?;
    ///
    /// let names: Vec<_> = tt.spans().iter().map(|s| s.name.to_string()).collect();
    /// assert_eq!(names, ["BEGIN", "INSERT users", "INSERT users", "COMMIT"]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn begin(&self) -> Result<InstrumentedTransaction<'static, DB>, sqlx::Error> {
        self.begin_inner(None).await
    }

    /// Like [`begin`](Self::begin) with a custom statement, such as
    /// `BEGIN ISOLATION LEVEL SERIALIZABLE` (see [`Pool::begin_with`]).
    ///
    /// # Errors
    /// As [`Pool::begin_with`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_sqlx::PoolBuilder;
    ///
    /// let tt = TestTelemetry::new();
    /// let pool = PoolBuilder::from(sqlx::SqlitePool::connect("sqlite::memory:").await?)
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .build();
    /// // SQLite: take the write lock up front.
    /// let tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    /// tx.rollback().await?;
    /// assert_attr(&tt.span("BEGIN"), "db.operation.name", "BEGIN");
    /// assert_eq!(tt.spans_named("ROLLBACK").len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn begin_with(
        &self,
        statement: impl SqlSafeStr,
    ) -> Result<InstrumentedTransaction<'static, DB>, sqlx::Error> {
        self.begin_inner(Some(statement.into_sql_str())).await
    }

    async fn begin_inner(
        &self,
        statement: Option<SqlStr>,
    ) -> Result<InstrumentedTransaction<'static, DB>, sqlx::Error> {
        let in_flight = InFlight::new(
            Arc::clone(&self.telemetry),
            self.telemetry.start_named(&parent_context(), BEGIN),
        );
        let result = match self.telemetry.acquire().await {
            Ok(conn) => Transaction::begin(conn, statement).await,
            Err(error) => Err(error),
        };
        in_flight.finish(Outcome {
            error: result.as_ref().err(),
            ..Outcome::default()
        });
        result.map(|tx| InstrumentedTransaction::from_parts(tx, Arc::clone(&self.telemetry)))
    }

    /// Shuts the pool down (see [`Pool::close`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_sqlx::InstrumentedPool;
    ///
    /// let pool = InstrumentedPool::from(sqlx::SqlitePool::connect("sqlite::memory:").await?);
    /// pool.close().await;
    /// assert!(pool.get_ref().is_closed());
    /// assert!(pool.acquire().await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl<DB: SupportedDatabase> From<Pool<DB>> for InstrumentedPool<DB> {
    /// Wraps `pool` with the default options (global tracer and meter providers, obfuscated
    /// query text).
    fn from(pool: Pool<DB>) -> Self {
        PoolBuilder::from(pool).build()
    }
}

impl<DB: SupportedDatabase> Clone for InstrumentedPool<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            telemetry: Arc::clone(&self.telemetry),
        }
    }
}

impl<DB: SupportedDatabase> fmt::Debug for InstrumentedPool<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedPool")
            .field("pool", &self.pool)
            .field("db.system.name", &self.telemetry.system_name())
            .finish_non_exhaustive()
    }
}

impl<'p, DB> Executor<'p> for &'_ InstrumentedPool<DB>
where
    DB: SupportedDatabase,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, ManyItem<DB>>
    where
        E: 'q + Execute<'q, DB>,
    {
        fetch_many_pool::<DB, E>(&self.telemetry, query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        E: 'q + Execute<'q, DB>,
    {
        fetch_optional_pool::<DB, E>(&self.telemetry, query)
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [<DB as Database>::TypeInfo],
    ) -> BoxFuture<'e, Result<<DB as Database>::Statement, sqlx::Error>>
    where
        'p: 'e,
    {
        let pool = self.pool.clone();
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            DB::conn_prepare_with(&mut conn, sql, parameters).await
        })
    }

    #[doc(hidden)]
    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>>
    where
        'p: 'e,
    {
        let pool = self.pool.clone();
        Box::pin(async move {
            let mut conn = pool.acquire().await?;
            DB::conn_describe(&mut conn, sql).await
        })
    }
}
