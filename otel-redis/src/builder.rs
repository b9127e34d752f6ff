//! Configuration: [`RedisInstrumentation`] (shared by many connections) and [`Builder`] (one
//! connection).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use opentelemetry::StringValue;
use opentelemetry::trace::{Tracer, TracerProvider};
use otel_core::instrument::{Instrumentation, InstrumentationBuilder};
use otel_core::metrics::Metrics;
use redis::{Client, ConnectionAddr, ConnectionInfo};

use crate::connection::InstrumentedConnection;
use crate::record::Recorder;

/// Whether `db.query.text` is recorded, and how.
///
/// Argument values are never recorded in any mode.
///
/// ```
/// # fn main() -> redis::RedisResult<()> {
/// use otel_core::testing::{TestTelemetry, assert_attr, assert_no_attr};
/// use otel_redis::{Builder, QueryTextMode};
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
/// for mode in [QueryTextMode::Off, QueryTextMode::Obfuscated] {
///     let mut con = Builder::from(FakeRedis)
///         .with_tracer_provider(tt.tracer_provider().clone())
///         .with_metrics(tt.metrics().clone())
///         .with_query_text(mode)
///         .build();
///     let () = con.hset("user:1", "email", "ada@example.com")?;
/// }
/// let spans = tt.spans_named("HSET");
/// assert_no_attr(&spans[0], "db.query.text");
/// assert_attr(&spans[1], "db.query.text", "HSET ? ? ?"); // no key, field or value
/// # Ok(())
/// # }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryTextMode {
    /// No `db.query.text` (the default). The command name is still recorded as
    /// `db.operation.name` and as the span name.
    #[default]
    Off,
    /// `db.query.text` holds the command with every argument replaced by `?`, for example
    /// `HSET ? ? ?`; pipelines join their commands with `; `. Built only for spans that are
    /// recorded (sampled), and cut at 2 KiB.
    Obfuscated,
}

/// What every wrapped connection of one configuration shares.
pub(crate) struct Shared {
    pub(crate) recorder: Recorder,
    pub(crate) query_text: QueryTextMode,
    pub(crate) server_address: Option<StringValue>,
    pub(crate) server_port: Option<i64>,
}

/// A configuration of tracer, metrics and options that wraps any number of redis-rs
/// connections, all reporting the same way.
///
/// Cheap to clone (one `Arc`). Use it when connections are made often (a sync connection per
/// job, for example); for one long-lived connection [`Builder`] is shorter.
///
/// ```no_run
/// # async fn run() -> redis::RedisResult<()> {
/// use otel_redis::RedisInstrumentation;
/// use redis::AsyncCommands;
///
/// let client = redis::Client::open("redis://127.0.0.1:6379/0")?;
/// let instrumentation = RedisInstrumentation::builder().with_client(&client).build();
/// let mut con = instrumentation.wrap(client.get_multiplexed_async_connection().await?);
/// let _: () = con.set("greeting", "hello").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisInstrumentation {
    shared: Arc<Shared>,
}

impl RedisInstrumentation {
    /// Starts a configuration with the defaults: the global tracer provider and
    /// [`Metrics::global`] (read when [`RedisInstrumentationBuilder::build`] runs), no
    /// `db.query.text`, no `server.address`.
    ///
    /// ```no_run
    /// # async fn run() -> redis::RedisResult<()> {
    /// use otel_redis::RedisInstrumentation;
    ///
    /// let client = redis::Client::open("redis://127.0.0.1:6379/0")?;
    /// let instrumentation = RedisInstrumentation::builder().with_client(&client).build();
    /// // One configuration for every connection of this client.
    /// let mut jobs = instrumentation.wrap(client.get_connection()?);
    /// let mut cache = instrumentation.wrap(client.get_multiplexed_async_connection().await?);
    /// # let _ = (&mut jobs, &mut cache);
    /// # Ok(()) }
    /// ```
    pub fn builder() -> RedisInstrumentationBuilder {
        RedisInstrumentationBuilder::default()
    }

    /// Wraps `connection`; every command and pipeline sent through the result is recorded.
    ///
    /// ```
    /// # fn main() -> redis::RedisResult<()> {
    /// use otel_core::testing::TestTelemetry;
    /// use otel_redis::RedisInstrumentation;
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
    /// let instrumentation = RedisInstrumentation::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .build();
    /// // A short-lived connection per job, all recorded alike.
    /// for job in 0..3 {
    ///     let mut con = instrumentation.wrap(FakeRedis);
    ///     let () = con.set(format!("job:{job}:state"), "done")?;
    /// }
    /// assert_eq!(tt.spans_named("SET").len(), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn wrap<C>(&self, connection: C) -> InstrumentedConnection<C> {
        InstrumentedConnection::new(connection, Arc::clone(&self.shared))
    }
}

