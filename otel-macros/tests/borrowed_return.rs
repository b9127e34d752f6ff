//! Sync functions with `err` or `ret` that return a reborrow of a `&mut` argument.
//!
//! The traced body runs in a closure so that `return` and `?` in it still reach the outcome
//! recording. That closure must be called as `FnOnce`: inferred as `FnMut`, a reborrow of a
//! captured `&mut` could not escape it and these functions would not compile (the problem
//! tokio-rs/tracing#2857 describes for `#[instrument]`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry::trace::Status;
use opentelemetry::{Context, ContextGuard};
use opentelemetry_semantic_conventions::attribute::ERROR_TYPE;
use otel_core::macro_support::{RETURN, with_instrumentation};
use otel_core::testing::{TestTelemetry, assert_attr, assert_no_attr};
use otel_core::traced;

fn capture() -> (TestTelemetry, ContextGuard) {
    let tt = TestTelemetry::new();
    let guard = with_instrumentation(&Context::current(), &tt.instrumentation("test")).attach();
    (tt, guard)
}

struct Slots(Vec<u8>);

impl Slots {
    #[traced(err)]
    fn slot(&mut self, i: usize) -> Result<&mut u8, String> {
        self.0.get_mut(i).ok_or_else(|| "oob".into())
    }

    #[traced(ret)]
    fn first(&mut self) -> Option<&mut u8> {
        self.0.first_mut()
    }

    #[traced(ret, err)]
    fn checked_slot(&mut self, i: usize) -> Result<&mut u8, String> {
        if i == usize::MAX {
            // An early return leaves the closure, not the function, and is still recorded.
            return Err("no such slot".to_owned());
        }
        let slot = self.0.get_mut(i).ok_or("oob")?;
        Ok(slot)
    }
}

#[traced(ret)]
fn last<'a>(values: &'a mut [u8], note: &str) -> &'a mut u8 {
    let n = values.len();
    &mut values[n - 1]
}

#[test]
fn err_with_a_reborrowed_mut_reference_compiles_and_records() {
    let (tt, _g) = capture();
    let mut slots = Slots(vec![1, 2, 3]);
    *slots.slot(1).unwrap() = 20;
    assert_eq!(slots.slot(7).unwrap_err(), "oob");
    assert_eq!(slots.0, [1, 20, 3]);

    let spans = tt.spans_named("slot");
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].status, Status::Unset);
    assert_no_attr(&spans[0], ERROR_TYPE);
    assert_eq!(spans[1].status, Status::error("oob"));
    assert_attr(&spans[1], ERROR_TYPE, "alloc::string::String");
}

#[test]
fn ret_with_a_reborrowed_mut_reference_compiles_and_records() {
    let (tt, _g) = capture();
    let mut slots = Slots(vec![4, 5]);
    *slots.first().unwrap() += 1;
    *slots.checked_slot(1).unwrap() = 50;
    assert_eq!(slots.checked_slot(9).unwrap_err(), "oob");
    assert_eq!(slots.checked_slot(usize::MAX).unwrap_err(), "no such slot");
    assert_eq!(slots.0, [5, 50]);
    let mut values = [7_u8, 8, 9];
    *last(&mut values, "x") = 90;
    assert_eq!(values, [7, 8, 90]);

    // Recorded before the caller wrote through the reference.
    assert_attr(&tt.span("first"), RETURN, 4_i64);
    let checked = tt.spans_named("checked_slot");
    assert_eq!(checked.len(), 3);
    assert_attr(&checked[0], RETURN, 5_i64);
    assert_eq!(checked[0].status, Status::Unset);
    assert_no_attr(&checked[1], RETURN);
    assert_eq!(checked[1].status, Status::error("oob"));
    assert_attr(&checked[1], ERROR_TYPE, "alloc::string::String");
    assert_eq!(checked[2].status, Status::error("no such slot"));
    let last = tt.span("last");
    assert_attr(&last, RETURN, 9_i64);
    assert_attr(&last, "note", "x");
}
