//! [`GrpcBody`]: reads the final status from the trailers and ends the call.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::call::RpcCall;

pin_project! {
    /// Response body of an instrumented gRPC call (server or client side).
    ///
    /// The call's span ends and its duration is recorded when the trailers (with
    /// `grpc-status`) have passed, when the body ends or fails, or when it is dropped. A
    /// body that ends without `grpc-status` (no trailers, or trailers without it) ends the
    /// call with status UNKNOWN, as gRPC clients read it; one dropped before its end, with
    /// `error.type` `cancelled`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::convert::Infallible;
    ///
    /// use bytes::Bytes;
    /// use http_body::Frame;
    /// use http_body_util::{BodyExt, StreamBody};
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
    /// // A streamed answer: one message, then trailers with `grpc-status: 5` (NOT_FOUND).
    /// let channel = tower::service_fn(|_req: http::Request<String>| async {
    ///     let mut trailers = http::HeaderMap::new();
    ///     trailers.insert("grpc-status", http::HeaderValue::from_static("5"));
    ///     let message = Frame::data(Bytes::from_static(b"\0\0\0\0\0")); // an empty message
    ///     let frames = [Ok::<_, Infallible>(message), Ok(Frame::trailers(trailers))];
    ///     let body = StreamBody::new(futures_util::stream::iter(frames));
    ///     Ok::<_, Infallible>(http::Response::new(body))
    /// });
    /// let client = GrpcClientLayer::new(config).layer(channel);
    /// let request = http::Request::post("/helloworld.Greeter/SayHello")
    ///     .header("content-type", "application/grpc")
    ///     .body(String::new())
    ///     .unwrap();
    /// let response = client.oneshot(request).await.unwrap();
    /// assert!(tt.spans().is_empty()); // the status is not known before the trailers
    ///
    /// let _ = response.into_body().collect().await.unwrap();
    /// let span = tt.span("helloworld.Greeter/SayHello");
    /// assert_attr(&span, "rpc.response.status_code", "NOT_FOUND");
    /// assert_attr(&span, "error.type", "NOT_FOUND");
    /// # }
    /// ```
    pub struct GrpcBody<B> {
        #[pin]
        inner: B,
        call: Option<RpcCall>,
        polling: bool,
    }

    impl<B> PinnedDrop for GrpcBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(call) = this.call.take() {
                if call.has_status() && !*this.polling {
                    call.finish();
                } else {
                    call.abandon(*this.polling);
                }
            }
        }
    }
}

impl<B> GrpcBody<B> {
    pub(crate) fn new(inner: B, call: Option<RpcCall>) -> Self {
        Self {
            inner,
            call,
            polling: false,
        }
    }
}

impl<B: Body> Body for GrpcBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let Some(call) = this.call.as_ref() else {
            return this.inner.poll_frame(cx);
        };
        // Streaming handlers run here: keep the call's context current, also when no span
        // records (an unsampled caller's context: work the stream does follows its decision).
        let guard = call.op.context().clone().attach();
        *this.polling = true;
        let result = this.inner.as_mut().poll_frame(cx);
        *this.polling = false;
        drop(guard);
        let done = match &result {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(call)) = (frame.trailers_ref(), this.call.as_mut()) {
                    call.on_trailers(trailers);
                    true
                } else if this.inner.is_end_stream() {
                    // The last frame was data: the response ended without a status.
                    if let Some(call) = this.call.as_mut() {
                        call.on_end_without_status();
                    }
                    true
                } else {
                    false
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.as_mut() {
                    call.fail(
                        std::borrow::Cow::Borrowed("body"),
                        std::borrow::Cow::Borrowed("the response body failed"),
                    );
                }
                true
            }
            Poll::Ready(None) => {
                if let Some(call) = this.call.as_mut() {
                    call.on_end_without_status();
                }
                true
            }
            Poll::Pending => false,
        };
        if done && let Some(call) = this.call.take() {
            if call.has_status() {
                call.finish();
            } else {
                call.abandon(false);
            }
        }
        result
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
