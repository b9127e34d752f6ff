//! [`InstrumentedTransaction`]: a sqlx transaction whose statements, commit and rollback are
//! recorded.

use std::fmt;
use std::sync::Arc;

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use sqlx::{Database, Describe, Execute, Executor, SqlStr, Transaction};

use crate::database::SupportedDatabase;
use crate::executor::{InFlight, ManyItem, fetch_many_on, fetch_optional_on};
use crate::record::parent_context;
use crate::telemetry::{Outcome, Telemetry};

/// `db.operation.name` of starting a transaction (or a savepoint inside one).
pub(crate) const BEGIN: &str = "BEGIN";
/// `db.operation.name` of committing a transaction (or releasing a savepoint).
const COMMIT: &str = "COMMIT";
/// `db.operation.name` of rolling a transaction (or savepoint) back.
const ROLLBACK: &str = "ROLLBACK";

/// A transaction started by [`InstrumentedPool::begin`](crate::InstrumentedPool::begin) or
/// [`InstrumentedConnection::begin`](crate::InstrumentedConnection::begin).
///
/// `&mut InstrumentedTransaction` is an [`Executor`]. [`commit`](Self::commit) and
/// [`rollback`](Self::rollback) are recorded as `COMMIT` and `ROLLBACK` spans. Dropped
/// without either, sqlx rolls the transaction back on the connection's next use; that
/// rollback is not recorded.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// use otel_core::testing::{TestTelemetry, assert_child_of};
/// use opentelemetry::context::FutureExt as _;
/// use otel_sqlx::PoolBuilder;
///
/// let tt = TestTelemetry::new();
/// let pool = PoolBuilder::from(sqlx::SqlitePool::connect("sqlite::memory:").await?)
///     .with_tracer_provider(tt.tracer_provider().clone())
///     .with_metrics(tt.metrics().clone())
///     .build();
/// # let ddl = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)";
/// # sqlx::query(ddl).execute(pool.get_ref()).await?;
/// // Inside a request: every step is a child of the request's span.
/// let request = tt.root_context("POST /users");
/// async {
///     let mut tx = pool.begin().await?;
///     sqlx::query("INSERT INTO users (name) VALUES ($1)").bind("ada").execute(&mut tx).await?;
///     tx.commit().await
/// }
/// .with_context(request.clone())
/// .await?;
/// # use opentelemetry::trace::TraceContextExt as _;
/// request.span().end();
///
/// let parent = tt.span("POST /users");
/// for step in ["BEGIN", "INSERT users", "COMMIT"] {
///     assert_child_of(&tt.span(step), &parent);
/// }
/// # Ok(())
/// # }
/// ```
pub struct InstrumentedTransaction<'c, DB: SupportedDatabase> {
    inner: Transaction<'c, DB>,
    telemetry: Arc<Telemetry<DB>>,
}

impl<'c, DB: SupportedDatabase> InstrumentedTransaction<'c, DB> {
    pub(crate) fn from_parts(inner: Transaction<'c, DB>, telemetry: Arc<Telemetry<DB>>) -> Self {
        Self { inner, telemetry }
    }

