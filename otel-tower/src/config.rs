//! Configuration shared by every layer in this crate.
//!
//! One [`Config`] describes where telemetry goes (tracer provider, metrics, propagator) and
//! what is recorded (filter, extra attributes, span name, header allowlists, query
//! redaction). Build it once with [`Config::builder`] and hand it to any of the layers; each
//! layer creates its own instruments from it.
//!
//! Pluggable behaviour is expressed as small traits — [`Filter`], [`RequestAttributes`],
//! [`SpanName`] — implemented for closures, for `()` (off) and for a ready-made struct
//! ([`SkipPaths`], [`HeaderAttribute`]). Each is called with a borrowed [`RequestView`], so
//! the same closure works for the HTTP server, HTTP client and gRPC layers.
//!
//! ```
//! use opentelemetry::KeyValue;
//! use otel_tower::Config;
//! use otel_tower::config::{HeaderAttribute, RequestView, SkipPaths};
//! use otel_tower::http::server::HttpServerLayer;
//!
//! let config = Config::builder()
//!     // Where telemetry goes (defaults: the global provider, metrics and propagator).
//!     .with_propagator(otel_core::propagation::TraceContextPropagator::new())
//!     // What is recorded.
//!     .with_filter(SkipPaths::new(["/health", "/metrics"]))
//!     .with_request_attributes(HeaderAttribute::new(
//!         http::HeaderName::from_static("x-tenant-id"),
//!         "tenant.id",
//!     ))
//!     .with_capture_request_headers([http::header::USER_AGENT])
//!     .with_redaction(["session_id"])
//!     .build();
//! let layer = HttpServerLayer::new(config);
//! # let _ = layer;
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::{Extensions, HeaderMap, HeaderName, Method, Request, Uri, Version};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Tracer, TracerProvider};
use opentelemetry::{Key, KeyValue};

use crate::attributes::KnownMethods;
use crate::telemetry::{Instrumentation, Metrics, Propagation, instrumentation_builder};

/// A borrowed view of an outgoing or incoming request, given to the pluggable hooks.
///
/// It exposes the request line, headers and extensions but never the body, so hooks can run
/// before the request is sent or handled without consuming anything.
///
/// ```
/// use otel_tower::config::RequestView;
///
/// let request = http::Request::post("https://api.example.com/users/7?page=2")
///     .header("x-tenant-id", "acme")
///     .body(())
///     .unwrap();
/// let view = RequestView::new(&request);
/// assert_eq!(view.method(), http::Method::POST);
/// assert_eq!(view.path(), "/users/7");
/// assert_eq!(view.uri().query(), Some("page=2"));
/// assert_eq!(view.headers()["x-tenant-id"], "acme");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    method: &'a Method,
    uri: &'a Uri,
    version: Version,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
}

