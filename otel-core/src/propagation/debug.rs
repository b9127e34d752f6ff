//! The "debug" sampling decision of B3 (`b3: …-d`, `X-B3-Flags: 1`) and Jaeger (flag `0x02`).
//!
//! OpenTelemetry's [`TraceFlags`](opentelemetry::trace::TraceFlags) has no debug bit (the
//! W3C defines bit `0x02` as `random`, and the other bits are reserved and exported in OTLP),
//! so the decision travels as a value in the [`Context`] next to the span context, tied to the
//! trace id it was received with. A span context carrying debug is always marked sampled too,
//! as both specifications say debug implies an accept decision.

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, TraceId};

/// Context value: the trace `trace_id` was received with the debug flag.
#[derive(Debug, Clone, Copy)]
struct DebugFlag {
    trace_id: TraceId,
}

/// Returns `cx` with the debug flag recorded for `trace_id`.
pub(crate) fn with_debug(cx: Context, trace_id: TraceId) -> Context {
    cx.with_value(DebugFlag { trace_id })
}

/// Whether `span_context` belongs to a trace that was received with the debug flag.
pub(crate) fn is_debug(cx: &Context, span_context: &SpanContext) -> bool {
    cx.get::<DebugFlag>()
        .is_some_and(|flag| flag.trace_id == span_context.trace_id())
}
