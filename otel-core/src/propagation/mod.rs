//! Context propagation: the propagators, the carriers and the helpers adapters share.
//!
//! A trace crosses a process boundary as headers: the caller injects its span context and
//! baggage into the outgoing request, the callee extracts them and parents its span on them.
//! This module holds everything for that:
//!
//! | Item | What |
//! | --- | --- |
//! | [`TraceContextPropagator`] | W3C Trace Context Level 2: `traceparent`, `tracestate` (`OTEL_PROPAGATORS` name `tracecontext`) |
//! | [`BaggagePropagator`] | W3C Baggage: `baggage` (`baggage`) |
//! | [`B3Propagator`] | Zipkin B3, single `b3` or multiple `X-B3-*` headers (`b3`, `b3multi`) |
//! | [`JaegerPropagator`] | Jaeger `uber-trace-id` and `uberctx-*` baggage (`jaeger`) |
//! | [`Propagators`] | the list `OTEL_PROPAGATORS` names, as one propagator (default `tracecontext,baggage`) |
//! | [`HeaderExtractor`], [`HeaderInjector`] | carriers over [`http::HeaderMap`] |
//! | [`extract_context`], [`inject_context`] and their `_with` forms | extract / inject through any carrier with a given or the global propagator |
//! | [`extract_from_headers`], [`inject_into_headers`] | the same for [`http::HeaderMap`] |
//! | [`BaggageAllowlist`] | baggage entries an adapter may copy onto its spans |
//! | [`HeaderToBaggage`] | request headers copied into baggage (`x-tenant-id` → `tenant.id`) |
//!
//! All propagators implement OpenTelemetry's [`TextMapPropagator`], so any of them can be
//! installed with [`opentelemetry::global::set_text_map_propagator`] or handed to an adapter.
//!
//! # Carriers
//!
//! The carrier abstraction is OpenTelemetry's own: [`Extractor`] (`get`, `keys`, and `get_all`
//! for headers that may repeat) and [`Injector`] (`set`), re-exported here. Each adapter
//! implements them for its transport's header type as a borrowing newtype, like
//! [`HeaderExtractor`] and [`HeaderInjector`] do for `http::HeaderMap` — the tonic metadata
//! carrier in `otel-tower`, the AMQP header table carrier in `otel-amqp` — and calls
//! [`extract_context_with`] / [`inject_context_with`]. Implement `get_all` whenever a header
//! can arrive more than once: W3C trace context must see every `traceparent` (a repeated one is
//! invalid) and every `tracestate` field.
//!
//! # Hostile input
//!
//! Headers come from the network. Every parser here checks its input exactly against its
//! specification, ignores what does not conform as the specification says (an invalid
//! `traceparent` starts a new trace; an invalid `tracestate` is dropped whole; a malformed
//! baggage member is skipped), never panics, and reads a bounded prefix of each header:
//! 16 KiB of `tracestate`, 8 KiB of `baggage`, the few dozen characters of the fixed-format
//! headers. What it keeps is bounded too: 32 `tracestate` members cut to 512 characters; of
//! `baggage`, the first 180 members are read and the `opentelemetry` `Baggage` keeps at most
//! 64 of them within 8192 bytes (the rest are dropped).
//!
//! ```
//! use http::HeaderMap;
//! use opentelemetry::propagation::TextMapPropagator;
//! use opentelemetry::trace::TraceContextExt;
//! use otel_core::propagation::{HeaderExtractor, HeaderInjector, Propagators};
//!
//! let propagators = Propagators::from_names("tracecontext,baggage,b3")?;
//!
//! let mut incoming = HeaderMap::new();
//! incoming.insert(
//!     "traceparent",
//!     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse()?,
//! );
//! incoming.insert("baggage", "tenant.id=acme".parse()?);
//! let cx = propagators.extract(&HeaderExtractor(&incoming));
//! assert!(cx.span().span_context().is_sampled());
//!
//! let mut outgoing = HeaderMap::new();
//! propagators.inject_context(&cx, &mut HeaderInjector(&mut outgoing));
//! assert_eq!(
//!     outgoing["b3"],
//!     "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1"
//! );
//! assert_eq!(outgoing["baggage"], "tenant.id=acme");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod b3;
mod baggage;
mod baggage_mapping;
mod carrier;
mod composite;
mod debug;
mod jaeger;
mod syntax;
mod trace_context;
mod tracestate;

pub use b3::{B3Encoding, B3Propagator};
pub use baggage::BaggagePropagator;
pub use baggage_mapping::{BaggageAllowlist, HeaderToBaggage, HeaderToBaggageError};
pub use carrier::{
    HeaderExtractor, HeaderInjector, extract_context, extract_context_with, extract_from_headers,
    inject_context, inject_context_with, inject_into_headers,
};
pub use composite::{PropagatorConfigError, Propagators};
pub use jaeger::JaegerPropagator;
pub use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
pub use trace_context::TraceContextPropagator;
