//! [`InstrumentedConnection`]: a pooled connection whose statements are recorded.

use std::fmt;
use std::sync::Arc;

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use sqlx::pool::PoolConnection;
use sqlx::{Database, Describe, Execute, Executor, SqlStr};

use crate::database::SupportedDatabase;
use crate::executor::{ManyItem, fetch_many_on, fetch_optional_on};
use crate::telemetry::Telemetry;
use crate::transaction::InstrumentedTransaction;

/// A connection taken from an [`InstrumentedPool`](crate::InstrumentedPool) with
/// [`acquire`](crate::InstrumentedPool::acquire).
///
/// `&mut InstrumentedConnection` is an [`Executor`]: successive statements run on the same
/// physical connection, each recorded as its own span. Dropping it returns the connection
/// to the pool.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// use otel_core::testing::TestTelemetry;
/// use otel_sqlx::{InstrumentedConnection, PoolBuilder};
///
/// let tt = TestTelemetry::new();
/// let pool = PoolBuilder::from(sqlx::SqlitePool::connect("sqlite::memory:").await?)
///     .with_tracer_provider(tt.tracer_provider().clone())
///     .with_metrics(tt.metrics().clone())
///     .build();
/// let mut connection: InstrumentedConnection<sqlx::Sqlite> = pool.acquire().await?;
/// // Connection-local state survives between statements: same physical connection.
/// sqlx::query("CREATE TEMP TABLE scratch (n INTEGER)")
///     .execute(&mut connection)
///     .await?;
/// sqlx::query("INSERT INTO scratch VALUES (1), (2)")
///     .execute(&mut connection)
///     .await?;
/// let n: i64 = sqlx::query_scalar("SELECT count(*) FROM scratch")
///     .fetch_one(&mut connection)
///     .await?;
/// assert_eq!(n, 2);
/// assert_eq!(tt.spans_named("SELECT scratch").len(), 1);
/// # Ok(())
/// # }
/// ```
pub struct InstrumentedConnection<DB: SupportedDatabase> {
    inner: PoolConnection<DB>,
    telemetry: Arc<Telemetry<DB>>,
}

impl<DB: SupportedDatabase> InstrumentedConnection<DB> {
    pub(crate) fn from_parts(inner: PoolConnection<DB>, telemetry: Arc<Telemetry<DB>>) -> Self {
        Self { inner, telemetry }
    }

    /// The wrapped pooled connection. Statements run on it directly are not recorded.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_sqlx::InstrumentedPool;
    ///
    /// let pool = InstrumentedPool::from(sqlx::SqlitePool::connect("sqlite::memory:").await?);
    /// let connection = pool.acquire().await?;
    /// // sqlx's pooled connection, which dereferences to the driver's connection.
    /// let sqlite: &sqlx::SqliteConnection = connection.get_ref();
    /// # let _ = sqlite;
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_ref(&self) -> &PoolConnection<DB> {
        &self.inner
    }

    /// The wrapped pooled connection, mutably (for driver-specific calls). Statements run on
    /// it directly are not recorded.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_core::testing::TestTelemetry;
    /// use otel_sqlx::PoolBuilder;
    /// use sqlx::Connection as _;
    ///
    /// let tt = TestTelemetry::new();
    /// let pool = PoolBuilder::from(sqlx::SqlitePool::connect("sqlite::memory:").await?)
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .build();
    /// let mut connection = pool.acquire().await?;
    /// tt.reset(); // forget the `acquire` span
    /// connection.get_mut().ping().await?;
    /// assert!(tt.spans().is_empty()); // not recorded
    ///
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_mut(&mut self) -> &mut PoolConnection<DB> {
        &mut self.inner
    }

    /// Unwraps the pooled connection.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_sqlx::InstrumentedPool;
    ///
    /// let pool = InstrumentedPool::from(sqlx::SqlitePool::connect("sqlite::memory:").await?);
    /// let connection = pool.acquire().await?;
    /// // Keep the connection out of the pool for good.
    /// let raw: sqlx::SqliteConnection = connection.into_inner().detach();
    /// # drop(raw);
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_inner(self) -> PoolConnection<DB> {
        self.inner
    }

    /// Starts a transaction on this connection (a `BEGIN` span); it borrows the connection
    /// until committed or rolled back.
    ///
    /// # Errors
    /// As [`sqlx::Connection::begin`].
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
    /// let mut connection = pool.acquire().await?;
    /// sqlx::query("CREATE TEMP TABLE jobs (id INTEGER)")
    ///     .execute(&mut connection)
    ///     .await?;
    /// let mut tx = connection.begin().await?;
    /// sqlx::query("INSERT INTO jobs VALUES (1)")
    ///     .execute(&mut tx)
    ///     .await?;
    /// tx.rollback().await?;
    /// // The connection is usable again once the transaction is over.
    /// let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
    ///     .fetch_one(&mut connection)
    ///     .await?;
    /// assert_eq!(n, 0);
    /// assert_eq!(tt.spans_named("ROLLBACK").len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn begin(&mut self) -> Result<InstrumentedTransaction<'_, DB>, sqlx::Error>
where {
        crate::transaction::begin_on(&self.telemetry, &mut self.inner).await
    }
}

impl<DB: SupportedDatabase> fmt::Debug for InstrumentedConnection<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedConnection")
            .field("db.system.name", &self.telemetry.system_name())
            .finish_non_exhaustive()
    }
}

impl<'c, DB> Executor<'c> for &'c mut InstrumentedConnection<DB>
where
    DB: SupportedDatabase,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, ManyItem<DB>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        fetch_many_on::<DB, E>(&self.telemetry, &mut *self.inner, query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        'c: 'e,
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
        'c: 'e,
    {
        DB::conn_prepare_with(&mut self.inner, sql, parameters)
    }

    #[doc(hidden)]
    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>>
    where
        'c: 'e,
    {
        DB::conn_describe(&mut self.inner, sql)
    }
}
