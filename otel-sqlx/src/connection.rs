//! [`InstrumentedConnection`]: a pooled connection whose statements are recorded.

use std::fmt;
use std::sync::Arc;

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use sqlx::pool::PoolConnection;
use sqlx::{Database, Describe, Execute, Executor, SqlStr, Transaction};

use crate::database::SupportedDatabase;
use crate::executor::{ManyItem, fetch_many_on, fetch_optional_on};
use crate::record::parent_context;
use crate::telemetry::{Outcome, Telemetry};
use crate::transaction::{BEGIN, InstrumentedTransaction};

/// A connection taken from an [`InstrumentedPool`](crate::InstrumentedPool) with
/// [`acquire`](crate::InstrumentedPool::acquire).
///
/// `&mut InstrumentedConnection` is an [`Executor`]: successive statements run on the same
/// physical connection, each recorded as its own span. Dropping it returns the connection
/// to the pool.
pub struct InstrumentedConnection<DB: SupportedDatabase> {
    inner: PoolConnection<DB>,
    telemetry: Arc<Telemetry<DB>>,
}

impl<DB: SupportedDatabase> InstrumentedConnection<DB> {
    pub(crate) fn from_parts(inner: PoolConnection<DB>, telemetry: Arc<Telemetry<DB>>) -> Self {
        Self { inner, telemetry }
    }

    /// The wrapped pooled connection. Statements run on it directly are not recorded.
    pub fn get_ref(&self) -> &PoolConnection<DB> {
        &self.inner
    }

    /// The wrapped pooled connection, mutably (for driver-specific calls). Statements run on
    /// it directly are not recorded.
    pub fn get_mut(&mut self) -> &mut PoolConnection<DB> {
        &mut self.inner
    }

    /// Unwraps the pooled connection.
    pub fn into_inner(self) -> PoolConnection<DB> {
        self.inner
    }

    /// Starts a transaction on this connection (a `BEGIN` span); it borrows the connection
    /// until committed or rolled back.
    ///
    /// # Errors
    /// As [`sqlx::Connection::begin`].
    pub async fn begin(&mut self) -> Result<InstrumentedTransaction<'_, DB>, sqlx::Error>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    {
        let (op, meta) = self.telemetry.start_named(&parent_context(), BEGIN);
        let result = Transaction::begin(&mut *self.inner, None).await;
        self.telemetry.finish(
            op,
            &meta,
            Outcome {
                error: result.as_ref().err(),
                ..Outcome::default()
            },
        );
        let telemetry = Arc::clone(&self.telemetry);
        result.map(|tx| InstrumentedTransaction::from_parts(tx, telemetry))
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
    for<'x> &'x mut DB::Connection: Executor<'x, Database = DB>,
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
        (&mut *self.inner).prepare_with(sql, parameters)
    }

    #[doc(hidden)]
    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut *self.inner).describe(sql)
    }
}