impl<'a> RequestView<'a> {
    /// Borrows the parts of `request` that hooks may look at.
    ///
    /// ```
    /// use otel_tower::config::RequestView;
    ///
    /// let request = http::Request::get("/health").body(()).unwrap();
    /// assert_eq!(RequestView::new(&request).path(), "/health");
    /// ```
    pub fn new<B>(request: &'a Request<B>) -> Self {
        Self {
            method: request.method(),
            uri: request.uri(),
            version: request.version(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }

    /// A view over separately held parts (for clients whose request type is not
    /// `http::Request`, such as reqwest's).
    #[cfg(feature = "reqwest")]
    pub(crate) fn from_parts(
        method: &'a Method,
        uri: &'a Uri,
        version: Version,
        headers: &'a HeaderMap,
        extensions: &'a Extensions,
    ) -> Self {
        Self {
            method,
            uri,
            version,
            headers,
            extensions,
        }
    }

    /// The request method.
    ///
    /// ```
    /// use otel_tower::Config;
    /// use otel_tower::config::{Filter, RequestView};
    ///
    /// // Do not trace CORS preflight requests.
    /// fn not_preflight(view: &RequestView<'_>) -> bool {
    ///     view.method() != http::Method::OPTIONS
    /// }
    /// let config = Config::builder().with_filter(not_preflight).build();
    /// # let _ = config;
    ///
    /// let preflight = http::Request::options("/users").body(()).unwrap();
    /// assert!(!not_preflight.should_instrument(&RequestView::new(&preflight)));
    /// ```
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI as the layer sees it (for a server behind axum's `Router::nest`, the
    /// nested part; see [`RequestView::path`]).
    ///
    /// ```
    /// use otel_tower::config::RequestView;
    ///
    /// let request = http::Request::get("http://localhost:8080/search?q=otel")
    ///     .body(())
    ///     .unwrap();
    /// let view = RequestView::new(&request);
    /// assert_eq!(view.uri().host(), Some("localhost"));
    /// assert_eq!(view.uri().query(), Some("q=otel"));
    /// ```
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request path; with feature `axum`, taken from `OriginalUri` when present so that
    /// nested routers still see the full path.
    ///
    /// ```
    /// use otel_tower::config::{Filter, RequestView};
    ///
    /// // Leave internal endpoints untraced.
    /// fn public_only(view: &RequestView<'_>) -> bool {
    ///     !view.path().starts_with("/internal/")
    /// }
    /// let request = http::Request::get("/internal/metrics?verbose=1")
    ///     .body(())
    ///     .unwrap();
    /// assert_eq!(RequestView::new(&request).path(), "/internal/metrics");
    /// assert!(!public_only.should_instrument(&RequestView::new(&request)));
    /// ```
    pub fn path(&self) -> &'a str {
        #[cfg(feature = "axum")]
        if let Some(original) = self.extensions.get::<axum::extract::OriginalUri>() {
            return original.0.path();
        }
        self.uri.path()
    }

    /// The HTTP version.
    ///
    /// ```
    /// use otel_tower::config::RequestView;
    ///
    /// let request = http::Request::get("/")
    ///     .version(http::Version::HTTP_2)
    ///     .body(())
    ///     .unwrap();
    /// assert_eq!(RequestView::new(&request).version(), http::Version::HTTP_2);
    /// ```
    pub fn version(&self) -> Version {
        self.version
    }

    /// The request headers.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_tower::config::{RequestAttributes, RequestView};
    ///
    /// // Record which client application made the request.
    /// fn client_app(view: &RequestView<'_>, attributes: &mut Vec<KeyValue>) {
    ///     if let Some(app) = view
    ///         .headers()
    ///         .get("x-client-app")
    ///         .and_then(|v| v.to_str().ok())
    ///     {
    ///         attributes.push(KeyValue::new("app.client", app.to_owned()));
    ///     }
    /// }
    /// let request = http::Request::get("/")
    ///     .header("x-client-app", "ios")
    ///     .body(())
    ///     .unwrap();
    /// let mut attributes = Vec::new();
    /// client_app.attributes(&RequestView::new(&request), &mut attributes);
    /// assert_eq!(attributes, [KeyValue::new("app.client", "ios")]);
    /// ```
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_tower::config::{RequestAttributes, RequestView};
    ///
    /// /// Put on the request by an authentication middleware running before the layer.
    /// #[derive(Clone)]
    /// struct Tenant(&'static str);
    ///
    /// fn tenant(view: &RequestView<'_>, attributes: &mut Vec<KeyValue>) {
    ///     if let Some(Tenant(id)) = view.extensions().get::<Tenant>() {
    ///         attributes.push(KeyValue::new("tenant.id", *id));
    ///     }
    /// }
    /// let mut request = http::Request::get("/orders").body(()).unwrap();
    /// request.extensions_mut().insert(Tenant("acme"));
    /// let mut attributes = Vec::new();
    /// tenant.attributes(&RequestView::new(&request), &mut attributes);
    /// assert_eq!(attributes, [KeyValue::new("tenant.id", "acme")]);
    /// ```
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }

    /// The route template of the request (axum's `MatchedPath`), when known at this point.
    ///
    /// Always `None` without feature `axum`, and for a layer applied outside the axum
    /// `Router` (see the crate documentation on layer placement).
    ///
    /// ```
    /// use otel_tower::config::{RequestView, SpanName};
    /// use std::borrow::Cow;
    ///
    /// // Name spans after the route template, or "unmatched" when none is known.
    /// fn by_route(view: &RequestView<'_>) -> Cow<'static, str> {
    ///     Cow::Owned(view.route().unwrap_or("unmatched").to_owned())
    /// }
    /// // A bare request has not been through axum's router: no template.
    /// let request = http::Request::get("/users/7").body(()).unwrap();
    /// assert_eq!(RequestView::new(&request).route(), None);
    /// assert_eq!(by_route.span_name(&RequestView::new(&request)), "unmatched");
    /// ```
    pub fn route(&self) -> Option<&'a str> {
        #[cfg(feature = "axum")]
        if let Some(path) = self.extensions.get::<axum::extract::MatchedPath>() {
            return Some(path.as_str());
        }
        None
    }
}

/// Decides per request whether it is instrumented at all.
///
/// A request the filter rejects gets no span, no context extraction and no metrics; its
/// handler still runs with whatever context was current. Called once per request before
/// anything else.
///
/// Implemented for closures and functions `Fn(&RequestView<'_>) -> bool`, for `()`
/// (instrument everything) and for [`SkipPaths`]; implement it for your own type when the
/// decision needs state:
///
/// ```
/// use otel_tower::Config;
/// use otel_tower::config::{Filter, RequestView};
///
/// /// Instruments only requests under one path prefix.
/// struct UnderPrefix(&'static str);
///
/// impl Filter for UnderPrefix {
///     fn should_instrument(&self, request: &RequestView<'_>) -> bool {
///         request.path().starts_with(self.0)
///     }
/// }
///
/// let filter = UnderPrefix("/api/");
/// let api = http::Request::get("/api/users").body(()).unwrap();
/// let assets = http::Request::get("/assets/app.js").body(()).unwrap();
/// assert!(filter.should_instrument(&RequestView::new(&api)));
/// assert!(!filter.should_instrument(&RequestView::new(&assets)));
///
/// let config = Config::builder().with_filter(filter).build();
/// # let _ = config;
/// ```
pub trait Filter: Send + Sync + 'static {
    /// Returns `true` to instrument `request`.
    fn should_instrument(&self, request: &RequestView<'_>) -> bool;
}

/// `()` instruments every request.
impl Filter for () {
    fn should_instrument(&self, _request: &RequestView<'_>) -> bool {
        true
    }
}

