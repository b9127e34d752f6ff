//! Per-pool recording state: instruments, constant attributes, and how an operation's span
//! and metric point are started and finished.

use std::borrow::Cow;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue, StringValue, Value};
use opentelemetry_semantic_conventions::attribute::{
    DB_CLIENT_CONNECTION_POOL_NAME, DB_CLIENT_CONNECTION_STATE, DB_COLLECTION_NAME, DB_NAMESPACE,
    DB_OPERATION_NAME, DB_QUERY_SUMMARY, DB_QUERY_TEXT, DB_RESPONSE_RETURNED_ROWS,
    DB_RESPONSE_STATUS_CODE, DB_SYSTEM_NAME, ERROR_TYPE, SERVER_ADDRESS, SERVER_PORT,
};
use opentelemetry_semantic_conventions::metric::{
    DB_CLIENT_CONNECTION_COUNT, DB_CLIENT_CONNECTION_TIMEOUTS, DB_CLIENT_CONNECTION_WAIT_TIME,
    DB_CLIENT_OPERATION_DURATION,
};
use otel_core::metrics::CollectHook;
use sqlx::Pool;
use sqlx::pool::PoolConnection;

use crate::DB_RESPONSE_AFFECTED_ROWS;
use crate::builder::QueryTextMode;
use crate::database::{ConnectionInfo, SupportedDatabase};
use crate::record::{
    Counter, Histogram, Instrumentation, Operation, UpDownCounter, counter, duration_histogram,
    up_down_counter,
};
use crate::sql;

/// `db.client.connection.state` values.
const STATE_IDLE: &str = "idle";
const STATE_USED: &str = "used";

/// What an operation's metric point needs besides the pool's constant attributes.
pub(crate) struct OpMeta {
    operation: Option<&'static str>,
    collection: Option<StringValue>,
    query_summary: Option<StringValue>,
    /// The statement changes rows (`INSERT`, `UPDATE`, `DELETE`, `MERGE`, `REPLACE`,
    /// `UPSERT`), or there is no single statement (a batch): only then is the server's
    /// affected-row count recorded.
    modifies_rows: bool,
}

/// `error.type` of an operation dropped before it completed: the value `otel_core` gives the
/// span of an operation dropped unfinished, recorded on the duration point too.
const CANCELLED: &str = "cancelled";

/// How an operation ended.
#[derive(Default)]
pub(crate) struct Outcome<'a> {
    pub(crate) error: Option<&'a sqlx::Error>,
    /// Dropped before it completed (the caller dropped the future or stopped waiting for the
    /// stream mid-flight): recorded as an error of type [`CANCELLED`].
    pub(crate) cancelled: bool,
    pub(crate) returned_rows: Option<u64>,
    pub(crate) affected_rows: Option<u64>,
}

/// One per instrumented pool, shared (in an `Arc`) by its connections and transactions.
pub(crate) struct Telemetry<DB: SupportedDatabase> {
    inst: Instrumentation,
    operation_duration: Histogram,
    wait_time: Histogram,
    connection_count: UpDownCounter,
    timeouts: Counter,
    query_text: QueryTextMode,
    /// `db.system.name`, `db.namespace`, `server.address`, `server.port` (those known).
    base: Vec<KeyValue>,
    system_name: &'static str,
    pool_attr: [KeyValue; 1],
    idle_attrs: [KeyValue; 2],
    used_attrs: [KeyValue; 2],
    last_idle: AtomicI64,
    last_used: AtomicI64,
    pool: Pool<DB>,
    /// Re-reads the pool's counts before every metrics collection (see [`Telemetry::watched`]).
    collect_hook: OnceLock<CollectHook>,
}

impl<DB: SupportedDatabase> Drop for Telemetry<DB> {
    /// A wrapper that is dropped takes its share of `db.client.connection.count` back.
    fn drop(&mut self) {
        let idle = *self.last_idle.get_mut();
        let used = *self.last_used.get_mut();
        if idle != 0 {
            self.connection_count.add(-idle, &self.idle_attrs);
        }
        if used != 0 {
            self.connection_count.add(-used, &self.used_attrs);
        }
    }
}

pub(crate) struct TelemetryConfig {
    pub(crate) inst: Instrumentation,
    pub(crate) query_text: QueryTextMode,
    pub(crate) system_name: &'static str,
    pub(crate) pool_name: Option<String>,
}

fn arc_str(s: impl AsRef<str>) -> StringValue {
    StringValue::from(Arc::<str>::from(s.as_ref()))
}

