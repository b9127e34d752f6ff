//! The instrumented execution paths shared by the pool, connection and transaction wrappers.
//!
//! sqlx composes every `Executor` method (`execute`, `fetch`, `fetch_all`, `fetch_one`, …) from
//! two required ones, `fetch_many` and `fetch_optional`; the wrappers implement exactly those,
//! so every call the user makes passes through here once.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_core::future::BoxFuture;
use futures_core::stream::{BoxStream, Stream};
use futures_util::TryStreamExt;
use sqlx::error::BoxDynError;
use sqlx::{Database, Either, Execute, SqlStr};
use sqlx_core::ext::async_stream::TryAsyncStream;

use crate::database::SupportedDatabase;
use crate::record::{Operation, parent_context};
use crate::telemetry::{OpMeta, Outcome, Telemetry};

/// One item of `fetch_many`.
pub(crate) type ManyItem<DB> =
    Result<Either<<DB as Database>::QueryResult, <DB as Database>::Row>, sqlx::Error>;

/// A query taken apart so its SQL can be read before it is handed on.
///
/// `Execute::sql` consumes the query, so the wrapper takes arguments, statement and
/// persistence first, reads the text, and passes this equivalent query to the driver.
pub(crate) struct Captured<DB: Database> {
    sql: SqlStr,
    statement: Option<DB::Statement>,
    arguments: Option<Result<Option<DB::Arguments>, BoxDynError>>,
    persistent: bool,
}

impl<DB: Database> Captured<DB> {
    pub(crate) fn new<'q, E: Execute<'q, DB>>(mut query: E) -> Self {
        let arguments = Some(query.take_arguments());
        let persistent = query.persistent();
        let statement = query.statement().cloned();
        let sql = query.sql();
        Self {
            sql,
            statement,
            arguments,
            persistent,
        }
    }

    pub(crate) fn sql_text(&self) -> &str {
        self.sql.as_str()
    }
}

impl<DB: Database> Execute<'_, DB> for Captured<DB> {
    fn sql(self) -> SqlStr {
        self.sql
    }

    fn statement(&self) -> Option<&DB::Statement> {
        self.statement.as_ref()
    }

    fn take_arguments(&mut self) -> Result<Option<DB::Arguments>, BoxDynError> {
        self.arguments.take().unwrap_or(Ok(None))
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

/// An operation in flight in a future: finished with [`InFlight::finish`]. Dropped before that
/// (the caller dropped the future mid-flight, e.g. on a `tokio::time::timeout`), it records the
/// operation as cancelled: the span ends with `error.type` `cancelled`, and the duration up to
/// the drop goes into `db.client.operation.duration` with that `error.type`, so timed-out calls
/// stay in the latency metric.
///
/// Made before the future it is moved into, so a future dropped before its first poll is
/// recorded the same way.
pub(crate) struct InFlight<DB: SupportedDatabase> {
    active: Option<(Operation, OpMeta)>,
    telemetry: Arc<Telemetry<DB>>,
}

impl<DB: SupportedDatabase> InFlight<DB> {
    pub(crate) fn new(telemetry: Arc<Telemetry<DB>>, (op, meta): (Operation, OpMeta)) -> Self {
        Self {
            active: Some((op, meta)),
            telemetry,
        }
    }

    /// Ends the operation with its outcome.
    pub(crate) fn finish(mut self, outcome: Outcome<'_>) {
        if let Some((op, meta)) = self.active.take() {
            self.telemetry.finish(op, &meta, outcome);
        }
    }
}

impl<DB: SupportedDatabase> Drop for InFlight<DB> {
    fn drop(&mut self) {
        if let Some((op, meta)) = self.active.take() {
            self.telemetry.finish(
                op,
                &meta,
                Outcome {
                    cancelled: true,
                    ..Outcome::default()
                },
            );
        }
    }
}

/// Wraps a `fetch_many` stream: counts rows, and ends the span when the stream ends, fails,
/// or is dropped early.
///
/// Dropped early, it tells a caller that stopped reading (it took the rows it wanted: not a
/// failure, the span reports the rows read) from one that gave up waiting (dropped while its
/// last poll was still pending, e.g. on a timeout: recorded as cancelled, like a future).
pub(crate) struct InstrumentedStream<'e, DB: SupportedDatabase> {
    inner: BoxStream<'e, ManyItem<DB>>,
    active: Option<(Operation, OpMeta)>,
    telemetry: Arc<Telemetry<DB>>,
    rows: u64,
    affected: Option<u64>,
    /// Not polled yet, or the last poll returned `Pending`: the caller is still waiting for
    /// the database.
    waiting: bool,
}

impl<'e, DB: SupportedDatabase> InstrumentedStream<'e, DB> {
    fn new(
        inner: BoxStream<'e, ManyItem<DB>>,
        op: Operation,
        meta: OpMeta,
        telemetry: Arc<Telemetry<DB>>,
    ) -> Self {
        Self {
            inner,
            active: Some((op, meta)),
            telemetry,
            rows: 0,
            affected: None,
            // Not polled yet: dropped now, the query never ran, which is a cancellation.
            waiting: true,
        }
    }

