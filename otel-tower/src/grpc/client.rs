//! gRPC client instrumentation: [`GrpcClientLayer`] and [`GrpcClient`].

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use opentelemetry::StringValue;
use tower_layer::Layer;
use tower_service::Service;

use super::body::GrpcBody;
use super::call::{RpcCall, RpcShared, Side};
use super::future::ResponseFuture;
use crate::config::{Config, RequestView};

/// Tower layer that makes every outgoing gRPC call a CLIENT span, injects its context into
/// the request metadata and records `rpc.client.call.duration`.
///
/// Wrap a tonic `Channel`:
/// `ServiceBuilder::new().layer(GrpcClientLayer::new(config).with_server_address(host, port)).service(channel)`,
/// then build the generated client from it. A tonic `Channel` adds the server's origin only
/// inside itself, so tell the layer the address with
/// [`with_server_address`](GrpcClientLayer::with_server_address) to get `server.address`
/// and `server.port`.
#[derive(Debug, Clone)]
pub struct GrpcClientLayer {
    shared: Arc<RpcShared>,
}

impl Default for GrpcClientLayer {
    /// A layer with [`Config::default`] and no server address.
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl GrpcClientLayer {
    /// A layer recording with `config`; the histogram is created here.
    pub fn new(config: Config) -> Self {
        Self {
            shared: Arc::new(RpcShared::new(config, Side::Client, None)),
        }
    }

    /// Records `server.address` and `server.port` on every call of this layer's services.
    #[must_use]
    pub fn with_server_address(self, address: impl Into<String>, port: Option<u16>) -> Self {
        let config = self.shared.config.clone();
        Self {
            shared: Arc::new(RpcShared::new(
                config,
                Side::Client,
                Some((StringValue::from(address.into()), port)),
            )),
        }
    }
}

impl<S> Layer<S> for GrpcClientLayer {
    type Service = GrpcClient<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcClient {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// Service made by [`GrpcClientLayer`].
#[derive(Debug, Clone)]
pub struct GrpcClient<S> {
    inner: S,
    shared: Arc<RpcShared>,
}

impl<S> GrpcClient<S> {
    /// The wrapped channel.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped channel, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner channel.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for GrpcClient<S>
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

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let view = RequestView::new(&req);
        let config = &self.shared.config;
        if let Some(filter) = &config.filter
            && !filter.should_instrument(&view)
        {
            return ResponseFuture::new(self.inner.call(req), None);
        }
        let call = opentelemetry::Context::map_current(|parent| {
            RpcCall::start(Arc::clone(&self.shared), parent, &view)
        });
        config
            .propagation
            .inject(call.op.context(), req.headers_mut());
        let future = {
            let _guard = call.op.context().clone().attach();
            self.inner.call(req)
        };
        ResponseFuture::new(future, Some(call))
    }
}
