//! [`ResponseFuture`]: waits for the response head of a gRPC call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::body::GrpcBody;
use super::call::RpcCall;
use crate::attributes::classify_error;

pin_project! {
    /// Future returned by the gRPC services: reads a trailers-only status from the head
    /// and hands the call to the response body, which ends it after the trailers.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_tower::Config;
    /// use otel_tower::grpc::GrpcClientLayer;
    /// use tower::{Layer, Service, ServiceExt};
    ///
    /// let tt = TestTelemetry::new();
    /// let config = Config::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .build();
    /// // A server that never answers.
    /// let channel = tower::service_fn(|_req: http::Request<String>| {
    ///     std::future::pending::<Result<http::Response<String>, std::convert::Infallible>>()
    /// });
    /// let mut client = GrpcClientLayer::new(config).layer(channel);
    /// let request = http::Request::post("/helloworld.Greeter/SayHello")
    ///     .header("content-type", "application/grpc")
    ///     .body(String::new())
    ///     .unwrap();
    /// let call = client.ready().await.unwrap().call(request);
    /// drop(call); // for example by a deadline around the layer
    /// assert_attr(&tt.span("helloworld.Greeter/SayHello"), "error.type", "cancelled");
    /// # }
    /// ```
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        call: Option<RpcCall>,
        polling: bool,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(call) = this.call.take() {
                call.abandon(*this.polling);
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, call: Option<RpcCall>) -> Self {
        Self {
            inner,
            call,
            polling: false,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: std::fmt::Debug + 'static,
{
    type Output = Result<Response<GrpcBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let guard = this
            .call
            .as_ref()
            .map(|call| call.op.context().clone().attach());
        *this.polling = true;
        let result = this.inner.poll(cx);
        *this.polling = false;
        drop(guard);
        let result = ready!(result);
        let mut call = this.call.take();
        Poll::Ready(match result {
            Ok(res) => {
                if let Some(call) = call.as_mut() {
                    call.on_response_head(res.status(), res.headers());
                }
                Ok(res.map(|body| GrpcBody::new(body, call)))
            }
            Err(err) => {
                if let Some(mut call) = call {
                    let (error_type, message) = classify_error(&err);
                    call.fail(error_type, message.into());
                    call.finish();
                }
                Err(err)
            }
        })
    }
}
