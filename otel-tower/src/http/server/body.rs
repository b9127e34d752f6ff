//! [`ResponseBody`]: ends the request's span once the body has been sent.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::future::RequestState;
use crate::attributes::ERROR_PANIC;

pin_project! {
    /// Response body of an instrumented request.
    ///
    /// The span ends and the duration is recorded when the inner body reports its end
    /// (last frame, end of stream, or an error), or when the body is dropped — whichever
    /// comes first — so streaming responses are timed until their last byte.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use http_body_util::BodyExt;
    /// use otel_core::testing::TestTelemetry;
    /// use otel_tower::Config;
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::{Layer, ServiceExt};
    ///
    /// let tt = TestTelemetry::new();
    /// let config = Config::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .build();
    /// # let handler = tower::service_fn(|_req: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
    /// # });
    /// let server = HttpServerLayer::new(config).layer(handler);
    /// let request = http::Request::get("/").body(String::new()).unwrap();
    /// let response = server.oneshot(request).await.unwrap();
    /// // The head is out, the body is not sent yet: the request is still in progress.
    /// assert!(tt.spans().is_empty());
    ///
    /// let body = response.into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(body, "ok");
    /// assert_eq!(tt.spans().len(), 1);
    /// # }
    /// ```
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        state: Option<RequestState>,
        polling: bool,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(mut state) = this.state.take() {
                if *this.polling {
                    state.fail(ERROR_PANIC, "the response body panicked");
                }
                state.finish();
            }
        }
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn traced(inner: B, state: RequestState) -> Self {
        Self {
            inner,
            state: Some(state),
            polling: false,
        }
    }

    pub(crate) fn untraced(inner: B) -> Self {
        Self {
            inner,
            state: None,
            polling: false,
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let Some(state) = this.state.as_ref() else {
            return this.inner.poll_frame(cx);
        };
        // Streaming bodies run user code here: keep the request's context current, also when
        // no span records (an unsampled caller's context: work the stream does follows its
        // decision instead of starting new traces).
        let guard = state.op.context().clone().attach();
        *this.polling = true;
        let result = this.inner.as_mut().poll_frame(cx);
        *this.polling = false;
        drop(guard);
        let done = match &result {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Err(_))) => {
                if let Some(state) = this.state.as_mut() {
                    state.fail("body", "the response body failed");
                }
                true
            }
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Pending => false,
        };
        if done && let Some(state) = this.state.take() {
            state.finish();
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
