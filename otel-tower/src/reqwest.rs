//! reqwest integration: [`OtelMiddleware`] for `reqwest-middleware`.
//!
//! One line gives a reqwest client the same CLIENT spans, propagation and
//! `http.client.request.duration` as [`HttpClientLayer`](crate::http::client::HttpClientLayer):
//!
//! ```
//! use otel_tower::reqwest::OtelMiddleware;
//!
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(OtelMiddleware::default())
//!     .build();
//! # let _ = client;
//! ```
//!
//! The span ends when the response head has arrived or the request failed; a reqwest
//! timeout is recorded as `error.type` `timeout`, a connection failure as `connect`, a
//! request future dropped before completion as `cancelled`. Attributes are those listed in
//! [`crate::http::client`].

use std::borrow::Cow;
use std::sync::Arc;

use http::{Extensions, Uri};
use opentelemetry::context::FutureExt;
use reqwest_middleware::{Middleware, Next};

use crate::attributes::{ERROR_CANCELLED, ERROR_OTHER, ERROR_TIMEOUT};
use crate::config::{Config, RequestView};
use crate::http::client::ClientShared;
use crate::http::client::service::ClientRequest;

/// reqwest-middleware middleware that instruments every request of a
/// `reqwest_middleware::ClientWithMiddleware`.
///
/// ```
/// use otel_tower::Config;
/// use otel_tower::reqwest::OtelMiddleware;
/// use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
///
/// fn http_client(config: Config) -> ClientWithMiddleware {
///     ClientBuilder::new(reqwest::Client::new())
///         .with(OtelMiddleware::new(config))
///         .build()
/// }
/// let client = http_client(Config::default());
/// # let _ = client;
/// ```
#[derive(Debug, Clone)]
pub struct OtelMiddleware {
    shared: Arc<ClientShared>,
}

impl Default for OtelMiddleware {
    /// A middleware with [`Config::default`].
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl OtelMiddleware {
    /// A middleware recording with `config`; the histogram is created here.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_tower::Config;
    /// use otel_tower::reqwest::OtelMiddleware;
    ///
    /// let tt = TestTelemetry::new();
    /// let config = Config::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .build();
    /// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
    ///     .with(OtelMiddleware::new(config))
    ///     .build();
    ///
    /// // Nothing listens on port 1: the request fails and the span says why.
    /// let result = client.get("http://127.0.0.1:1/users").send().await;
    /// assert!(result.is_err());
    /// let span = tt.span("GET");
    /// assert_attr(&span, "url.full", "http://127.0.0.1:1/users");
    /// assert_attr(&span, "error.type", "connect");
    /// # }
    /// ```
    pub fn new(config: Config) -> Self {
        Self {
            shared: Arc::new(ClientShared::new(config)),
        }
    }
}

/// Ends the span as cancelled if the request future is dropped mid-flight.
struct InFlight(Option<ClientRequest>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(mut state) = self.0.take() {
            state.fail(
                Cow::Borrowed(ERROR_CANCELLED),
                "the request was dropped before a response arrived".into(),
            );
            state.finish();
        }
    }
}

fn classify(error: &reqwest_middleware::Error) -> Cow<'static, str> {
    match error {
        reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => Cow::Borrowed(ERROR_TIMEOUT),
        reqwest_middleware::Error::Reqwest(e) if e.is_connect() => Cow::Borrowed("connect"),
        reqwest_middleware::Error::Reqwest(_) => Cow::Borrowed("reqwest::Error"),
        reqwest_middleware::Error::Middleware(_) => Cow::Borrowed(ERROR_OTHER),
    }
}

#[async_trait::async_trait]
impl Middleware for OtelMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let uri: Uri = req.url().as_str().parse().unwrap_or_default();
        let config = &self.shared.config;
        let state = {
            let view = RequestView::from_parts(
                req.method(),
                &uri,
                req.version(),
                req.headers(),
                extensions,
            );
            if let Some(filter) = &config.filter
                && !filter.should_instrument(&view)
            {
                None
            } else {
                Some(ClientRequest::start(
                    Arc::clone(&self.shared),
                    &view,
                    req.method(),
                    &uri,
                    req.version(),
                    req.headers(),
                ))
            }
        };
        let Some(state) = state else {
            return next.run(req, extensions).await;
        };
        config
            .propagation
            .inject(state.op.context(), req.headers_mut());
        let cx = state.op.context().clone();
        let mut in_flight = InFlight(Some(state));
        let result = next.run(req, extensions).with_context(cx).await;
        if let Some(mut state) = in_flight.0.take() {
            match &result {
                Ok(res) => state.on_response(res.status(), res.version(), res.headers()),
                Err(err) => state.fail(classify(err), err.to_string()),
            }
            state.finish();
        }
        result
    }
}