impl<DB: SupportedDatabase> Telemetry<DB> {
    pub(crate) fn new(pool: Pool<DB>, config: TelemetryConfig) -> Self {
        let info = DB::connection_info(&pool.connect_options());
        let mut base = Vec::with_capacity(4);
        base.push(KeyValue::new(DB_SYSTEM_NAME, config.system_name));
        if let Some(ns) = &info.namespace {
            base.push(KeyValue::new(DB_NAMESPACE, arc_str(ns)));
        }
        if let Some(address) = &info.server_address {
            base.push(KeyValue::new(SERVER_ADDRESS, arc_str(address)));
        }
        if let Some(port) = info.server_port {
            base.push(KeyValue::new(SERVER_PORT, i64::from(port)));
        }
        let pool_name = config
            .pool_name
            .unwrap_or_else(|| default_pool_name(&info, config.system_name));
        let pool_name = arc_str(pool_name);
        let pool_kv = KeyValue::new(DB_CLIENT_CONNECTION_POOL_NAME, pool_name);
        let metrics = config.inst.metrics();
        Self {
            operation_duration: duration_histogram(
                metrics,
                DB_CLIENT_OPERATION_DURATION,
                "Duration of database client operations.",
            ),
            wait_time: duration_histogram(
                metrics,
                DB_CLIENT_CONNECTION_WAIT_TIME,
                "The time it took to obtain an open connection from the pool.",
            ),
            connection_count: up_down_counter(
                metrics,
                DB_CLIENT_CONNECTION_COUNT,
                "{connection}",
                "The number of connections that are currently in the state described by the state attribute.",
            ),
            timeouts: counter(
                metrics,
                DB_CLIENT_CONNECTION_TIMEOUTS,
                "{timeout}",
                "The number of connection timeouts that have occurred trying to obtain a connection from the pool.",
            ),
            inst: config.inst,
            query_text: config.query_text,
            base,
            system_name: config.system_name,
            idle_attrs: [
                pool_kv.clone(),
                KeyValue::new(DB_CLIENT_CONNECTION_STATE, STATE_IDLE),
            ],
            used_attrs: [
                pool_kv.clone(),
                KeyValue::new(DB_CLIENT_CONNECTION_STATE, STATE_USED),
            ],
            pool_attr: [pool_kv],
            last_idle: AtomicI64::new(0),
            last_used: AtomicI64::new(0),
            pool,
            collect_hook: OnceLock::new(),
        }
    }

    /// Shares `telemetry`, with `db.client.connection.count` re-read from the pool before
    /// every metrics collection: a connection goes back to the pool after the operation that
    /// used it has ended (sqlx returns it from a task of its own), so the reading taken then
    /// still counts it as used.
    pub(crate) fn watched(telemetry: Self) -> Arc<Self> {
        let telemetry = Arc::new(telemetry);
        let weak = Arc::downgrade(&telemetry);
        let hook = telemetry.inst.metrics().on_collect(move || {
            if let Some(telemetry) = weak.upgrade() {
                telemetry.sample_pool();
            }
        });
        let _ = telemetry.collect_hook.set(hook);
        telemetry
    }

