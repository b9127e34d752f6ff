//! OpenTelemetry instrumentation for sqlx.
pub mod sql;
