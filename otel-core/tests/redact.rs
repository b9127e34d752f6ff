//! Redaction of log output and span attributes, with property tests on the value patterns.
#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::{Arc, Mutex};

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Status, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
use otel_core::logs::{LogFormat, fmt_layer_with_redaction};
use otel_core::redact::{RedactingSpanProcessor, Redactor, cn_id_check_char};
use proptest::prelude::*;
use tracing_subscriber::prelude::*;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

fn capture(format: LogFormat, f: impl FnOnce()) -> String {
    let buf = Buf::default();
    let sub = tracing_subscriber::registry().with(fmt_layer_with_redaction(
        format,
        buf.clone(),
        Some(Redactor::new()),
    ));
    tracing::subscriber::with_default(sub, f);
    String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
}

fn luhn_complete(prefix: &str) -> String {
    // Appends the check digit making `prefix` + digit Luhn-valid.
    let mut sum = 0u32;
    for (i, c) in prefix.bytes().rev().enumerate() {
        let mut v = u32::from(c - b'0');
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    format!("{prefix}{}", (10 - sum % 10) % 10)
}

#[test]
fn json_lines_mask_names_patterns_and_nested_json() {
    let out = capture(LogFormat::Json, || {
        tracing::info!(
            password = "hunter2",
            api_key = 1234,
            user.email = "ann@example.com",
            card = 4111111111111111u64,
            body = r#"{"user":{"token":"abc","phone":"+1 415 555 0100","ids":["11010519491231002X"]}}"#,
            order = 42,
            "login by bob@example.org"
        );
    });
    let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let f = &line["fields"];
    assert_eq!(line["message"], "login by [REDACTED]");
    assert_eq!(f["password"], "[REDACTED]");
    assert_eq!(f["api_key"], "[REDACTED]");
    assert_eq!(f["user.email"], "[REDACTED]");
    assert_eq!(f["card"], "[REDACTED]");
    assert_eq!(f["order"], 42);
    let body: serde_json::Value = serde_json::from_str(f["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["user"]["token"], "[REDACTED]");
    assert_eq!(body["user"]["phone"], "[REDACTED]");
    assert_eq!(body["user"]["ids"][0], "[REDACTED]");
    for secret in ["hunter2", "ann@", "4111", "abc", "555 0100", "1101051949"] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }
}

#[test]
fn nested_json_values_are_redacted_in_place() {
    let r = Redactor::new();
    let mut v = serde_json::json!({
        "a": [{"Authorization": "Bearer x"}, {"deep": {"mail": "x.y@corp.example.com"}}],
        "cookie": {"session": "s"},
        "n": 5500005555555559u64,
        "ok": "fine",
    });
    r.redact_json(&mut v);
    assert_eq!(
        v,
        serde_json::json!({
            "a": [{"Authorization": "[REDACTED]"}, {"deep": {"mail": "[REDACTED]"}}],
            "cookie": "[REDACTED]",
            "n": "[REDACTED]",
            "ok": "fine",
        })
    );
}

#[test]
fn text_lines_mask_fields_and_message() {
    let out = capture(LogFormat::Text, || {
        tracing::warn!(
            token = "t0k3n",
            to = "ann@example.com",
            n = 3,
            "card 4111-1111-1111-1111 declined"
        );
    });
    assert!(
        out.contains(r#"card [REDACTED] declined token="[REDACTED]" to="[REDACTED]" n=3"#),
        "{out}"
    );
}

/// A `Debug` that writes part of its text, then fails.
struct FailingDebug;

impl std::fmt::Debug for FailingDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("partial")?;
        Err(std::fmt::Error)
    }
}

/// A field whose `Debug` fails does not panic the logging thread (as `format!` would): the
/// line is printed with what the field wrote, in both formats.
#[test]
fn a_failing_debug_field_is_printed_not_a_panic() {
    for format in [LogFormat::Text, LogFormat::Json] {
        let out = capture(format, || {
            tracing::warn!(state = ?FailingDebug, "still logged");
        });
        assert!(out.contains("still logged"), "{out}");
        assert!(out.contains("partial"), "{out}");
    }
}

#[test]
fn span_attributes_events_and_status_are_redacted_before_export() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(RedactingSpanProcessor::new(
            SimpleSpanProcessor::new(exporter.clone()),
            Redactor::new(),
        ))
        .build();
    let tracer = provider.tracer("t");
    let mut span = tracer.start("login");
    span.set_attribute(KeyValue::new(
        "http.request.header.authorization",
        "Basic x",
    ));
    span.set_attribute(KeyValue::new("user.email", "ann@example.com"));
    span.set_attribute(KeyValue::new("user.id", 7));
    span.add_event(
        "exception",
        vec![KeyValue::new(
            "exception.message",
            "bad card 4111111111111111",
        )],
    );
    span.add_event("reset sent to ann@example.com", Vec::new());
    span.set_status(Status::error("no user 13812345678"));
    span.end();
    let spans = exporter.get_finished_spans().unwrap();
    let s = &spans[0];
    let get = |k: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .unwrap()
            .value
            .to_string()
    };
    assert_eq!(get("http.request.header.authorization"), "[REDACTED]");
    assert_eq!(get("user.email"), "[REDACTED]");
    assert_eq!(get("user.id"), "7");
    assert_eq!(
        s.events.events[0].attributes[0].value.to_string(),
        "bad card [REDACTED]"
    );
    assert_eq!(s.status, Status::error("no user [REDACTED]"));
    // A `tracing` event's message is the span event's name.
    assert_eq!(s.events.events[1].name, "reset sent to [REDACTED]");
}

