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
    pub fn builder() -> RedisInstrumentationBuilder {
        RedisInstrumentationBuilder::default()
    }

    /// Wraps `connection`; every command and pipeline sent through the result is recorded.
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
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.instrumentation = self.instrumentation.with_metrics(metrics);
        self
    }

    /// Chooses whether and how `db.query.text` is recorded; [`QueryTextMode::Off`] by default.
    #[must_use]
    pub fn with_query_text(mut self, mode: QueryTextMode) -> Self {
        self.query_text = mode;
        self
    }

    /// Takes `server.address` and `server.port` from the address in `info` (a redis-rs
    /// connection does not expose where it is connected). For a Unix socket, `server.address` is
    /// the socket path and there is no port. User name and password are never read.
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
    #[must_use]
    pub fn with_client(self, client: &Client) -> Self {
        self.with_connection_info(client.get_connection_info())
    }

    /// Finishes the configuration. Without an injected provider or registry, takes the global
    /// ones as they are now: install the pipeline first.
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
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.config = self.config.with_metrics(metrics);
        self
    }

    /// Chooses whether and how `db.query.text` is recorded; [`QueryTextMode::Off`] by default.
    #[must_use]
    pub fn with_query_text(mut self, mode: QueryTextMode) -> Self {
        self.config = self.config.with_query_text(mode);
        self
    }

    /// Takes `server.address` and `server.port` from `info`; see
    /// [`RedisInstrumentationBuilder::with_connection_info`].
    #[must_use]
    pub fn with_connection_info(mut self, info: &ConnectionInfo) -> Self {
        self.config = self.config.with_connection_info(info);
        self
    }

    /// Takes `server.address` and `server.port` from the client's connection info.
    #[must_use]
    pub fn with_client(mut self, client: &Client) -> Self {
        self.config = self.config.with_client(client);
        self
    }

    /// Wraps the connection.
    pub fn build(self) -> InstrumentedConnection<C> {
        self.config.build().wrap(self.connection)
    }
}
