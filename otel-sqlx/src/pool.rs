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
use crate::executor::{ManyItem, fetch_many_pool, fetch_optional_pool};
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
pub struct InstrumentedPool<DB: SupportedDatabase> {
    pool: Pool<DB>,
    telemetry: Arc<Telemetry<DB>>,
}

impl<DB: SupportedDatabase> InstrumentedPool<DB> {
    pub(crate) fn from_parts(pool: Pool<DB>, telemetry: Arc<Telemetry<DB>>) -> Self {
        Self { pool, telemetry }
    }

    /// Starts a [`PoolBuilder`] for `pool`; same as `PoolBuilder::from(pool)`.
    pub fn builder(pool: Pool<DB>) -> PoolBuilder<DB> {
        PoolBuilder::from(pool)
    }

    /// The wrapped sqlx pool. Statements run on it directly are not recorded.
    ///
    /// There is no `get_mut`: a [`Pool`] is a shared handle (clone it to own one), and the
    /// wrapper's recording state belongs to this pool.
    pub fn get_ref(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Unwraps the sqlx pool.
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
    pub async fn begin(&self) -> Result<InstrumentedTransaction<'static, DB>, sqlx::Error> {
        self.begin_inner(None).await
    }

    /// Like [`begin`](Self::begin) with a custom statement, such as
    /// `BEGIN ISOLATION LEVEL SERIALIZABLE` (see [`Pool::begin_with`]).
    ///
    /// # Errors
    /// As [`Pool::begin_with`].
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
        let (op, meta) = self.telemetry.start_named(&parent_context(), BEGIN);
        let result = match self.telemetry.acquire().await {
            Ok(conn) => Transaction::begin(conn, statement).await,
            Err(error) => Err(error),
        };
        self.telemetry.finish(
            op,
            &meta,
            Outcome {
                error: result.as_ref().err(),
                ..Outcome::default()
            },
        );
        result.map(|tx| InstrumentedTransaction::from_parts(tx, Arc::clone(&self.telemetry)))
    }

    /// Shuts the pool down (see [`Pool::close`]).
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
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
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
        Box::pin(async move { (&pool).prepare_with(sql, parameters).await })
    }

    #[doc(hidden)]
    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>>
    where
        'p: 'e,
    {
        let pool = self.pool.clone();
        Box::pin(async move { (&pool).describe(sql).await })
    }
}
