//! `skip`, `skip_all`, `fields(..)` and attribute sets (`#[derive(SpanAttributes)]`), with
//! redaction checked against everything exported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;

use opentelemetry::{Context, ContextGuard, KeyValue, Value};
use otel_core::macro_support::{REDACTED, with_instrumentation};
use otel_core::testing::{TestTelemetry, assert_attr, assert_no_attr};
use otel_core::{SpanAttributes, traced};

fn capture() -> (TestTelemetry, ContextGuard) {
    let tt = TestTelemetry::new();
    let guard = with_instrumentation(&Context::current(), &tt.instrumentation("test")).attach();
    (tt, guard)
}

struct Secret(&'static str);

#[traced(skip(password))]
fn login(user: &str, password: Secret) -> bool {
    !user.is_empty() && !password.0.is_empty()
}

#[traced(skip_all)]
fn store(key: &str, value: Vec<u8>) -> usize {
    key.len() + value.len()
}

#[test]
fn skip_and_skip_all_leave_arguments_out() {
    let (tt, _g) = capture();
    assert!(login("ann", Secret("hunter2")));
    assert_eq!(store("k", vec![1, 2]), 3);
    let login = tt.span("login");
    assert_attr(&login, "user", "ann");
    assert_no_attr(&login, "password");
    let store = tt.span("store");
    assert_no_attr(&store, "key");
    assert_no_attr(&store, "value");
}

#[derive(Debug)]
enum Region {
    Eu,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("eu-west")
    }
}

#[traced(skip(region), fields(
    app.region = %region,
    app.region_debug = ?region,
    app.items = items.len(),
    "app.literal-key" = "x",
    r#type = "t",
    maybe = None::<u32>,
    items = "overridden",
))]
fn place(region: Region, items: Vec<u32>) -> usize {
    items.len()
}

#[test]
fn fields_are_recorded_with_value_display_and_debug_forms() {
    let (tt, _g) = capture();
    assert_eq!(place(Region::Eu, vec![1, 2, 3]), 3);
    let span = tt.span("place");
    assert_attr(&span, "app.region", "eu-west");
    assert_attr(&span, "app.region_debug", "Eu");
    assert_attr(&span, "app.items", 3);
    assert_attr(&span, "app.literal-key", "x");
    assert_attr(&span, "type", "t");
    assert_no_attr(&span, "maybe");
    // A field named like an argument replaces it.
    assert_attr(&span, "items", "overridden");
    assert_eq!(
        span.attributes
            .iter()
            .filter(|kv| kv.key.as_str() == "items")
            .count(),
        1
    );
}

#[derive(SpanAttributes)]
#[otel(prefix = "app.")]
struct OrderContext {
    #[otel(rename = "app.tenant.id")]
    tenant: String,
    order_id: u64,
    account_id: Option<u64>,
    coupon: Option<String>,
    #[otel(redact)]
    card_number: String,
    #[otel(skip)]
    _internal: Vec<u8>,
    #[otel(display)]
    region: Region,
    #[otel(debug)]
    tags: Vec<&'static str>,
    #[otel(flatten)]
    customer: Customer,
}

#[derive(SpanAttributes)]
struct Customer {
    #[otel(rename = "app.customer.tier")]
    tier: &'static str,
    #[otel(redact, rename = "app.customer.email")]
    email: String,
}

const CARD: &str = "4111-1111-1111-1111";
const EMAIL: &str = "ann@example.com";

fn order() -> OrderContext {
    OrderContext {
        tenant: "acme".into(),
        order_id: 42,
        account_id: Some(7),
        coupon: None,
        card_number: CARD.into(),
        _internal: vec![1],
        region: Region::Eu,
        tags: vec!["vip"],
        customer: Customer {
            tier: "gold",
            email: EMAIL.into(),
        },
    }
}

#[test]
fn derive_produces_renamed_prefixed_redacted_attributes() {
    let kvs = order().attributes();
    let keys: Vec<&str> = kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "app.tenant.id",
            "app.order_id",
            "app.account_id",
            "app.card_number",
            "app.region",
            "app.tags",
            "app.customer.tier",
            "app.customer.email",
        ]
    );
    assert_eq!(kvs[0].value, Value::from("acme"));
    assert_eq!(kvs[1].value, Value::I64(42));
    assert_eq!(kvs[2].value, Value::I64(7));
    assert_eq!(kvs[3].value, Value::from(REDACTED));
    assert_eq!(kvs[4].value, Value::from("eu-west"));
    assert_eq!(kvs[5].value, Value::from("[\"vip\"]"));
    assert_eq!(kvs[7].value, Value::from(REDACTED));
}

#[traced(skip(order), fields(order, app.step = "pay"), metrics)]
fn pay(order: &OrderContext, amount: u64) -> u64 {
    amount + order.order_id
}

#[traced(skip_all)]
fn refund(order: &OrderContext) {
    order.record_on_current_span();
}

#[test]
fn attribute_sets_in_fields_and_on_the_current_span_never_leak_redacted_values() {
    let (tt, _g) = capture();
    let o = order();
    assert_eq!(pay(&o, 8), 50);
    refund(&o);
    let slice: &[KeyValue] = &[KeyValue::new("app.extra", 1)];
    let set: Option<&[KeyValue]> = Some(slice);
    set_attributes_of_slices(set);
    for name in ["pay", "refund"] {
        let span = tt.span(name);
        assert_attr(&span, "app.tenant.id", "acme");
        assert_attr(&span, "app.order_id", 42);
        assert_attr(&span, "app.card_number", REDACTED);
        assert_attr(&span, "app.customer.email", REDACTED);
        assert_attr(&span, "app.customer.tier", "gold");
        assert_no_attr(&span, "app._internal");
        assert_no_attr(&span, "app.coupon");
    }
    assert_attr(&tt.span("pay"), "app.step", "pay");
    assert_attr(&tt.span("pay"), "amount", 8);
    assert_attr(&tt.span("set_attributes_of_slices"), "app.extra", 1);
    // The redacted values appear nowhere in what was exported.
    let exported = format!("{:?}", tt.spans());
    assert!(!exported.contains(CARD), "{exported}");
    assert!(!exported.contains(EMAIL), "{exported}");
    let metrics = format!("{:?}", tt.metrics().snapshot());
    assert!(metrics.contains("fields::pay"), "{metrics}");
    assert!(
        !metrics.contains(CARD) && !metrics.contains(EMAIL),
        "{metrics}"
    );
    assert!(exported.contains("acme"));
    // (The values are still there for the program itself.)
    assert_eq!(
        (o.card_number.as_str(), o.customer.email.as_str()),
        (CARD, EMAIL)
    );
}

#[traced(skip_all, fields(set))]
fn set_attributes_of_slices(set: Option<&[KeyValue]>) {
    let _ = set;
}

#[derive(SpanAttributes)]
struct Generic<T: otel_core::macro_support::ToAttributeValue> {
    value: T,
}

#[test]
fn derive_on_generic_structs() {
    let kvs = Generic { value: 3_u8 }.attributes();
    assert_eq!(kvs, vec![KeyValue::new("value", 3)]);
}

#[test]
fn record_on_a_non_recording_span_does_nothing() {
    // No span current: the context's span is a no-op span.
    order().record_on_current_span();
}
