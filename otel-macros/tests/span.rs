//! The span of a traced function: name, kind, code.* attributes, arguments, parents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _};
use opentelemetry::{Context, ContextGuard, Value};
use opentelemetry_semantic_conventions::attribute::{
    CODE_COLUMN_NUMBER, CODE_FILE_PATH, CODE_FUNCTION_NAME, CODE_LINE_NUMBER,
};
use otel_core::macro_support::with_instrumentation;
use otel_core::testing::{TestTelemetry, assert_attr, assert_child_of, assert_no_attr, attr};
use otel_core::traced;

/// A pipeline of its own, routed to for the current thread until the guard drops.
fn capture() -> (TestTelemetry, ContextGuard) {
    let tt = TestTelemetry::new();
    let guard = with_instrumentation(&Context::current(), &tt.instrumentation("test")).attach();
    (tt, guard)
}

#[traced]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[test]
fn default_span_is_internal_named_after_the_function_with_code_attributes() {
    let (tt, _g) = capture();
    assert_eq!(add(2, 3), 5);
    let span = tt.span("add");
    assert_eq!(span.span_kind, SpanKind::Internal);
    assert_eq!(span.status, Status::Unset);
    assert_attr(&span, CODE_FUNCTION_NAME, "span::add");
    assert_attr(&span, CODE_FILE_PATH, file!());
    assert_attr(&span, CODE_LINE_NUMBER, 21);
    assert_attr(&span, CODE_COLUMN_NUMBER, 4);
    assert_attr(&span, "a", 2);
    assert_attr(&span, "b", 3);
    assert!(span.parent_span_id == opentelemetry::trace::SpanId::INVALID);
}
