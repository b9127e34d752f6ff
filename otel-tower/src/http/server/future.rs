//! [`ResponseFuture`]: waits for the inner service's response head.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::Response;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{KeyValue, StringValue};
use opentelemetry_semantic_conventions::attribute as semconv;
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::layer::{DurationKey, ServerShared};
use crate::attributes::{ERROR_CANCELLED, ERROR_PANIC, classify_error};
use crate::telemetry::Operation;

/// Everything needed to finish a request's telemetry once its response has been sent.
#[derive(Debug)]
pub(crate) struct RequestState {
    pub(crate) op: Operation,
    pub(crate) shared: Arc<ServerShared>,
    /// The request's duration series, completed as the response comes (status, late route,
    /// error type).
    pub(crate) series: DurationKey,
}

impl RequestState {
    /// Records the response head: status, captured headers, late route, traceresponse.
    fn on_response<B>(&mut self, res: &mut Response<B>) {
        let status = res.status().as_u16();
        self.series.status = Some(status);
        let config = &self.shared.config;
        if self.series.route.is_none() {
            self.series.route = route_from_response(res);
            if let Some(route) = &self.series.route
                && self.op.is_recording()
            {
                self.op
                    .set_attribute(KeyValue::new(semconv::HTTP_ROUTE, route.clone()));
                if config.span_name.is_none() {
                    self.op.update_name(format!(
                        "{} {}",
                        self.series.method.span_name(),
                        route.as_str()
                    ));
                }
            }
        }
        if status >= 500 {
            let error_type = status.to_string();
            self.op.set_error_status(Cow::Borrowed(""));
            self.series.error_type = Some(Cow::Owned(error_type));
        }
        if self.op.is_recording() {
            let status = KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, i64::from(status));
            if self.series.error_type.is_none() && config.response_headers.is_empty() {
                // The common case: one attribute, set without collecting it into a `Vec`.
                self.op.set_attribute(status);
            } else {
                let mut attrs =
                    Vec::with_capacity(2 + usize::from(!config.response_headers.is_empty()));
                attrs.push(status);
                if let Some(error_type) = &self.series.error_type {
                    attrs.push(KeyValue::new(semconv::ERROR_TYPE, error_type.clone()));
                }
                config.response_headers.capture(res.headers(), &mut attrs);
                self.op.set_attributes(attrs);
            }
        }
        // W3C Trace Context Level 2: `traceresponse` carries the id of the callee's own
        // operation. A request that started no span (its caller did not sample the trace,
        // with `skip_unsampled`) has none, and echoing the caller's span id would name the
        // caller's operation as ours: no header then.
        if config.trace_response && self.op.has_span() {
            let span = self.op.context().span();
            let sc = span.span_context();
            if sc.is_valid() {
                let value = format!(
                    "00-{}-{}-{:02x}",
                    sc.trace_id(),
                    sc.span_id(),
                    sc.trace_flags().to_u8()
                );
                if let Ok(value) = http::HeaderValue::from_str(&value) {
                    res.headers_mut()
                        .insert(http::HeaderName::from_static("traceresponse"), value);
                }
            }
        }
    }

    /// Marks the request failed with `error_type` (panic, cancellation, service or body error).
    pub(crate) fn fail(&mut self, error_type: &'static str, message: &'static str) {
        self.fail_with(Cow::Borrowed(error_type), Cow::Borrowed(message));
    }

    /// [`Self::fail`] with computed values (a service error's classification).
    fn fail_with(&mut self, error_type: Cow<'static, str>, message: Cow<'static, str>) {
        self.op.record_error(error_type.clone(), message);
        self.series.error_type = Some(error_type);
    }

    /// Ends the span and records the duration and the active-request decrement.
    pub(crate) fn finish(self) {
        let RequestState { op, shared, series } = self;
        shared.active(series.method, series.scheme).add(-1);
        shared.end(op, series);
    }
}

/// Route template that an inner layer put on the response (axum's `MatchedPath`), for a
/// layer placed outside the router.
fn route_from_response<B>(res: &Response<B>) -> Option<StringValue> {
    #[cfg(feature = "axum")]
    if let Some(path) = res.extensions().get::<axum::extract::MatchedPath>() {
        return Some(StringValue::from(path.as_str().to_owned()));
    }
    let _ = res;
    None
}

pin_project! {
    /// Future returned by [`HttpServer`](super::HttpServer): resolves to the inner response
    /// with its body wrapped so that the span ends when the body has been sent.
    ///
    /// Dropped before completion, it ends the span with `error.type` `cancelled`; if the
    /// inner future panicked, with `error.type` `panic`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_tower::Config;
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::{Layer, Service, ServiceExt};
    ///
    /// let tt = TestTelemetry::new();
    /// let config = Config::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .build();
    /// // A handler that never answers.
    /// let handler = tower::service_fn(|_req: http::Request<String>| {
    ///     std::future::pending::<Result<http::Response<String>, std::convert::Infallible>>()
    /// });
    /// let mut server = HttpServerLayer::new(config).layer(handler);
    /// let request = http::Request::get("/slow").body(String::new()).unwrap();
    /// let future = server.ready().await.unwrap().call(request);
    /// drop(future); // the client went away, or a timeout around the layer fired
    /// assert_attr(&tt.span("GET"), "error.type", "cancelled");
    /// # }
    /// ```
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        state: Option<RequestState>,
        polling: bool,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(mut state) = this.state.take() {
                if *this.polling {
                    state.fail(ERROR_PANIC, "the handler panicked");
                } else {
                    state.fail(ERROR_CANCELLED, "the request future was dropped before completion");
                }
                state.finish();
            }
        }
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, state: Option<RequestState>) -> Self {
        Self {
            inner,
            state,
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
    B: http_body::Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(state) = this.state.as_mut() else {
            let result = ready!(this.inner.poll(cx));
            return Poll::Ready(result.map(|res| res.map(ResponseBody::untraced)));
        };
        let guard = state.op.context().clone().attach();
        *this.polling = true;
        let result = this.inner.poll(cx);
        *this.polling = false;
        drop(guard);
        let result = ready!(result);
        let Some(mut state) = this.state.take() else {
            return Poll::Ready(result.map(|res| res.map(ResponseBody::untraced)));
        };
        match result {
            Ok(mut res) => {
                state.on_response(&mut res);
                Poll::Ready(Ok(res.map(|body| ResponseBody::traced(body, state))))
            }
            Err(err) => {
                // As the client and gRPC layers do: `timeout`, an I/O error kind, `_OTHER`
                // for another boxed error, or the error's type name.
                let (error_type, message) = classify_error(&err);
                state.fail_with(error_type, Cow::Owned(message));
                state.finish();
                Poll::Ready(Err(err))
            }
        }
    }
}
