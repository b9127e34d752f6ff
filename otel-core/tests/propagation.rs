//! Propagation end to end through `http::HeaderMap`: an incoming request's headers are
//! extracted, a server span is started with the SDK tracer on the extracted context, and the
//! headers of the outgoing call are injected from it.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use http::{HeaderMap, HeaderValue};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use otel_core::propagation::{
    BaggageAllowlist, HeaderExtractor, HeaderInjector, HeaderToBaggage, Propagators,
    extract_context_with, extract_from_headers, inject_context_with, inject_into_headers,
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID: &str = "00f067aa0ba902b7";

fn tracer() -> &'static SdkTracer {
    static TRACER: OnceLock<SdkTracer> = OnceLock::new();
    TRACER.get_or_init(|| {
        SdkTracerProvider::builder()
            .build()
            .tracer("propagation-test")
    })
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// Extracts with `propagators`, starts a server span, injects the outgoing headers.
fn hop(propagators: &Propagators, incoming: &HeaderMap) -> (Context, HeaderMap) {
    let parent = extract_context_with(Some(propagators), &HeaderExtractor(incoming));
    let span = tracer().start_with_context("server", &parent);
    let cx = parent.with_span(span);
    let mut outgoing = HeaderMap::new();
    inject_context_with(Some(propagators), &cx, &mut HeaderInjector(&mut outgoing));
    (cx, outgoing)
}

fn header<'a>(map: &'a HeaderMap, name: &str) -> Option<&'a str> {
    map.get(name).map(|v| v.to_str().unwrap())
}

#[test]
fn w3c_hop_keeps_trace_random_flag_state_and_baggage() {
    let incoming = headers(&[
        ("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-03")),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("tracestate", "rojo=00f067aa0ba902b7"),
        ("baggage", "tenant.id=acme,note=hello%20world;ttl=60"),
    ]);
    let (cx, outgoing) = hop(&Propagators::default(), &incoming);

    let traceparent = header(&outgoing, "traceparent").unwrap();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], TRACE_ID);
    assert_ne!(parts[2], SPAN_ID, "the server span is the new parent");
    assert_eq!(parts[2], cx.span().span_context().span_id().to_string());
    assert_eq!(
        parts[3], "03",
        "sampled and random carried through the SDK span"
    );
    assert_eq!(
        header(&outgoing, "tracestate"),
        Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
    );
    let mut baggage: Vec<&str> = header(&outgoing, "baggage").unwrap().split(',').collect();
    baggage.sort_unstable();
    assert_eq!(baggage, ["note=hello%20world;ttl=60", "tenant.id=acme"]);
}

#[test]
fn global_propagator_helpers() {
    opentelemetry::global::set_text_map_propagator(Propagators::default());
    let incoming = headers(&[("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01"))]);
    let cx = extract_from_headers(&incoming);
    assert_eq!(cx.span().span_context().trace_id().to_string(), TRACE_ID);
    let mut outgoing = HeaderMap::new();
    inject_into_headers(&cx, &mut outgoing);
    assert_eq!(
        header(&outgoing, "traceparent"),
        Some(format!("00-{TRACE_ID}-{SPAN_ID}-01").as_str())
    );
}

#[test]
fn repeated_traceparent_starts_a_new_trace() {
    let incoming = headers(&[
        ("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01")),
        ("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01")),
        ("tracestate", "foo=1"),
    ]);
    let (cx, outgoing) = hop(&Propagators::default(), &incoming);
    assert_ne!(cx.span().span_context().trace_id().to_string(), TRACE_ID);
    assert!(
        outgoing.get("tracestate").is_none(),
        "tracestate ignored with it"
    );

    // A second field that is not even text still counts.
    let mut incoming = headers(&[("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01"))]);
    incoming.append("traceparent", HeaderValue::from_bytes(b"\xfe\xff").unwrap());
    let (cx, _) = hop(&Propagators::default(), &incoming);
    assert_ne!(cx.span().span_context().trace_id().to_string(), TRACE_ID);
}

#[test]
fn b3_multi_in_w3c_out() {
    let incoming = headers(&[
        ("X-B3-TraceId", "a3ce929d0e0e4736"),
        ("X-B3-SpanId", SPAN_ID),
        ("X-B3-Sampled", "1"),
    ]);
    let propagators = Propagators::from_names("b3multi,tracecontext").unwrap();
    let (_, outgoing) = hop(&propagators, &incoming);
    let traceparent = header(&outgoing, "traceparent").unwrap();
    assert!(traceparent.starts_with("00-0000000000000000a3ce929d0e0e4736-"));
    assert!(traceparent.ends_with("-01"));
    assert_eq!(
        header(&outgoing, "x-b3-traceid"),
        Some("0000000000000000a3ce929d0e0e4736")
    );
    assert_eq!(header(&outgoing, "x-b3-sampled"), Some("1"));
}

