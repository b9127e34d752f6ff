//! gRPC instrumentation for tonic (or any gRPC-over-HTTP/2 tower stack):
//! [`GrpcServerLayer`] and [`GrpcClientLayer`].
//!
//! Names follow `opentelemetry-semantic-conventions` 0.33 = semantic conventions 1.42.0,
//! where the RPC conventions were renamed: `rpc.system` became `rpc.system.name`, the
//! service is part of a fully-qualified `rpc.method` (`package.Service/Method`; the
//! separate `rpc.service` is deprecated), the status is the string
//! `rpc.response.status_code` (`OK`, `NOT_FOUND`, … — `rpc.grpc.status_code` is
//! deprecated) and the duration histograms are `rpc.server.call.duration` /
//! `rpc.client.call.duration` in seconds.
//!
//! # What one call produces
//!
//! A span named `{rpc.method}` (`grpc` when the method is unknown), SERVER with the parent
//! extracted from the request metadata, or CLIENT with its context injected into the
//! outgoing metadata.
//!
//! | attribute | when |
//! | --- | --- |
//! | `rpc.system.name` | always `grpc` |
//! | `rpc.method` | `package.Service/Method`; `_OTHER` when the path is not a method path, or on the server when the answer is UNIMPLEMENTED (an unknown method must not grow the metric's series) |
//! | `rpc.method_original` | with `_OTHER` |
//! | `rpc.response.status_code` | from the trailers, or from the headers of a trailers-only response |
//! | `server.address`, `server.port` | client, when given with [`GrpcClientLayer::with_server_address`] |
//! | `error.type` | the status name when it is an error, else `timeout`, `cancelled`, `panic`, `body` or the transport error's type |
//!
//! Span status: on the server Error for UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED,
//! INTERNAL, UNAVAILABLE and DATA_LOSS; on the client for every status but OK. The span
//! ends once the trailers have passed (the whole response stream is timed).
//!
//! Metrics: `rpc.server.call.duration` / `rpc.client.call.duration` (seconds) with
//! `rpc.system.name`, `rpc.method`, `rpc.response.status_code`, `error.type` and, on the
//! client, `server.address` / `server.port`; recorded with the span context for exemplars.

mod body;
mod call;
mod client;
mod future;
mod server;
mod status;

pub use body::GrpcBody;
pub use client::{GrpcClient, GrpcClientLayer};
pub use future::ResponseFuture;
pub use server::{GrpcServer, GrpcServerLayer};
