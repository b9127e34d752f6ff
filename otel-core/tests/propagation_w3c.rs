//! The W3C trace-context test suite (`test/test.py` of github.com/w3c/trace-context), case by
//! case, at the propagator level.
//!
//! The suite sends a request with some headers to a service and checks the `traceparent` and
//! `tracestate` of the call the service makes back. Here the "service" is what an adapter
//! does: extract with [`TraceContextPropagator`] from an `http::HeaderMap` (repeated headers
//! appended as separate fields), start a span with the real SDK tracer parented on the
//! extracted context, and inject that span's context into a fresh `HeaderMap`. Each test has
//! the name of the suite's test and makes the same assertions, in the same order.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use otel_core::propagation::{HeaderExtractor, HeaderInjector, TraceContextPropagator};

const TRACE_ID: &str = "12345678901234567890123456789012";
const PARENT_ID: &str = "1234567890123456";

fn tracer() -> &'static SdkTracer {
    static TRACER: OnceLock<SdkTracer> = OnceLock::new();
    TRACER.get_or_init(|| SdkTracerProvider::builder().build().tracer("w3c-suite"))
}

/// The outgoing `traceparent`, split into its fields.
#[derive(Debug)]
struct Traceparent {
    trace_id: String,
    parent_id: String,
}

/// The outgoing `tracestate`, as an ordered list.
#[derive(Debug, Default)]
struct Tracestate(Vec<(String, String)>);

impl Tracestate {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn text(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The harness's `get_traceparent`: exactly one `traceparent`, in the version 00 format.
fn get_traceparent(headers: &HeaderMap) -> Traceparent {
    let values: Vec<&str> = headers
        .get_all("traceparent")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        values.len(),
        1,
        "expect one traceparent header, got {values:?}"
    );
    let parts: Vec<&str> = values[0].split('-').collect();
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    assert!(
        parts.len() == 4
            && parts[0] == "00"
            && lower_hex(parts[1], 32)
            && lower_hex(parts[2], 16)
            && lower_hex(parts[3], 2),
        "malformed outgoing traceparent {:?}",
        values[0]
    );
    assert_ne!(parts[1], "0".repeat(32));
    assert_ne!(parts[2], "0".repeat(16));
    Traceparent {
        trace_id: parts[1].to_owned(),
        parent_id: parts[2].to_owned(),
    }
}

/// The harness's `get_tracestate`: every `tracestate` field, as one list.
fn get_tracestate(headers: &HeaderMap) -> Tracestate {
    let mut list = Tracestate::default();
    for value in headers.get_all("tracestate") {
        for member in value.to_str().unwrap().split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (k, v) = member.split_once('=').unwrap();
            list.0.push((k.to_owned(), v.to_owned()));
        }
    }
    list
}