impl fmt::Debug for RedisInstrumentation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisInstrumentation")
            .field("query_text", &self.shared.query_text)
            .field(
                "server_address",
                &self.shared.server_address.as_ref().map(StringValue::as_str),
            )
            .field("server_port", &self.shared.server_port)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisInstrumentation`]; see [`RedisInstrumentation::builder`].
///
/// ```no_run
/// # fn run(metrics: otel_core::metrics::Metrics) -> redis::RedisResult<()> {
/// use otel_redis::{QueryTextMode, RedisInstrumentation};
///
/// let client = redis::Client::open("redis://cache.internal:6379/0")?;
/// let instrumentation = RedisInstrumentation::builder()
///     .with_metrics(metrics) // default: `Metrics::global()`
///     .with_query_text(QueryTextMode::Obfuscated)
///     .with_client(&client)
///     .build();
/// let mut con = instrumentation.wrap(client.get_connection()?);
/// # let _ = &mut con;
/// # Ok(()) }
/// ```
pub struct RedisInstrumentationBuilder {
    instrumentation: InstrumentationBuilder,
    query_text: QueryTextMode,
    server_address: Option<StringValue>,
    server_port: Option<i64>,
}

impl Default for RedisInstrumentationBuilder {
    fn default() -> Self {
        Self {
            instrumentation: Instrumentation::builder(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
            ),
            query_text: QueryTextMode::default(),
            server_address: None,
            server_port: None,
        }
    }
}

impl fmt::Debug for RedisInstrumentationBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisInstrumentationBuilder")
            .field("instrumentation", &self.instrumentation)
            .field("query_text", &self.query_text)
            .field(
                "server_address",
                &self.server_address.as_ref().map(StringValue::as_str),
            )
            .field("server_port", &self.server_port)
            .finish()
    }
}

