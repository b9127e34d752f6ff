#![doc = include_str!("../../../../docs/adapters/http-client.md")]

mod future;
mod layer;
pub(crate) mod service;

pub use future::ResponseFuture;
#[cfg(feature = "reqwest")]
pub(crate) use layer::ClientShared;
pub use layer::HttpClientLayer;
pub use service::HttpClient;