/// Sends `headers` to the "service" and returns the headers of its `count` callbacks.
fn make_request(headers: &[(&str, &str)], count: usize) -> Vec<HeaderMap> {
    let mut incoming = HeaderMap::new();
    for (name, value) in headers {
        incoming.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let propagator = TraceContextPropagator::new();
    let cx = propagator.extract_with_context(&Context::new(), &HeaderExtractor(&incoming));
    (0..count)
        .map(|_| {
            let span = tracer().start_with_context("callback", &cx);
            let cx = cx.with_span(span);
            let mut outgoing = HeaderMap::new();
            propagator.inject_context(&cx, &mut HeaderInjector(&mut outgoing));
            outgoing
        })
        .collect()
}

fn make_single_request_and_get_tracecontext(headers: &[(&str, &str)]) -> (Traceparent, Tracestate) {
    let response = make_request(headers, 1).remove(0);
    (get_traceparent(&response), get_tracestate(&response))
}

fn tp(version: &str, trace_id: &str, parent_id: &str, flags: &str) -> String {
    format!("{version}-{trace_id}-{parent_id}-{flags}")
}

// ---- TraceContextTest ----

#[test]
fn test_both_traceparent_and_tracestate_missing() {
    make_single_request_and_get_tracecontext(&[]);
}

#[test]
fn test_traceparent_included_tracestate_missing() {
    let (traceparent, _) = make_single_request_and_get_tracecontext(&[(
        "traceparent",
        &tp("00", TRACE_ID, PARENT_ID, "01"),
    )]);
    assert_eq!(traceparent.trace_id, TRACE_ID);
    assert_ne!(traceparent.parent_id, PARENT_ID);
}

#[test]
fn test_traceparent_duplicated() {
    let (traceparent, _) = make_single_request_and_get_tracecontext(&[
        (
            "traceparent",
            &tp("00", "12345678901234567890123456789011", PARENT_ID, "01"),
        ),
        ("traceparent", &tp("00", TRACE_ID, PARENT_ID, "01")),
    ]);
    assert_ne!(traceparent.trace_id, "12345678901234567890123456789011");
    assert_ne!(traceparent.trace_id, TRACE_ID);
}

#[test]
fn test_traceparent_header_name() {
    for name in ["trace-parent", "trace.parent"] {
        let (traceparent, _) = make_single_request_and_get_tracecontext(&[(
            name,
            &tp("00", TRACE_ID, PARENT_ID, "01"),
        )]);
        assert_ne!(traceparent.trace_id, TRACE_ID, "{name}");
    }
}

#[test]
fn test_traceparent_header_name_valid_casing() {
    for name in ["TraceParent", "TrAcEpArEnT", "TRACEPARENT"] {
        let (traceparent, _) = make_single_request_and_get_tracecontext(&[(
            name,
            &tp("00", TRACE_ID, PARENT_ID, "01"),
        )]);
        assert_eq!(traceparent.trace_id, TRACE_ID, "{name}");
    }
}

/// Sends one `traceparent` value and asserts whether its trace id was kept.
fn assert_traceparent(value: &str, kept: bool) {
    let (traceparent, _) = make_single_request_and_get_tracecontext(&[("traceparent", value)]);
    if kept {
        assert_eq!(traceparent.trace_id, TRACE_ID, "{value:?} must be accepted");
    } else {
        assert_ne!(traceparent.trace_id, TRACE_ID, "{value:?} must be rejected");
    }
}

#[test]
fn test_traceparent_version_0x00() {
    assert_traceparent(&format!("{}.", tp("00", TRACE_ID, PARENT_ID, "01")), false);
    assert_traceparent(
        &format!(
            "{}-what-the-future-will-be-like",
            tp("00", TRACE_ID, PARENT_ID, "01")
        ),
        false,
    );
}

#[test]
fn test_traceparent_version_0xcc() {
    assert_traceparent(&tp("cc", TRACE_ID, PARENT_ID, "01"), true);
    assert_traceparent(
        &format!(
            "{}-what-the-future-will-be-like",
            tp("cc", TRACE_ID, PARENT_ID, "01")
        ),
        true,
    );
    assert_traceparent(
        &format!(
            "{}.what-the-future-will-be-like",
            tp("cc", TRACE_ID, PARENT_ID, "01")
        ),
        false,
    );
}

#[test]
fn test_traceparent_version_0xff() {
    assert_traceparent(&tp("ff", TRACE_ID, PARENT_ID, "01"), false);
}

#[test]
fn test_traceparent_version_illegal_characters() {
    assert_traceparent(&tp(".0", TRACE_ID, PARENT_ID, "01"), false);
    assert_traceparent(&tp("0.", TRACE_ID, PARENT_ID, "01"), false);
}

#[test]
fn test_traceparent_version_too_long() {
    assert_traceparent(&tp("000", TRACE_ID, PARENT_ID, "01"), false);
    assert_traceparent(&tp("0000", TRACE_ID, PARENT_ID, "01"), false);
}

#[test]
fn test_traceparent_version_too_short() {
    assert_traceparent(&tp("0", TRACE_ID, PARENT_ID, "01"), false);
}

#[test]
fn test_traceparent_trace_id_all_zero() {
    let zero = "0".repeat(32);
    let (traceparent, _) = make_single_request_and_get_tracecontext(&[(
        "traceparent",
        &tp("00", &zero, PARENT_ID, "01"),
    )]);
    assert_ne!(traceparent.trace_id, zero);
}

#[test]
fn test_traceparent_trace_id_illegal_characters() {
    for trace_id in [
        ".2345678901234567890123456789012",
        "1234567890123456789012345678901.",
    ] {
        let (traceparent, _) = make_single_request_and_get_tracecontext(&[(
            "traceparent",
            &tp("00", trace_id, PARENT_ID, "01"),
        )]);
        assert_ne!(traceparent.trace_id, trace_id);
        assert_ne!(traceparent.trace_id, TRACE_ID);
    }
}

#[test]
fn test_traceparent_trace_id_too_long() {
    let (traceparent, _) = make_single_request_and_get_tracecontext(&[(
        "traceparent",
        &tp("00", "123456789012345678901234567890123", PARENT_ID, "01"),
    )]);
    assert_ne!(traceparent.trace_id, "123456789012345678901234567890123");
    assert_ne!(traceparent.trace_id, TRACE_ID);
    assert_ne!(traceparent.trace_id, "23456789012345678901234567890123");
}

#[test]
fn test_traceparent_trace_id_too_short() {
    let (traceparent, _) = make_single_request_and_get_tracecontext(&[(
        "traceparent",
        &tp("00", "1234567890123456789012345678901", PARENT_ID, "01"),
    )]);
    assert_ne!(traceparent.trace_id, "1234567890123456789012345678901");
}

#[test]
fn test_traceparent_parent_id_all_zero() {
    assert_traceparent(&tp("00", TRACE_ID, "0000000000000000", "01"), false);
}

#[test]
fn test_traceparent_parent_id_illegal_characters() {
    assert_traceparent(&tp("00", TRACE_ID, ".234567890123456", "01"), false);
    assert_traceparent(&tp("00", TRACE_ID, "123456789012345.", "01"), false);
}

#[test]
fn test_traceparent_parent_id_too_long() {
    assert_traceparent(&tp("00", TRACE_ID, "12345678901234567", "01"), false);
}

#[test]
fn test_traceparent_parent_id_too_short() {
    assert_traceparent(&tp("00", TRACE_ID, "123456789012345", "01"), false);
}

#[test]
fn test_traceparent_trace_flags_illegal_characters() {
    assert_traceparent(&tp("00", TRACE_ID, PARENT_ID, ".0"), false);
    assert_traceparent(&tp("00", TRACE_ID, PARENT_ID, "0."), false);
}

#[test]
fn test_traceparent_trace_flags_too_long() {
    assert_traceparent(&tp("00", TRACE_ID, PARENT_ID, "001"), false);
}

#[test]
fn test_traceparent_trace_flags_too_short() {
    assert_traceparent(&tp("00", TRACE_ID, PARENT_ID, "1"), false);
}

#[test]
fn test_traceparent_ows_handling() {
    let valid = tp("00", TRACE_ID, PARENT_ID, "01");
    for value in [
        format!(" {valid}"),
        format!("\t{valid}"),
        format!("{valid} "),
        format!("{valid}\t"),
        format!("\t {valid} \t"),
    ] {
        assert_traceparent(&value, true);
    }
}

/// The `traceparent` the tracestate tests send (not sampled).
fn unsampled() -> String {
    tp("00", TRACE_ID, PARENT_ID, "00")
}

#[test]
fn test_tracestate_included_traceparent_missing() {
    let (_, tracestate1) = make_single_request_and_get_tracecontext(&[("tracestate", "foo=1")]);
    let (_, tracestate2) =
        make_single_request_and_get_tracecontext(&[("tracestate", "foo=1,bar=2")]);
    assert_eq!(tracestate1.len(), tracestate2.len());
    assert_eq!(
        tracestate1.len(),
        0,
        "tracestate without traceparent is discarded"
    );
}

#[test]
fn test_tracestate_included_traceparent_included() {
    let (traceparent, tracestate) = make_single_request_and_get_tracecontext(&[
        ("traceparent", &unsampled()),
        ("tracestate", "foo=1,bar=2"),
    ]);
    assert_eq!(traceparent.trace_id, TRACE_ID);
    assert_eq!(tracestate.get("foo"), Some("1"));
    assert_eq!(tracestate.get("bar"), Some("2"));
}

#[test]
fn test_tracestate_header_name() {
    for name in ["trace-state", "trace.state"] {
        let (_, tracestate) = make_single_request_and_get_tracecontext(&[
            ("traceparent", &unsampled()),
            (name, "foo=1"),
        ]);
        assert_eq!(tracestate.get("foo"), None, "{name}");
    }
}

#[test]
fn test_tracestate_header_name_valid_casing() {
    for name in ["TraceState", "TrAcEsTaTe", "TRACESTATE"] {
        let (_, tracestate) = make_single_request_and_get_tracecontext(&[
            ("traceparent", &unsampled()),
            (name, "foo=1"),
        ]);
        assert_eq!(tracestate.get("foo"), Some("1"), "{name}");
    }
}

#[test]
fn test_tracestate_empty_header() {
    let response = make_request(&[("traceparent", &unsampled()), ("tracestate", "")], 1).remove(0);
    assert_eq!(get_traceparent(&response).trace_id, TRACE_ID);
    assert!(
        response.get("tracestate").is_none(),
        "an empty tracestate is not sent on"
    );

    for headers in [
        [
            ("traceparent", unsampled()),
            ("tracestate", "foo=1".to_owned()),
            ("tracestate", String::new()),
        ],
        [
            ("traceparent", unsampled()),
            ("tracestate", String::new()),
            ("tracestate", "foo=1".to_owned()),
        ],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (traceparent, tracestate) = make_single_request_and_get_tracecontext(&headers);
        assert_eq!(traceparent.trace_id, TRACE_ID);
        assert_eq!(tracestate.get("foo"), Some("1"));
    }
}

#[test]
fn test_tracestate_multiple_headers_different_keys() {
    let (traceparent, tracestate) = make_single_request_and_get_tracecontext(&[
        ("traceparent", &unsampled()),
        ("tracestate", "foo=1,bar=2"),
        ("tracestate", "rojo=1,congo=2"),
        ("tracestate", "baz=3"),
    ]);
    assert_eq!(traceparent.trace_id, TRACE_ID);
    let text = tracestate.text();
    let at = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("{s} missing from {text}"))
    };
    assert!(at("foo=1") < at("bar=2"));
    assert!(at("bar=2") < at("rojo=1"));
    assert!(at("rojo=1") < at("congo=2"));
    assert!(at("congo=2") < at("baz=3"));
}