/// A JSON-looking value with nothing to mask is left as written (no reordered keys, no
/// rounded numbers).
#[test]
fn json_values_with_nothing_secret_are_left_as_written() {
    let written = r#"{"z":1,"a":18446744073709551616}"#;
    let mut v = serde_json::json!({ "p": written });
    Redactor::new().redact_json(&mut v);
    assert_eq!(v, serde_json::json!({ "p": written }));
}

fn filler() -> impl Strategy<Value = String> {
    // Text that cannot hold a pattern: letters, spaces and punctuation, no digits or `@`.
    "[a-zA-Z ,;:!?]{0,30}"
}

proptest! {
    #[test]
    fn text_without_digits_or_at_is_untouched(s in "[^0-9@]{0,200}") {
        let r = Redactor::new();
        prop_assert_eq!(r.redact_str(&s), s.as_str());
    }

    #[test]
    fn emails_are_masked(
        pre in filler(), post in filler(),
        local in "[a-z][a-z0-9._+-]{0,15}[a-z0-9]", domain in "[a-z][a-z0-9-]{0,10}[a-z0-9]",
        tld in "[a-z]{2,6}",
    ) {
        let email = format!("{local}@{domain}.{tld}");
        let text = format!("{pre} {email} {post}");
        let out = Redactor::new().redact_str(&text).into_owned();
        prop_assert_eq!(out, format!("{pre} [REDACTED] {post}"));
    }

    #[test]
    fn luhn_valid_cards_are_masked_grouped_or_not(
        pre in filler(), post in filler(), body in "[1-9][0-9]{14}", grouped in any::<bool>(),
    ) {
        let card = luhn_complete(&body);
        let shown = if grouped {
            card.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" ")
        } else {
            card.clone()
        };
        let text = format!("{pre} {shown} {post}");
        let out = Redactor::new().redact_str(&text).into_owned();
        prop_assert_eq!(out, format!("{pre} [REDACTED] {post}"));
    }

    #[test]
    fn luhn_invalid_sixteen_digit_numbers_are_kept(body in "[1-9][0-9]{14}", bump in 1u8..10) {
        let valid = luhn_complete(&body);
        let last = valid.as_bytes()[15] - b'0';
        let invalid = format!("{}{}", &valid[..15], (last + bump) % 10);
        let text = format!("ref {invalid}");
        prop_assert_eq!(Redactor::new().redact_str(&text), text.as_str());
    }

    #[test]
    fn resident_ids_are_masked(
        area in "[1-6][0-9]{5}", year in 1900u32..2025, month in 1u32..13, day in 1u32..29,
        seq in "[0-9]{3}", lower in any::<bool>(),
    ) {
        let first17 = format!("{area}{year:04}{month:02}{day:02}{seq}");
        let mut check = cn_id_check_char(&first17).unwrap();
        if lower { check = check.to_ascii_lowercase(); }
        let text = format!("id: {first17}{check}.");
        prop_assert_eq!(Redactor::new().redact_str(&text).into_owned(), "id: [REDACTED].");
    }

    #[test]
    fn phones_are_masked(
        cc in 1u32..999, rest in "[0-9]{3} [0-9]{3} [0-9]{4}", area in "[2-9][0-9]{2}",
        mobile in "1[3-9][0-9]{9}",
    ) {
        let r = Redactor::new();
        let intl = format!("call +{cc} {rest} now");
        prop_assert_eq!(r.redact_str(&intl).into_owned(), "call [REDACTED] now");
        let nanp = format!("call ({area}) 555-0100 now");
        prop_assert_eq!(r.redact_str(&nanp).into_owned(), "call [REDACTED] now");
        let cn = format!("call {mobile} now");
        prop_assert_eq!(r.redact_str(&cn).into_owned(), "call [REDACTED] now");
    }

    #[test]
    fn never_panics_and_masks_idempotently(s in "\\PC{0,120}") {
        let r = Redactor::new();
        let once = r.redact_str(&s).into_owned();
        let twice = r.redact_str(&once).into_owned();
        prop_assert_eq!(once, twice);
    }
}
