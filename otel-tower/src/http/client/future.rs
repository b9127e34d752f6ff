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