    /// The wrapped sqlx transaction. Statements run on it directly are not recorded.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_sqlx::InstrumentedPool;
    ///
    /// let pool = InstrumentedPool::from(sqlx::SqlitePool::connect("sqlite::memory:").await?);
    /// let tx = pool.begin().await?;
    /// // sqlx's transaction, which dereferences to the driver's connection.
    /// let connection: &sqlx::SqliteConnection = tx.get_ref();
    /// # let _ = connection;
    /// # tx.rollback().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_ref(&self) -> &Transaction<'c, DB> {
        &self.inner
    }

    /// The wrapped sqlx transaction, mutably. Statements run on it directly are not recorded.
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
    /// let mut tx = pool.begin().await?;
    /// // A statement that should stay out of the telemetry.
    /// sqlx::query("PRAGMA defer_foreign_keys = ON")
    ///     .execute(&mut **tx.get_mut())
    ///     .await?;
    /// tx.commit().await?;
    /// let names: Vec<_> = tt.spans().iter().map(|s| s.name.to_string()).collect();
    /// assert_eq!(names, ["BEGIN", "COMMIT"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_mut(&mut self) -> &mut Transaction<'c, DB> {
        &mut self.inner
    }

    /// Unwraps the sqlx transaction (still open).
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
    /// let tx = pool.begin().await?;
    /// let tx: sqlx::Transaction<'static, sqlx::Sqlite> = tx.into_inner();
    /// tx.commit().await?; // sqlx's own commit: not recorded
    /// assert!(tt.spans_named("COMMIT").is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_inner(self) -> Transaction<'c, DB> {
        self.inner
    }

    /// Commits: a `COMMIT` span.
    ///
    /// # Errors
    /// As [`Transaction::commit`].
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
    /// # let ddl = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)";
    /// # sqlx::query(ddl).execute(pool.get_ref()).await?;
    /// let mut tx = pool.begin().await?;
    /// sqlx::query("INSERT INTO users (name) VALUES ('ada')").execute(&mut tx).await?;
    /// tx.commit().await?;
    /// assert_attr(&tt.span("COMMIT"), "db.operation.name", "COMMIT");
    /// let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&pool).await?;
    /// assert_eq!(n, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let in_flight = InFlight::new(
            Arc::clone(&self.telemetry),
            self.telemetry.start_named(&parent_context(), COMMIT),
        );
        let result = self.inner.commit().await;
        in_flight.finish(Outcome {
            error: result.as_ref().err(),
            ..Outcome::default()
        });
        result
    }

    /// Rolls back: a `ROLLBACK` span.
    ///
    /// # Errors
    /// As [`Transaction::rollback`].
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
    /// tx.rollback().await?;
    /// assert_eq!(tt.spans_named("ROLLBACK").len(), 1);
    /// let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&pool).await?;
    /// assert_eq!(n, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        let in_flight = InFlight::new(
            Arc::clone(&self.telemetry),
            self.telemetry.start_named(&parent_context(), ROLLBACK),
        );
        let result = self.inner.rollback().await;
        in_flight.finish(Outcome {
            error: result.as_ref().err(),
            ..Outcome::default()
        });
        result
    }

    /// Starts a nested transaction (a savepoint): a `BEGIN` span; its commit and rollback
    /// are `COMMIT` and `ROLLBACK` spans.
    ///
    /// # Errors
    /// As [`Transaction::begin`].
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
    /// let mut savepoint = tx.begin().await?;
    /// sqlx::query("INSERT INTO users (name) VALUES ('bobby')").execute(&mut savepoint).await?;
    /// savepoint.rollback().await?; // undoes bobby only
    /// tx.commit().await?;
    ///
    /// let names: Vec<String> = sqlx::query_scalar("SELECT name FROM users")
    ///     .fetch_all(&pool)
    ///     .await?;
    /// assert_eq!(names, ["ada"]);
    /// assert_eq!(tt.spans_named("BEGIN").len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn begin(&mut self) -> Result<InstrumentedTransaction<'_, DB>, sqlx::Error> {
        crate::transaction::begin_on(&self.telemetry, &mut self.inner).await
    }
}

impl<DB: SupportedDatabase> fmt::Debug for InstrumentedTransaction<'_, DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedTransaction")
            .field("db.system.name", &self.telemetry.system_name())
            .finish_non_exhaustive()
    }
}

impl<'t, DB> Executor<'t> for &'t mut InstrumentedTransaction<'_, DB>
where
    DB: SupportedDatabase,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, ManyItem<DB>>
    where
        't: 'e,
        E: 'q + Execute<'q, DB>,
    {
        fetch_many_on::<DB, E>(&self.telemetry, &mut *self.inner, query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        't: 'e,
        E: 'q + Execute<'q, DB>,
    {
        fetch_optional_on::<DB, E>(&self.telemetry, &mut *self.inner, query)
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [<DB as Database>::TypeInfo],
    ) -> BoxFuture<'e, Result<<DB as Database>::Statement, sqlx::Error>>
    where
        't: 'e,
    {
        DB::conn_prepare_with(&mut self.inner, sql, parameters)
    }

    #[doc(hidden)]
    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>>
    where
        't: 'e,
    {
        DB::conn_describe(&mut self.inner, sql)
    }
}

/// `BEGIN` (a `SAVEPOINT` inside a transaction already) on `conn` as a traced operation:
/// timed, and measured as cancelled if dropped before the server answered.
pub(crate) async fn begin_on<'c, DB: SupportedDatabase>(
    telemetry: &Arc<Telemetry<DB>>,
    conn: &'c mut DB::Connection,
) -> Result<InstrumentedTransaction<'c, DB>, sqlx::Error> {
    let in_flight = InFlight::new(
        Arc::clone(telemetry),
        telemetry.start_named(&parent_context(), BEGIN),
    );
    let result = Transaction::begin(conn, None).await;
    in_flight.finish(Outcome {
        error: result.as_ref().err(),
        ..Outcome::default()
    });
    result.map(|tx| InstrumentedTransaction::from_parts(tx, Arc::clone(telemetry)))
}