impl<F> Filter for F
where
    F: Fn(&RequestView<'_>) -> bool + Send + Sync + 'static,
{
    fn should_instrument(&self, request: &RequestView<'_>) -> bool {
        self(request)
    }
}

/// A [`Filter`] that skips requests whose path equals one of a fixed list (for example
/// `/health` and `/metrics`).
///
/// ```
/// use otel_tower::Config;
/// use otel_tower::config::SkipPaths;
///
/// let config = Config::builder()
///     .with_filter(SkipPaths::new(["/health", "/metrics"]))
///     .build();
/// # let _ = config;
/// ```
#[derive(Debug, Clone, Default)]
pub struct SkipPaths {
    paths: Vec<String>,
}

impl SkipPaths {
    /// Skips requests whose path is exactly one of `paths`.
    ///
    /// ```
    /// use otel_tower::config::{Filter, RequestView, SkipPaths};
    ///
    /// let skip = SkipPaths::new(["/health", "/metrics"]);
    /// let health = http::Request::get("/health").body(()).unwrap();
    /// let users = http::Request::get("/users").body(()).unwrap();
    /// assert!(!skip.should_instrument(&RequestView::new(&health)));
    /// assert!(skip.should_instrument(&RequestView::new(&users)));
    /// // Exact match only: sub-paths are still instrumented.
    /// let deep = http::Request::get("/health/db").body(()).unwrap();
    /// assert!(skip.should_instrument(&RequestView::new(&deep)));
    /// ```
    pub fn new<I, S>(paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            paths: paths.into_iter().map(Into::into).collect(),
        }
    }

    /// Also skips `path`.
    ///
    /// ```
    /// use otel_tower::config::{Filter, RequestView, SkipPaths};
    ///
    /// let skip = SkipPaths::new(["/health"]).with_path("/ready");
    /// let ready = http::Request::get("/ready").body(()).unwrap();
    /// assert!(!skip.should_instrument(&RequestView::new(&ready)));
    /// ```
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.paths.push(path.into());
        self
    }
}

impl Filter for SkipPaths {
    fn should_instrument(&self, request: &RequestView<'_>) -> bool {
        let path = request.path();
        !self.paths.iter().any(|p| p == path)
    }
}

/// Adds attributes of your own (for example a tenant id) to the span of a request.
///
/// Called once per request that starts a span, before the span starts, so that the sampler
/// sees these attributes too (the semantic conventions ask for sampling-relevant attributes
/// at span creation). Not called for requests that start no span: those a
/// [`Filter`] rejects, and on servers those whose caller did not sample the trace (see
/// [`ConfigBuilder::with_skip_unsampled`]); an HTTP or gRPC client call whose parent span is
/// not sampled calls it only if its span records anyway. Attributes go on the span only,
/// never on metrics (whose series must stay bounded).
///
/// Implemented for closures and functions `Fn(&RequestView<'_>, &mut Vec<KeyValue>)`,
/// for `()` and for [`HeaderAttribute`]:
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_tower::Config;
/// use otel_tower::config::{RequestAttributes, RequestView};
///
/// /// Marks requests that came through the internal load balancer.
/// struct Origin;
///
/// impl RequestAttributes for Origin {
///     fn attributes(&self, request: &RequestView<'_>, attributes: &mut Vec<KeyValue>) {
///         let internal = request.headers().contains_key("x-internal-lb");
///         attributes.push(KeyValue::new(
///             "app.origin",
///             if internal { "internal" } else { "public" },
///         ));
///     }
/// }
///
/// let request = http::Request::get("/")
///     .header("x-internal-lb", "1")
///     .body(())
///     .unwrap();
/// let mut attributes = Vec::new();
/// Origin.attributes(&RequestView::new(&request), &mut attributes);
/// assert_eq!(attributes, [KeyValue::new("app.origin", "internal")]);
///
/// let config = Config::builder().with_request_attributes(Origin).build();
/// # let _ = config;
/// ```
pub trait RequestAttributes: Send + Sync + 'static {
    /// Pushes attributes for `request` onto `attributes`.
    fn attributes(&self, request: &RequestView<'_>, attributes: &mut Vec<KeyValue>);
}

