//! [`InstrumentedConnection`] and its implementations of redis-rs's connection traits.

use std::fmt;
use std::sync::Arc;

use opentelemetry::{KeyValue, StringValue, Value as OtelValue};
use opentelemetry_semantic_conventions::attribute::{
    DB_NAMESPACE, DB_OPERATION_BATCH_SIZE, DB_OPERATION_NAME, DB_QUERY_TEXT,
    DB_RESPONSE_STATUS_CODE, DB_SYSTEM_NAME, ERROR_TYPE, SERVER_ADDRESS, SERVER_PORT,
};
use otel_core::instrument::Operation;
use otel_core::metrics::{BoundHistogram, RecentCache};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use smallvec::SmallVec;

use crate::builder::{Builder, QueryTextMode, Shared};
use crate::command::{self, CommandName, MULTI, PackedCommands};
use crate::outcome::{self, Failure};
use crate::record::Recorder;
use crate::select::{self, PendingSelect, SelectBehaviour, SelectedDb, SwitchOutcome};

/// `db.system.name` of every span and measurement.
const REDIS: &str = "redis";

/// A redis-rs connection whose commands and pipelines each become a CLIENT span and a
/// `db.client.operation.duration` measurement.
///
/// It implements the connection trait of whatever it wraps: [`redis::aio::ConnectionLike`] for
/// [`MultiplexedConnection`](redis::aio::MultiplexedConnection) and
/// [`ConnectionManager`](redis::aio::ConnectionManager), [`redis::ConnectionLike`] for
/// [`Connection`](redis::Connection). So `redis::cmd(..).query_async(&mut con)`, the
/// [`AsyncCommands`](redis::AsyncCommands) / [`Commands`](redis::Commands) helpers, pipelines
/// and `MULTI`/`EXEC` transactions work on it unchanged. It is `Clone` when the wrapped
/// connection is; clones record the same way, and share the database a `SELECT` sent through
/// any of them switched to (`db.namespace`; see the crate documentation for what is followed).
///
/// Make one with [`Builder::from`], [`InstrumentedConnection::builder`] or
/// [`RedisInstrumentation::wrap`](crate::RedisInstrumentation::wrap).
///
/// ```no_run
/// # async fn run() -> redis::RedisResult<()> {
/// use otel_redis::InstrumentedConnection;
/// use redis::AsyncCommands;
///
/// let client = redis::Client::open("redis://127.0.0.1:6379/0")?;
/// let mut con = InstrumentedConnection::builder(client.get_multiplexed_async_connection().await?)
///     .with_client(&client)
///     .build();
/// let () = con.hset("user:1", "name", "ada").await?;          // span "HSET"
/// let (name, visits): (String, i64) = redis::pipe()
///     .atomic()
///     .hget("user:1", "name")
///     .incr("user:1:visits", 1)
///     .query_async(&mut con)
///     .await?;                                                   // span "MULTI"
/// # let _ = (name, visits);
/// # Ok(()) }
/// ```
pub struct InstrumentedConnection<C> {
    inner: C,
    shared: Arc<Shared>,
    namespace: NamespaceCache,
    /// The database selected through this wrapper, shared with its clones.
    selected: SelectedDb,
    series: SeriesCache,
}

impl<C> InstrumentedConnection<C> {
    pub(crate) fn new(inner: C, shared: Arc<Shared>) -> Self {
        Self {
            inner,
            shared,
            namespace: NamespaceCache::default(),
            selected: SelectedDb::new(SelectBehaviour::of::<C>()),
            series: SeriesCache::new(SERIES_CACHE),
        }
    }

