//! Property tests of the propagators: arbitrary header values never panic and never produce
//! more than the documented limits; valid contexts survive inject-then-extract unchanged; the
//! `traceparent` parser agrees with a direct reading of the specification.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::baggage::{BaggageExt, KeyValueMetadata};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use otel_core::propagation::{
    B3Encoding, B3Propagator, BaggagePropagator, HeaderExtractor, HeaderInjector, JaegerPropagator,
    Propagators, TraceContextPropagator,
};
use proptest::prelude::*;

/// Every header any propagator reads.
const NAMES: &[&str] = &[
    "traceparent",
    "tracestate",
    "baggage",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "x-b3-flags",
    "uber-trace-id",
    "uberctx-k",
    "uberctx-",
];

/// A carrier of arbitrary (even non-ASCII) values, repeated names allowed.
#[derive(Debug)]
struct Pairs(Vec<(String, String)>);

impl Extractor for Pairs {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let all: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
            .collect();
        (!all.is_empty()).then_some(all)
    }
}

fn all_propagators() -> Propagators {
    Propagators::from_names("tracecontext,baggage,b3,b3multi,jaeger").unwrap()
}

/// Values close to the real formats, so that parsers get past their first checks.
fn near_valid_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[ -~]{0,8})?",
        "[0-9a-fA-F.\\-]{0,70}",
        "[0-9a-f]{16,32}-[0-9a-f]{16}(-[01d](-[0-9a-f]{16})?)?",
        "[0-9a-f]{1,32}(:|%3A)[0-9a-f]{1,16}(:|%3A)[0-9a-f]{1,16}(:|%3A)[0-9a-f]{1,3}",
        "([a-z0-9@_*/\\-]{1,10}=[ -+\\-<>-~]{0,10}[ ,\t]{0,3}){0,40}",
        "([!#$%&'*+.^_`|~0-9A-Za-z\\-]{1,10} ?= ?[!#-+\\--:<-\\[\\]-~%]{0,10}(;[a-z]{1,4}(=[a-z]{1,3})?)?[ ,\t]{0,3}){0,40}",
        any::<String>(),
        "[\\x00-\\x7f]{0,64}",
    ]
}

