//! [`HttpServerLayer`]: builds [`HttpServer`] services.

use std::sync::Arc;

use opentelemetry_semantic_conventions::metric::{
    HTTP_SERVER_ACTIVE_REQUESTS, HTTP_SERVER_REQUEST_DURATION,
};
use tower_layer::Layer;

use super::service::HttpServer;
use crate::config::Config;
use crate::telemetry::{Histogram, UpDownCounter};

/// What every [`HttpServer`] built by one layer shares: the configuration and instruments.
#[derive(Debug)]
pub(crate) struct ServerShared {
    pub(crate) config: Config,
    pub(crate) duration: Histogram,
    pub(crate) active: UpDownCounter,
}

/// Tower layer that makes every HTTP request a SERVER span and a point in
/// `http.server.request.duration`.
///
/// Works for any `Service<http::Request<B>, Response = http::Response<ResBody>>`: axum
/// routers and handlers, hyper services, tonic's HTTP layer. See the [module
/// documentation](crate::http::server) for what is recorded and where to place the layer.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use otel_core::testing::{TestTelemetry, assert_attr};
/// use otel_tower::Config;
/// use otel_tower::http::server::HttpServerLayer;
/// use tower::{ServiceBuilder, ServiceExt};
///
/// let tt = TestTelemetry::new();
/// let config = Config::builder()
///     .with_tracer_provider(tt.tracer_provider().clone())
///     .with_metrics(tt.metrics().clone())
///     .build();
/// // Any tower HTTP service; here a plain function answering 503.
/// let service = ServiceBuilder::new()
///     .layer(HttpServerLayer::new(config))
///     .service_fn(|_req: http::Request<String>| async {
///         let response = http::Response::builder()
///             .status(503)
///             .body(String::new())
///             .unwrap();
///         Ok::<_, std::convert::Infallible>(response)
///     });
/// let request = http::Request::get("/jobs").body(String::new()).unwrap();
/// drop(service.oneshot(request).await.unwrap()); // the span ends with the response body
///
/// let span = tt.span("GET");
/// assert_eq!(span.span_kind, opentelemetry::trace::SpanKind::Server);
/// assert_attr(&span, "url.path", "/jobs");
/// assert_attr(&span, "http.response.status_code", 503);
/// assert_attr(&span, "error.type", "503");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HttpServerLayer {
    shared: Arc<ServerShared>,
}

impl Default for HttpServerLayer {
    /// A layer with [`Config::default`] (global provider, propagator and metrics).
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl HttpServerLayer {
    /// A layer recording with `config`; instruments are created here.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use otel_core::testing::TestTelemetry;
    /// use otel_tower::Config;
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::ServiceExt;
    ///
    /// let tt = TestTelemetry::new();
    /// let config = Config::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .build();
    /// let app: axum::Router = axum::Router::new()
    ///     .route("/users/{id}", axum::routing::get(|| async { "alice" }))
    ///     .layer(HttpServerLayer::new(config));
    ///
    /// let request = http::Request::get("/users/7")
    ///     .body(axum::body::Body::empty())
    ///     .unwrap();
    /// drop(app.oneshot(request).await.unwrap());
    /// // With feature `axum`, the span is named after the route template, not the raw path.
    /// # if cfg!(feature = "axum") {
    /// assert_eq!(tt.spans()[0].name, "GET /users/{id}");
    /// # }
    /// # }
    /// ```
    pub fn new(config: Config) -> Self {
        let duration = config.instrumentation.duration_histogram(
            HTTP_SERVER_REQUEST_DURATION,
            "Duration of HTTP server requests.",
        );
        let active = config.instrumentation.up_down_counter(
            HTTP_SERVER_ACTIVE_REQUESTS,
            "{request}",
            "Number of active HTTP server requests.",
        );
        Self {
            shared: Arc::new(ServerShared {
                config,
                duration,
                active,
            }),
        }
    }
}

impl<S> Layer<S> for HttpServerLayer {
    type Service = HttpServer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpServer::new(inner, Arc::clone(&self.shared))
    }
}