    /// Starts a [`Builder`] around `connection`; same as `Builder::from(connection)`.
    ///
    /// ```
    /// # fn main() -> redis::RedisResult<()> {
    /// use otel_core::testing::TestTelemetry;
    /// use otel_redis::InstrumentedConnection;
    /// use redis::Commands;
    ///
    /// # struct FakeRedis;
    /// # impl redis::ConnectionLike for FakeRedis {
    /// #     fn req_packed_command(&mut self, _: &[u8]) -> redis::RedisResult<redis::Value> {
    /// #         Ok(redis::Value::Okay)
    /// #     }
    /// #     fn req_packed_commands(&mut self, _: &[u8], _: usize, n: usize)
    /// #         -> redis::RedisResult<Vec<redis::Value>> {
    /// #         Ok(vec![redis::Value::Okay; n])
    /// #     }
    /// #     fn get_db(&self) -> i64 { 0 }
    /// #     fn check_connection(&mut self) -> bool { true }
    /// #     fn is_open(&self) -> bool { true }
    /// # }
    /// // `FakeRedis` stands in for a `redis::Connection`: it answers `OK`, no server needed.
    ///
    /// let tt = TestTelemetry::new();
    /// let mut con = InstrumentedConnection::builder(FakeRedis)
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .build();
    /// let () = con.expire("session:42", 60)?;
    /// assert_eq!(tt.spans()[0].name, "EXPIRE");
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(connection: C) -> Builder<C> {
        Builder::from(connection)
    }

    /// The wrapped connection.
    ///
    /// ```
    /// use otel_redis::Builder;
    /// use redis::ConnectionLike;
    ///
    /// # struct FakeRedis;
    /// # impl redis::ConnectionLike for FakeRedis {
    /// #     fn req_packed_command(&mut self, _: &[u8]) -> redis::RedisResult<redis::Value> {
    /// #         Ok(redis::Value::Okay)
    /// #     }
    /// #     fn req_packed_commands(&mut self, _: &[u8], _: usize, n: usize)
    /// #         -> redis::RedisResult<Vec<redis::Value>> {
    /// #         Ok(vec![redis::Value::Okay; n])
    /// #     }
    /// #     fn get_db(&self) -> i64 { 0 }
    /// #     fn check_connection(&mut self) -> bool { true }
    /// #     fn is_open(&self) -> bool { true }
    /// # }
    /// // `FakeRedis` stands in for a `redis::Connection`: it answers `OK`, no server needed.
    ///
    /// let con = Builder::from(FakeRedis).build();
    /// assert!(con.get_ref().is_open());
    /// ```
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// The wrapped connection, mutably. Commands sent through it directly are not recorded.
    ///
    /// ```
    /// # fn main() -> redis::RedisResult<()> {
    /// use otel_core::testing::TestTelemetry;
    /// use otel_redis::Builder;
    ///
    /// # struct FakeRedis;
    /// # impl redis::ConnectionLike for FakeRedis {
    /// #     fn req_packed_command(&mut self, _: &[u8]) -> redis::RedisResult<redis::Value> {
    /// #         Ok(redis::Value::Okay)
    /// #     }
    /// #     fn req_packed_commands(&mut self, _: &[u8], _: usize, n: usize)
    /// #         -> redis::RedisResult<Vec<redis::Value>> {
    /// #         Ok(vec![redis::Value::Okay; n])
    /// #     }
    /// #     fn get_db(&self) -> i64 { 0 }
    /// #     fn check_connection(&mut self) -> bool { true }
    /// #     fn is_open(&self) -> bool { true }
    /// # }
    /// // `FakeRedis` stands in for a `redis::Connection`: it answers `OK`, no server needed.
    ///
    /// let tt = TestTelemetry::new();
    /// let mut con = Builder::from(FakeRedis)
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .build();
    /// // A health check that should not show up in traces.
    /// let () = redis::cmd("PING").query(con.get_mut())?;
    /// assert!(tt.spans().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// Unwraps the connection.
    ///
    /// ```
    /// use otel_redis::Builder;
    ///
    /// # struct FakeRedis;
    /// # impl redis::ConnectionLike for FakeRedis {
    /// #     fn req_packed_command(&mut self, _: &[u8]) -> redis::RedisResult<redis::Value> {
    /// #         Ok(redis::Value::Okay)
    /// #     }
    /// #     fn req_packed_commands(&mut self, _: &[u8], _: usize, n: usize)
    /// #         -> redis::RedisResult<Vec<redis::Value>> {
    /// #         Ok(vec![redis::Value::Okay; n])
    /// #     }
    /// #     fn get_db(&self) -> i64 { 0 }
    /// #     fn check_connection(&mut self) -> bool { true }
    /// #     fn is_open(&self) -> bool { true }
    /// # }
    /// // `FakeRedis` stands in for a `redis::Connection`: it answers `OK`, no server needed.
    ///
    /// let con = Builder::from(FakeRedis).build();
    /// let raw: FakeRedis = con.into_inner();
    /// # let _ = raw;
    /// ```
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl<C: Clone> Clone for InstrumentedConnection<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            namespace: self.namespace.clone(),
            // Clones share the server connection, so the database selected on it.
            selected: self.selected.clone(),
            series: self.series.clone(),
        }
    }
}

