//! Where each process finds its servers and its per-run names, from the environment.

/// PostgreSQL URL (`DATABASE_URL`).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Redis URL (`REDIS_URL`).
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// RabbitMQ URL (`AMQP_URL`).
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Analyzer base URL (`ANALYZER_URL`).
pub const DEFAULT_ANALYZER_URL: &str = "http://127.0.0.1:8081";
/// PostgreSQL schema holding the tables (`RISK_SCHEMA`).
pub const DEFAULT_SCHEMA: &str = "risk_demo";
/// RabbitMQ queue of `risk.flagged` messages (`RISK_QUEUE`).
pub const DEFAULT_QUEUE: &str = "risk.flagged";

/// The environment of one process, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `AMQP_URL`.
    pub amqp_url: String,
    /// `ANALYZER_URL`, without a trailing slash.
    pub analyzer_url: String,
    /// `RISK_SCHEMA`: PostgreSQL schema, also the prefix of Redis keys. Only `[a-z0-9_]`.
    pub schema: String,
    /// `RISK_QUEUE`: the queue `risk.flagged` messages go to.
    pub queue: String,
}

impl Settings {
    /// Reads the variables, falling back to the loopback defaults; fails on a schema name
    /// that is not a plain lower-case identifier (it is spliced into SQL).
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let schema = var("RISK_SCHEMA", DEFAULT_SCHEMA);
        if !valid_identifier(&schema) {
            return Err(format!(
                "RISK_SCHEMA={schema:?}: expected 1-48 characters of a-z, 0-9 and _, starting with a letter"
            ));
        }
        Ok(Self {
            database_url: var("DATABASE_URL", DEFAULT_DATABASE_URL),
            redis_url: var("REDIS_URL", DEFAULT_REDIS_URL),
            amqp_url: var("AMQP_URL", DEFAULT_AMQP_URL),
            analyzer_url: var("ANALYZER_URL", DEFAULT_ANALYZER_URL)
                .trim_end_matches('/')
                .to_owned(),
            schema,
            queue: var("RISK_QUEUE", DEFAULT_QUEUE),
        })
    }
}

/// Whether `s` may be used as a schema name without quoting.
pub fn valid_identifier(s: &str) -> bool {
    (1..=48).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::valid_identifier;

    #[test]
    fn identifiers() {
        assert!(valid_identifier("risk_demo"));
        assert!(valid_identifier("risk_1234_abc"));
        assert!(!valid_identifier(""));
        assert!(!valid_identifier("1risk"));
        assert!(!valid_identifier("risk;drop table x"));
        assert!(!valid_identifier("Risk"));
    }
}
