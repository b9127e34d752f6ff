//! The span of a traced function: name, kind, code.* attributes, arguments, and its parent
//! (another traced function, a request span, a user's `tracing` span).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Debug;

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{Context, ContextGuard};
use opentelemetry_semantic_conventions::attribute::{
    CODE_COLUMN_NUMBER, CODE_FILE_PATH, CODE_FUNCTION_NAME, CODE_LINE_NUMBER,
};
use otel_core::macro_support::with_instrumentation;
use otel_core::testing::{TestTelemetry, assert_attr, assert_child_of, assert_no_attr};
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
    assert_attr(&span, CODE_LINE_NUMBER, 24);
    assert_attr(&span, CODE_COLUMN_NUMBER, 4);
    assert_attr(&span, "a", 2);
    assert_attr(&span, "b", 3);
    assert_eq!(span.parent_span_id, SpanId::INVALID);
    assert_eq!(span.instrumentation_scope.name(), "test");
}

#[traced(name = "GET /accounts/{id}", kind = server)]
fn server_fn() {}
#[traced(kind = client)]
fn client_fn() {}
#[traced(kind = producer)]
fn producer_fn() {}
#[traced(kind = consumer)]
fn consumer_fn() {}
#[traced(kind = internal)]
fn internal_fn() {}

#[test]
fn name_and_kind_options() {
    let (tt, _g) = capture();
    server_fn();
    client_fn();
    producer_fn();
    consumer_fn();
    internal_fn();
    assert_eq!(tt.span("GET /accounts/{id}").span_kind, SpanKind::Server);
    assert_attr(
        &tt.span("GET /accounts/{id}"),
        CODE_FUNCTION_NAME,
        "span::server_fn",
    );
    assert_eq!(tt.span("client_fn").span_kind, SpanKind::Client);
    assert_eq!(tt.span("producer_fn").span_kind, SpanKind::Producer);
    assert_eq!(tt.span("consumer_fn").span_kind, SpanKind::Consumer);
    assert_eq!(tt.span("internal_fn").span_kind, SpanKind::Internal);
}

#[derive(Debug)]
struct Repo {
    table: &'static str,
}

trait Store {
    fn get(&self, id: u64) -> Option<String>;
}

impl Repo {
    #[traced]
    fn load(&self, id: u64, label: &str) -> String {
        format!("{}:{id}:{label}", self.table)
    }

    #[traced]
    fn consume(self) -> &'static str {
        self.table
    }
}

impl Store for Repo {
    #[traced]
    fn get(&self, id: u64) -> Option<String> {
        Some(id.to_string())
    }
}

#[test]
fn methods_carry_their_type_in_code_function_name_and_do_not_record_self() {
    let (tt, _g) = capture();
    let repo = Repo { table: "accounts" };
    assert_eq!(repo.load(7, "x"), "accounts:7:x");
    assert_eq!(repo.get(8).as_deref(), Some("8"));
    assert_eq!(repo.consume(), "accounts");
    let load = tt.span("load");
    assert_attr(&load, CODE_FUNCTION_NAME, "span::Repo::load");
    assert_attr(&load, "id", 7);
    assert_attr(&load, "label", "x");
    assert_no_attr(&load, "self");
    assert_attr(
        &tt.span("get"),
        CODE_FUNCTION_NAME,
        "<span::Repo as span::Store>::get",
    );
    assert_attr(
        &tt.span("consume"),
        CODE_FUNCTION_NAME,
        "span::Repo::consume",
    );
}

#[traced]
fn first<T: Debug + Clone>(items: &[T], fallback: T) -> T {
    items.first().cloned().unwrap_or(fallback)
}

#[traced(skip(numbers))]
fn total(numbers: impl IntoIterator<Item = u32>, label: impl Debug) -> u32 {
    let _ = label;
    numbers.into_iter().sum()
}

#[derive(Debug)]
struct Pair(u8, u8);

#[traced]
fn patterns((left, right): (u32, &str), Pair(x, _): Pair, _unused: bool, _: u8) -> u32 {
    let _ = pair_second(Pair(0, 0));
    left + right.len() as u32 + u32::from(x)
}

#[test]
fn generic_functions_impl_trait_arguments_and_patterns() {
    let (tt, _g) = capture();
    assert_eq!(first(&[3_i64, 4], 0), 3);
    assert_eq!(first::<String>(&[], "none".into()), "none");
    assert_eq!(total(vec![1, 2, 3], 'c'), 6);
    assert_eq!(patterns((1, "ab"), Pair(4, 5), true, 9), 7);

    let firsts = tt.spans_named("first");
    assert_eq!(firsts.len(), 2);
    assert_attr(&firsts[0], "items", "[3, 4]");
    assert_attr(&firsts[0], "fallback", "0");
    assert_attr(&firsts[1], "fallback", "\"none\"");
    assert_attr(&firsts[0], CODE_FUNCTION_NAME, "span::first");

    let total = tt.span("total");
    assert_no_attr(&total, "numbers");
    assert_attr(&total, "label", "'c'");

    let p = tt.span("patterns");
    assert_attr(&p, "left", 1);
    assert_attr(&p, "right", "ab");
    assert_attr(&p, "x", "4");
    assert_attr(&p, "_unused", true);
}

#[traced]
fn outer() -> u32 {
    inner() + 1
}

#[traced]
fn inner() -> u32 {
    1
}

#[test]
fn nested_traced_functions_are_parent_and_child() {
    let (tt, _g) = capture();
    assert_eq!(outer(), 2);
    assert_child_of(&tt.span("inner"), &tt.span("outer"));
}

#[test]
fn nests_under_a_request_span() {
    // The Operation every adapter opens (here kind Server, as otel-tower's layer does), made
    // current while the handler runs; tests/axum_handler.rs does it with otel-tower itself.
    let (tt, _g) = capture();
    let inst = tt.instrumentation("otel-tower");
    let request = inst.start(
        &Context::current(),
        "GET /accounts/{id}",
        SpanKind::Server,
        vec![],
    );
    {
        let _attached = request.context().clone().attach();
        outer();
    }
    request.end();
    let request = tt.span("GET /accounts/{id}");
    assert_child_of(&tt.span("outer"), &request);
    assert_child_of(&tt.span("inner"), &tt.span("outer"));
}

#[tracing::instrument]
fn tracing_instrumented(n: u32) -> u32 {
    n
}

#[traced]
fn calls_tracing_instrumented() -> u32 {
    tracing_instrumented(5)
}

#[test]
fn nests_under_a_users_tracing_span_and_parents_tracing_spans() {
    let (tt, _g) = capture();
    let _sub = tt.set_tracing_default();
    tracing::info_span!("checkout").in_scope(|| {
        assert_eq!(calls_tracing_instrumented(), 5);
    });
    let checkout = tt.span("checkout");
    let traced = tt.span("calls_tracing_instrumented");
    assert_child_of(&traced, &checkout);
    assert_child_of(&tt.span("tracing_instrumented"), &traced);
}

fn pair_second(p: Pair) -> u8 {
    p.1
}

/// A diverging function (`-> !`) compiles and records its panic.
#[otel_core::traced]
fn fatal(message: &str) -> ! {
    panic!("{message}")
}

#[test]
fn a_diverging_function_records_its_panic() {
    let (tt, _guard) = capture();
    let result = std::panic::catch_unwind(|| fatal("out of disk"));
    assert!(result.is_err());
    assert_attr(&tt.span("fatal"), "error.type", "panic");
}
