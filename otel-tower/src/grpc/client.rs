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
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use opentelemetry::trace::SpanKind;
/// use otel_core::propagation::TraceContextPropagator;
/// use otel_core::testing::{TestTelemetry, assert_child_of};
/// use otel_tower::Config;
/// use otel_tower::grpc::{GrpcClientLayer, GrpcServerLayer};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// let tt = TestTelemetry::new();
/// let config = Config::builder()
///     .with_tracer_provider(tt.tracer_provider().clone())
///     .with_metrics(tt.metrics().clone())
///     .with_propagator(TraceContextPropagator::new())
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
/// // Client and server in one process, without a network in between: the client layer
/// // injects its span's context into the metadata, the server layer extracts it.
/// let channel = ServiceBuilder::new()
///     .layer(GrpcClientLayer::new(config.clone()))
///     .layer(GrpcServerLayer::new(config))
///     .service(say_hello);
/// let request = http::Request::post("/helloworld.Greeter/SayHello")
///     .header("content-type", "application/grpc")
///     .body(String::new())
///     .unwrap();
/// drop(channel.oneshot(request).await.unwrap());
///
/// let spans = tt.spans_named("helloworld.Greeter/SayHello");
/// let of_kind = |kind| spans.iter().find(|s| s.span_kind == kind).unwrap();
/// assert_child_of(of_kind(SpanKind::Server), of_kind(SpanKind::Client));
/// # }
/// ```
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use otel_tower::Config;
    /// use otel_tower::grpc::GrpcClientLayer;
    /// use tower::ServiceBuilder;
    ///
    /// let channel =
    ///     tonic::transport::Endpoint::from_static("http://greeter:50051").connect_lazy();
    /// let channel = ServiceBuilder::new()
    ///     .layer(GrpcClientLayer::new(Config::default()))
    ///     .service(channel);
    /// // Generated clients take it like any channel: `GreeterClient::new(channel)`.
    /// let client = tonic::client::Grpc::new(channel);
    /// # let _ = client;
    /// # }
    /// ```
    pub fn new(config: Config) -> Self {
        Self {
            shared: Arc::new(RpcShared::new(config, Side::Client, None)),
        }
    }

    /// Records `server.address` and `server.port` on every call of this layer's services.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_tower::Config;
    /// use otel_tower::grpc::GrpcClientLayer;
    /// use tower::{Layer, ServiceExt};
    ///
    /// let tt = TestTelemetry::new();
    /// let config = Config::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .build();
    /// # // A gRPC method answering OK with a trailers-only response.
    /// # let channel = tower::service_fn(|_req: http::Request<String>| async {
    /// #     let response = http::Response::builder()
    /// #         .header("content-type", "application/grpc")
    /// #         .header("grpc-status", "0")
    /// #         .body(String::new())
    /// #         .unwrap();
    /// #     Ok::<_, std::convert::Infallible>(response)
    /// # });
    /// let client = GrpcClientLayer::new(config)
    ///     .with_server_address("greeter.internal", Some(50051))
    ///     .layer(channel);
    /// let request = http::Request::post("/helloworld.Greeter/SayHello")
    ///     .header("content-type", "application/grpc")
    ///     .body(String::new())
    ///     .unwrap();
    /// drop(client.oneshot(request).await.unwrap());
    ///
    /// let span = tt.span("helloworld.Greeter/SayHello");
    /// assert_attr(&span, "server.address", "greeter.internal");
    /// assert_attr(&span, "server.port", 50051);
    /// # }
    /// ```
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
///
/// ```
/// use otel_tower::Config;
/// use otel_tower::grpc::{GrpcClient, GrpcClientLayer};
/// use tonic::transport::Channel;
///
/// /// Holds the instrumented channel; generated clients are generic over it the same way
/// /// (`GreeterClient<GrpcClient<Channel>>`).
/// struct Backend {
///     grpc: tonic::client::Grpc<GrpcClient<Channel>>,
/// }
///
/// fn backend(channel: Channel) -> Backend {
///     let layer = GrpcClientLayer::new(Config::default());
///     Backend {
///         grpc: tonic::client::Grpc::new(tower::Layer::layer(&layer, channel)),
///     }
/// }
/// # let _ = backend;
/// ```
#[derive(Debug, Clone)]
pub struct GrpcClient<S> {
    inner: S,
    shared: Arc<RpcShared>,
}

impl<S> GrpcClient<S> {
    /// The wrapped channel.
    ///
    /// ```
    /// use otel_tower::grpc::GrpcClientLayer;
    /// use tower::Layer;
    ///
    /// /// Stands for the channel being wrapped.
    /// #[derive(Debug, PartialEq)]
    /// struct Inner {
    ///     name: &'static str,
    /// }
    ///
    /// let wrapped = GrpcClientLayer::default().layer(Inner { name: "users" });
    /// assert_eq!(wrapped.get_ref().name, "users");
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped channel, mutably.
    ///
    /// ```
    /// use otel_tower::grpc::GrpcClientLayer;
    /// use tower::Layer;
    ///
    /// /// Stands for the channel being wrapped.
    /// #[derive(Debug, PartialEq)]
    /// struct Inner {
    ///     name: &'static str,
    /// }
    ///
    /// let mut wrapped = GrpcClientLayer::default().layer(Inner { name: "users" });
    /// wrapped.get_mut().name = "orders";
    /// assert_eq!(wrapped.get_ref().name, "orders");
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner channel.
    ///
    /// ```
    /// use otel_tower::grpc::GrpcClientLayer;
    /// use tower::Layer;
    ///
    /// /// Stands for the channel being wrapped.
    /// #[derive(Debug, PartialEq)]
    /// struct Inner {
    ///     name: &'static str,
    /// }
    ///
    /// let wrapped = GrpcClientLayer::default().layer(Inner { name: "users" });
    /// assert_eq!(wrapped.into_inner(), Inner { name: "users" });
    /// ```
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
        let inner = &mut self.inner;
        let (future, call) = call.run_inner(|| inner.call(req));
        ResponseFuture::new(future, Some(call))
    }
}