/// Checks what was injected against the documented limits and formats.
fn check_output(out: &HashMap<String, String>) {
    if let Some(traceparent) = out.get("traceparent") {
        assert_eq!(traceparent.len(), 55, "{traceparent:?}");
        assert!(traceparent.starts_with("00-"));
    }
    if let Some(tracestate) = out.get("tracestate") {
        assert!(!tracestate.is_empty() && tracestate.len() <= 512);
        assert!(tracestate.split(',').count() <= 32);
        assert!(tracestate.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    }
    if let Some(baggage) = out.get("baggage") {
        assert!(!baggage.is_empty() && baggage.len() <= 8192);
        assert!(baggage.split(',').count() <= 180);
        assert!(baggage.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }
    let uberctx = out.keys().filter(|k| k.starts_with("uberctx-")).count();
    assert!(uberctx <= 180);
    for (name, value) in out {
        assert!(HeaderName::from_bytes(name.as_bytes()).is_ok(), "{name:?}");
        assert!(HeaderValue::from_str(value).is_ok(), "{name}: {value:?}");
    }
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic_and_stay_bounded(
        pairs in proptest::collection::vec(
            (proptest::sample::select(NAMES), near_valid_value()),
            0..12,
        )
    ) {
        let carrier = Pairs(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        let propagators = all_propagators();
        let cx = propagators.extract_with_context(&Context::new(), &carrier);
        prop_assert!(cx.baggage().len() <= 64);
        let mut out = HashMap::new();
        propagators.inject_context(&cx, &mut out);
        check_output(&out);
    }

    #[test]
    fn arbitrary_header_bytes_never_panic_and_stay_bounded(
        pairs in proptest::collection::vec(
            (
                proptest::sample::select(NAMES),
                proptest::collection::vec(any::<u8>(), 0..600),
            ),
            0..12,
        )
    ) {
        let mut headers = HeaderMap::new();
        for (name, bytes) in pairs {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                headers.append(name, value);
            }
        }
        let propagators = all_propagators();
        let cx = propagators.extract_with_context(&Context::new(), &HeaderExtractor(&headers));
        let mut out = HeaderMap::new();
        propagators.inject_context(&cx, &mut HeaderInjector(&mut out));
        let out: HashMap<String, String> = out
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        check_output(&out);
    }

    #[test]
    fn huge_repeated_values_stay_bounded(
        unit in near_valid_value(),
        repeat in 1usize..4000,
        name in proptest::sample::select(NAMES),
    ) {
        let carrier = Pairs(vec![
            (
                "traceparent".to_owned(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            ),
            (name.to_owned(), format!("{unit},").repeat(repeat)),
        ]);
        let propagators = all_propagators();
        let cx = propagators.extract_with_context(&Context::new(), &carrier);
        let mut out = HashMap::new();
        propagators.inject_context(&cx, &mut out);
        check_output(&out);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn traceparent_validity_matches_the_spec(
        version in prop_oneof![
            4 => "00", 2 => "01", 2 => "cc", 1 => "fe", 1 => "ff", 1 => "0A", 1 => "0",
            1 => "000", 2 => "[0-9a-f.]{2}"
        ],
        trace in prop_oneof![
            8 => "[0-9a-f]{32}", 1 => "0{32}", 1 => "[0-9a-fA-F]{32}", 1 => "[0-9a-f]{31,33}",
            1 => "[0-9a-f.]{32}"
        ],
        span in prop_oneof![
            8 => "[0-9a-f]{16}", 1 => "0{16}", 1 => "[0-9a-fA-F]{16}", 1 => "[0-9a-f]{15,17}"
        ],
        flags in prop_oneof![8 => "[0-9a-f]{2}", 1 => "[0-9a-fA-F.]{1,3}"],
        tail in prop_oneof![6 => "", 1 => "-", 1 => "-[a-z]{1,8}", 1 => "\\.[a-z]{1,4}", 1 => "[0-9]"],
        ows in prop_oneof!["", " ", "\t", " \t"],
    ) {
        let value = format!("{ows}{version}-{trace}-{span}-{flags}{tail}{ows}");
        let expected = oracle(&value);
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_owned(), value.clone());
        let cx = TraceContextPropagator::new().extract_with_context(&Context::new(), &carrier);
        let sc = cx.span().span_context().clone();
        prop_assert_eq!(sc.is_valid(), expected, "{:?}", value);
        if expected {
            prop_assert_eq!(sc.trace_id().to_string(), trace);
            prop_assert_eq!(sc.span_id().to_string(), span);
            // The tail may have extended the generated flags ("0" + "1"): read them back.
            let sent_flags = value.trim_matches([' ', '\t']).split('-').nth(3).unwrap();
            let raw = u8::from_str_radix(sent_flags, 16).unwrap();
            prop_assert_eq!(sc.trace_flags().to_u8(), raw & 0x03);
        }
    }

}

proptest! {
    #[test]
    fn trace_context_round_trip(
        trace_id in 1..=u128::MAX,
        span_id in 1..=u64::MAX,
        flags in any::<u8>(),
        members in proptest::collection::vec(
            (
                "[a-z0-9][a-z0-9_*/\\-]{0,10}(@[a-z][a-z0-9_*/\\-]{0,12})?",
                "[ -+\\-<>-~]{0,12}[!-+\\-<>-~]",
            ),
            0..32,
        ).prop_filter("unique keys within 512 characters", |members| {
            let mut keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            let len: usize = members.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
            keys.len() == members.len() && len <= 513
        }),
    ) {
        let state = TraceState::from_key_value(members.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        let sent = SpanContext::new(
            TraceId::from(trace_id),
            SpanId::from(span_id),
            TraceFlags::new(flags),
            false,
            state.clone(),
        );
        let propagator = TraceContextPropagator::new();
        let mut headers = HeaderMap::new();
        propagator.inject_context(
            &Context::new().with_remote_span_context(sent),
            &mut HeaderInjector(&mut headers),
        );
        let cx = propagator.extract_with_context(&Context::new(), &HeaderExtractor(&headers));
        let got = cx.span().span_context().clone();
        prop_assert_eq!(got.trace_id(), TraceId::from(trace_id));
        prop_assert_eq!(got.span_id(), SpanId::from(span_id));
        prop_assert_eq!(got.trace_flags().to_u8(), flags & 0x03);
        prop_assert!(got.is_remote());
        prop_assert_eq!(got.trace_state(), &state);
    }

    #[test]
    fn baggage_round_trip(
        entries in proptest::collection::btree_map(
            "[!#$%&'*+.^_`|~0-9A-Za-z\\-]{1,16}",
            (any::<String>(), "([a-z]{1,5}(=[a-z0-9]{1,5})?(;[a-z]{1,5}){0,2})?"),
            0..16,
        ).prop_map(|m| m.into_iter().map(|(k, (v, p))| {
            (k, v.chars().take(24).collect::<String>(), p)
        }).collect::<Vec<_>>()),
    ) {
        let cx = Context::new().with_baggage(
            entries.iter().map(|(k, v, p)| KeyValueMetadata::new(k.clone(), v.clone(), p.as_str())),
        );
        let mut headers = HeaderMap::new();
        BaggagePropagator::new().inject_context(&cx, &mut HeaderInjector(&mut headers));
        let back = BaggagePropagator::new()
            .extract_with_context(&Context::new(), &HeaderExtractor(&headers));
        let mut got: Vec<(String, String, String)> = back
            .baggage()
            .iter()
            .map(|(k, (v, m))| (k.to_string(), v.to_string(), m.to_string()))
            .collect();
        got.sort();
        let mut expected = entries.clone();
        expected.sort();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn b3_round_trip(
        trace_id in 1..=u128::MAX,
        span_id in 1..=u64::MAX,
        sampled in any::<bool>(),
        encoding in proptest::sample::select(vec![
            B3Encoding::SingleHeader,
            B3Encoding::MultipleHeaders,
            B3Encoding::SingleAndMultipleHeaders,
        ]),
    ) {
        let sent = SpanContext::new(
            TraceId::from(trace_id),
            SpanId::from(span_id),
            TraceFlags::default().with_sampled(sampled),
            false,
            TraceState::NONE,
        );
        let propagator = B3Propagator::with_encoding(encoding);
        let mut headers = HeaderMap::new();
        propagator.inject_context(
            &Context::new().with_remote_span_context(sent),
            &mut HeaderInjector(&mut headers),
        );
        let cx = propagator.extract_with_context(&Context::new(), &HeaderExtractor(&headers));
        let got = cx.span().span_context().clone();
        prop_assert_eq!(got.trace_id(), TraceId::from(trace_id));
        prop_assert_eq!(got.span_id(), SpanId::from(span_id));
        prop_assert_eq!(got.is_sampled(), sampled);
    }

    #[test]
    fn jaeger_round_trip(
        trace_id in 1..=u128::MAX,
        span_id in 1..=u64::MAX,
        sampled in any::<bool>(),
        baggage in proptest::collection::btree_map("[a-z0-9_.\\-]{1,12}", any::<String>(), 0..8),
    ) {
        let sent = SpanContext::new(
            TraceId::from(trace_id),
            SpanId::from(span_id),
            TraceFlags::default().with_sampled(sampled),
            false,
            TraceState::NONE,
        );
        let cx = Context::new()
            .with_remote_span_context(sent)
            .with_baggage(baggage.iter().map(|(k, v)| opentelemetry::KeyValue::new(k.clone(), v.clone())));
        let mut headers = HeaderMap::new();
        JaegerPropagator::new().inject_context(&cx, &mut HeaderInjector(&mut headers));
        let back = JaegerPropagator::new()
            .extract_with_context(&Context::new(), &HeaderExtractor(&headers));
        let got = back.span().span_context().clone();
        prop_assert_eq!(got.trace_id(), TraceId::from(trace_id));
        prop_assert_eq!(got.span_id(), SpanId::from(span_id));
        prop_assert_eq!(got.is_sampled(), sampled);
        let mut got_baggage: Vec<(String, String)> = back
            .baggage()
            .iter()
            .map(|(k, (v, _))| (k.to_string(), v.to_string()))
            .collect();
        got_baggage.sort();
        prop_assert_eq!(got_baggage, baggage.into_iter().collect::<Vec<_>>());
    }
}

/// `traceparent` validity read straight from the specification.
fn oracle(value: &str) -> bool {
    let value = value.trim_matches([' ', '\t']);
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    parts.len() >= 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && hex(parts[3], 2)
        && (parts[0] != "00" || parts.len() == 4)
}
