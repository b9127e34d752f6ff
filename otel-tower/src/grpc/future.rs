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
