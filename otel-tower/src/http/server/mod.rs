//! HTTP server instrumentation: [`HttpServerLayer`].
//!
//! ```
//! use axum::{Router, routing::get};
//! use otel_tower::Config;
//! use otel_tower::http::server::HttpServerLayer;
//!
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "hello" }))
//!     // `Router::layer` wraps every route (and the fallback) after routing, so the span
//!     // gets the route template `/users/{id}` as `http.route` and in its name.
//!     .layer(HttpServerLayer::new(Config::default()));
//! # let _ = app;
//! ```
//!
//! # What one request produces
//!
//! A span of kind SERVER named `{method} {http.route}`, or `{method}` when no route is
//! known (`HTTP` for a method outside the standard set), child of the context extracted from
//! the request headers with the configured propagator. The context is current while the
//! inner service is called, while its future is polled and while a sampled response body is
//! polled, so every span the handler opens is a child.
//!
//! | attribute | when |
//! | --- | --- |
//! | `http.request.method` | always; `_OTHER` for a non-standard method |
//! | `http.request.method_original` | non-standard method |
//! | `url.path` | always (axum's `OriginalUri` when nested) |
//! | `url.query` | when present; values of sensitive parameters replaced by `REDACTED` |
//! | `url.scheme` | always (`http` unless the URI says `https`) |
//! | `http.route` | when known: axum's `MatchedPath` template, never the raw path |
//! | `http.response.status_code` | when a response was produced |
//! | `network.protocol.version` | always (`1.0`, `1.1`, `2`, `3`) |
//! | `server.address`, `server.port` | from `Host` / `:authority` |
//! | `client.address` | `Forwarded: for=`, `X-Forwarded-For`, else the peer (`ConnectInfo<SocketAddr>` or a `SocketAddr` extension) |
//! | `user_agent.original` | when the header is present |
//! | `error.type` | status ≥ 500 (the code), `panic`, `cancelled`, `body`, or the service error's type name |
//! | `http.request.header.<name>`, `http.response.header.<name>` | allowlisted headers only; never `Authorization`, `Cookie`, `Set-Cookie`, `Proxy-Authorization` |
//!
//! Span status is Error for 5xx responses, panics, dropped futures and failures; 4xx leave
//! it unset. The span ends when the response body has been sent (its last frame was
//! produced, or it was dropped), so streaming responses are timed to their last byte.
//!
//! Metrics: `http.server.request.duration` (seconds, with `http.request.method`,
//! `url.scheme`, `network.protocol.version`, `http.response.status_code`, `http.route`,
//! `error.type`), recorded with the span's context for its exemplar, and
//! `http.server.active_requests` (`http.request.method`, `url.scheme`).
//!
//! # Placing the layer in axum
//!
//! axum inserts `MatchedPath` into the request extensions after routing, just before it
//! calls the route's service. Hence:
//!
//! - `Router::layer(layer)`: the layer wraps each route *and* the fallback; it sees
//!   `MatchedPath` on the request, so the span is named and attributed with the route from
//!   the start; 404s from the fallback are instrumented too (without `http.route`).
//!   **This is the recommended placement.**
//! - `Router::route_layer(layer)`: same, but unmatched requests (404, 405 from the
//!   fallback) are not instrumented at all.
//! - Around the whole router (`ServiceBuilder::new().layer(layer).service(router)`): the
//!   request has no `MatchedPath` yet; the layer looks for one in the *response* extensions
//!   and, when found, sets `http.route` and renames the span then. axum does not put it
//!   there by itself; add `axum::middleware::map_response` on the router copying it over, or
//!   prefer `Router::layer`.
//!
//! # Cost
//!
//! Measured side by side with the plain service and with tower-http's `TraceLayer` +
//! `tracing-opentelemetry` by `cargo bench -p otel-tower --bench http_server`.
//!
//! - A request whose incoming `traceparent` says *not sampled* starts no span at all (see
//!   [`ConfigBuilder::with_skip_unsampled`](crate::ConfigBuilder::with_skip_unsampled)): it
//!   parses the header, runs the handler in the caller's context, updates
//!   `http.server.active_requests` and records the duration. No attribute is built and no
//!   string is formatted or allocated.
//! - A lone W3C `traceparent` is parsed without the generic propagator machinery when the
//!   configured propagator is W3C trace-context (with or without baggage); anything else
//!   (`tracestate`, `baggage`, B3, Jaeger, a repeated header) goes through the propagator.
//! - With a sampled parent, the request attributes are handed to the span builder at start
//!   (the sampler sees them); otherwise they are built only if the span records.
//! - With `Router::layer`, the route template is cached per route, so `http.route` costs a
//!   reference count, not an allocation.

mod body;
mod future;
mod layer;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::HttpServerLayer;
pub use service::HttpServer;