/// `()` adds nothing.
impl RequestAttributes for () {
    fn attributes(&self, _request: &RequestView<'_>, _attributes: &mut Vec<KeyValue>) {}
}

impl<F> RequestAttributes for F
where
    F: Fn(&RequestView<'_>, &mut Vec<KeyValue>) + Send + Sync + 'static,
{
    fn attributes(&self, request: &RequestView<'_>, attributes: &mut Vec<KeyValue>) {
        self(request, attributes);
    }
}

/// A [`RequestAttributes`] that copies one request header into a span attribute of your
/// choosing (for example header `x-tenant-id` into attribute `tenant.id`).
///
/// Absent headers add nothing; values that are not visible ASCII are skipped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use otel_core::testing::{TestTelemetry, assert_attr};
/// use otel_tower::Config;
/// use otel_tower::config::HeaderAttribute;
/// use otel_tower::http::server::HttpServerLayer;
/// use tower::{Layer, ServiceExt};
///
/// let tt = TestTelemetry::new();
/// let config = Config::builder()
///     .with_tracer_provider(tt.tracer_provider().clone())
///     .with_metrics(tt.metrics().clone())
///     .with_request_attributes(HeaderAttribute::new(
///         http::HeaderName::from_static("x-tenant-id"),
///         "tenant.id",
///     ))
///     .build();
/// # let handler = tower::service_fn(|_req: http::Request<String>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
/// # });
/// let server = HttpServerLayer::new(config).layer(handler);
/// let request = http::Request::get("/orders")
///     .header("x-tenant-id", "acme")
///     .body(String::new())
///     .unwrap();
/// drop(server.oneshot(request).await.unwrap()); // the span ends with the response body
/// assert_attr(&tt.span("GET"), "tenant.id", "acme");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HeaderAttribute {
    header: HeaderName,
    key: Key,
}

impl HeaderAttribute {
    /// Records header `header` as attribute `key`.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_tower::config::{HeaderAttribute, RequestAttributes, RequestView};
    ///
    /// let region =
    ///     HeaderAttribute::new(http::HeaderName::from_static("x-region"), "cloud.region");
    /// let request = http::Request::get("/")
    ///     .header("x-region", "eu-west-1")
    ///     .body(())
    ///     .unwrap();
    /// let mut attributes = Vec::new();
    /// region.attributes(&RequestView::new(&request), &mut attributes);
    /// assert_eq!(attributes, [KeyValue::new("cloud.region", "eu-west-1")]);
    ///
    /// // Without the header, nothing is added.
    /// let bare = http::Request::get("/").body(()).unwrap();
    /// let mut attributes = Vec::new();
    /// region.attributes(&RequestView::new(&bare), &mut attributes);
    /// assert!(attributes.is_empty());
    /// ```
    pub fn new(header: HeaderName, key: impl Into<Key>) -> Self {
        Self {
            header,
            key: key.into(),
        }
    }
}

impl RequestAttributes for HeaderAttribute {
    fn attributes(&self, request: &RequestView<'_>, attributes: &mut Vec<KeyValue>) {
        if let Some(value) = request
            .headers()
            .get(&self.header)
            .and_then(|v| v.to_str().ok())
        {
            attributes.push(KeyValue::new(self.key.clone(), value.to_owned()));
        }
    }
}

/// Overrides the span name.
///
/// Called once per request when the span starts (so samplers see the name). When set, the
/// layer never renames the span afterwards.
///
/// Implemented for closures and functions `Fn(&RequestView<'_>) -> Cow<'static, str>`
/// and for `&'static str` (one fixed name). Beware of high-cardinality names such as raw
/// paths in production; this example only shows the mechanics:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use otel_core::testing::TestTelemetry;
/// use otel_tower::Config;
/// use otel_tower::config::RequestView;
/// use otel_tower::http::server::HttpServerLayer;
/// use std::borrow::Cow;
/// use tower::{Layer, ServiceExt};
///
/// let tt = TestTelemetry::new();
/// let config = Config::builder()
///     .with_tracer_provider(tt.tracer_provider().clone())
///     .with_metrics(tt.metrics().clone())
///     .with_span_name(|view: &RequestView<'_>| -> Cow<'static, str> {
///         format!("{} {}", view.method(), view.path()).into()
///     })
///     .build();
/// # let handler = tower::service_fn(|_req: http::Request<String>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
/// # });
/// let server = HttpServerLayer::new(config).layer(handler);
/// let request = http::Request::get("/ping").body(String::new()).unwrap();
/// drop(server.oneshot(request).await.unwrap());
/// assert_eq!(tt.spans()[0].name, "GET /ping");
/// # }
/// ```
pub trait SpanName: Send + Sync + 'static {
    /// The span name for `request`.
    fn span_name(&self, request: &RequestView<'_>) -> Cow<'static, str>;
}

/// A fixed name for every span.
impl SpanName for &'static str {
    fn span_name(&self, _request: &RequestView<'_>) -> Cow<'static, str> {
        Cow::Borrowed(self)
    }
}

impl<F> SpanName for F
where
    F: Fn(&RequestView<'_>) -> Cow<'static, str> + Send + Sync + 'static,
{
    fn span_name(&self, request: &RequestView<'_>) -> Cow<'static, str> {
        self(request)
    }
}

/// Headers that are never captured, whatever the allowlist says.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use otel_core::testing::{TestTelemetry, assert_attr, assert_no_attr};
/// use otel_tower::Config;
/// use otel_tower::config::NEVER_CAPTURED_HEADERS;
/// use otel_tower::http::server::HttpServerLayer;
/// use tower::{Layer, ServiceExt};
///
/// assert!(NEVER_CAPTURED_HEADERS.contains(&http::header::AUTHORIZATION));
///
/// let tt = TestTelemetry::new();
/// let config = Config::builder()
///     .with_tracer_provider(tt.tracer_provider().clone())
///     .with_metrics(tt.metrics().clone())
///     // Allowlisting `authorization` has no effect.
///     .with_capture_request_headers([http::header::AUTHORIZATION, http::header::ACCEPT])
///     .build();
/// # let handler = tower::service_fn(|_req: http::Request<String>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
/// # });
/// let server = HttpServerLayer::new(config).layer(handler);
/// let request = http::Request::get("/")
///     .header("authorization", "Bearer secret")
///     .header("accept", "text/plain")
///     .body(String::new())
///     .unwrap();
/// drop(server.oneshot(request).await.unwrap());
/// let span = tt.span("GET");
/// assert_no_attr(&span, "http.request.header.authorization");
/// assert_attr(
///     &span,
///     "http.request.header.accept",
///     opentelemetry::Value::Array(
///         vec![opentelemetry::StringValue::from("text/plain")].into(),
///     ),
/// );
/// # }
/// ```
pub const NEVER_CAPTURED_HEADERS: [HeaderName; 4] = [
    http::header::AUTHORIZATION,
    http::header::COOKIE,
    http::header::SET_COOKIE,
    http::header::PROXY_AUTHORIZATION,
];

/// Query parameters whose values are always redacted: the semantic conventions' list (as of
/// the version this crate follows), and the names earlier versions listed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use otel_core::testing::{TestTelemetry, assert_attr};
/// use otel_tower::Config;
/// use otel_tower::config::DEFAULT_REDACTED_QUERY_PARAMS;
/// use otel_tower::http::server::HttpServerLayer;
/// use tower::{Layer, ServiceExt};
///
/// assert!(DEFAULT_REDACTED_QUERY_PARAMS.contains(&"X-Goog-Signature"));
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
/// let request = http::Request::get("/download?file=a.zip&Signature=c2lnbmF0dXJl")
///     .body(String::new())
///     .unwrap();
/// drop(server.oneshot(request).await.unwrap());
/// assert_attr(
///     &tt.span("GET"),
///     "url.query",
///     "file=a.zip&Signature=REDACTED",
/// );
/// # }
/// ```
pub const DEFAULT_REDACTED_QUERY_PARAMS: [&str; 7] = [
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
    "sig",
    "X-Goog-Signature",
    // Listed by earlier versions of the conventions (AWS signature version 2).
    "AWSAccessKeyId",
    "Signature",
];

/// Header allowlist with the attribute keys computed once.
#[derive(Clone, Default)]
pub(crate) struct HeaderCapture {
    entries: Arc<[(HeaderName, Key)]>,
}

impl fmt::Debug for HeaderCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(h, _)| h.as_str()))
            .finish()
    }
}

