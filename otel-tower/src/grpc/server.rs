//! gRPC server instrumentation: [`GrpcServerLayer`] and [`GrpcServer`].

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::body::GrpcBody;
use super::call::{RpcCall, RpcShared, Side};
use super::future::ResponseFuture;
use crate::config::{Config, RequestView};

/// Tower layer that makes every incoming gRPC call a SERVER span and a point in
/// `rpc.server.call.duration`.
///
/// Apply it to a tonic server with `Server::builder().layer(GrpcServerLayer::new(config))`.
/// See the [module documentation](crate::grpc) for what is recorded.
#[derive(Debug, Clone)]
pub struct GrpcServerLayer {
    shared: Arc<RpcShared>,
}

impl Default for GrpcServerLayer {
    /// A layer with [`Config::default`].
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl GrpcServerLayer {
    /// A layer recording with `config`; the histogram is created here.
    pub fn new(config: Config) -> Self {
        Self {
            shared: Arc::new(RpcShared::new(config, Side::Server, None)),
        }
    }
}

impl<S> Layer<S> for GrpcServerLayer {
    type Service = GrpcServer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcServer {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Service made by [`GrpcServerLayer`].
#[derive(Debug, Clone)]
pub struct GrpcServer<S> {
    inner: S,
    shared: Arc<RpcShared>,
}

impl<S> GrpcServer<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for GrpcServer<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: std::fmt::Debug + 'static,
{
    type Response = Response<GrpcBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let view = RequestView::new(&req);
        let config = &self.shared.config;
        if let Some(filter) = &config.filter
            && !filter.should_instrument(&view)
        {
            return ResponseFuture::new(self.inner.call(req), None);
        }
        let parent = config.propagation.extract(req.headers());
        let call = RpcCall::start(Arc::clone(&self.shared), &parent, &view);
        drop(parent);
        let future = {
            let _guard = call.op.context().clone().attach();
            self.inner.call(req)
        };
        ResponseFuture::new(future, Some(call))
    }
}
