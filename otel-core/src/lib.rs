#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
pub mod console;
pub mod context;
pub mod instrument;
pub mod limits;
pub mod logs;
pub mod macro_support;
pub mod metrics;
mod pipeline;
pub mod propagation;
pub mod redact;
pub mod resource;
pub mod sampling;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use config::{ConfigError, EnvSource, OtlpProtocol};
pub use macro_support::SpanAttributes;
pub use otel_macros::{SpanAttributes, traced};
pub use pipeline::{
    ExportStats, ShutdownReport, Telemetry, TelemetryBuilder, TelemetryGuard, TracesExporter,
};

/// The semantic-convention names used across the suite (re-export of
/// `opentelemetry-semantic-conventions`, with its experimental names on).
pub use opentelemetry_semantic_conventions as semconv;

/// Re-exports for adapter crates and generated code, so they name one version of each.
pub use opentelemetry;
