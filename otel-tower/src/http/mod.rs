//! HTTP instrumentation: the [`server`] layer for axum, hyper and any tower HTTP server,
//! and the [`client`] layer for hyper-util's client and any tower HTTP client.
//!
//! Both take the same [`Config`](crate::Config); a gateway typically instruments what comes
//! in and what goes out:
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use otel_tower::Config;
//! use otel_tower::http::{client::HttpClientLayer, server::HttpServerLayer};
//! use tower::ServiceBuilder;
//!
//! let config = Config::default();
//! let upstream = ServiceBuilder::new()
//!     .layer(HttpClientLayer::new(config.clone()))
//!     .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
//! let app: axum::Router = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "hello" }))
//!     .layer(HttpServerLayer::new(config));
//! # let _ = (upstream, app);
//! ```

pub mod client;
pub mod server;
