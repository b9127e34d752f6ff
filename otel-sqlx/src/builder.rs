//! [`PoolBuilder`] and its options.

use opentelemetry::trace::{Tracer, TracerProvider};
use sqlx::Pool;

use crate::database::SupportedDatabase;
use crate::pool::InstrumentedPool;
use crate::record::{InstrumentationBuilder, Metrics, instrumentation};
use crate::telemetry::{Telemetry, TelemetryConfig};

/// What is recorded in `db.query.text`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// use otel_core::testing::{TestTelemetry, assert_attr, assert_no_attr};
/// use otel_sqlx::{PoolBuilder, QueryTextMode};
///
/// let tt = TestTelemetry::new();
/// let sqlite = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// let statement = "SELECT 'ada' AS name, 42 AS answer";
/// for mode in [
///     QueryTextMode::Obfuscated,
///     QueryTextMode::Raw,
///     QueryTextMode::Off,
/// ] {
///     let pool = PoolBuilder::from(sqlite.clone())
///         .with_tracer_provider(tt.tracer_provider().clone())
///         .with_metrics(tt.metrics().clone())
///         .with_query_text(mode)
///         .build();
///     sqlx::query(statement).fetch_one(&pool).await?;
/// }
/// let spans = tt.spans_named("SELECT");
/// assert_attr(&spans[0], "db.query.text", "SELECT ? AS name, ? AS answer");
/// assert_attr(&spans[1], "db.query.text", statement);
/// assert_no_attr(&spans[2], "db.query.text");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum QueryTextMode {
    /// The statement with every literal that may carry user data replaced by `?` (see
    /// [`crate::sql::obfuscate`]). Bind parameters (`$1`, `?`) are kept. The default.
    #[default]
    Obfuscated,
    /// The statement exactly as sent (cut at [`crate::sql::MAX_QUERY_TEXT_BYTES`]). Use when
    /// every value is bound as a parameter, never written into the SQL. In this mode the
    /// span status also carries the server's error message, which may quote data.
    Raw,
    /// No `db.query.text` at all. Operation and table names are still recorded.
    Off,
}

/// Configures and builds an [`InstrumentedPool`] around a sqlx [`Pool`].
///
/// ```no_run
/// # #[cfg(feature = "sqlite")]
/// # async fn example() -> Result<(), sqlx::Error> {
/// use otel_sqlx::{PoolBuilder, QueryTextMode};
///
/// let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// let pool = PoolBuilder::from(pool)
///     .with_query_text(QueryTextMode::Obfuscated)
///     .build();
/// let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct PoolBuilder<DB: SupportedDatabase> {
    pool: Pool<DB>,
    instrumentation: InstrumentationBuilder,
    query_text: QueryTextMode,
    system_name: &'static str,
    pool_name: Option<String>,
}

impl<DB: SupportedDatabase> From<Pool<DB>> for PoolBuilder<DB> {
    fn from(pool: Pool<DB>) -> Self {
        Self {
            pool,
            instrumentation: instrumentation(),
            query_text: QueryTextMode::default(),
            system_name: DB::SYSTEM_NAME,
            pool_name: None,
        }
    }
}

impl<DB: SupportedDatabase> std::fmt::Debug for PoolBuilder<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("pool", &self.pool)
            .field("query_text", &self.query_text)
            .field("system_name", &self.system_name)
            .field("pool_name", &self.pool_name)
            .finish_non_exhaustive()
    }
}

impl<DB: SupportedDatabase> PoolBuilder<DB> {
    /// Records spans through `provider` instead of the global tracer provider.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_core::testing::TestTelemetry;
    /// use otel_sqlx::PoolBuilder;
    ///
    /// // In a service: the provider your pipeline built. Here: an in-memory one.
    /// let tt = TestTelemetry::new();
    /// let pool = PoolBuilder::from(sqlx::SqlitePool::connect("sqlite::memory:").await?)
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .build();
    /// sqlx::query("SELECT 1").execute(&pool).await?;
    /// assert_eq!(tt.spans()[0].name, "SELECT");
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_tracer_provider<P>(mut self, provider: P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        self.instrumentation = self.instrumentation.with_tracer_provider(provider);
        self
    }