impl HeaderCapture {
    fn new(prefix: &str, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        let mut entries: Vec<(HeaderName, Key)> = Vec::new();
        for header in headers {
            if NEVER_CAPTURED_HEADERS.contains(&header) || entries.iter().any(|(h, _)| *h == header)
            {
                continue;
            }
            let key: Arc<str> = format!("{prefix}.{}", header.as_str()).into();
            entries.push((header, Key::from(key)));
        }
        Self {
            entries: entries.into(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Pushes one string-array attribute per allowlisted header present in `headers`.
    pub(crate) fn capture(&self, headers: &HeaderMap, attributes: &mut Vec<KeyValue>) {
        for (name, key) in self.entries.iter() {
            let values: Vec<opentelemetry::StringValue> = headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned().into())
                .collect();
            if !values.is_empty() {
                attributes.push(KeyValue::new(
                    key.clone(),
                    opentelemetry::Value::Array(values.into()),
                ));
            }
        }
    }
}

/// Everything the layers need, shared behind `Arc`s; cheap to clone.
///
/// Build with [`Config::builder`]; [`Config::default`] uses the global tracer provider, the
/// global propagator and the global metrics, instruments every request and captures no
/// headers.
///
/// ```
/// use otel_tower::Config;
/// use otel_tower::config::SkipPaths;
/// use otel_tower::http::client::HttpClientLayer;
/// use otel_tower::http::server::HttpServerLayer;
///
/// let config = Config::builder()
///     .with_filter(SkipPaths::new(["/health"]))
///     .with_capture_request_headers([http::header::USER_AGENT])
///     .build();
/// // One configuration, shared by any number of layers (cloning is cheap).
/// let server_layer = HttpServerLayer::new(config.clone());
/// let client_layer = HttpClientLayer::new(config);
/// # let _ = (server_layer, client_layer);
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) instrumentation: Instrumentation,
    pub(crate) propagation: Propagation,
    pub(crate) filter: Option<Arc<dyn Filter>>,
    pub(crate) request_attributes: Option<Arc<dyn RequestAttributes>>,
    pub(crate) span_name: Option<Arc<dyn SpanName>>,
    pub(crate) request_headers: HeaderCapture,
    pub(crate) response_headers: HeaderCapture,
    pub(crate) redacted_query_params: Arc<[Box<str>]>,
    pub(crate) secret_names: otel_core::redact::Redactor,
    pub(crate) trace_response: bool,
    /// `None`: skip unless tail mode is on (see [`Config::skips_unsampled`]).
    pub(crate) skip_unsampled: Option<bool>,
    pub(crate) known_methods: KnownMethods,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("propagation", &self.propagation)
            .field("filter", &self.filter.is_some())
            .field("request_attributes", &self.request_attributes.is_some())
            .field("span_name", &self.span_name.is_some())
            .field("request_headers", &self.request_headers)
            .field("response_headers", &self.response_headers)
            .field("redacted_query_params", &self.redacted_query_params)
            .field("trace_response", &self.trace_response)
            .field("skip_unsampled", &self.skip_unsampled)
            .field("known_methods", &self.known_methods)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl Config {
    /// Starts a configuration with the defaults described on [`Config`].
    ///
    /// ```
    /// use otel_tower::Config;
    ///
    /// let config = Config::builder().with_trace_response(true).build();
    /// # let _ = config;
    /// ```
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Whether a server layer starts no span for a request whose caller did not sample the
    /// trace: as set with [`ConfigBuilder::with_skip_unsampled`], else `true` unless tail
    /// mode is on in this process.
    pub(crate) fn skips_unsampled(&self) -> bool {
        self.skip_unsampled
            .unwrap_or_else(|| !otel_core::sampling::tail::is_active())
    }

    /// Whether `name` is a query parameter whose value is redacted: one of
    /// [`DEFAULT_REDACTED_QUERY_PARAMS`], a name `otel_core::redact` treats as a secret
    /// (`token`, `password`, `api_key`, ...), or one given to
    /// [`ConfigBuilder::with_redaction`]; matched case-insensitively.
    pub(crate) fn is_redacted_param(&self, name: &str) -> bool {
        DEFAULT_REDACTED_QUERY_PARAMS
            .iter()
            .any(|p| p.eq_ignore_ascii_case(name))
            || self
                .redacted_query_params
                .iter()
                .any(|p| p.eq_ignore_ascii_case(name))
            || self.secret_names.is_secret_name(name)
    }
}

/// Builder for [`Config`]; every setter is optional.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use otel_core::testing::{TestTelemetry, assert_attr};
/// use otel_tower::Config;
/// use otel_tower::config::SkipPaths;
/// use otel_tower::http::server::HttpServerLayer;
/// use tower::{Layer, ServiceExt};
///
/// let tt = TestTelemetry::new();
/// let config = Config::builder()
///     .with_tracer_provider(tt.tracer_provider().clone())
///     .with_metrics(tt.metrics().clone())
///     .with_filter(SkipPaths::new(["/health"]))
///     .with_redaction(["session"])
///     .build();
/// # let handler = tower::service_fn(|_req: http::Request<String>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
/// # });
/// let server = HttpServerLayer::new(config).layer(handler);
/// for uri in ["/health", "/search?q=otel&session=abc"] {
///     let request = http::Request::get(uri).body(String::new()).unwrap();
///     drop(server.clone().oneshot(request).await.unwrap());
/// }
/// // `/health` was skipped; the other request has its session redacted.
/// assert_eq!(tt.spans().len(), 1);
/// assert_attr(&tt.span("GET"), "url.query", "q=otel&session=REDACTED");
/// # }
/// ```
#[must_use]
pub struct ConfigBuilder {
    instrumentation: otel_core::instrument::InstrumentationBuilder,
    propagator: Option<Arc<dyn TextMapPropagator + Send + Sync>>,
    filter: Option<Arc<dyn Filter>>,
    request_attributes: Option<Arc<dyn RequestAttributes>>,
    span_name: Option<Arc<dyn SpanName>>,
    request_headers: Vec<HeaderName>,
    response_headers: Vec<HeaderName>,
    redacted_query_params: Vec<Box<str>>,
    trace_response: bool,
    skip_unsampled: Option<bool>,
    known_methods: Option<KnownMethods>,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        Self {
            instrumentation: instrumentation_builder(),
            propagator: None,
            filter: None,
            request_attributes: None,
            span_name: None,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            redacted_query_params: Vec::new(),
            trace_response: false,
            skip_unsampled: None,
            known_methods: None,
        }
    }
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder").finish_non_exhaustive()
    }
}

