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

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::{Extensions, HeaderMap, HeaderName, Method, Request, Uri, Version};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Tracer, TracerProvider};
use opentelemetry::{Key, KeyValue};

use crate::telemetry::{Instrumentation, Metrics, Propagation, instrumentation_builder};

/// A borrowed view of an outgoing or incoming request, given to the pluggable hooks.
///
/// It exposes the request line, headers and extensions but never the body, so hooks can run
/// before the request is sent or handled without consuming anything.
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
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI as the layer sees it (for a server behind axum's `Router::nest`, the
    /// nested part; see [`RequestView::path`]).
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request path; with feature `axum`, taken from `OriginalUri` when present so that
    /// nested routers still see the full path.
    pub fn path(&self) -> &'a str {
        #[cfg(feature = "axum")]
        if let Some(original) = self.extensions.get::<axum::extract::OriginalUri>() {
            return original.0.path();
        }
        self.uri.path()
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions.
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }

    /// The route template of the request (axum's `MatchedPath`), when known at this point.
    ///
    /// Always `None` without feature `axum`, and for a layer applied outside the axum
    /// `Router` (see the crate documentation on layer placement).
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
#[derive(Debug, Clone, Default)]
pub struct SkipPaths {
    paths: Vec<String>,
}

impl SkipPaths {
    /// Skips requests whose path is exactly one of `paths`.
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
/// Called once per request, and only when the span is sampled, so the work it does costs
/// nothing on unsampled requests. Attributes go on the span only, never on metrics (whose
/// series must stay bounded).
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
#[derive(Debug, Clone)]
pub struct HeaderAttribute {
    header: HeaderName,
    key: Key,
}

impl HeaderAttribute {
    /// Records header `header` as attribute `key`.
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
pub const NEVER_CAPTURED_HEADERS: [HeaderName; 4] = [
    http::header::AUTHORIZATION,
    http::header::COOKIE,
    http::header::SET_COOKIE,
    http::header::PROXY_AUTHORIZATION,
];

/// Query parameters whose values are always redacted (the semantic conventions' list).
pub const DEFAULT_REDACTED_QUERY_PARAMS: [&str; 4] =
    ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];

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
    pub(crate) skip_unsampled: bool,
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
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
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
    skip_unsampled: bool,
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
            skip_unsampled: true,
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
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.instrumentation = self.instrumentation.with_metrics(metrics);
        self
    }

    /// Context is extracted and injected with `propagator` instead of the global one.
    pub fn with_propagator<P>(mut self, propagator: P) -> Self
    where
        P: TextMapPropagator + Send + Sync + 'static,
    {
        self.propagator = Some(Arc::new(propagator));
        self
    }

    /// Only requests `filter` accepts are instrumented (see [`Filter`]).
    pub fn with_filter<F: Filter>(mut self, filter: F) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// Adds attributes of your own to each sampled span (see [`RequestAttributes`]).
    pub fn with_request_attributes<A: RequestAttributes>(mut self, attributes: A) -> Self {
        self.request_attributes = Some(Arc::new(attributes));
        self
    }

    /// Overrides the span name (see [`SpanName`]).
    pub fn with_span_name<N: SpanName>(mut self, name: N) -> Self {
        self.span_name = Some(Arc::new(name));
        self
    }

    /// Records these request headers as `http.request.header.<name>` (string arrays).
    ///
    /// Headers in [`NEVER_CAPTURED_HEADERS`] are dropped from the list.
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
    pub fn with_trace_response(mut self, enabled: bool) -> Self {
        self.trace_response = enabled;
        self
    }

    /// Servers only: when the incoming context says the caller did **not** sample the
    /// trace, start no span at all (default `true`).
    ///
    /// The request still records its duration and runs in the caller's (unsampled)
    /// context, so everything below it is unsampled too. This is exactly what the
    /// parent-based samplers OpenTelemetry uses by default would decide, minus the cost of
    /// asking; turn it off when your sampler may sample a request whose caller did not.
    pub fn with_skip_unsampled(mut self, enabled: bool) -> Self {
        self.skip_unsampled = enabled;
        self
    }

    /// Finishes the configuration.
    ///
    /// The global tracer provider and [`Metrics::global`] are read here when not
    /// overridden: install them first (the global propagator is read per request).
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
        }
    }
}
