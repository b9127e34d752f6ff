//! Arguments and errors whose `Debug` or `Display` fails are recorded with what they wrote,
//! instead of panicking the traced call (`format!` would).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry::trace::Status;
use opentelemetry::{Context, ContextGuard};
use otel_core::macro_support::with_instrumentation;
use otel_core::testing::{TestTelemetry, assert_attr};
use otel_core::traced;

fn capture() -> (TestTelemetry, ContextGuard) {
    let tt = TestTelemetry::new();
    let guard = with_instrumentation(&Context::current(), &tt.instrumentation("test")).attach();
    (tt, guard)
}

/// A `Debug` (and `Display`) that writes part of its text, then fails.
struct Failing;

impl std::fmt::Debug for Failing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("partial")?;
        Err(std::fmt::Error)
    }
}

impl std::fmt::Display for Failing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("shown")?;
        Err(std::fmt::Error)
    }
}

#[traced(err)]
fn with_failing(arg: Failing) -> Result<(), Failing> {
    Err(arg)
}

/// Arguments and errors whose formatting fails are recorded with what they wrote, instead of
/// panicking the traced call (`format!` would).
#[test]
fn failing_formatting_is_recorded_not_a_panic() {
    let (tt, _g) = capture();
    assert!(with_failing(Failing).is_err());
    let span = tt.span("with_failing");
    assert_attr(&span, "arg", "partial");
    assert_eq!(span.status, Status::error("shown"));
}