impl<C: fmt::Debug> fmt::Debug for InstrumentedConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedConnection")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// `db.namespace` values for the database indexes a default Redis server has.
const DB_INDEXES: [&str; 16] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
];

/// `db.namespace` as a string, from the database index; only an index above 15 needs a
/// (cached) allocation.
#[derive(Clone, Default)]
struct NamespaceCache(Option<(i64, StringValue)>);

/// `db.namespace` of a call on a connection that reports database `configured` (`get_db()`):
/// the database selected through the wrapper, if any; `None` when it is not known.
fn namespace_of(
    cache: &mut NamespaceCache,
    selected: &SelectedDb,
    configured: i64,
) -> Option<StringValue> {
    selected.current(configured).map(|db| cache.get(db))
}

/// How the database switch in a call (a `SELECT`) went, from the call's failure: a single
/// command refused by the server switched nothing; any other failure leaves it unknown, and
/// so does a success that does not say the switch ran (`definite` false: a transaction
/// answered nil, as when a `WATCH` aborted its `EXEC`, or a command answered `QUEUED`
/// inside a `MULTI` sent by hand).
fn switch_outcome(failure: Option<&Failure>, single: bool, definite: bool) -> SwitchOutcome {
    match failure {
        None if definite => SwitchOutcome::Applied,
        None => SwitchOutcome::Uncertain,
        Some(failure) if single && failure.status_code.is_some() => SwitchOutcome::Refused,
        Some(_) => SwitchOutcome::Uncertain,
    }
}

/// A reply saying the command was only queued (inside `MULTI`), not run.
fn queued(result: &RedisResult<Value>) -> bool {
    matches!(result, Ok(Value::SimpleString(s)) if s == "QUEUED")
}

/// Whether a pipeline's reply says its commands ran. A transaction whose `EXEC` a `WATCH`
/// aborted answers nil, which redis-rs returns as one nil value. A plain pipeline with a
/// reply `QUEUED` holds a `MULTI` sent by hand: what it queued may never have run (a
/// `DISCARD`, an `EXEC` refused).
fn pipeline_ran(result: &RedisResult<Vec<Value>>, transaction: bool) -> bool {
    match result {
        Ok(values) if transaction => !matches!(values.as_slice(), [Value::Nil]),
        Ok(values) => !values
            .iter()
            .any(|v| matches!(v, Value::SimpleString(s) if s == "QUEUED")),
        Err(_) => false,
    }
}

impl NamespaceCache {
    fn get(&mut self, db: i64) -> StringValue {
        if let Some(index) = usize::try_from(db).ok().and_then(|i| DB_INDEXES.get(i)) {
            return StringValue::from(*index);
        }
        match &self.0 {
            Some((cached, value)) if *cached == db => value.clone(),
            _ => {
                let value = StringValue::from(Arc::<str>::from(db.to_string()));
                self.0 = Some((db, value.clone()));
                value
            }
        }
    }
}

/// Most duration series a connection keeps bound (one per command and database it uses).
const SERIES_CACHE: usize = 16;

