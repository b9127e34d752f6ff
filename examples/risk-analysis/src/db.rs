//! PostgreSQL: the schema, the seed data, a generator for larger graphs, and the queries the
//! gateway and the worker run. Every table lives in one schema (`RISK_SCHEMA`), so runs with
//! different schemas never see each other's rows.

use otel_sqlx::InstrumentedPgPool;
use sqlx::Row as _;

use crate::graph::{Account, Subgraph, Transaction};
use crate::settings::valid_identifier;

/// `template` with `{schema}` replaced by `schema`, after checking that `schema` is a plain
/// identifier: the only text ever spliced into these statements.
fn sql(schema: &str, template: &str) -> Result<sqlx::AssertSqlSafe<String>, sqlx::Error> {
    if !valid_identifier(schema) {
        return Err(sqlx::Error::Configuration(
            format!("invalid schema name {schema:?}").into(),
        ));
    }
    // One line: the statement is also the span's `db.query.text`.
    let text = template.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(sqlx::AssertSqlSafe(text.replace("{schema}", schema)))
}

/// The accounts of the original brief: id, name, risk level.
pub const SEED_ACCOUNTS: &[(&str, &str)] = &[
    ("acc-001", "Alice Holdings"),
    ("acc-002", "Bob Trading"),
    ("acc-003", "Carol Imports"),
    ("acc-004", "Dave Exports"),
    ("acc-isolated-999", "Isolated Ltd"),
];

/// The transactions of the original brief: acc-001 → acc-002 → acc-003 → acc-001 is a ring,
/// acc-002 → acc-004 an outflow.
pub const SEED_TRANSACTIONS: &[(&str, &str, f64)] = &[
    ("acc-001", "acc-002", 1000.50),
    ("acc-002", "acc-003", 500.00),
    ("acc-003", "acc-001", 2000.00),
    ("acc-002", "acc-004", 750.00),
];

/// Creates the schema and its tables if missing (safe to run concurrently with itself).
pub async fn create_schema(pool: &InstrumentedPgPool, schema: &str) -> Result<(), sqlx::Error> {
    // Two sessions creating the same schema at once can still collide on the catalog's
    // unique index; a transaction-level advisory lock keyed by the schema name serialises them.
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(schema)
        .execute(&mut tx)
        .await?;
    sqlx::query(sql(schema, "CREATE SCHEMA IF NOT EXISTS {schema}")?)
        .execute(&mut tx)
        .await?;
    sqlx::query(sql(
        schema,
        "CREATE TABLE IF NOT EXISTS {schema}.accounts (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            risk_level TEXT NOT NULL DEFAULT 'low'
        )",
    )?)
    .execute(&mut tx)
    .await?;
    sqlx::query(sql(
        schema,
        "CREATE TABLE IF NOT EXISTS {schema}.transactions (
            id BIGSERIAL PRIMARY KEY,
            from_account TEXT NOT NULL REFERENCES {schema}.accounts (id),
            to_account TEXT NOT NULL REFERENCES {schema}.accounts (id),
            amount NUMERIC(14, 2) NOT NULL,
            UNIQUE (from_account, to_account)
        )",
    )?)
    .execute(&mut tx)
    .await?;
    tx.commit().await
}

/// Inserts the seed data of the original brief, resetting risk levels to `low`.
pub async fn seed(pool: &InstrumentedPgPool, schema: &str) -> Result<(), sqlx::Error> {
    let accounts: Vec<Account> = SEED_ACCOUNTS
        .iter()
        .map(|(id, name)| Account {
            id: (*id).to_owned(),
            name: (*name).to_owned(),
            risk_level: "low".to_owned(),
        })
        .collect();
    let transactions: Vec<Transaction> = SEED_TRANSACTIONS
        .iter()
        .map(|(from, to, amount)| Transaction {
            from: (*from).to_owned(),
            to: (*to).to_owned(),
            amount: *amount,
        })
        .collect();
    insert(pool, schema, &accounts, &transactions).await
}

/// Accounts and transactions made by [`generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedGraph {
    /// `gen-00000`, `gen-00001`, …
    pub accounts: Vec<Account>,
    /// Up to two outgoing transactions per account.
    pub transactions: Vec<Transaction>,
}

