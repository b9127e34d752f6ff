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
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use otel_core::testing::{TestTelemetry, assert_attr};
/// use otel_tower::Config;
/// use otel_tower::grpc::GrpcServerLayer;
/// use tower::{Layer, ServiceExt};
///
/// let tt = TestTelemetry::new();
/// let config = Config::builder()
///     .with_tracer_provider(tt.tracer_provider().clone())
///     .with_metrics(tt.metrics().clone())
///     .build();
/// # // A gRPC method answering OK with a trailers-only response.
/// # let say_hello = tower::service_fn(|_req: http::Request<String>| async {
/// #     let response = http::Response::builder()
/// #         .header("content-type", "application/grpc")
/// #         .header("grpc-status", "0")
/// #         .body(String::new())
/// #         .unwrap();
/// #     Ok::<_, std::convert::Infallible>(response)
/// # });
/// // In a tonic server the layer wraps the router; here it wraps one method directly.
/// let server = GrpcServerLayer::new(config).layer(say_hello);
/// let request = http::Request::post("/helloworld.Greeter/SayHello")
///     .header("content-type", "application/grpc")
///     .body(String::new())
///     .unwrap();
/// drop(server.oneshot(request).await.unwrap());
///
/// let span = tt.span("helloworld.Greeter/SayHello");
/// assert_eq!(span.span_kind, opentelemetry::trace::SpanKind::Server);
/// assert_attr(&span, "rpc.system.name", "grpc");
/// assert_attr(&span, "rpc.method", "helloworld.Greeter/SayHello");
/// assert_attr(&span, "rpc.response.status_code", "OK");
/// # }
/// ```
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
    ///
    /// ```
    /// use otel_tower::Config;
    /// use otel_tower::grpc::GrpcServerLayer;
    ///
    /// let server =
    ///     tonic::transport::Server::builder().layer(GrpcServerLayer::new(Config::default()));
    /// // then `.add_service(GreeterServer::new(MyGreeter)).serve(addr)` as usual.
    /// # let _ = server;
    /// ```
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
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use otel_tower::Config;
/// use otel_tower::grpc::{GrpcServer, GrpcServerLayer};
/// use tower::{Layer, ServiceExt};
///
/// # // A gRPC method answering OK with a trailers-only response.
/// # let say_hello = tower::service_fn(|_req: http::Request<String>| async {
/// #     let response = http::Response::builder()
/// #         .header("content-type", "application/grpc")
/// #         .header("grpc-status", "0")
/// #         .body(String::new())
/// #         .unwrap();
/// #     Ok::<_, std::convert::Infallible>(response)
/// # });
/// let server: GrpcServer<_> = GrpcServerLayer::new(Config::default()).layer(say_hello);
/// let request = http::Request::post("/helloworld.Greeter/SayHello")
///     .header("content-type", "application/grpc")
///     .body(String::new())
///     .unwrap();
/// let response = server.oneshot(request).await.unwrap();
/// assert_eq!(response.headers()["grpc-status"], "0");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct GrpcServer<S> {
    inner: S,
    shared: Arc<RpcShared>,
}

impl<S> GrpcServer<S> {
    /// The wrapped service.
    ///
    /// ```
    /// use otel_tower::grpc::GrpcServerLayer;
    /// use tower::Layer;
    ///
    /// /// Stands for the service being wrapped.
    /// #[derive(Debug, PartialEq)]
    /// struct Inner {
    ///     name: &'static str,
    /// }
    ///
    /// let wrapped = GrpcServerLayer::default().layer(Inner { name: "users" });
    /// assert_eq!(wrapped.get_ref().name, "users");
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// use otel_tower::grpc::GrpcServerLayer;
    /// use tower::Layer;
    ///
    /// /// Stands for the service being wrapped.
    /// #[derive(Debug, PartialEq)]
    /// struct Inner {
    ///     name: &'static str,
    /// }
    ///
    /// let mut wrapped = GrpcServerLayer::default().layer(Inner { name: "users" });
    /// wrapped.get_mut().name = "orders";
    /// assert_eq!(wrapped.get_ref().name, "orders");
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    ///
    /// ```
    /// use otel_tower::grpc::GrpcServerLayer;
    /// use tower::Layer;
    ///
    /// /// Stands for the service being wrapped.
    /// #[derive(Debug, PartialEq)]
    /// struct Inner {
    ///     name: &'static str,
    /// }
    ///
    /// let wrapped = GrpcServerLayer::default().layer(Inner { name: "users" });
    /// assert_eq!(wrapped.into_inner(), Inner { name: "users" });
    /// ```
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
