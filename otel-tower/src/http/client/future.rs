//! [`ResponseFuture`]: waits for the response head, then ends the CLIENT span.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::service::ClientRequest;
use crate::attributes::{ERROR_CANCELLED, ERROR_PANIC, classify_error};

pin_project! {
    /// Future returned by [`HttpClient`](super::HttpClient).
    ///
    /// The span ends when the response head arrives (as the semantic conventions allow for
    /// clients) or the request fails. Dropped before that — for example by an outer
    /// timeout — it ends the span with `error.type` `cancelled`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_tower::Config;
    /// use otel_tower::http::client::HttpClientLayer;
    /// use tower::{Layer, ServiceExt};
    ///
    /// let tt = TestTelemetry::new();
    /// let config = Config::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .build();
    /// # let upstream = tower::service_fn(|_req: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("a long body")))
    /// # });
    /// let client = HttpClientLayer::new(config).layer(upstream);
    /// let request = http::Request::get("http://api/").body(String::new()).unwrap();
    /// let response = client.oneshot(request).await.unwrap();
    /// // Unlike on the server side, the span has already ended: the body is not waited for.
    /// assert_attr(&tt.span("GET"), "http.response.status_code", 200);
    /// # drop(response);
    /// # }
    /// ```
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        state: Option<ClientRequest>,
        polling: bool,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(mut state) = this.state.take() {
                if *this.polling {
                    state.fail(Cow::Borrowed(ERROR_PANIC), "the client future panicked".into());
                } else {
                    state.fail(
                        Cow::Borrowed(ERROR_CANCELLED),
                        "the request was dropped before a response arrived".into(),
                    );
                }
                state.finish();
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn traced(inner: F, state: ClientRequest) -> Self {
        Self {
            inner,
            state: Some(state),
            polling: false,
        }
    }

    pub(crate) fn untraced(inner: F) -> Self {
        Self {
            inner,
            state: None,
            polling: false,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: std::fmt::Debug + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let guard = this
            .state
            .as_ref()
            .map(|state| state.op.context().clone().attach());
        *this.polling = true;
        let result = this.inner.poll(cx);
        *this.polling = false;
        drop(guard);
        let result = ready!(result);
        if let Some(mut state) = this.state.take() {
            match &result {
                Ok(res) => state.on_response(res.status(), res.version(), res.headers()),
                Err(err) => {
                    let (error_type, message) = classify_error(err);
                    state.fail(error_type, message);
                }
            }
            state.finish();
        }
        Poll::Ready(result)
    }
}
