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
pub const DB_RESPONSE_AFFECTED_ROWS: &str = "db.response.affected_rows";

/// An instrumented PostgreSQL pool.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub type InstrumentedPgPool = InstrumentedPool<sqlx::Postgres>;

/// An instrumented MySQL / MariaDB pool.
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub type InstrumentedMySqlPool = InstrumentedPool<sqlx::MySql>;

/// An instrumented SQLite pool.
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub type InstrumentedSqlitePool = InstrumentedPool<sqlx::Sqlite>;
