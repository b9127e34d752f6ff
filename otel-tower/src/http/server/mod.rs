#![doc = include_str!("../../../../docs/adapters/http-server.md")]

mod body;
mod future;
mod layer;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::HttpServerLayer;
pub use service::HttpServer;