#[test]
fn test_tracestate_duplicated_keys() {
    for headers in [
        vec!["foo=1,foo=1"],
        vec!["foo=1,foo=2"],
        vec!["foo=1", "foo=1"],
        vec!["foo=1", "foo=2"],
    ] {
        let traceparent = unsampled();
        let mut sent = vec![("traceparent", traceparent.as_str())];
        sent.extend(headers.iter().map(|v| ("tracestate", *v)));
        let (traceparent, tracestate) = make_single_request_and_get_tracecontext(&sent);
        assert_eq!(traceparent.trace_id, TRACE_ID);
        assert_eq!(tracestate.get("foo"), None, "{headers:?}");
    }
}

#[test]
fn test_tracestate_all_allowed_characters() {
    let key_without_vendor = format!(
        "{}0123456789_-*/",
        (b'a'..=b'z').map(char::from).collect::<String>()
    );
    let key_with_vendor = format!("{key_without_vendor}@a-z0-9_-*/");
    let value: String = (0x20u8..=0x2B)
        .chain(0x2D..=0x3C)
        .chain(0x3E..=0x7E)
        .map(char::from)
        .collect();
    for key in [&key_without_vendor, &key_with_vendor] {
        let member = format!("{key}={value}");
        let (_, tracestate) = make_single_request_and_get_tracecontext(&[
            ("traceparent", &unsampled()),
            ("tracestate", &member),
        ]);
        assert_eq!(tracestate.get(key), Some(value.as_str()), "{key}");
    }
}