/// The `db.client.operation.duration` series of the successful calls a connection made
/// recently (by command name and `db.namespace`, `None` when unknown), bound, so that
/// recording them does not hash and compare their attributes.
type SeriesCache = RecentCache<(&'static str, Option<StringValue>), BoundHistogram>;

/// Metric attributes, on the stack: at most seven are ever recorded.
type MetricAttributes = SmallVec<[KeyValue; 7]>;

impl Shared {
    /// Starts the span of one call with the attributes samplers should see.
    fn start(
        &self,
        name: &'static str,
        namespace: Option<&StringValue>,
        batch: Option<usize>,
    ) -> Operation {
        let mut attributes = Vec::with_capacity(6);
        attributes.push(KeyValue::new(DB_SYSTEM_NAME, REDIS));
        attributes.push(KeyValue::new(DB_OPERATION_NAME, name));
        if let Some(namespace) = namespace {
            attributes.push(KeyValue::new(
                DB_NAMESPACE,
                OtelValue::String(namespace.clone()),
            ));
        }
        if let Some(address) = &self.server_address {
            attributes.push(KeyValue::new(
                SERVER_ADDRESS,
                OtelValue::String(address.clone()),
            ));
        }
        if let Some(port) = self.server_port {
            attributes.push(KeyValue::new(SERVER_PORT, port));
        }
        // The conventions call two or more operations a batch; a batch size is never 1.
        if let Some(size) = batch.filter(|size| *size >= 2) {
            let size = i64::try_from(size).unwrap_or(i64::MAX);
            attributes.push(KeyValue::new(DB_OPERATION_BATCH_SIZE, size));
        }
        self.recorder.start(name, attributes)
    }

    /// Whether `db.query.text` should be built for `operation`.
    fn wants_query_text(&self, operation: &Operation) -> bool {
        self.query_text == QueryTextMode::Obfuscated && operation.is_recording()
    }

    /// Records the outcome on the span, ends it and records the duration (a success in the
    /// bound series of `series`).
    fn finish(
        &self,
        operation: Operation,
        name: &'static str,
        namespace: Option<StringValue>,
        failure: Option<Failure>,
        series: &mut SeriesCache,
    ) {
        let Some(failure) = failure else {
            let bound = series.get_or_insert_with(
                |(n, ns)| {
                    *n == name
                        && ns.as_ref().map(StringValue::as_str)
                            == namespace.as_ref().map(StringValue::as_str)
                },
                || {
                    let attributes = self.metric_attributes(name, namespace.clone(), None);
                    ((name, namespace.clone()), self.recorder.bind(&attributes))
                },
            );
            Recorder::end_bound(operation, bound);
            return;
        };
        self.finish_failed(operation, name, namespace, failure);
    }

    /// Records `failure` on the span, ends it and records the duration with `error.type`.
    fn finish_failed(
        &self,
        mut operation: Operation,
        name: &'static str,
        namespace: Option<StringValue>,
        failure: Failure,
    ) {
        let attributes = self.metric_attributes(name, namespace, Some(&failure));
        Recorder::fail(&mut operation, failure);
        self.recorder.end(operation, &attributes);
    }

    /// The attributes of a `db.client.operation.duration` measurement.
    fn metric_attributes(
        &self,
        name: &'static str,
        namespace: Option<StringValue>,
        failure: Option<&Failure>,
    ) -> MetricAttributes {
        let mut attributes = MetricAttributes::new();
        attributes.push(KeyValue::new(DB_SYSTEM_NAME, REDIS));
        attributes.push(KeyValue::new(DB_OPERATION_NAME, name));
        if let Some(namespace) = namespace {
            attributes.push(KeyValue::new(DB_NAMESPACE, OtelValue::String(namespace)));
        }
        if let Some(address) = &self.server_address {
            attributes.push(KeyValue::new(
                SERVER_ADDRESS,
                OtelValue::String(address.clone()),
            ));
        }
        if let Some(port) = self.server_port {
            attributes.push(KeyValue::new(SERVER_PORT, port));
        }
        if let Some(failure) = failure {
            attributes.push(KeyValue::new(
                ERROR_TYPE,
                OtelValue::String(failure.error_type.clone()),
            ));
            if let Some(code) = &failure.status_code {
                attributes.push(KeyValue::new(
                    DB_RESPONSE_STATUS_CODE,
                    OtelValue::String(code.clone()),
                ));
            }
        }
        attributes
    }
}

/// `error.type` of a call whose future was dropped before the reply arrived (the same value
/// `otel_core` gives the span of an operation dropped unfinished).
const CANCELLED: &str = "cancelled";

/// An async call in flight. Finished with [`InFlight::finish`]; dropped before that (the
/// caller dropped the future, e.g. on a timeout), it ends the span with `error.type`
/// `cancelled` and records that in `db.client.operation.duration` too, so timed-out calls
/// stay in the latency metric.
struct InFlight<'a> {
    active: Option<(Operation, Option<StringValue>)>,
    shared: &'a Shared,
    name: &'static str,
    /// The database switch (`SELECT`) the call holds, settled with its outcome.
    select: Option<PendingSelect>,
    /// A single command (not a pipeline): an error reply means a `SELECT` was refused.
    single: bool,
}

