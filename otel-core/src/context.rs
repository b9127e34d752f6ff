//! Carrying the OpenTelemetry context across `.await` points and into spawned tasks.
//!
//! The OpenTelemetry context is thread-local: a future that moves between threads loses it
//! unless the future carries it. [`FutureExt::with_context`] (re-exported here) wraps a future so
//! that the context is attached each time the future is polled; [`spawn`] does the same for a new
//! tokio task, which otherwise starts with an empty context.
//!
//! ```
//! # async fn demo() {
//! use opentelemetry::Context;
//! use otel_core::context::{FutureExt, spawn};
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
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tokio::task::JoinError> {
/// use opentelemetry::Context;
/// use opentelemetry::trace::{TraceContextExt as _, TraceId, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
///
/// fn current_trace() -> TraceId {
///     Context::current().span().span_context().trace_id()
/// }
///
/// let tracer = SdkTracerProvider::builder().build().tracer("example");
/// let request = Context::current_with_span(tracer.start("request"));
/// let (carried, plain) = {
///     let _guard = request.clone().attach();
///     (
///         otel_core::context::spawn(async { current_trace() }),
///         tokio::spawn(async { current_trace() }),
///     )
/// };
/// assert_eq!(carried.await?, request.span().span_context().trace_id());
/// assert_eq!(plain.await?, TraceId::INVALID); // a plain task starts with an empty context
///     
/// # Ok(())
/// # }
/// ```
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.with_context(Context::current()))
}

/// The trace id and span id of the current span as lowercase hex, when there is a valid one.
///
/// ```
/// use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use otel_core::context::current_ids;
///
/// assert_eq!(current_ids(), None); // no span is current
/// let tracer = SdkTracerProvider::builder().build().tracer("example");
/// tracer.in_span("work", |cx| {
///     let (trace_id, span_id) = current_ids().expect("a span is current");
///     assert_eq!(trace_id, cx.span().span_context().trace_id().to_string());
///     assert_eq!(span_id.len(), 16);
/// });
/// ```
pub fn current_ids() -> Option<(String, String)> {
    let cx = Context::current();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}