#[test]
fn test_tracestate_ows_handling() {
    for header in [
        "foo=1 \t , \t bar=2, \t baz=3",
        "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
    ] {
        let (_, tracestate) = make_single_request_and_get_tracecontext(&[
            ("traceparent", &unsampled()),
            ("tracestate", header),
        ]);
        assert_eq!(tracestate.get("foo"), Some("1"), "{header:?}");
        assert_eq!(tracestate.get("bar"), Some("2"), "{header:?}");
        assert_eq!(tracestate.get("baz"), Some("3"), "{header:?}");
    }
    for header in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
        let (traceparent, tracestate) = make_single_request_and_get_tracecontext(&[
            ("traceparent", &unsampled()),
            ("tracestate", header),
        ]);
        assert_eq!(traceparent.trace_id, TRACE_ID);
        assert_eq!(tracestate.get("foo"), Some("1"), "{header:?}");
    }
}

/// Sends `tracestate` fields with a valid `traceparent`; returns what came back.
fn send_tracestate(fields: &[&str]) -> Tracestate {
    let traceparent = unsampled();
    let mut headers = vec![("traceparent", traceparent.as_str())];
    headers.extend(fields.iter().map(|f| ("tracestate", *f)));
    let (traceparent, tracestate) = make_single_request_and_get_tracecontext(&headers);
    assert_eq!(traceparent.trace_id, TRACE_ID);
    tracestate
}

