#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// Implements `SpanProcessor` for `$ty<P>`, a wrapper whose field `inner: P` is the next
/// processor: `on_end` runs `$on_end` (with `$this` for `self` and `$span` for the owned span,
/// which the body hands on), everything else goes straight to `inner`.
macro_rules! wrapping_span_processor {
    ($ty:ident, |$this:ident, $span:ident| $on_end:block) => {
        impl<P: opentelemetry_sdk::trace::SpanProcessor> opentelemetry_sdk::trace::SpanProcessor
            for $ty<P>
        {
            fn on_start(
                &self,
                span: &mut opentelemetry_sdk::trace::Span,
                cx: &opentelemetry::Context,
            ) {
                self.inner.on_start(span, cx);
            }
            #[allow(unused_mut)]
            fn on_end(&$this, mut $span: opentelemetry_sdk::trace::SpanData) $on_end
            fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
                self.inner.force_flush()
            }
            fn shutdown_with_timeout(
                &self,
                timeout: std::time::Duration,
            ) -> opentelemetry_sdk::error::OTelSdkResult {
                self.inner.shutdown_with_timeout(timeout)
            }
            fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
                self.inner.set_resource(resource);
            }
        }
    };
}

/// `value`'s `Debug` text. Where `format!` panics when an implementation returns an error,
/// this keeps what was written up to the error.
pub(crate) fn debug_text<T: std::fmt::Debug + ?Sized>(value: &T) -> String {
    let mut out = String::new();
    let _ = std::fmt::Write::write_fmt(&mut out, format_args!("{value:?}"));
    out
}

/// `value`'s `Display` text, as [`debug_text`]: never panics.
pub(crate) fn display_text<T: std::fmt::Display + ?Sized>(value: &T) -> String {
    let mut out = String::new();
    let _ = std::fmt::Write::write_fmt(&mut out, format_args!("{value}"));
    out
}

pub mod config;
pub mod console;
pub mod context;
pub mod instrument;
pub mod limits;
mod log_rewrite;
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