impl ConfigBuilder {
    /// Spans go to `provider` instead of the global tracer provider.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use otel_core::testing::TestTelemetry;
    /// use otel_tower::Config;
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::{Layer, ServiceExt};
    ///
    /// // In a service: the provider built by your pipeline. Here: an in-memory one.
    /// let tt = TestTelemetry::new();
    /// let config = Config::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .build();
    /// # let handler = tower::service_fn(|_req: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
    /// # });
    /// let server = HttpServerLayer::new(config).layer(handler);
    /// let request = http::Request::get("/").body(String::new()).unwrap();
    /// drop(server.oneshot(request).await.unwrap());
    /// assert_eq!(tt.spans().len(), 1);
    /// # }
    /// ```
    pub fn with_tracer_provider<P>(mut self, provider: P) -> Self
    where
        P: TracerProvider + Send + Sync + 'static,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        self.instrumentation = self.instrumentation.with_tracer_provider(provider);
        self
    }

    /// Duration histograms and counters are created from `metrics` instead of
    /// [`Metrics::global`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use otel_core::metrics::{Metrics, SnapshotExt};
    /// use otel_tower::Config;
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::{Layer, ServiceExt};
    ///
    /// let metrics = Metrics::default();
    /// let config = Config::builder().with_metrics(metrics.clone()).build();
    /// # let handler = tower::service_fn(|_req: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
    /// # });
    /// let server = HttpServerLayer::new(config).layer(handler);
    /// let request = http::Request::get("/").body(String::new()).unwrap();
    /// drop(server.oneshot(request).await.unwrap());
    ///
    /// let snapshot = metrics.snapshot();
    /// let duration = snapshot
    ///     .find("http.server.request.duration")
    ///     .expect("registered");
    /// assert_eq!(duration.total_count(), 1);
    /// # }
    /// ```
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.instrumentation = self.instrumentation.with_metrics(metrics);
        self
    }

    /// Context is extracted and injected with `propagator` instead of the global one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use opentelemetry::trace::TraceId;
    /// use otel_core::propagation::TraceContextPropagator;
    /// use otel_core::testing::TestTelemetry;
    /// use otel_tower::Config;
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::{Layer, ServiceExt};
    ///
    /// let tt = TestTelemetry::new();
    /// let config = Config::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .with_propagator(TraceContextPropagator::new())
    ///     .build();
    /// # let handler = tower::service_fn(|_req: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
    /// # });
    /// let server = HttpServerLayer::new(config).layer(handler);
    /// let request = http::Request::get("/")
    ///     .header(
    ///         "traceparent",
    ///         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ///     )
    ///     .body(String::new())
    ///     .unwrap();
    /// drop(server.oneshot(request).await.unwrap());
    /// // The server span continues the caller's trace.
    /// let span = tt.span("GET");
    /// assert_eq!(
    ///     span.span_context.trace_id(),
    ///     TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
    /// );
    /// assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    /// # }
    /// ```
    pub fn with_propagator<P>(mut self, propagator: P) -> Self
    where
        P: TextMapPropagator + Send + Sync + 'static,
    {
        self.propagator = Some(Arc::new(propagator));
        self
    }

    /// Only requests `filter` accepts are instrumented (see [`Filter`]).
    ///
    /// ```
    /// use otel_tower::Config;
    /// use otel_tower::config::RequestView;
    ///
    /// // A closure works as a filter: skip requests from the load balancer's health checker.
    /// let config = Config::builder()
    ///     .with_filter(|view: &RequestView<'_>| {
    ///         view.headers()
    ///             .get(http::header::USER_AGENT)
    ///             .is_none_or(|ua| ua != "ELB-HealthChecker/2.0")
    ///     })
    ///     .build();
    /// # let _ = config;
    /// ```
    pub fn with_filter<F: Filter>(mut self, filter: F) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// Adds attributes of your own to each span (see [`RequestAttributes`]; given to the
    /// sampler with the span's other attributes at its start).
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_tower::Config;
    /// use otel_tower::config::RequestView;
    ///
    /// let config = Config::builder()
    ///     .with_request_attributes(|view: &RequestView<'_>, attributes: &mut Vec<KeyValue>| {
    ///         if view.headers().contains_key("x-canary") {
    ///             attributes.push(KeyValue::new("app.canary", true));
    ///         }
    ///     })
    ///     .build();
    /// # let _ = config;
    /// ```
    pub fn with_request_attributes<A: RequestAttributes>(mut self, attributes: A) -> Self {
        self.request_attributes = Some(Arc::new(attributes));
        self
    }

    /// Overrides the span name (see [`SpanName`]).
    ///
    /// ```
    /// use otel_tower::Config;
    ///
    /// // Every span of this layer gets the same name.
    /// let config = Config::builder().with_span_name("legacy-endpoint").build();
    /// # let _ = config;
    /// ```
    pub fn with_span_name<N: SpanName>(mut self, name: N) -> Self {
        self.span_name = Some(Arc::new(name));
        self
    }

    /// Records these request headers as `http.request.header.<name>` (string arrays).
    ///
    /// Headers in [`NEVER_CAPTURED_HEADERS`] are dropped from the list.
    ///
    /// ```
    /// use otel_tower::Config;
    ///
    /// let config = Config::builder()
    ///     .with_capture_request_headers([
    ///         http::header::USER_AGENT,
    ///         http::HeaderName::from_static("x-request-id"),
    ///     ])
    ///     .build();
    /// # let _ = config;
    /// ```
    pub fn with_capture_request_headers<I>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.request_headers.extend(headers);
        self
    }

    /// Records these response headers as `http.response.header.<name>` (string arrays).
    ///
    /// Headers in [`NEVER_CAPTURED_HEADERS`] are dropped from the list.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use opentelemetry::{StringValue, Value};
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_tower::Config;
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::{Layer, ServiceExt};
    ///
    /// let tt = TestTelemetry::new();
    /// let config = Config::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .with_capture_response_headers([http::header::CACHE_CONTROL])
    ///     .build();
    /// let handler = tower::service_fn(|_req: http::Request<String>| async {
    ///     let response = http::Response::builder()
    ///         .header("cache-control", "max-age=60")
    ///         .body(String::from("ok"))
    ///         .unwrap();
    ///     Ok::<_, std::convert::Infallible>(response)
    /// });
    /// let server = HttpServerLayer::new(config).layer(handler);
    /// let request = http::Request::get("/").body(String::new()).unwrap();
    /// drop(server.oneshot(request).await.unwrap());
    /// let captured = Value::Array(vec![StringValue::from("max-age=60")].into());
    /// assert_attr(
    ///     &tt.span("GET"),
    ///     "http.response.header.cache-control",
    ///     captured,
    /// );
    /// # }
    /// ```
    pub fn with_capture_response_headers<I>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.response_headers.extend(headers);
        self
    }

    /// Also redacts the values of these query parameters (matched case-insensitively) in
    /// `url.query` and `url.full`, in addition to [`DEFAULT_REDACTED_QUERY_PARAMS`] and the
    /// names `otel_core::redact` treats as secrets (`token`, `password`, `secret`,
    /// `api_key`, `authorization`, `cookie`, ...).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_tower::Config;
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::{Layer, ServiceExt};
    ///
    /// let tt = TestTelemetry::new();
    /// let config = Config::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .with_redaction(["email"])
    ///     .build();
    /// # let handler = tower::service_fn(|_req: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
    /// # });
    /// let server = HttpServerLayer::new(config).layer(handler);
    /// let request = http::Request::get("/invite?email=a@example.com&token=xyz&team=7")
    ///     .body(String::new())
    ///     .unwrap();
    /// drop(server.oneshot(request).await.unwrap());
    /// // `email` because it was named here, `token` because it is always a secret.
    /// assert_attr(
    ///     &tt.span("GET"),
    ///     "url.query",
    ///     "email=REDACTED&token=REDACTED&team=7",
    /// );
    /// # }
    /// ```
    pub fn with_redaction<I, S>(mut self, query_params: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.redacted_query_params
            .extend(query_params.into_iter().map(|s| s.into().into_boxed_str()));
        self
    }

    /// HTTP server only: adds a `traceresponse` header (`00-<trace id>-<span id>-<flags>`)
    /// to every instrumented response. Off by default: it reveals trace ids to clients.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use otel_core::testing::TestTelemetry;
    /// use otel_tower::Config;
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::{Layer, ServiceExt};
    ///
    /// let tt = TestTelemetry::new();
    /// let config = Config::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     .with_trace_response(true)
    ///     .build();
    /// # let handler = tower::service_fn(|_req: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
    /// # });
    /// let server = HttpServerLayer::new(config).layer(handler);
    /// let response = server
    ///     .oneshot(http::Request::get("/").body(String::new()).unwrap())
    ///     .await
    ///     .unwrap();
    /// let header = response.headers()["traceresponse"]
    ///     .to_str()
    ///     .unwrap()
    ///     .to_owned();
    /// drop(response);
    /// let span = tt.span("GET");
    /// let ctx = &span.span_context;
    /// assert_eq!(
    ///     header,
    ///     format!("00-{}-{}-01", ctx.trace_id(), ctx.span_id())
    /// );
    /// # }
    /// ```
    pub fn with_trace_response(mut self, enabled: bool) -> Self {
        self.trace_response = enabled;
        self
    }

    /// Servers only: when the incoming context says the caller did **not** sample the
    /// trace, start no span at all (default `true`, unless tail mode is on: see below).
    ///
    /// By default the layer skips such requests unless a
    /// [`TailSpanProcessor`](otel_core::sampling::tail::TailSpanProcessor) exists in the
    /// process ([`otel_core::sampling::tail::is_active`], as with
    /// `OTEL_CORE_TAIL_SAMPLING=true`): tail mode can keep the errors and slow calls of an
    /// unsampled caller's request only if its server span exists. The check is process-wide:
    /// a `TailSpanProcessor` on any provider (or a `TailStats` handle of one still held)
    /// counts, so with several providers set it here. Setting it decides either way.
    ///
    /// The request still records its duration and runs in the caller's (unsampled)
    /// context, so everything below it is unsampled too. This is exactly what the
    /// parent-based samplers OpenTelemetry uses by default would decide, minus the cost of
    /// asking. Turn it off when your sampler may sample a request whose caller did not,
    /// such as otel-core's [`RuleSampler`](otel_core::sampling::RuleSampler) with a rule
    /// like `/pay*` → always: the sampler is then asked, with the request's attributes and
    /// final span name. (With this on, the spans opened inside such a request have the
    /// caller's remote span as parent and follow its decision, under `RuleSampler` too.)
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use otel_core::propagation::TraceContextPropagator;
    /// use otel_core::testing::TestTelemetry;
    /// use otel_tower::Config;
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::{Layer, ServiceExt};
    ///
    /// let tt = TestTelemetry::new(); // samples everything it is asked about
    /// let layer = |skip: bool| {
    ///     HttpServerLayer::new(
    ///         Config::builder()
    ///             .with_tracer_provider(tt.tracer_provider().clone())
    ///             .with_metrics(tt.metrics().clone())
    ///             .with_propagator(TraceContextPropagator::new())
    ///             .with_skip_unsampled(skip)
    ///             .build(),
    ///     )
    /// };
    /// // The caller did not sample this trace (flags `00`).
    /// let unsampled = || {
    ///     http::Request::get("/")
    ///         .header(
    ///             "traceparent",
    ///             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
    ///         )
    ///         .body(String::new())
    ///         .unwrap()
    /// };
    /// # let handler = tower::service_fn(|_req: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
    /// # });
    /// let server = layer(true).layer(handler.clone());
    /// drop(server.oneshot(unsampled()).await.unwrap());
    /// assert!(tt.spans().is_empty());
    /// // Off: the tracer provider's sampler decides (here: always on).
    /// let server = layer(false).layer(handler);
    /// drop(server.oneshot(unsampled()).await.unwrap());
    /// assert_eq!(tt.spans().len(), 1);
    /// # }
    /// ```
    pub fn with_skip_unsampled(mut self, enabled: bool) -> Self {
        self.skip_unsampled = Some(enabled);
        self
    }

    /// HTTP layers: replaces the list of methods recorded by name in
    /// `http.request.method` (and in span names and metrics); any other method is recorded
    /// as `_OTHER`, with the method as sent in `http.request.method_original`.
    ///
    /// The default list is the semantic conventions' one: `GET`, `POST`, `PUT`, `DELETE`,
    /// `HEAD`, `OPTIONS`, `PATCH`, `CONNECT`, `TRACE` and `QUERY`. Names are compared
    /// case-sensitively; the list given here replaces the default one (it does not add to
    /// it), as does the environment variable `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`
    /// (comma-separated), which is read by [`build`](Self::build) when this option is not
    /// set. Empty entries and repeats are skipped and at most 254 methods are kept.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    /// use otel_tower::Config;
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::{Layer, ServiceExt};
    ///
    /// let tt = TestTelemetry::new();
    /// let config = Config::builder()
    ///     .with_tracer_provider(tt.tracer_provider().clone())
    ///     .with_metrics(tt.metrics().clone())
    ///     // A cache that also accepts PURGE; WebDAV methods stay `_OTHER`.
    ///     .with_known_methods(["GET", "HEAD", "POST", "PURGE"])
    ///     .build();
    /// # let handler = tower::service_fn(|_req: http::Request<String>| async {
    /// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
    /// # });
    /// let server = HttpServerLayer::new(config).layer(handler);
    /// let request = http::Request::builder()
    ///     .method("PURGE")
    ///     .uri("/assets/app.js")
    ///     .body(String::new())
    ///     .unwrap();
    /// drop(server.oneshot(request).await.unwrap());
    /// assert_attr(&tt.span("PURGE"), "http.request.method", "PURGE");
    /// # }
    /// ```
    pub fn with_known_methods<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.known_methods = Some(KnownMethods::custom(methods));
        self
    }

    /// Finishes the configuration.
    ///
    /// The global tracer provider, [`Metrics::global`] and
    /// `OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS` (see
    /// [`with_known_methods`](Self::with_known_methods)) are read here when not overridden:
    /// install the globals first (the global propagator is read per request).
    ///
    /// ```
    /// use otel_tower::Config;
    /// use otel_tower::http::server::HttpServerLayer;
    ///
    /// let layer = HttpServerLayer::new(Config::builder().build());
    /// # let _ = layer;
    /// ```
    pub fn build(self) -> Config {
        Config {
            instrumentation: Instrumentation::new(self.instrumentation.build()),
            propagation: Propagation::new(self.propagator),
            filter: self.filter,
            request_attributes: self.request_attributes,
            span_name: self.span_name,
            request_headers: HeaderCapture::new(
                opentelemetry_semantic_conventions::attribute::HTTP_REQUEST_HEADER,
                self.request_headers,
            ),
            response_headers: HeaderCapture::new(
                opentelemetry_semantic_conventions::attribute::HTTP_RESPONSE_HEADER,
                self.response_headers,
            ),
            redacted_query_params: self.redacted_query_params.into(),
            secret_names: otel_core::redact::Redactor::new(),
            trace_response: self.trace_response,
            skip_unsampled: self.skip_unsampled,
            known_methods: self
                .known_methods
                .unwrap_or_else(|| KnownMethods::from_env(&otel_core::EnvSource::process())),
        }
    }
}
