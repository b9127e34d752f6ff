//! [`HttpServerLayer`]: builds [`HttpServer`] services.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use opentelemetry_semantic_conventions::metric::{
    HTTP_SERVER_ACTIVE_REQUESTS, HTTP_SERVER_REQUEST_DURATION,
};
use tower_layer::Layer;

use super::service::HttpServer;
use opentelemetry::KeyValue;
use opentelemetry::{StringValue, Value};
use opentelemetry_semantic_conventions::attribute as semconv;

use crate::attributes::KnownMethod;
use crate::config::Config;
use crate::telemetry::{BoundCache, BoundHistogram, BoundUpDownCounter, Histogram, Operation};

/// The most duration series one layer keeps bound (route × status × … combinations); past
/// that, durations are recorded through the histogram's attribute lookup.
const BOUND_DURATIONS: usize = 64;

/// What every [`HttpServer`] built by one layer shares: the configuration and instruments.
///
/// Aligned to two cache lines: every request clones the `Arc` that holds this, and the
/// reference count sits just before it. Apart, other cores reading the configuration and
/// instruments do not miss each time the count changes (measured by the `*_2_threads`
/// ids of otel-tower's `http_server` benchmark).
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct ServerShared {
    pub(crate) config: Config,
    duration: Histogram,
    /// `http.server.request.duration` series by their attributes.
    durations: BoundCache<DurationKey, BoundHistogram>,
    /// `http.server.active_requests` series by method and scheme (see [`Self::active`]).
    active: Box<[BoundUpDownCounter]>,
    /// The first `server.address` seen, shared by the spans that have it.
    pub(crate) server_address: OnceLock<StringValue>,
}

/// The attributes of one `http.server.request.duration` series.
#[derive(Debug, Clone)]
pub(crate) struct DurationKey {
    pub(crate) method: KnownMethod,
    pub(crate) scheme: &'static str,
    pub(crate) version: &'static str,
    pub(crate) status: Option<u16>,
    pub(crate) route: Option<StringValue>,
    pub(crate) error_type: Option<Cow<'static, str>>,
}

impl DurationKey {
    fn matches(&self, other: &DurationKey) -> bool {
        /// `scheme` and `version` are one of a few static strings: equal addresses settle it
        /// without comparing bytes (a `memcmp` call each on every request otherwise).
        fn same(a: &'static str, b: &'static str) -> bool {
            std::ptr::eq(a, b) || a == b
        }
        self.method.index == other.method.index
            && self.status == other.status
            && same(self.scheme, other.scheme)
            && same(self.version, other.version)
            && self.route.as_ref().map(StringValue::as_str)
                == other.route.as_ref().map(StringValue::as_str)
            && self.error_type == other.error_type
    }

    /// The metric attributes of the series.
    fn attributes(&self) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(6);
        attrs.push(KeyValue::new(
            semconv::HTTP_REQUEST_METHOD,
            self.method.name,
        ));
        attrs.push(KeyValue::new(semconv::URL_SCHEME, self.scheme));
        attrs.push(KeyValue::new(
            semconv::NETWORK_PROTOCOL_VERSION,
            self.version,
        ));
        if let Some(status) = self.status {
            attrs.push(KeyValue::new(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status),
            ));
        }
        if let Some(route) = &self.route {
            attrs.push(KeyValue::new(semconv::HTTP_ROUTE, route.clone()));
        }
        if let Some(error_type) = &self.error_type {
            attrs.push(KeyValue::new(
                semconv::ERROR_TYPE,
                Value::from(error_type.clone()),
            ));
        }
        attrs
    }
}

impl ServerShared {
    /// The `http.server.active_requests` series of `method` and `scheme`.
    pub(crate) fn active(&self, method: KnownMethod, scheme: &'static str) -> &BoundUpDownCounter {
        let https = usize::from(scheme == "https");
        &self.active[usize::from(method.index) * 2 + https]
    }

    /// Ends `op` and records its duration in the series of `key`.
    pub(crate) fn end(&self, op: Operation, key: DurationKey) {
        let bound = self.durations.get_or_insert_with(
            |k| k.matches(&key),
            || (key.clone(), self.duration.bind(&key.attributes())),
        );
        match bound {
            Some(bound) => op.end_with_bound(bound),
            None => op.end_with_duration(&self.duration, &key.attributes()),
        }
    }
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
        let methods = &config.known_methods;
        let active = (0..methods.count())
            .flat_map(|index| {
                let method = methods.by_index(index);
                ["http", "https"].map(|scheme| {
                    active.bind(&[
                        KeyValue::new(semconv::HTTP_REQUEST_METHOD, method.name),
                        KeyValue::new(semconv::URL_SCHEME, scheme),
                    ])
                })
            })
            .collect();
        Self {
            shared: Arc::new(ServerShared {
                config,
                duration,
                durations: BoundCache::new(BOUND_DURATIONS),
                active,
                server_address: OnceLock::new(),
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
