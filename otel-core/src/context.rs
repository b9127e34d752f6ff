//! Carrying the OpenTelemetry context across `.await` points and into spawned tasks.
//!
//! The OpenTelemetry context is thread-local: a future that moves between threads loses it
//! unless the future carries it. [`FutureExt::with_context`] (re-exported here) wraps a future so
//! that the context is attached each time the future is polled; [`spawn`] does the same for a new
//! tokio task, which otherwise starts with an empty context.
//!
//! ```
//! # async fn demo() {
//! use otel_core::context::{spawn, FutureExt};
//! use opentelemetry::Context;
//!
//! // Work in the background that stays in the current trace:
//! let handle = spawn(async { /* spans started here are children of the current span */ });
//! handle.await.expect("task finished");
//!
//! // The same for any future:
//! let cx = Context::current();
//! async { /* … */ }.with_context(cx).await;
//! # }
//! ```

use opentelemetry::Context;
pub use opentelemetry::context::FutureExt;
use opentelemetry::trace::TraceContextExt;

/// Spawns `future` on the current tokio runtime with the caller's current OpenTelemetry
/// context attached, so spans it starts belong to the caller's trace.
///
/// Panics only where [`tokio::spawn`] does: when called outside a tokio runtime.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.with_context(Context::current()))
}

/// The trace id and span id of the current span as lowercase hex, when there is a valid one.
pub fn current_ids() -> Option<(String, String)> {
    let cx = Context::current();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}