    /// Records metrics in `metrics` instead of [`Metrics::global`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    /// use otel_sqlx::PoolBuilder;
    ///
    /// let metrics = Metrics::default();
    /// let pool = PoolBuilder::from(sqlx::SqlitePool::connect("sqlite::memory:").await?)
    ///     .with_metrics(metrics.clone())
    ///     .build();
    /// sqlx::query("SELECT 1").execute(&pool).await?;
    ///
    /// let snapshot = metrics.snapshot();
    /// let duration = snapshot
    ///     .find("db.client.operation.duration")
    ///     .expect("registered");
    /// assert_eq!(duration.total_count(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.instrumentation = self.instrumentation.with_metrics(metrics);
        self
    }

    /// Chooses what goes into `db.query.text` (default [`QueryTextMode::Obfuscated`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_sqlx::{PoolBuilder, QueryTextMode};
    ///
    /// let tt = TestTelemetry::new();
    /// let pool = PoolBuilder::from(sqlx::SqlitePool::connect("sqlite::memory:").await?)
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     // Every value below is a bound parameter: the raw text is safe to record.
    ///     .with_query_text(QueryTextMode::Raw)
    ///     .build();
    /// # let ddl = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)";
    /// # sqlx::query(ddl).execute(pool.get_ref()).await?;
    /// sqlx::query("INSERT INTO users (name) VALUES ($1)").bind("ada").execute(&pool).await?;
    /// let insert = tt.span("INSERT users");
    /// assert_attr(&insert, "db.query.text", "INSERT INTO users (name) VALUES ($1)");
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_query_text(mut self, mode: QueryTextMode) -> Self {
        self.query_text = mode;
        self
    }

    /// Names the pool in `db.client.connection.pool.name`. Without a name the pool is called
    /// `server.address:server.port/db.namespace`, as the semantic conventions suggest
    /// (`/db.namespace` or `/sqlite` for SQLite).
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
    ///     .with_pool_name("accounts")
    ///     .build();
    /// let connection = pool.acquire().await?;
    /// # drop(connection);
    /// assert_attr(
    ///     &tt.span("acquire"),
    ///     "db.client.connection.pool.name",
    ///     "accounts",
    /// );
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_pool_name(mut self, name: impl Into<String>) -> Self {
        self.pool_name = Some(name.into());
        self
    }

    /// Builds the instrumented pool.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use otel_sqlx::{InstrumentedPool, PoolBuilder};
    ///
    /// let pool: InstrumentedPool<sqlx::Sqlite> =
    ///     PoolBuilder::from(sqlx::SqlitePool::connect("sqlite::memory:").await?).build();
    /// let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await?;
    /// assert_eq!(one, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn build(self) -> InstrumentedPool<DB> {
        let telemetry = Telemetry::new(
            self.pool.clone(),
            TelemetryConfig {
                inst: self.instrumentation.build(),
                query_text: self.query_text,
                system_name: self.system_name,
                pool_name: self.pool_name,
            },
        );
        InstrumentedPool::from_parts(self.pool, Telemetry::watched(telemetry))
    }
}

/// `db.system.name` of MariaDB servers.
#[cfg(feature = "mysql")]
const MARIADB: &str = "mariadb";

#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
impl PoolBuilder<sqlx::MySql> {
    /// Reports `db.system.name` as `mariadb` (`true`) or `mysql` (`false`, the default).
    ///
    /// sqlx speaks the same protocol to both and does not expose the server version, so the
    /// wrapper cannot tell them apart by itself; say so here or use
    /// [`detect_mariadb`](Self::detect_mariadb).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), sqlx::Error> {
    /// use otel_sqlx::PoolBuilder;
    ///
    /// let pool = sqlx::MySqlPool::connect("mysql://root@127.0.0.1:3306/test").await?;
    /// // This deployment runs MariaDB: spans and metrics say `db.system.name = mariadb`.
    /// let pool = PoolBuilder::from(pool).with_mariadb(true).build();
    /// # let _ = pool;
    /// # Ok(()) }
    /// ```
    pub fn with_mariadb(mut self, mariadb: bool) -> Self {
        self.system_name = if mariadb {
            MARIADB
        } else {
            <sqlx::MySql as SupportedDatabase>::SYSTEM_NAME
        };
        self
    }

    /// Asks the server for `VERSION()` once (uninstrumented) and reports `mariadb` when the
    /// version string says MariaDB, `mysql` otherwise.
    ///
    /// # Errors
    /// The error of acquiring a connection or running the query.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), sqlx::Error> {
    /// use otel_sqlx::PoolBuilder;
    ///
    /// let pool = sqlx::MySqlPool::connect("mysql://root@127.0.0.1:3306/test").await?;
    /// let pool = PoolBuilder::from(pool).detect_mariadb().await?.build();
    /// # let _ = pool;
    /// # Ok(()) }
    /// ```
    pub async fn detect_mariadb(self) -> Result<Self, sqlx::Error> {
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&self.pool)
            .await?;
        let mariadb = version.to_ascii_lowercase().contains("mariadb");
        Ok(self.with_mariadb(mariadb))
    }
}