impl RedisInstrumentationBuilder {
    /// Records spans through `provider` instead of the global tracer provider.
    ///
    /// ```
    /// # fn main() -> redis::RedisResult<()> {
    /// use otel_core::testing::TestTelemetry;
    /// use otel_redis::RedisInstrumentation;
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
    /// // In a service: the provider your pipeline built. Here: an in-memory one.
    /// let tt = TestTelemetry::new();
    /// let mut con = RedisInstrumentation::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .build()
    ///     .wrap(FakeRedis);
    /// let _: Option<String> = con.get("greeting")?;
    /// assert_eq!(tt.spans()[0].name, "GET");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_tracer_provider<P>(mut self, provider: P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        self.instrumentation = self.instrumentation.with_tracer_provider(provider);
        self
    }

    /// Records `db.client.operation.duration` in `metrics` instead of [`Metrics::global`].
    ///
    /// ```
    /// # fn main() -> redis::RedisResult<()> {
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    /// use otel_redis::RedisInstrumentation;
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
    /// let metrics = Metrics::default();
    /// let mut con = RedisInstrumentation::builder()
    ///     .with_metrics(metrics.clone())
    ///     .build()
    ///     .wrap(FakeRedis);
    /// let _: Option<String> = con.get("greeting")?;
    ///
    /// let snapshot = metrics.snapshot();
    /// let duration = snapshot.find("db.client.operation.duration").expect("registered");
    /// let get = [KeyValue::new("db.operation.name", "GET")];
    /// assert_eq!(duration.series_matching(&get).count(), 1);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.instrumentation = self.instrumentation.with_metrics(metrics);
        self
    }

    /// Chooses whether and how `db.query.text` is recorded; [`QueryTextMode::Off`] by default.
    ///
    /// ```
    /// # fn main() -> redis::RedisResult<()> {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_redis::QueryTextMode;
    /// use otel_redis::RedisInstrumentation;
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
    /// let mut con = RedisInstrumentation::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_query_text(QueryTextMode::Obfuscated)
    ///     .build()
    ///     .wrap(FakeRedis);
    /// let () = redis::pipe().set("visits", 1).get("visits").query(&mut con)?;
    /// assert_attr(&tt.span("PIPELINE"), "db.query.text", "SET ? ?; GET ?");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_query_text(mut self, mode: QueryTextMode) -> Self {
        self.query_text = mode;
        self
    }

    /// Takes `server.address` and `server.port` from the address in `info` (a redis-rs
    /// connection does not expose where it is connected). For a Unix socket, `server.address` is
    /// the socket path and there is no port. User name and password are never read.
    ///
    /// ```
    /// # fn main() -> redis::RedisResult<()> {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_redis::RedisInstrumentation;
    /// use redis::{Commands, IntoConnectionInfo};
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
    /// let info = "redis://:s3cret@cache.internal:6380/2".into_connection_info()?;
    /// let tt = TestTelemetry::new();
    /// let mut con = RedisInstrumentation::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_connection_info(&info)
    ///     .build()
    ///     .wrap(FakeRedis);
    /// let _: Option<String> = con.get("greeting")?;
    /// let span = tt.span("GET");
    /// assert_attr(&span, "server.address", "cache.internal");
    /// assert_attr(&span, "server.port", 6380);
    /// // The password is never read.
    /// assert!(span.attributes.iter().all(|kv| !kv.value.as_str().contains("s3cret")));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_connection_info(mut self, info: &ConnectionInfo) -> Self {
        let (address, port): (Option<Cow<'_, str>>, Option<i64>) = match info.addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                (Some(host.as_str().into()), Some(i64::from(*port)))
            }
            ConnectionAddr::Unix(path) => (Some(path.to_string_lossy()), None),
            _ => (None, None),
        };
        self.server_address = address.map(|a| StringValue::from(Arc::<str>::from(a.as_ref())));
        self.server_port = port;
        self
    }

    /// Same as [`with_connection_info`](Self::with_connection_info) with the client's
    /// connection info.
    ///
    /// ```
    /// # fn main() -> redis::RedisResult<()> {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_redis::RedisInstrumentation;
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
    /// // Opening a client does not connect.
    /// let client = redis::Client::open("redis://cache.internal:6379/0")?;
    /// let tt = TestTelemetry::new();
    /// let mut con = RedisInstrumentation::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_client(&client)
    ///     .build()
    ///     .wrap(FakeRedis);
    /// let () = con.del("session:42")?;
    /// assert_attr(&tt.span("DEL"), "server.address", "cache.internal");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_client(self, client: &Client) -> Self {
        self.with_connection_info(client.get_connection_info())
    }

    /// Finishes the configuration. Without an injected provider or registry, takes the global
    /// ones as they are now: install the pipeline first.
    ///
    /// ```
    /// use otel_redis::RedisInstrumentation;
    ///
    /// // With the global tracer provider and metrics: install the pipeline first.
    /// let instrumentation = RedisInstrumentation::builder().build();
    /// # let _ = instrumentation;
    /// ```
    pub fn build(self) -> RedisInstrumentation {
        RedisInstrumentation {
            shared: Arc::new(Shared {
                recorder: Recorder::new(self.instrumentation.build()),
                query_text: self.query_text,
                server_address: self.server_address,
                server_port: self.server_port,
            }),
        }
    }
}

/// Builds one [`InstrumentedConnection`] around a connection: `Builder::from(connection)`, the
/// options, then [`build`](Builder::build).
///
/// ```no_run
/// # async fn run() -> redis::RedisResult<()> {
/// use otel_redis::{Builder, QueryTextMode};
/// use redis::AsyncCommands;
///
/// let client = redis::Client::open("redis://127.0.0.1:6379/0")?;
/// let manager = redis::aio::ConnectionManager::new(client.clone()).await?;
/// let mut con = Builder::from(manager)
///     .with_client(&client)
///     .with_query_text(QueryTextMode::Obfuscated)
///     .build();
/// let value: Option<String> = con.get("greeting").await?;
/// # Ok(()) }
/// ```
///
/// Runs without a server:
///
/// ```
/// # fn main() -> redis::RedisResult<()> {
/// use otel_core::testing::{TestTelemetry, assert_attr};
/// use otel_redis::Builder;
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
/// let mut con = Builder::from(FakeRedis)
///     .with_tracer_provider(tt.tracer_provider().clone())
///     .with_metrics(tt.metrics().clone())
///     .build();
/// let () = con.set("greeting", "hello")?;
/// let span = tt.span("SET");
/// assert_attr(&span, "db.system.name", "redis");
/// assert_attr(&span, "db.namespace", "0");
/// # Ok(())
/// # }
/// ```
pub struct Builder<C> {
    connection: C,
    config: RedisInstrumentationBuilder,
}

impl<C> From<C> for Builder<C> {
    fn from(connection: C) -> Self {
        Self {
            connection,
            config: RedisInstrumentationBuilder::default(),
        }
    }
}

