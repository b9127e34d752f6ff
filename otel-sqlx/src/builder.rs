//! [`PoolBuilder`] and its options.

use std::sync::Arc;

use opentelemetry::trace::{Tracer, TracerProvider};
use sqlx::Pool;

use crate::database::SupportedDatabase;
use crate::pool::InstrumentedPool;
use crate::record::{InstrumentationBuilder, Metrics, instrumentation};
use crate::telemetry::{Telemetry, TelemetryConfig};

/// What is recorded in `db.query.text`.
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
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.instrumentation = self.instrumentation.with_metrics(metrics);
        self
    }

    /// Chooses what goes into `db.query.text` (default [`QueryTextMode::Obfuscated`]).
    pub fn with_query_text(mut self, mode: QueryTextMode) -> Self {
        self.query_text = mode;
        self
    }

    /// Names the pool in `db.client.connection.pool.name`. Without a name the pool is called
    /// `server.address:server.port/db.namespace`, as the semantic conventions suggest
    /// (`/db.namespace` or `/sqlite` for SQLite).
    pub fn with_pool_name(mut self, name: impl Into<String>) -> Self {
        self.pool_name = Some(name.into());
        self
    }

    /// Builds the instrumented pool.
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
        InstrumentedPool::from_parts(self.pool, Arc::new(telemetry))
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
    pub async fn detect_mariadb(self) -> Result<Self, sqlx::Error> {
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&self.pool)
            .await?;
        let mariadb = version.to_ascii_lowercase().contains("mariadb");
        Ok(self.with_mariadb(mariadb))
    }
}
