#![doc = include_str!("../../docs/adapters/sqlx.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod connection;
mod database;
mod executor;
mod pool;
mod record;
pub mod sql;
mod telemetry;
mod transaction;

pub use builder::{PoolBuilder, QueryTextMode};
pub use connection::InstrumentedConnection;
pub use database::{ConnectionInfo, SupportedDatabase};
pub use pool::InstrumentedPool;
pub use record::Metrics;
pub use transaction::InstrumentedTransaction;

/// Span attribute: rows inserted, updated or deleted by the statement, as the server reported
/// them.
///
/// Not (yet) a semantic-convention attribute; named after `db.response.returned_rows`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// use otel_core::testing::{TestTelemetry, assert_attr};
/// use otel_sqlx::{DB_RESPONSE_AFFECTED_ROWS, PoolBuilder};
///
/// let tt = TestTelemetry::new();
/// let pool = PoolBuilder::from(sqlx::SqlitePool::connect("sqlite::memory:").await?)
///     .with_tracer_provider(tt.tracer_provider().clone())
///     .with_metrics(tt.metrics().clone())
///     .build();
/// # let ddl = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)";
/// # sqlx::query(ddl).execute(pool.get_ref()).await?;
/// sqlx::query("INSERT INTO users (name) VALUES ('ada'), ('grace')").execute(&pool).await?;
/// assert_attr(&tt.span("INSERT users"), DB_RESPONSE_AFFECTED_ROWS, 2);
/// # Ok(())
/// # }
/// ```
pub const DB_RESPONSE_AFFECTED_ROWS: &str = "db.response.affected_rows";

/// An instrumented PostgreSQL pool.
///
/// ```no_run
/// # async fn run() -> Result<(), sqlx::Error> {
/// use otel_sqlx::InstrumentedPgPool;
///
/// let pool: InstrumentedPgPool =
///     sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test")
///         .await?
///         .into();
/// let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub type InstrumentedPgPool = InstrumentedPool<sqlx::Postgres>;

/// An instrumented MySQL / MariaDB pool.
///
/// ```no_run
/// # async fn run() -> Result<(), sqlx::Error> {
/// use otel_sqlx::{InstrumentedMySqlPool, PoolBuilder};
///
/// let pool: InstrumentedMySqlPool =
///     PoolBuilder::from(sqlx::MySqlPool::connect("mysql://root@127.0.0.1:3306/test").await?)
///         .detect_mariadb()
///         .await?
///         .build();
/// let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub type InstrumentedMySqlPool = InstrumentedPool<sqlx::MySql>;

/// An instrumented SQLite pool.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// use otel_sqlx::InstrumentedSqlitePool;
///
/// let pool: InstrumentedSqlitePool =
///     sqlx::SqlitePool::connect("sqlite::memory:").await?.into();
/// let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await?;
/// assert_eq!(one, 1);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub type InstrumentedSqlitePool = InstrumentedPool<sqlx::Sqlite>;