    fn finish(&mut self, error: Option<&sqlx::Error>, cancelled: bool) {
        if let Some((op, meta)) = self.active.take() {
            self.telemetry.finish(
                op,
                &meta,
                Outcome {
                    error,
                    cancelled,
                    returned_rows: Some(self.rows),
                    affected_rows: self.affected,
                },
            );
        }
    }
}

impl<DB: SupportedDatabase> Stream for InstrumentedStream<'_, DB> {
    type Item = ManyItem<DB>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let polled = this.inner.as_mut().poll_next(cx);
        this.waiting = polled.is_pending();
        match &polled {
            Poll::Ready(Some(Ok(Either::Right(_)))) => this.rows += 1,
            Poll::Ready(Some(Ok(Either::Left(result)))) => {
                let n = DB::rows_affected(result);
                this.affected = Some(this.affected.unwrap_or(0).saturating_add(n));
            }
            Poll::Ready(Some(Err(error))) => this.finish(Some(error), false),
            Poll::Ready(None) => this.finish(None, false),
            Poll::Pending => {}
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<DB: SupportedDatabase> Drop for InstrumentedStream<'_, DB> {
    fn drop(&mut self) {
        // Dropped before the end. Between items, the caller stopped reading (e.g. took the
        // first row): not a failure, the span reports the rows read. With a poll pending, it
        // stopped waiting for the database (a timeout): cancelled.
        let waiting = self.waiting;
        self.finish(None, waiting);
    }
}

/// The outcome of a `fetch_optional` operation.
fn optional_outcome<Row>(result: &Result<Option<Row>, sqlx::Error>) -> Outcome<'_> {
    Outcome {
        error: result.as_ref().err(),
        returned_rows: result.as_ref().ok().map(|row| u64::from(row.is_some())),
        ..Outcome::default()
    }
}

/// `fetch_many` on a connection the caller holds.
pub(crate) fn fetch_many_on<'e, 'q: 'e, DB, E>(
    telemetry: &Arc<Telemetry<DB>>,
    conn: &'e mut DB::Connection,
    query: E,
) -> BoxStream<'e, ManyItem<DB>>
where
    DB: SupportedDatabase,
    E: 'q + Execute<'q, DB>,
{
    let captured = Captured::new(query);
    let (op, meta) = telemetry.start_query(&parent_context(), captured.sql_text());
    let inner = DB::conn_fetch_many(conn, captured);
    Box::pin(InstrumentedStream::new(
        inner,
        op,
        meta,
        Arc::clone(telemetry),
    ))
}

/// `fetch_optional` on a connection the caller holds.
pub(crate) fn fetch_optional_on<'e, 'q: 'e, DB, E>(
    telemetry: &Arc<Telemetry<DB>>,
    conn: &'e mut DB::Connection,
    query: E,
) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
where
    DB: SupportedDatabase,
    E: 'q + Execute<'q, DB>,
{
    let captured = Captured::new(query);
    let started = telemetry.start_query(&parent_context(), captured.sql_text());
    let inner = DB::conn_fetch_optional(conn, captured);
    let in_flight = InFlight::new(Arc::clone(telemetry), started);
    Box::pin(async move {
        let result = inner.await;
        in_flight.finish(optional_outcome(&result));
        result
    })
}

/// `fetch_many` on the pool: takes a connection (timed) inside the operation's span.
pub(crate) fn fetch_many_pool<'e, 'q: 'e, DB, E>(
    telemetry: &Arc<Telemetry<DB>>,
    query: E,
) -> BoxStream<'e, ManyItem<DB>>
where
    DB: SupportedDatabase,
    E: 'q + Execute<'q, DB>,
{
    let captured = Captured::new(query);
    let (op, meta) = telemetry.start_query(&parent_context(), captured.sql_text());
    let owned = Arc::clone(telemetry);
    // The stream must own the pooled connection it borrows from; sqlx's own generator-style
    // stream (the one its `&Pool` executor uses) holds both in one future.
    let inner = TryAsyncStream::new(move |yielder| async move {
        let mut conn = owned.acquire().await?;
        let mut rows = DB::conn_fetch_many(&mut conn, captured);
        while let Some(item) = rows.try_next().await? {
            yielder.r#yield(item).await;
        }
        Ok(())
    });
    Box::pin(InstrumentedStream::new(
        Box::pin(inner),
        op,
        meta,
        Arc::clone(telemetry),
    ))
}

/// `fetch_optional` on the pool: takes a connection (timed) inside the operation's span.
pub(crate) fn fetch_optional_pool<'e, 'q: 'e, DB, E>(
    telemetry: &Arc<Telemetry<DB>>,
    query: E,
) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
where
    DB: SupportedDatabase,
    E: 'q + Execute<'q, DB>,
{
    let captured = Captured::new(query);
    let started = telemetry.start_query(&parent_context(), captured.sql_text());
    let telemetry = Arc::clone(telemetry);
    let in_flight = InFlight::new(Arc::clone(&telemetry), started);
    Box::pin(async move {
        let result = match telemetry.acquire().await {
            Ok(mut conn) => DB::conn_fetch_optional(&mut conn, captured).await,
            Err(error) => Err(error),
        };
        in_flight.finish(optional_outcome(&result));
        result
    })
}
