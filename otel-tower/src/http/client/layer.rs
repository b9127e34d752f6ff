//! [`HttpClientLayer`]: builds [`HttpClient`] services.

use std::sync::Arc;

use opentelemetry_semantic_conventions::metric::HTTP_CLIENT_REQUEST_DURATION;
use tower_layer::Layer;

use super::service::HttpClient;
use crate::config::Config;
use crate::telemetry::Histogram;

/// What every [`HttpClient`] built by one layer shares.
///
/// Aligned to two cache lines, away from the `Arc`'s reference count that every request
/// changes (see the HTTP server's `ServerShared`).
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct ClientShared {
    pub(crate) config: Config,
    pub(crate) duration: Histogram,
}

impl ClientShared {
    pub(crate) fn new(config: Config) -> Self {
        let duration = config.instrumentation.duration_histogram(
            HTTP_CLIENT_REQUEST_DURATION,
            "Duration of HTTP client requests.",
        );
        Self { config, duration }
    }
}

/// Tower layer that makes every outgoing HTTP request a CLIENT span, injects its context
/// into the request headers and records `http.client.request.duration`.
///
/// Works for any `Service<http::Request<B>, Response = http::Response<ResBody>>` client,
/// for example hyper-util's legacy `Client`. See the [module
/// documentation](crate::http::client).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use otel_core::propagation::TraceContextPropagator;
/// use otel_core::testing::{TestTelemetry, assert_attr};
/// use otel_tower::Config;
/// use otel_tower::http::client::HttpClientLayer;
/// use tower::{ServiceBuilder, ServiceExt};
///
/// let tt = TestTelemetry::new();
/// let config = Config::builder()
///     .with_tracer_provider(tt.tracer_provider().clone())
///     .with_metrics(tt.metrics().clone())
///     .with_propagator(TraceContextPropagator::new())
///     .build();
/// // Stands for hyper-util's client: answers with the `traceparent` it was sent.
/// let upstream = tower::service_fn(|req: http::Request<String>| async move {
///     let traceparent = req.headers()["traceparent"].to_str().unwrap().to_owned();
///     Ok::<_, std::convert::Infallible>(http::Response::new(traceparent))
/// });
/// let client = ServiceBuilder::new()
///     .layer(HttpClientLayer::new(config))
///     .service(upstream);
///
/// let request = http::Request::get("http://users.internal:8080/users?token=s3cr3t")
///     .body(String::new())
///     .unwrap();
/// let sent_traceparent = client.oneshot(request).await.unwrap().into_body();
///
/// let span = tt.span("GET");
/// assert_attr(
///     &span,
///     "url.full",
///     "http://users.internal:8080/users?token=REDACTED",
/// );
/// assert_attr(&span, "server.address", "users.internal");
/// assert_attr(&span, "server.port", 8080);
/// // The server receives the CLIENT span as its parent.
/// let ctx = &span.span_context;
/// assert_eq!(
///     sent_traceparent,
///     format!("00-{}-{}-01", ctx.trace_id(), ctx.span_id())
/// );
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HttpClientLayer {
    shared: Arc<ClientShared>,
}

impl Default for HttpClientLayer {
    /// A layer with [`Config::default`].
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl HttpClientLayer {
    /// A layer recording with `config`; the histogram is created here.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use hyper_util::client::legacy::Client;
    /// use hyper_util::rt::TokioExecutor;
    /// use otel_tower::Config;
    /// use otel_tower::http::client::HttpClientLayer;
    /// use tower::ServiceBuilder;
    ///
    /// let client = ServiceBuilder::new()
    ///     .layer(HttpClientLayer::new(Config::default()))
    ///     .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    /// # let _ = client;
    /// ```
    pub fn new(config: Config) -> Self {
        Self {
            shared: Arc::new(ClientShared::new(config)),
        }
    }
}

impl<S> Layer<S> for HttpClientLayer {
    type Service = HttpClient<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpClient::new(inner, Arc::clone(&self.shared))
    }
}
