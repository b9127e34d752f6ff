//! Carriers for `http::HeaderMap` and the extract / inject helpers every adapter uses.

use std::fmt;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};

/// What [`HeaderExtractor::get_all`] returns for a value that is not visible ASCII: one
/// character every propagator here rejects, so that the value still counts (two `traceparent`
/// fields stay two) without being read.
const NOT_TEXT: &str = "\u{FFFD}";

/// Reads propagation headers from an [`http::HeaderMap`]: OpenTelemetry's [`Extractor`] over a
/// borrowed map.
///
/// Header names are case-insensitive. [`get`](Extractor::get) returns the first value of a
/// header, [`get_all`](Extractor::get_all) every value in order — which W3C trace context
/// needs to see a repeated `traceparent` and to join several `tracestate` fields. A value that
/// is not visible ASCII is unreadable: `get` returns `None` for it, `get_all` a U+FFFD
/// placeholder that no propagator accepts. `Debug` shows header names only, never values.
///
/// ```
/// use http::HeaderMap;
/// use opentelemetry::propagation::Extractor;
/// use otel_core::propagation::HeaderExtractor;
///
/// let mut headers = HeaderMap::new();
/// headers.append("tracestate", "a=1".parse()?);
/// headers.append("tracestate", "b=2".parse()?);
/// let extractor = HeaderExtractor(&headers);
/// assert_eq!(extractor.get("TraceState"), Some("a=1"));
/// assert_eq!(extractor.get_all("tracestate"), Some(vec!["a=1", "b=2"]));
/// # Ok::<(), http::header::InvalidHeaderValue>(())
/// ```
#[derive(Clone, Copy)]
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

/// Lists header names only: values may be credentials (`Authorization`, `Cookie`).
fn debug_names(name: &str, headers: &HeaderMap, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_tuple(name).field(&DebugNames(headers)).finish()
}

struct DebugNames<'a>(&'a HeaderMap);

impl fmt::Debug for DebugNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl fmt::Debug for HeaderExtractor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_names("HeaderExtractor", self.0, f)
    }
}

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .map(|value| value.to_str().unwrap_or(NOT_TEXT))
            .collect();
        (!values.is_empty()).then_some(values)
    }
}

/// Writes propagation headers into an [`http::HeaderMap`]: OpenTelemetry's [`Injector`] over a
/// borrowed map.
///
/// Each call replaces all values of its header. A name or value that is not valid in HTTP is
/// skipped, as is a header the map has no room for; this never panics. `Debug` shows header
/// names only, never values.
///
/// ```
/// use http::HeaderMap;
/// use opentelemetry::propagation::Injector;
/// use otel_core::propagation::HeaderInjector;
///
/// let mut headers = HeaderMap::new();
/// let mut injector = HeaderInjector(&mut headers);
/// injector.set(
///     "traceparent",
///     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
/// );
/// injector.set("bad name", "x".into());
/// injector.set("baggage", "bad\nvalue".into());
/// assert_eq!(headers.len(), 1);
/// ```
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl fmt::Debug for HeaderInjector<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_names("HeaderInjector", self.0, f)
    }
}

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::try_from(value),
        ) else {
            return;
        };
        // A full map (more than 32 768 headers) drops the header rather than panicking.
        let _ = self.0.try_insert(name, value);
    }

    fn reserve(&mut self, additional: usize) {
        let _ = self.0.try_reserve(additional);
    }
}

/// Extracts a context from `extractor` with the global propagator
/// ([`opentelemetry::global::get_text_map_propagator`]), on top of [`Context::current`].
///
/// The global propagator sits behind a read lock; adapters that are handed a propagator
/// should prefer [`extract_context_with`].
///
/// ```
/// use opentelemetry::trace::TraceContextExt;
/// use otel_core::propagation::{Propagators, extract_context};
/// use std::collections::HashMap;
///
/// opentelemetry::global::set_text_map_propagator(Propagators::default());
/// let mut carrier = HashMap::new();
/// carrier.insert(
///     "traceparent".to_owned(),
///     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
/// );
/// let cx = extract_context(&carrier);
/// assert_eq!(
///     cx.span().span_context().span_id().to_string(),
///     "b7ad6b7169203331"
/// );
/// ```
pub fn extract_context(extractor: &dyn Extractor) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(extractor))
}

/// Extracts a context from `extractor` with `propagator`, or with the global one when `None`,
/// on top of [`Context::current`].
///
/// This is the one entry point adapters use for any carrier: they implement OpenTelemetry's
/// [`Extractor`] for theirs (tonic metadata, AMQP header tables, ...), including
/// [`Extractor::get_all`] when a header can repeat.
///
/// ```
/// use opentelemetry::trace::TraceContextExt;
/// use otel_core::propagation::{B3Propagator, extract_context_with};
/// use std::collections::HashMap;
///
/// let mut carrier = HashMap::new();
/// carrier.insert(
///     "b3".to_owned(),
///     "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1".to_owned(),
/// );
/// let b3 = B3Propagator::new();
/// let cx = extract_context_with(Some(&b3), &carrier);
/// assert!(cx.span().span_context().is_remote());
/// assert!(cx.span().span_context().is_sampled());
/// ```
pub fn extract_context_with(
    propagator: Option<&dyn TextMapPropagator>,
    extractor: &dyn Extractor,
) -> Context {
    match propagator {
        Some(propagator) => propagator.extract(extractor),
        None => extract_context(extractor),
    }
}

