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
    pub trait Sealed: sqlx::Database {
        /// The driver connection's `Executor::fetch_many`.
        ///
        /// The wrappers call the driver through these methods rather than through a
        /// `for<'c> &'c mut DB::Connection: Executor<'c>` bound, so that generic code over an
        /// instrumented type needs no such bound either (inferring it overflows, E0275).
        fn conn_fetch_many<'e, 'q: 'e, E>(
            conn: &'e mut Self::Connection,
            query: E,
        ) -> BoxStream<'e, ManyItem<Self>>
        where
            E: 'q + Execute<'q, Self>;

        /// The driver connection's `Executor::fetch_optional`.
        fn conn_fetch_optional<'e, 'q: 'e, E>(
            conn: &'e mut Self::Connection,
            query: E,
        ) -> BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>>
        where
            E: 'q + Execute<'q, Self>;

        /// The driver connection's `Executor::prepare_with`.
        fn conn_prepare_with<'e>(
            conn: &'e mut Self::Connection,
            sql: SqlStr,
            parameters: &'e [Self::TypeInfo],
        ) -> BoxFuture<'e, Result<Self::Statement, sqlx::Error>>;

        /// The driver connection's `Executor::describe`.
        fn conn_describe<'e>(
            conn: &'e mut Self::Connection,
            sql: SqlStr,
        ) -> BoxFuture<'e, Result<Describe<Self>, sqlx::Error>>;
    }

    /// Implements [`Sealed`] for a driver by calling its connection's `Executor` impl.
    #[cfg_attr(
        not(any(feature = "postgres", feature = "mysql", feature = "sqlite")),
        allow(unused_macros)
    )]
    macro_rules! sealed_by_connection {
        ($db:ty) => {
            impl $crate::database::sealed::Sealed for $db {
                fn conn_fetch_many<'e, 'q: 'e, E>(
                    conn: &'e mut Self::Connection,
                    query: E,
                ) -> ::futures_core::stream::BoxStream<'e, $crate::executor::ManyItem<Self>>
                where
                    E: 'q + ::sqlx::Execute<'q, Self>,
                {
                    sqlx::Executor::fetch_many(conn, query)
                }

                fn conn_fetch_optional<'e, 'q: 'e, E>(
                    conn: &'e mut Self::Connection,
                    query: E,
                ) -> ::futures_core::future::BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>>
                where
                    E: 'q + ::sqlx::Execute<'q, Self>,
                {
                    sqlx::Executor::fetch_optional(conn, query)
                }

                fn conn_prepare_with<'e>(
                    conn: &'e mut Self::Connection,
                    sql: ::sqlx::SqlStr,
                    parameters: &'e [Self::TypeInfo],
                ) -> ::futures_core::future::BoxFuture<'e, Result<Self::Statement, sqlx::Error>>
                {
                    sqlx::Executor::prepare_with(conn, sql, parameters)
                }

                fn conn_describe<'e>(
                    conn: &'e mut Self::Connection,
                    sql: ::sqlx::SqlStr,
                ) -> ::futures_core::future::BoxFuture<
                    'e,
                    Result<::sqlx::Describe<Self>, sqlx::Error>,
                > {
                    sqlx::Executor::describe(conn, sql)
                }
            }
        };
    }
    #[cfg_attr(
        not(any(feature = "postgres", feature = "mysql", feature = "sqlite")),
        allow(unused_imports)
    )]
    pub(super) use sealed_by_connection;

    use futures_core::future::BoxFuture;
    use futures_core::stream::BoxStream;
    use sqlx::{Describe, Execute, SqlStr};

    use crate::executor::ManyItem;
}

/// A sqlx database this crate can instrument: [`sqlx::Postgres`] (feature `postgres`),
/// [`sqlx::MySql`] (feature `mysql`) and [`sqlx::Sqlite`] (feature `sqlite`).
///
/// Sealed: only this crate implements it. Code generic over an instrumented type needs no
/// other bound: the wrappers reach the driver through the sealed supertrait, not through a
/// `for<'c> &'c mut DB::Connection: Executor<'c>` bound of their own.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// use otel_sqlx::{InstrumentedPool, SupportedDatabase};
///
/// /// Generic code over any instrumented pool.
/// async fn purge_sessions<DB: SupportedDatabase>(pool: &InstrumentedPool<DB>) -> sqlx::Result<u64> {
///     let mut tx = pool.begin().await?;
///     let done = sqlx::raw_sql("DELETE FROM sessions").execute(&mut tx).await?;
///     tx.commit().await?;
///     Ok(DB::rows_affected(&done))
/// }
///
/// let sqlite = sqlx::SqlitePool::connect("sqlite::memory:").await?;
/// let pool: InstrumentedPool<sqlx::Sqlite> = InstrumentedPool::from(sqlite);
/// # sqlx::raw_sql("CREATE TABLE sessions (id INTEGER); INSERT INTO sessions VALUES (1), (2)").execute(pool.get_ref()).await?;
/// assert_eq!(purge_sessions(&pool).await?, 2);
/// assert_eq!(<sqlx::Sqlite as SupportedDatabase>::SYSTEM_NAME, "sqlite");
/// # Ok(())
/// # }
/// ```
pub trait SupportedDatabase:
    sqlx::Database<Arguments: sqlx::IntoArguments<Self>> + sealed::Sealed
{
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
sealed::sealed_by_connection!(sqlx::Postgres);

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
impl SupportedDatabase for sqlx::Postgres {
    const SYSTEM_NAME: &'static str = "postgresql";
    const DIALECT: Dialect = Dialect::Postgres;

    fn connection_info(options: &sqlx::postgres::PgConnectOptions) -> ConnectionInfo {
        // A socket directory (`?host=/var/run/postgresql`, or `.socket(..)`) means a Unix
        // socket: the host (still `localhost` by default) and port are not where it connects.
        let server_address = if options.get_socket().is_some() {
            None
        } else {
            tcp_host(options.get_host())
        };
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
sealed::sealed_by_connection!(sqlx::MySql);

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
sealed::sealed_by_connection!(sqlx::Sqlite);

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

#[cfg(all(test, feature = "postgres"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::str::FromStr;

    use sqlx::postgres::PgConnectOptions;

    use super::SupportedDatabase;
    use crate::telemetry::default_pool_name;

    fn info(url: &str) -> super::ConnectionInfo {
        <sqlx::Postgres as SupportedDatabase>::connection_info(
            &PgConnectOptions::from_str(url).unwrap(),
        )
    }

    #[test]
    fn postgres_unix_sockets_have_no_server_address() {
        let socket = info("postgres://u@localhost/db?host=/var/run/postgresql");
        assert_eq!(socket.server_address, None);
        assert_eq!(socket.server_port, None);
        assert_eq!(socket.namespace.as_deref(), Some("db"));
        assert_eq!(default_pool_name(&socket, "postgresql"), "/db");
        // The same with the socket directory as the host.
        let host_socket = info("postgres://u@%2Fvar%2Frun%2Fpostgresql/db");
        assert_eq!(host_socket.server_address, None);
        assert_eq!(default_pool_name(&host_socket, "postgresql"), "/db");
    }

    #[test]
    fn postgres_tcp_has_address_and_port() {
        let tcp = info("postgres://u@db.internal:6543/app");
        assert_eq!(tcp.server_address.as_deref(), Some("db.internal"));
        assert_eq!(tcp.server_port, Some(6543));
        assert_eq!(
            default_pool_name(&tcp, "postgresql"),
            "db.internal:6543/app"
        );
    }
}