#[test]
fn test_tracestate_key_illegal_characters() {
    assert_eq!(send_tracestate(&["foo =1"]).get("foo "), None);
    assert_eq!(send_tracestate(&["FOO=1"]).get("FOO"), None);
    assert_eq!(send_tracestate(&["foo.bar=1"]).get("foo.bar"), None);
}

#[test]
fn test_tracestate_key_illegal_vendor_format() {
    for header in [
        "foo@=1,bar=2",
        "@foo=1,bar=2",
        "foo@@bar=1,bar=2",
        "foo@bar@baz=1,bar=2",
    ] {
        assert_eq!(send_tracestate(&[header]).get("bar"), None, "{header:?}");
    }
}

#[test]
fn test_tracestate_member_count_limit() {
    let fields = [
        "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05,bar06=06,bar07=07,bar08=08,bar09=09,bar10=10",
        "bar11=11,bar12=12,bar13=13,bar14=14,bar15=15,bar16=16,bar17=17,bar18=18,bar19=19,bar20=20",
        "bar21=21,bar22=22,bar23=23,bar24=24,bar25=25,bar26=26,bar27=27,bar28=28,bar29=29,bar30=30",
    ];
    let tracestate = send_tracestate(&[fields[0], fields[1], fields[2], "bar31=31,bar32=32"]);
    assert_eq!(tracestate.get("bar01"), Some("01"));
    assert_eq!(tracestate.len(), 32);

    let tracestate = send_tracestate(&[
        fields[0],
        fields[1],
        fields[2],
        "bar31=31,bar32=32,bar33=33",
    ]);
    assert_eq!(tracestate.get("bar01"), None);
}

#[test]
fn test_tracestate_key_length_limit() {
    let key_256 = format!("{}=1", "z".repeat(256));
    assert_eq!(send_tracestate(&["foo=1", &key_256]).get("foo"), Some("1"));
    let key_257 = format!("{}=1", "z".repeat(257));
    assert_eq!(send_tracestate(&["foo=1", &key_257]).get("foo"), None);
    let tenant_241 = format!("{}@{}=1", "t".repeat(241), "v".repeat(14));
    assert_eq!(
        send_tracestate(&["foo=1", &tenant_241]).get("foo"),
        Some("1")
    );
    let tenant_242 = format!("{}@v=1", "t".repeat(242));
    assert_eq!(send_tracestate(&["foo=1", &tenant_242]).get("foo"), None);
    let system_15 = format!("t@{}=1", "v".repeat(15));
    assert_eq!(send_tracestate(&["foo=1", &system_15]).get("foo"), None);
}

#[test]
fn test_tracestate_value_illegal_characters() {
    assert_eq!(send_tracestate(&["foo=bar=baz"]).get("foo"), None);
    let tracestate = send_tracestate(&["foo=,bar=3"]);
    assert_eq!(tracestate.get("foo"), None);
    assert_eq!(tracestate.get("bar"), None);
}

// ---- AdvancedTest ----

fn ids(responses: &[HeaderMap]) -> (Vec<String>, Vec<String>) {
    let mut trace_ids: Vec<String> = Vec::new();
    let mut parent_ids: Vec<String> = Vec::new();
    for response in responses {
        let traceparent = get_traceparent(response);
        trace_ids.push(traceparent.trace_id);
        parent_ids.push(traceparent.parent_id);
    }
    for list in [&mut trace_ids, &mut parent_ids] {
        list.sort();
        list.dedup();
    }
    (trace_ids, parent_ids)
}

#[test]
fn test_multiple_requests_with_valid_traceparent() {
    let responses = make_request(&[("traceparent", &tp("00", TRACE_ID, PARENT_ID, "01"))], 3);
    let (trace_ids, parent_ids) = ids(&responses);
    assert_eq!(trace_ids, [TRACE_ID]);
    assert_eq!(parent_ids.len(), 3);
}

#[test]
fn test_multiple_requests_without_traceparent() {
    let (_, parent_ids) = ids(&make_request(&[], 3));
    assert_eq!(parent_ids.len(), 3);
}

#[test]
fn test_multiple_requests_with_illegal_traceparent() {
    let zero = "0".repeat(32);
    let responses = make_request(&[("traceparent", &tp("00", &zero, PARENT_ID, "01"))], 3);
    let (trace_ids, parent_ids) = ids(&responses);
    assert!(!trace_ids.contains(&zero));
    assert_eq!(parent_ids.len(), 3);
}
