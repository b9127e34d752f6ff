//! `otel-tower`: one `.layer(...)` and every HTTP or gRPC request is a span in the
//! distributed trace and a point in a duration histogram.
//!
//! | layer | for | span | metric |
//! | --- | --- | --- | --- |
//! | [`HttpServerLayer`](http::server::HttpServerLayer) | axum, hyper, any tower HTTP server | SERVER `{method} {http.route}` | `http.server.request.duration`, `http.server.active_requests` |
//! | [`HttpClientLayer`](http::client::HttpClientLayer) | hyper-util's client, any tower HTTP client | CLIENT `{method}` | `http.client.request.duration` |
//! | [`GrpcServerLayer`](grpc::GrpcServerLayer) (feature `grpc`) | tonic servers | SERVER `{rpc.method}` | `rpc.server.call.duration` |
//! | [`GrpcClientLayer`](grpc::GrpcClientLayer) (feature `grpc`) | tonic channels | CLIENT `{rpc.method}` | `rpc.client.call.duration` |
//! | [`OtelMiddleware`](reqwest::OtelMiddleware) (feature `reqwest`) | reqwest via reqwest-middleware | CLIENT `{method}` | `http.client.request.duration` |
//!
//! All layers take one shared [`Config`]: tracer provider, [`Metrics`], propagator, a
//! [`Filter`](config::Filter), extra [`RequestAttributes`](config::RequestAttributes), a
//! [`SpanName`](config::SpanName) override, header allowlists and query redaction.
//!
//! Attribute and metric names are those of `opentelemetry-semantic-conventions` 0.33
//! (semantic conventions 1.42.0, [`opentelemetry_semantic_conventions::SCHEMA_URL`]).
//!
//! # Never recorded
//!
//! Request and response bodies; headers that are not allowlisted; `Authorization`,
//! `Cookie`, `Set-Cookie` and `Proxy-Authorization` even when allowlisted; URL credentials;
//! values of sensitive query parameters (the semantic conventions' `X-Amz-Signature`,
//! `X-Amz-Credential`, `X-Amz-Security-Token`, `sig`, `X-Goog-Signature`, and the earlier
//! `AWSAccessKeyId` and `Signature`; every name `otel_core::redact` treats as a secret
//! such as `token`, `password` or `api_key`, and the names given to
//! [`ConfigBuilder::with_redaction`]); the raw path as `http.route`.
//!
//! # Features
//!
//! | feature | enables |
//! | --- | --- |
//! | `axum` | route templates and original URIs from axum's request extensions |
//! | `grpc` | the gRPC server and client layers |
//! | `reqwest` | the reqwest-middleware middleware |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod attributes;
pub mod config;
#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;
pub mod http;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
mod telemetry;

pub use config::{Config, ConfigBuilder};
pub use telemetry::Metrics;