impl<C> fmt::Debug for Builder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<C> Builder<C> {
    /// Records spans through `provider` instead of the global tracer provider.
    ///
    /// ```
    /// # fn main() -> redis::RedisResult<()> {
    /// use otel_core::testing::TestTelemetry;
    /// use otel_redis::Builder;
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
    /// // In a service: the provider your pipeline built. Here: an in-memory one.
    /// let tt = TestTelemetry::new();
    /// let mut con = Builder::from(FakeRedis)
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .build();
    /// let _: Option<String> = con.get("greeting")?;
    /// assert_eq!(tt.spans()[0].name, "GET");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_tracer_provider<P>(mut self, provider: P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        self.config = self.config.with_tracer_provider(provider);
        self
    }

    /// Records `db.client.operation.duration` in `metrics` instead of [`Metrics::global`].
    ///
    /// ```
    /// # fn main() -> redis::RedisResult<()> {
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    /// use otel_redis::Builder;
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
    /// let metrics = Metrics::default();
    /// let mut con = Builder::from(FakeRedis)
    ///     .with_metrics(metrics.clone())
    ///     .build();
    /// let _: Option<String> = con.get("greeting")?;
    ///
    /// let snapshot = metrics.snapshot();
    /// let duration = snapshot.find("db.client.operation.duration").expect("registered");
    /// let get = [KeyValue::new("db.operation.name", "GET")];
    /// assert_eq!(duration.series_matching(&get).count(), 1);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.config = self.config.with_metrics(metrics);
        self
    }

    /// Chooses whether and how `db.query.text` is recorded; [`QueryTextMode::Off`] by default.
    ///
    /// ```
    /// # fn main() -> redis::RedisResult<()> {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_redis::QueryTextMode;
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
    ///     .with_query_text(QueryTextMode::Obfuscated)
    ///     .build();
    /// let () = redis::pipe().set("visits", 1).get("visits").query(&mut con)?;
    /// assert_attr(&tt.span("PIPELINE"), "db.query.text", "SET ? ?; GET ?");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_query_text(mut self, mode: QueryTextMode) -> Self {
        self.config = self.config.with_query_text(mode);
        self
    }

    /// Takes `server.address` and `server.port` from `info`; see
    /// [`RedisInstrumentationBuilder::with_connection_info`].
    ///
    /// ```
    /// # fn main() -> redis::RedisResult<()> {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_redis::Builder;
    /// use redis::{Commands, IntoConnectionInfo};
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
    /// let info = "redis://:s3cret@cache.internal:6380/2".into_connection_info()?;
    /// let tt = TestTelemetry::new();
    /// let mut con = Builder::from(FakeRedis)
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_connection_info(&info)
    ///     .build();
    /// let _: Option<String> = con.get("greeting")?;
    /// let span = tt.span("GET");
    /// assert_attr(&span, "server.address", "cache.internal");
    /// assert_attr(&span, "server.port", 6380);
    /// // The password is never read.
    /// assert!(span.attributes.iter().all(|kv| !kv.value.as_str().contains("s3cret")));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_connection_info(mut self, info: &ConnectionInfo) -> Self {
        self.config = self.config.with_connection_info(info);
        self
    }

    /// Takes `server.address` and `server.port` from the client's connection info.
    ///
    /// ```
    /// # fn main() -> redis::RedisResult<()> {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_redis::Builder;
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
    /// // Opening a client does not connect.
    /// let client = redis::Client::open("redis://cache.internal:6379/0")?;
    /// let tt = TestTelemetry::new();
    /// let mut con = Builder::from(FakeRedis)
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_client(&client)
    ///     .build();
    /// let () = con.del("session:42")?;
    /// assert_attr(&tt.span("DEL"), "server.address", "cache.internal");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_client(mut self, client: &Client) -> Self {
        self.config = self.config.with_client(client);
        self
    }

    /// Wraps the connection.
    ///
    /// ```no_run
    /// # async fn run() -> redis::RedisResult<()> {
    /// use otel_redis::{Builder, InstrumentedConnection};
    /// use redis::aio::MultiplexedConnection;
    ///
    /// let client = redis::Client::open("redis://127.0.0.1:6379/0")?;
    /// let con: InstrumentedConnection<MultiplexedConnection> =
    ///     Builder::from(client.get_multiplexed_async_connection().await?)
    ///         .with_client(&client)
    ///         .build();
    /// // Multiplexed connections are cheap to clone; clones record the same way.
    /// let for_background_task = con.clone();
    /// # let _ = for_background_task;
    /// # Ok(()) }
    /// ```
    pub fn build(self) -> InstrumentedConnection<C> {
        self.config.build().wrap(self.connection)
    }
}