/// A deterministic graph of `n` accounts `gen-00000…` for load and scale experiments: each
/// account sends to two others chosen by a fixed pseudo-random sequence (so it has rings and
/// outflows), never to the seed accounts.
pub fn generate(n: usize, seed: u64) -> GeneratedGraph {
    let mut state = seed | 1;
    let mut next = || {
        // xorshift64*: enough for a reproducible spread, no dependency.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let accounts: Vec<Account> = (0..n)
        .map(|i| Account {
            id: format!("gen-{i:05}"),
            name: format!("Generated {i}"),
            risk_level: "low".to_owned(),
        })
        .collect();
    let mut transactions = Vec::new();
    if n >= 2 {
        let n64 = n as u64;
        for i in 0..n {
            for _ in 0..2 {
                let j = (next() % n64) as usize;
                if j != i {
                    transactions.push(Transaction {
                        from: accounts[i].id.clone(),
                        to: accounts[j].id.clone(),
                        amount: (next() % 1_000_000) as f64 / 100.0,
                    });
                }
            }
        }
    }
    GeneratedGraph {
        accounts,
        transactions,
    }
}

/// Inserts accounts and transactions, leaving existing ones as they are except for
/// `risk_level` (reset to `low`) and the amount (replaced).
pub async fn insert(
    pool: &InstrumentedPgPool,
    schema: &str,
    accounts: &[Account],
    transactions: &[Transaction],
) -> Result<(), sqlx::Error> {
    let (ids, names): (Vec<&str>, Vec<&str>) = accounts
        .iter()
        .map(|a| (a.id.as_str(), a.name.as_str()))
        .unzip();
    sqlx::query(sql(
        schema,
        "INSERT INTO {schema}.accounts (id, name)
         SELECT * FROM UNNEST($1::text[], $2::text[])
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, risk_level = 'low'",
    )?)
    .bind(&ids)
    .bind(&names)
    .execute(pool)
    .await?;
    let from: Vec<&str> = transactions.iter().map(|t| t.from.as_str()).collect();
    let to: Vec<&str> = transactions.iter().map(|t| t.to.as_str()).collect();
    let amount: Vec<f64> = transactions.iter().map(|t| t.amount).collect();
    sqlx::query(sql(
        schema,
        "INSERT INTO {schema}.transactions (from_account, to_account, amount)
         SELECT f, t, a::numeric FROM UNNEST($1::text[], $2::text[], $3::float8[]) AS x (f, t, a)
         ON CONFLICT (from_account, to_account) DO UPDATE SET amount = EXCLUDED.amount",
    )?)
    .bind(&from)
    .bind(&to)
    .bind(&amount)
    .execute(pool)
    .await?;
    Ok(())
}

/// Drops the schema and everything in it.
pub async fn drop_schema(pool: &InstrumentedPgPool, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::query(sql(schema, "DROP SCHEMA IF EXISTS {schema} CASCADE")?)
        .execute(pool)
        .await
        .map(|_| ())
}

/// The two-hop neighbourhood of `root` (accounts reachable over at most two transactions in
/// either direction) with the transactions between them, or `None` when `root` does not exist.
pub async fn neighbourhood(
    pool: &InstrumentedPgPool,
    schema: &str,
    root: &str,
) -> Result<Option<Subgraph>, sqlx::Error> {
    let rows = sqlx::query(sql(
        schema,
        "WITH RECURSIVE reach (id, depth) AS (
             SELECT id, 0 FROM {schema}.accounts WHERE id = $1
             UNION
             SELECT CASE WHEN t.from_account = r.id THEN t.to_account ELSE t.from_account END,
                    r.depth + 1
             FROM reach r
             JOIN {schema}.transactions t ON r.id IN (t.from_account, t.to_account)
             WHERE r.depth < 2
         )
         SELECT a.id, a.name, a.risk_level
         FROM {schema}.accounts a
         WHERE a.id IN (SELECT id FROM reach)
         ORDER BY a.id",
    )?)
    .bind(root)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let accounts: Vec<Account> = rows
        .iter()
        .map(|r| {
            Ok(Account {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                risk_level: r.try_get("risk_level")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let ids: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    let transactions = sqlx::query(sql(
        schema,
        "SELECT from_account, to_account, amount::float8 AS amount
         FROM {schema}.transactions
         WHERE from_account = ANY($1) AND to_account = ANY($1)
         ORDER BY id",
    )?)
    .bind(&ids)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(Transaction {
            from: r.try_get("from_account")?,
            to: r.try_get("to_account")?,
            amount: r.try_get("amount")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    Ok(Some(Subgraph {
        root: root.to_owned(),
        accounts,
        transactions,
    }))
}

/// Sets `risk_level` to `high` for `accounts`; returns how many rows changed.
pub async fn raise_risk(
    pool: &InstrumentedPgPool,
    schema: &str,
    accounts: &[String],
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(sql(
        schema,
        "UPDATE {schema}.accounts SET risk_level = 'high'
         WHERE id = ANY($1) AND risk_level <> 'high'",
    )?)
    .bind(accounts)
    .execute(pool)
    .await?
    .rows_affected())
}

/// The current `risk_level` of one account.
pub async fn risk_level(
    pool: &InstrumentedPgPool,
    schema: &str,
    account: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(sql(
        schema,
        "SELECT risk_level FROM {schema}.accounts WHERE id = $1",
    )?)
    .bind(account)
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::generate;

    #[test]
    fn generated_graphs_are_reproducible_and_stay_apart_from_the_seed() {
        let a = generate(100, 42);
        assert_eq!(a, generate(100, 42));
        assert_eq!(a.accounts.len(), 100);
        assert!(a.transactions.len() > 150);
        assert!(
            a.transactions
                .iter()
                .all(|t| t.from.starts_with("gen-") && t.to.starts_with("gen-") && t.from != t.to)
        );
        assert!(generate(1, 42).transactions.is_empty());
        assert!(generate(0, 42).accounts.is_empty());
    }
}