/// Injects `cx` into `injector` with the global propagator
/// ([`opentelemetry::global::get_text_map_propagator`]).
///
/// ```
/// use opentelemetry::baggage::BaggageExt;
/// use opentelemetry::{Context, KeyValue};
/// use otel_core::propagation::{Propagators, inject_context};
/// use std::collections::HashMap;
///
/// opentelemetry::global::set_text_map_propagator(Propagators::default());
/// let cx = Context::new().with_baggage([KeyValue::new("tenant.id", "acme")]);
/// let mut carrier = HashMap::new();
/// inject_context(&cx, &mut carrier);
/// assert_eq!(carrier["baggage"], "tenant.id=acme");
/// assert!(!carrier.contains_key("traceparent")); // no valid span context to send
/// ```
pub fn inject_context(cx: &Context, injector: &mut dyn Injector) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut *injector);
    });
}

/// Injects `cx` into `injector` with `propagator`, or with the global one when `None`.
///
/// Adapters implement OpenTelemetry's [`Injector`] for their carrier and call this.
///
/// ```
/// use opentelemetry::Context;
/// use opentelemetry::trace::{
///     SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
/// };
/// use otel_core::propagation::{JaegerPropagator, inject_context_with};
/// use std::collections::HashMap;
///
/// let cx = Context::new().with_remote_span_context(SpanContext::new(
///     TraceId::from(0x0af7651916cd43dd8448eb211c80319c),
///     SpanId::from(0xb7ad6b7169203331),
///     TraceFlags::SAMPLED,
///     true,
///     TraceState::NONE,
/// ));
/// let mut carrier = HashMap::new();
/// inject_context_with(Some(&JaegerPropagator::new()), &cx, &mut carrier);
/// assert_eq!(
///     carrier["uber-trace-id"],
///     "0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331:0:1"
/// );
/// ```
pub fn inject_context_with(
    propagator: Option<&dyn TextMapPropagator>,
    cx: &Context,
    injector: &mut dyn Injector,
) {
    match propagator {
        Some(propagator) => propagator.inject_context(cx, injector),
        None => inject_context(cx, injector),
    }
}

/// Extracts a context from HTTP request headers with the global propagator, on top of
/// [`Context::current`].
///
/// ```
/// use http::HeaderMap;
/// use opentelemetry::trace::TraceContextExt;
/// use otel_core::propagation::{Propagators, extract_from_headers};
///
/// opentelemetry::global::set_text_map_propagator(Propagators::default());
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     "traceparent",
///     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse()?,
/// );
/// let cx = extract_from_headers(&headers);
/// assert!(cx.span().span_context().is_remote());
/// # Ok::<(), http::header::InvalidHeaderValue>(())
/// ```
pub fn extract_from_headers(headers: &HeaderMap) -> Context {
    extract_context(&HeaderExtractor(headers))
}

/// Injects `cx` into HTTP request headers with the global propagator.
///
/// ```
/// use http::HeaderMap;
/// use opentelemetry::Context;
/// use opentelemetry::trace::{
///     SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
/// };
/// use otel_core::propagation::{Propagators, inject_into_headers};
///
/// opentelemetry::global::set_text_map_propagator(Propagators::default());
/// let span_context = SpanContext::new(
///     TraceId::from(0x0af7651916cd43dd8448eb211c80319c),
///     SpanId::from(0xb7ad6b7169203331),
///     TraceFlags::SAMPLED,
///     false,
///     TraceState::NONE,
/// );
/// let cx = Context::new().with_remote_span_context(span_context);
/// let mut headers = HeaderMap::new();
/// inject_into_headers(&cx, &mut headers);
/// assert_eq!(
///     headers["traceparent"],
///     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
/// );
/// ```
pub fn inject_into_headers(cx: &Context, headers: &mut HeaderMap) {
    inject_context(cx, &mut HeaderInjector(headers));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn extractor_get_all_counts_unreadable_values() {
        let mut headers = HeaderMap::new();
        headers.append("traceparent", HeaderValue::from_static("a"));
        headers.append("traceparent", HeaderValue::from_bytes(b"\xff").unwrap());
        let extractor = HeaderExtractor(&headers);
        assert_eq!(extractor.get_all("TRACEPARENT"), Some(vec!["a", NOT_TEXT]));
        assert_eq!(extractor.get_all("missing"), None);
        assert_eq!(extractor.get_all("bad name"), None);
        assert_eq!(extractor.get("bad name"), None);
        let mut headers = HeaderMap::new();
        headers.append("x", HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(HeaderExtractor(&headers).get("x"), None);
        assert_eq!(HeaderExtractor(&headers).keys(), ["x"]);
    }

    #[test]
    fn debug_shows_names_not_values() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer secret"));
        assert_eq!(
            format!("{:?}", HeaderExtractor(&headers)),
            r#"HeaderExtractor(["authorization"])"#
        );
        assert_eq!(
            format!("{:?}", HeaderInjector(&mut headers)),
            r#"HeaderInjector(["authorization"])"#
        );
    }

    #[test]
    fn injector_replaces_and_skips_invalid() {
        let mut headers = HeaderMap::new();
        headers.append("baggage", HeaderValue::from_static("old1"));
        headers.append("baggage", HeaderValue::from_static("old2"));
        let mut injector = HeaderInjector(&mut headers);
        injector.reserve(4);
        injector.set("Baggage", "new".to_owned());
        injector.set("", "x".to_owned());
        injector.set("k", "\r\n".to_owned());
        injector.set("k\u{e9}", "x".to_owned());
        assert_eq!(headers.len(), 1);
        assert_eq!(
            headers.get_all("baggage").iter().collect::<Vec<_>>(),
            ["new"]
        );
    }
}
