//! How a call ends: `err`, `ret`, panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;

use opentelemetry::trace::Status;
use opentelemetry::{Context, ContextGuard};
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, EXCEPTION_MESSAGE, EXCEPTION_TYPE,
};
use otel_core::macro_support::{RETURN, with_instrumentation};
use otel_core::testing::{TestTelemetry, assert_attr, assert_no_attr};
use otel_core::traced;

fn capture() -> (TestTelemetry, ContextGuard) {
    let tt = TestTelemetry::new();
    let guard = with_instrumentation(&Context::current(), &tt.instrumentation("test")).attach();
    (tt, guard)
}

#[derive(Debug)]
enum PaymentError {
    Declined { code: u16 },
}

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Declined { code } => write!(f, "card declined ({code})"),
        }
    }
}

impl std::error::Error for PaymentError {}

#[traced(err)]
fn charge(amount: u64) -> Result<u64, PaymentError> {
    if amount > 100 {
        return Err(PaymentError::Declined { code: 51 });
    }
    Ok(amount)
}

#[traced(err(Debug))]
fn charge_debug(amount: u64) -> Result<u64, PaymentError> {
    charge(amount)
}

type AppResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[traced(err)]
fn parse(input: &str) -> AppResult<u32> {
    let n: u32 = input.parse()?;
    Ok(n)
}

fn exception(span: &SpanData) -> Vec<(String, String)> {
    span.events
        .iter()
        .filter(|e| e.name == "exception")
        .map(|e| {
            let get = |k: &str| {
                e.attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == k)
                    .map(|kv| kv.value.to_string())
                    .unwrap_or_default()
            };
            (get(EXCEPTION_TYPE), get(EXCEPTION_MESSAGE))
        })
        .collect()
}

#[test]
fn err_records_status_exception_event_and_error_type() {
    let (tt, _g) = capture();
    assert_eq!(charge(5).unwrap(), 5);
    assert!(charge(500).is_err());
    let spans = tt.spans_named("charge");
    let (ok, failed) = (&spans[0], &spans[1]);
    assert_eq!(ok.status, Status::Unset);
    assert!(ok.events.is_empty());
    assert_no_attr(ok, ERROR_TYPE);

    assert_eq!(failed.status, Status::error("card declined (51)"));
    assert_attr(failed, ERROR_TYPE, "outcome::PaymentError");
    assert_eq!(
        exception(failed),
        [(
            "outcome::PaymentError".to_owned(),
            "card declined (51)".to_owned()
        )]
    );
}

#[test]
fn err_debug_uses_the_debug_text_and_aliases_of_result_work() {
    let (tt, _g) = capture();
    assert!(charge_debug(500).is_err());
    assert_eq!(
        tt.span("charge_debug").status,
        Status::error("Declined { code: 51 }")
    );
    assert!(parse("x").is_err());
    assert_eq!(parse("12").unwrap(), 12);
    let spans = tt.spans_named("parse");
    assert_eq!(
        spans[0].status,
        Status::error("invalid digit found in string")
    );
    assert_attr(
        &spans[0],
        ERROR_TYPE,
        "alloc::boxed::Box<dyn core::error::Error + core::marker::Send + core::marker::Sync>",
    );
    assert_eq!(spans[1].status, Status::Unset);
}

#[traced(ret)]
fn double(n: i64) -> i64 {
    n * 2
}

#[traced(ret, err)]
fn checked(n: u8) -> Result<u8, String> {
    n.checked_mul(2).ok_or_else(|| "overflow".to_owned())
}

#[traced(ret(Display))]
fn greet(name: &str) -> String {
    format!("hello {name}")
}

#[traced(ret)]
fn pair() -> (u8, &'static str) {
    (1, "a")
}

#[test]
fn ret_records_the_return_value() {
    let (tt, _g) = capture();
    double(21);
    checked(3).unwrap();
    checked(200).unwrap_err();
    greet("ann");
    pair();
    assert_attr(&tt.span("double"), RETURN, 42);
    let checked = tt.spans_named("checked");
    assert_attr(&checked[0], RETURN, 6);
    assert_no_attr(&checked[1], RETURN);
    assert_eq!(checked[1].status, Status::error("overflow"));
    assert_attr(&tt.span("greet"), RETURN, "hello ann");
    assert_attr(&tt.span("pair"), RETURN, "(1, \"a\")");
}

#[traced]
fn explode(n: u32) -> u32 {
    if n > 0 {
        panic!("boom {n}");
    }
    n
}

#[traced(err)]
fn explode_in_result() -> Result<(), String> {
    explode(1);
    Ok(())
}

#[test]
fn a_panic_ends_the_span_with_an_error() {
    let (tt, _g) = capture();
    let caught = std::panic::catch_unwind(|| explode(3));
    assert!(caught.is_err());
    let caught = std::panic::catch_unwind(explode_in_result);
    assert!(caught.is_err());
    let spans = tt.spans_named("explode");
    assert_eq!(spans.len(), 2);
    for span in spans.iter().chain([&tt.span("explode_in_result")]) {
        assert_eq!(span.status, Status::error("the function panicked"));
        assert_attr(span, ERROR_TYPE, "panic");
    }
    // The context of the panicked call is no longer current.
    assert_eq!(explode(0), 0);
    assert_eq!(
        tt.spans_named("explode")[2].parent_span_id,
        opentelemetry::trace::SpanId::INVALID
    );
}

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        // A traced call made while unwinding from somebody else's panic is not a panic.
        double(1);
    }
}

#[test]
fn a_call_made_during_unwinding_is_not_marked_as_panicked() {
    let (tt, _g) = capture();
    let caught = std::panic::catch_unwind(|| {
        let _guard = Guard;
        panic!("elsewhere");
    });
    assert!(caught.is_err());
    assert_eq!(tt.span("double").status, Status::Unset);
}