    pub(crate) fn system_name(&self) -> &'static str {
        self.system_name
    }

    /// Starts the CLIENT span of a statement, as a child of `parent`.
    pub(crate) fn start_query(&self, parent: &Context, sql_text: &str) -> (Operation, OpMeta) {
        let summary = sql::summarize(sql_text, DB::DIALECT);
        let collection = summary.collection.as_deref().map(arc_str);
        // Span name: `db.query.summary` when there is one, as the conventions prefer.
        let (name, query_summary): (Cow<'static, str>, _) = match summary.query_summary {
            Some(Cow::Borrowed(op)) => (Cow::Borrowed(op), Some(StringValue::from(op))),
            Some(Cow::Owned(text)) => {
                let value = arc_str(&text);
                (Cow::Owned(text), Some(value))
            }
            None => (Cow::Borrowed(self.system_name), None),
        };
        let mut attributes = Vec::with_capacity(self.base.len() + 4);
        attributes.extend_from_slice(&self.base);
        if let Some(op) = summary.operation {
            attributes.push(KeyValue::new(DB_OPERATION_NAME, op));
        }
        if let Some(text) = &query_summary {
            attributes.push(KeyValue::new(DB_QUERY_SUMMARY, text.clone()));
        }
        if let Some(coll) = &collection {
            attributes.push(KeyValue::new(DB_COLLECTION_NAME, coll.clone()));
        }
        let mut op = self
            .inst
            .start_leaf(parent, name, SpanKind::Client, attributes);
        if op.is_recording() {
            let text = match self.query_text {
                QueryTextMode::Obfuscated => Some(sql::obfuscate(sql_text, DB::DIALECT)),
                QueryTextMode::Raw => {
                    let end = floor_boundary(sql_text, sql::MAX_QUERY_TEXT_BYTES);
                    Some(sql_text[..end].to_owned())
                }
                QueryTextMode::Off => None,
            };
            if let Some(text) = text {
                op.set_attribute(KeyValue::new(DB_QUERY_TEXT, text));
            }
        }
        (
            op,
            OpMeta {
                operation: summary.operation,
                collection,
                query_summary,
                // No single statement (a batch `a; b`, or text not understood): the server's
                // count is all there is, kept as it reports it.
                modifies_rows: summary.statement.is_none_or(modifies_rows),
            },
        )
    }

    /// Starts the CLIENT span of a statement sqlx issues itself (`BEGIN`, `COMMIT`, `ROLLBACK`).
    pub(crate) fn start_named(
        &self,
        parent: &Context,
        operation: &'static str,
    ) -> (Operation, OpMeta) {
        let mut attributes = Vec::with_capacity(self.base.len() + 2);
        attributes.extend_from_slice(&self.base);
        attributes.push(KeyValue::new(DB_OPERATION_NAME, operation));
        attributes.push(KeyValue::new(DB_QUERY_SUMMARY, operation));
        let op = self
            .inst
            .start_leaf(parent, operation, SpanKind::Client, attributes);
        (
            op,
            OpMeta {
                operation: Some(operation),
                collection: None,
                query_summary: Some(StringValue::from(operation)),
                modifies_rows: false,
            },
        )
    }

    /// Ends an operation: row counts and error on the span, a point in
    /// `db.client.operation.duration`, and a fresh sample of the pool's connection counts.
    pub(crate) fn finish(&self, mut op: Operation, meta: &OpMeta, outcome: Outcome<'_>) {
        let mut attributes = Vec::with_capacity(self.base.len() + 5);
        attributes.extend_from_slice(&self.base);
        if let Some(operation) = meta.operation {
            attributes.push(KeyValue::new(DB_OPERATION_NAME, operation));
        }
        if let Some(coll) = &meta.collection {
            attributes.push(KeyValue::new(DB_COLLECTION_NAME, coll.clone()));
        }
        if let Some(text) = &meta.query_summary {
            attributes.push(KeyValue::new(DB_QUERY_SUMMARY, text.clone()));
        }
        if outcome.cancelled {
            attributes.push(KeyValue::new(ERROR_TYPE, CANCELLED));
            op.record_error(CANCELLED, "the operation was dropped before it completed");
        } else if let Some(error) = outcome.error {
            let (status_code, error_type) = self.classify(error);
            if let Some(code) = status_code {
                let code = KeyValue::new(DB_RESPONSE_STATUS_CODE, code);
                op.set_attribute(code.clone());
                attributes.push(code);
            }
            attributes.push(KeyValue::new(ERROR_TYPE, error_type.clone()));
            let message: Cow<'static, str> = match (self.query_text, error) {
                // Server messages can quote the data that failed (e.g. a duplicate key), so they
                // are recorded only when the user opted in to raw query text.
                (QueryTextMode::Raw, _) => Cow::Owned(error.to_string()),
                (_, sqlx::Error::Database(_)) => {
                    Cow::Owned(format!("database error {}", error_type.as_str()))
                }
                _ => Cow::Owned(error_type.as_str().to_owned()),
            };
            op.record_error(Value::String(error_type), message);
        }
        if op.is_recording() {
            if let Some(rows) = outcome.returned_rows {
                op.set_attribute(KeyValue::new(
                    DB_RESPONSE_RETURNED_ROWS,
                    saturating_i64(rows),
                ));
            }
            if let Some(rows) = outcome.affected_rows.filter(|_| meta.modifies_rows) {
                op.set_attribute(KeyValue::new(
                    DB_RESPONSE_AFFECTED_ROWS,
                    saturating_i64(rows),
                ));
            }
        }
        op.end_with_duration(&self.operation_duration, &attributes);
        self.sample_pool();
    }

    /// `(db.response.status_code, error.type)` of an error.
    fn classify(&self, error: &sqlx::Error) -> (Option<StringValue>, StringValue) {
        if let sqlx::Error::Database(db) = error
            && let Some(code) = DB::status_code(db.as_ref())
        {
            let code = StringValue::from(code.into_owned());
            return (Some(code.clone()), code);
        }
        (None, StringValue::from(error_type_name(error)))
    }

    /// Takes a connection from the pool, recording the wait in
    /// `db.client.connection.wait_time` (and `db.client.connection.timeouts` on timeout).
    pub(crate) async fn acquire(&self) -> Result<PoolConnection<DB>, sqlx::Error> {
        let start = Instant::now();
        let result = self.pool.acquire().await;
        self.wait_time
            .record(start.elapsed().as_secs_f64(), &self.pool_attr);
        if matches!(result, Err(sqlx::Error::PoolTimedOut)) {
            self.timeouts.add(1, &self.pool_attr);
        }
        self.sample_pool();
        result
    }

    /// Starts the span of an explicit connection acquisition.
    pub(crate) fn start_acquire(&self, parent: &Context) -> Operation {
        let mut attributes = Vec::with_capacity(self.base.len() + 1);
        attributes.extend_from_slice(&self.base);
        attributes.push(self.pool_attr[0].clone());
        self.inst
            .start_leaf(parent, ACQUIRE_SPAN_NAME, SpanKind::Client, attributes)
    }

    /// Ends the span of an explicit connection acquisition.
    pub(crate) fn finish_acquire(&self, mut op: Operation, error: Option<&sqlx::Error>) {
        if let Some(error) = error {
            let error_type = StringValue::from(error_type_name(error));
            op.record_error(Value::String(error_type), error_type_name(error));
        }
        op.end();
    }

    /// Brings `db.client.connection.count` up to date with the pool's current counts.
    ///
    /// Each caller swaps in what it observed and adds the difference, so the counter's sum is
    /// always the most recent observation, whatever the interleaving.
    pub(crate) fn sample_pool(&self) {
        let size = i64::from(self.pool.size());
        let idle = i64::try_from(self.pool.num_idle())
            .unwrap_or(i64::MAX)
            .min(size);
        let used = size - idle;
        let old_idle = self.last_idle.swap(idle, Ordering::AcqRel);
        if old_idle != idle {
            self.connection_count.add(idle - old_idle, &self.idle_attrs);
        }
        let old_used = self.last_used.swap(used, Ordering::AcqRel);
        if old_used != used {
            self.connection_count.add(used - old_used, &self.used_attrs);
        }
    }
}