#[test]
fn jaeger_debug_is_sent_on_as_b3_debug() {
    let incoming = headers(&[
        ("uber-trace-id", &format!("{TRACE_ID}:{SPAN_ID}:0:3")),
        ("uberctx-user", "ada"),
    ]);
    let propagators = Propagators::from_names("jaeger,b3").unwrap();
    let (cx, outgoing) = hop(&propagators, &incoming);
    let span_id = cx.span().span_context().span_id().to_string();
    assert_eq!(
        header(&outgoing, "b3"),
        Some(format!("{TRACE_ID}-{span_id}-d").as_str())
    );
    assert_eq!(
        header(&outgoing, "uber-trace-id"),
        Some(format!("{TRACE_ID}:{span_id}:0:3").as_str())
    );
    assert_eq!(header(&outgoing, "uberctx-user"), Some("ada"));
}

#[test]
fn none_propagates_nothing() {
    let incoming = headers(&[
        ("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01")),
        ("baggage", "a=1"),
    ]);
    let (cx, outgoing) = hop(&Propagators::from_names("none").unwrap(), &incoming);
    assert_ne!(cx.span().span_context().trace_id().to_string(), TRACE_ID);
    assert!(outgoing.is_empty());
}

#[test]
fn header_to_baggage_then_allowlist_to_attributes() {
    let mapping = HeaderToBaggage::new()
        .map("x-tenant-id", "tenant.id")
        .unwrap();
    let allowlist = BaggageAllowlist::new(["tenant.id", "user.tier"]);
    let incoming = headers(&[
        ("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01")),
        ("baggage", "user.tier=gold,session=secret"),
        ("x-tenant-id", "acme"),
    ]);
    let propagators = Propagators::default();
    let cx = propagators.extract_with_context(&Context::new(), &HeaderExtractor(&incoming));
    let cx = mapping.apply(&incoming, cx);
    assert_eq!(
        allowlist.attributes(&cx),
        [
            KeyValue::new("tenant.id", "acme"),
            KeyValue::new("user.tier", "gold")
        ]
    );
    let mut outgoing = HeaderMap::new();
    propagators.inject_context(&cx, &mut HeaderInjector(&mut outgoing));
    let mut baggage: Vec<&str> = header(&outgoing, "baggage").unwrap().split(',').collect();
    baggage.sort_unstable();
    assert_eq!(
        baggage,
        ["session=secret", "tenant.id=acme", "user.tier=gold"]
    );
    assert_eq!(cx.baggage().len(), 3);
}

#[test]
fn hostile_headers_are_bounded() {
    let mut incoming = headers(&[("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01"))]);
    let huge_state = (0..100_000)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    incoming.append("tracestate", HeaderValue::from_str(&huge_state).unwrap());
    let huge_baggage = (0..100_000)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    incoming.append("baggage", HeaderValue::from_str(&huge_baggage).unwrap());
    for _ in 0..1000 {
        incoming.append("baggage", HeaderValue::from_static(",,,,"));
    }
    let (cx, outgoing) = hop(&Propagators::default(), &incoming);
    assert_eq!(cx.span().span_context().trace_id().to_string(), TRACE_ID);
    assert!(
        outgoing.get("tracestate").is_none(),
        "more than 32 members in the scanned part: discarded"
    );
    assert!(cx.baggage().len() <= 64);
    assert!(header(&outgoing, "baggage").unwrap().len() <= 8192);

    // Within the scan window but far over the kept size: cut to 512 characters.
    let big_state = (0..32)
        .map(|i| format!("key{i:02}={}", "v".repeat(200)))
        .collect::<Vec<_>>()
        .join(",");
    let incoming = headers(&[
        ("traceparent", &format!("00-{TRACE_ID}-{SPAN_ID}-01")),
        ("tracestate", &big_state),
    ]);
    let (_, outgoing) = hop(&Propagators::default(), &incoming);
    let state = header(&outgoing, "tracestate").unwrap_or_default();
    assert!(state.len() <= 512, "{}", state.len());
}