impl<'a> InFlight<'a> {
    fn new(
        shared: &'a Shared,
        operation: Operation,
        name: &'static str,
        namespace: Option<StringValue>,
        select: Option<PendingSelect>,
        single: bool,
    ) -> Self {
        Self {
            active: Some((operation, namespace)),
            shared,
            name,
            select,
            single,
        }
    }

    /// Ends the call with its outcome (`definite`: see [`switch_outcome`]).
    fn finish(mut self, failure: Option<Failure>, definite: bool, series: &mut SeriesCache) {
        if let Some(select) = self.select.take() {
            select.settle(switch_outcome(failure.as_ref(), self.single, definite));
        }
        if let Some((operation, namespace)) = self.active.take() {
            self.shared
                .finish(operation, self.name, namespace, failure, series);
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(select) = self.select.take() {
            // Sent or not, answered or not: unknown.
            select.settle(SwitchOutcome::Uncertain);
        }
        if let Some((operation, namespace)) = self.active.take() {
            let failure = Failure {
                error_type: StringValue::from(CANCELLED),
                status_code: None,
                message: "the operation was dropped before it completed".into(),
            };
            self.shared
                .finish_failed(operation, self.name, namespace, failure);
        }
    }
}

fn query_text(text: String) -> KeyValue {
    KeyValue::new(DB_QUERY_TEXT, text)
}

impl<C> redis::aio::ConnectionLike for InstrumentedConnection<C>
where
    C: redis::aio::ConnectionLike + Send,
{
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let (name, argc) = command::of_cmd(cmd);
        let configured = self.inner.get_db();
        let namespace = namespace_of(&mut self.namespace, &self.selected, configured);
        let select = select::target_of(name, || command::second_arg(cmd))
            .and_then(|target| self.selected.switch(target, configured));
        let shared: &'a Shared = &self.shared;
        let mut operation = shared.start(name.name, namespace.as_ref(), None);
        if shared.wants_query_text(&operation) {
            operation.set_attribute(query_text(command::obfuscated_single(name, argc)));
        }
        let reply = self.inner.req_packed_command(cmd);
        let series = &mut self.series;
        // Made before the future: dropped unpolled, the call is still measured as cancelled.
        let in_flight = InFlight::new(shared, operation, name.name, namespace, select, true);
        Box::pin(async move {
            let result = reply.await;
            in_flight.finish(outcome::of_single(&result), !queued(&result), series);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let transaction = pipeline.is_transaction();
        let name = command::batch_name(transaction, command::pipeline_commands(pipeline));
        let configured = self.inner.get_db();
        let namespace = namespace_of(&mut self.namespace, &self.selected, configured);
        let select = select::target_of_pipeline(pipeline)
            .and_then(|target| self.selected.switch(target, configured));
        let shared: &'a Shared = &self.shared;
        let mut operation = shared.start(name, namespace.as_ref(), Some(pipeline.len()));
        if shared.wants_query_text(&operation) {
            operation.set_attribute(query_text(command::obfuscated_pipeline(pipeline)));
        }
        let reply = self.inner.req_packed_commands(pipeline, offset, count);
        let series = &mut self.series;
        let in_flight = InFlight::new(shared, operation, name, namespace, select, false);
        Box::pin(async move {
            let result = reply.await;
            in_flight.finish(
                outcome::of_pipeline(&result),
                pipeline_ran(&result, transaction),
                series,
            );
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

impl<C: redis::ConnectionLike> redis::ConnectionLike for InstrumentedConnection<C> {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        let (name, argc, second) = match PackedCommands::new(cmd).next() {
            Some(command) => (command.name, command.argc, command.second),
            None => (CommandName::UNKNOWN, 0, None),
        };
        let configured = self.inner.get_db();
        let namespace = namespace_of(&mut self.namespace, &self.selected, configured);
        let select = select::target_of(name, || second)
            .and_then(|target| self.selected.switch(target, configured));
        let mut operation = self.shared.start(name.name, namespace.as_ref(), None);
        if self.shared.wants_query_text(&operation) {
            operation.set_attribute(query_text(command::obfuscated_single(name, argc)));
        }
        let result = self.inner.req_packed_command(cmd);
        let failure = outcome::of_single(&result);
        if let Some(select) = select {
            select.settle(switch_outcome(failure.as_ref(), true, !queued(&result)));
        }
        self.shared
            .finish(operation, name.name, namespace, failure, &mut self.series);
        result
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        // redis-rs sends a transaction as MULTI, the commands, EXEC, and skips the replies to
        // MULTI and the commands (`offset`) to read only EXEC's.
        let transaction = offset > 0
            && PackedCommands::new(cmd)
                .next()
                .is_some_and(|first| first.name.name == MULTI);
        let (batch, skip) = if transaction {
            (offset - 1, 1)
        } else {
            (offset.saturating_add(count), 0)
        };
        let commands = PackedCommands::new(cmd)
            .skip(skip)
            .take(batch)
            .map(|command| command.name);
        let name = command::batch_name(transaction, commands);
        let configured = self.inner.get_db();
        let namespace = namespace_of(&mut self.namespace, &self.selected, configured);
        let select = select::target_of_packed(cmd)
            .and_then(|target| self.selected.switch(target, configured));
        let mut operation = self.shared.start(name, namespace.as_ref(), Some(batch));
        if self.shared.wants_query_text(&operation) {
            operation.set_attribute(query_text(command::obfuscated_packed(cmd)));
        }
        let result = self.inner.req_packed_commands(cmd, offset, count);
        let failure = outcome::of_pipeline(&result);
        if let Some(select) = select {
            select.settle(switch_outcome(
                failure.as_ref(),
                false,
                pipeline_ran(&result, transaction),
            ));
        }
        self.shared
            .finish(operation, name, namespace, failure, &mut self.series);
        result
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        let (name, argc) = command::of_cmd(cmd);
        let configured = self.inner.get_db();
        let namespace = namespace_of(&mut self.namespace, &self.selected, configured);
        let select = select::target_of(name, || command::second_arg(cmd))
            .and_then(|target| self.selected.switch(target, configured));
        let mut operation = self.shared.start(name.name, namespace.as_ref(), None);
        if self.shared.wants_query_text(&operation) {
            operation.set_attribute(query_text(command::obfuscated_single(name, argc)));
        }
        let result = self.inner.req_command(cmd);
        let failure = outcome::of_single(&result);
        if let Some(select) = select {
            select.settle(switch_outcome(failure.as_ref(), true, !queued(&result)));
        }
        self.shared
            .finish(operation, name.name, namespace, failure, &mut self.series);
        result
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }

    fn supports_pipelining(&self) -> bool {
        self.inner.supports_pipelining()
    }

    fn check_connection(&mut self) -> bool {
        self.inner.check_connection()
    }

    fn is_open(&self) -> bool {
        self.inner.is_open()
    }
}
