//! `otel-core`: the foundation of the suite.
//!
//! One builder sets up an OpenTelemetry pipeline from the standard `OTEL_*` environment
//! variables (overridable in code); the rest of the crate holds what every adapter shares:
//! context propagation and carriers, exemplar-tagged histograms, `tracing` interop and the
//! in-memory testing harness (feature `testing`).

pub mod metrics;
pub mod propagation;
