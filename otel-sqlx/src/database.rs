//! What differs between the supported databases: names, connection attributes, error codes,
//! affected-row counts and SQL dialect.

use std::borrow::Cow;

use sqlx::Connection;
use sqlx::error::DatabaseError;

use crate::sql::Dialect;

/// Where a pool connects, as read from its connect options (no network call).
///
/// ```
/// use otel_sqlx::SupportedDatabase;
/// use sqlx::sqlite::SqliteConnectOptions;
/// use std::str::FromStr;
///
/// let options = SqliteConnectOptions::from_str("sqlite://data/app.db")?;
/// let info = <sqlx::Sqlite as SupportedDatabase>::connection_info(&options);
/// assert_eq!(info.namespace.as_deref(), Some("data/app.db"));
/// assert_eq!(info.server_address, None); // embedded: no server
///
/// # Ok::<(), sqlx::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// `server.address`: host name or IP; `None` for Unix sockets and embedded databases.
    pub server_address: Option<String>,
    /// `server.port`; `None` when `server_address` is.
    pub server_port: Option<u16>,
    /// `db.namespace`: the database name (PostgreSQL, MySQL) or file name (SQLite).
    pub namespace: Option<String>,
}

mod sealed {
    /// The supertrait that seals [`SupportedDatabase`](super::SupportedDatabase): it lives in
    /// a private module, so no type outside this crate can implement it.
    ///
    /// ```
    /// use otel_sqlx::SupportedDatabase;
    ///
    /// // Every database this crate supports implements it; nothing else can.
    /// fn system_name<DB: SupportedDatabase>() -> &'static str {
    ///     DB::SYSTEM_NAME
    /// }
    /// assert_eq!(system_name::<sqlx::Sqlite>(), "sqlite");
    /// ```
    pub trait Sealed {}
}

/// A sqlx database this crate can instrument: [`sqlx::Postgres`] (feature `postgres`),
/// [`sqlx::MySql`] (feature `mysql`) and [`sqlx::Sqlite`] (feature `sqlite`).
///
/// Sealed: the methods are what the wrappers need from each driver and are not meant to be
/// called by users.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// use otel_sqlx::{InstrumentedPool, SupportedDatabase};
///
/// /// Generic code over any instrumented pool.
/// async fn purge_sessions<DB: SupportedDatabase>(
///     pool: &InstrumentedPool<DB>,
/// ) -> sqlx::Result<()>
/// where
///     for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
/// {
///     sqlx::raw_sql("DELETE FROM sessions").execute(pool).await?;
///     Ok(())
/// }
///
/// let sqlite = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// let pool: InstrumentedPool<sqlx::Sqlite> = InstrumentedPool::from(sqlite);
/// # sqlx::raw_sql("CREATE TABLE sessions (id INTEGER)").execute(pool.get_ref()).await?;
/// // Name the database at the call: left to inference, the `Executor` bound overflows (E0275).
/// purge_sessions::<sqlx::Sqlite>(&pool).await?;
/// assert_eq!(<sqlx::Sqlite as SupportedDatabase>::SYSTEM_NAME, "sqlite");
/// # Ok(())
/// # }
/// ```
pub trait SupportedDatabase: sqlx::Database + sealed::Sealed {
    /// The `db.system.name` value (`postgresql`, `mysql`, `sqlite`).
    const SYSTEM_NAME: &'static str;
    /// Quoting rules of the dialect, for [`crate::sql`].
    const DIALECT: Dialect;

    /// Reads server address, port and database name from connect options.
    fn connection_info(options: &<Self::Connection as Connection>::Options) -> ConnectionInfo;

    /// The `db.response.status_code` of a database error: SQLSTATE for PostgreSQL, the error
    /// number for MySQL/MariaDB, the extended result code for SQLite.
    fn status_code(error: &dyn DatabaseError) -> Option<Cow<'_, str>>;

    /// Rows inserted, updated or deleted, as the server reported them.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
fn tcp_host(host: &str) -> Option<String> {
    // A host starting with `/` is a Unix-socket directory, not a network address.
    (!host.is_empty() && !host.starts_with('/')).then(|| host.to_owned())
}

#[cfg(feature = "postgres")]
impl sealed::Sealed for sqlx::Postgres {}

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
impl SupportedDatabase for sqlx::Postgres {
    const SYSTEM_NAME: &'static str = "postgresql";
    const DIALECT: Dialect = Dialect::Postgres;

    fn connection_info(options: &sqlx::postgres::PgConnectOptions) -> ConnectionInfo {
        let server_address = tcp_host(options.get_host());
        ConnectionInfo {
            server_port: server_address.as_ref().map(|_| options.get_port()),
            server_address,
            // PostgreSQL connects to the database named like the user when none is given.
            namespace: Some(
                options
                    .get_database()
                    .unwrap_or_else(|| options.get_username())
                    .to_owned(),
            )
            .filter(|n| !n.is_empty()),
        }
    }

    fn status_code(error: &dyn DatabaseError) -> Option<Cow<'_, str>> {
        error.code()
    }

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

#[cfg(feature = "mysql")]
impl sealed::Sealed for sqlx::MySql {}

#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
impl SupportedDatabase for sqlx::MySql {
    const SYSTEM_NAME: &'static str = "mysql";
    const DIALECT: Dialect = Dialect::MySql;

    fn connection_info(options: &sqlx::mysql::MySqlConnectOptions) -> ConnectionInfo {
        let server_address = if options.get_socket().is_some() {
            None
        } else {
            tcp_host(options.get_host())
        };
        ConnectionInfo {
            server_port: server_address.as_ref().map(|_| options.get_port()),
            server_address,
            namespace: options.get_database().map(str::to_owned),
        }
    }

    fn status_code(error: &dyn DatabaseError) -> Option<Cow<'_, str>> {
        match error.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            Some(e) => Some(Cow::Owned(e.number().to_string())),
            None => error.code(),
        }
    }

    fn rows_affected(result: &sqlx::mysql::MySqlQueryResult) -> u64 {
        result.rows_affected()
    }
}

#[cfg(feature = "sqlite")]
impl sealed::Sealed for sqlx::Sqlite {}

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
impl SupportedDatabase for sqlx::Sqlite {
    const SYSTEM_NAME: &'static str = "sqlite";
    const DIALECT: Dialect = Dialect::Sqlite;

    fn connection_info(options: &sqlx::sqlite::SqliteConnectOptions) -> ConnectionInfo {
        let file = options.get_filename().to_string_lossy();
        // sqlx names in-memory databases `file:sqlx-in-memory-N`; those have no namespace.
        let in_memory = file.is_empty()
            || file == ":memory:"
            || file.starts_with("file:sqlx-in-memory-")
            || file.contains("mode=memory");
        ConnectionInfo {
            server_address: None,
            server_port: None,
            namespace: (!in_memory).then(|| file.into_owned()),
        }
    }

    fn status_code(error: &dyn DatabaseError) -> Option<Cow<'_, str>> {
        error.code()
    }

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}
