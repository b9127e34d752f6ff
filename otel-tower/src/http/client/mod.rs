//! HTTP client instrumentation: [`HttpClientLayer`].
//!
//! ```
//! use http_body_util::Empty;
//! use bytes::Bytes;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use otel_tower::Config;
//! use otel_tower::http::client::HttpClientLayer;
//! use tower::ServiceBuilder;
//!
//! let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! let client = ServiceBuilder::new()
//!     .layer(HttpClientLayer::new(Config::default()))
//!     .service(client);
//! # let _ = client;
//! ```
//!
//! # What one request produces
//!
//! A CLIENT span named `{method}` (`HTTP` for a non-standard method), child of the current
//! context; its context is injected into the outgoing headers with the configured
//! propagator (also when not sampled, so the sampling decision travels).
//!
//! | attribute | when |
//! | --- | --- |
//! | `http.request.method` (+ `http.request.method_original`) | always |
//! | `server.address`, `server.port` | from the URI authority or `Host`; port defaults from the scheme |
//! | `url.full` | always; `user:password@` becomes `REDACTED:REDACTED@`, sensitive query values `REDACTED` |
//! | `url.scheme` | always |
//! | `http.response.status_code`, `network.protocol.version` | when a response arrived |
//! | `error.type` | status ≥ 400 (the code), `timeout`, `cancelled`, or the error's type name |
//! | `http.request.header.<name>`, `http.response.header.<name>` | allowlisted only |
//!
//! Span status is Error for status ≥ 400 and for failures. The span ends when the
//! response head has arrived. Metric: `http.client.request.duration` (seconds) with
//! `http.request.method`, `url.scheme`, `network.protocol.version`, `server.address`,
//! `server.port`, `http.response.status_code`, `error.type`.
//!
//! # Timeouts
//!
//! Put a timeout *inside* this layer (`ServiceBuilder::new().layer(HttpClientLayer..)
//! .timeout(d)`) and an expired request ends its span with `error.type` `timeout`. A
//! timeout outside drops the future and the span ends with `error.type` `cancelled`.

mod future;
mod layer;
pub(crate) mod service;

pub use future::ResponseFuture;
#[cfg(feature = "reqwest")]
pub(crate) use layer::ClientShared;
pub use layer::HttpClientLayer;
pub use service::HttpClient;
