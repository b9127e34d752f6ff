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
    /// `grpc-status`) have passed, when the body ends or fails, or when it is dropped.
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
        let guard = call
            .op
            .is_recording()
            .then(|| call.op.context().clone().attach());
        *this.polling = true;
        let result = this.inner.as_mut().poll_frame(cx);
        *this.polling = false;
        drop(guard);
        let done = match &result {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(call)) = (frame.trailers_ref(), this.call.as_mut()) {
                    call.on_trailers(trailers);
                    true
                } else {
                    this.inner.is_end_stream()
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