/// The pool name the semantic conventions suggest when none is set:
/// `server.address:server.port/db.namespace`, with the parts that are unknown left out (no
/// address for Unix sockets and SQLite; the system name when there is no namespace).
pub(crate) fn default_pool_name(info: &ConnectionInfo, system_name: &str) -> String {
    let mut name = String::new();
    if let Some(address) = &info.server_address {
        name.push_str(address);
        if let Some(port) = info.server_port {
            name.push(':');
            name.push_str(&port.to_string());
        }
    }
    name.push('/');
    name.push_str(info.namespace.as_deref().unwrap_or(system_name));
    name
}

/// Whether a statement of this keyword changes rows, so that the affected-row count the server
/// reports is about it (for a `SELECT`, SQLite reports the previous statement's changes and
/// PostgreSQL the rows returned).
fn modifies_rows(statement: &str) -> bool {
    matches!(
        statement,
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "REPLACE" | "UPSERT"
    )
}

/// Name of the span around [`crate::InstrumentedPool::acquire`].
pub(crate) const ACQUIRE_SPAN_NAME: &str = "acquire";

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn floor_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut i = max;
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `error.type` for errors that carry no database code: the sqlx variant, in snake case.
pub(crate) fn error_type_name(error: &sqlx::Error) -> &'static str {
    use sqlx::Error as E;
    match error {
        E::Configuration(_) => "configuration",
        E::InvalidArgument(_) => "invalid_argument",
        E::Database(_) => "database",
        E::Io(_) => "io",
        E::Tls(_) => "tls",
        E::Protocol(_) => "protocol",
        E::RowNotFound => "row_not_found",
        E::TypeNotFound { .. } => "type_not_found",
        E::ColumnIndexOutOfBounds { .. } => "column_index_out_of_bounds",
        E::ColumnNotFound(_) => "column_not_found",
        E::ColumnDecode { .. } => "column_decode",
        E::Encode(_) => "encode",
        E::Decode(_) => "decode",
        E::AnyDriverError(_) => "any_driver_error",
        E::PoolTimedOut => "pool_timed_out",
        E::PoolClosed => "pool_closed",
        E::WorkerCrashed => "worker_crashed",
        E::InvalidSavePointStatement => "invalid_savepoint_statement",
        E::BeginFailed => "begin_failed",
        _ => "_OTHER",
    }
}
