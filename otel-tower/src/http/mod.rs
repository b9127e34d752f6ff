//! HTTP instrumentation: the [`server`] layer for axum, hyper and any tower HTTP server,
//! and the [`client`] layer for hyper-util's client and any tower HTTP client.

pub mod client;
pub mod server;
