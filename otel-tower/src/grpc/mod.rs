#![doc = include_str!("../../../docs/adapters/grpc.md")]

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
