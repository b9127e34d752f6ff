//! HTTP instrumentation: a [server](server) layer for axum/hyper services and a
//! [client](client) layer for hyper-util's client and other tower HTTP clients.

pub mod client;
pub mod server;
