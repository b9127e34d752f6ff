//! [`HttpServer`]: the instrumented service.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request, Response};
use opentelemetry::trace::SpanKind;
use opentelemetry::{KeyValue, StringValue};
use opentelemetry_semantic_conventions::attribute as semconv;
use tower_service::Service;

use super::body::ResponseBody;
use super::future::{RequestState, ResponseFuture};
use super::layer::{DurationKey, ServerShared};
use crate::Config;
use crate::attributes::{
    ERROR_PANIC, KnownMethod, cached_value, protocol_version, redact_query, split_host_port,
};
use crate::config::RequestView;
use crate::telemetry::{Operation, ParentSampling};

/// Service made by [`HttpServerLayer`](super::HttpServerLayer): instruments each request
/// and passes it on to the inner service.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use otel_tower::Config;
/// use otel_tower::http::server::{HttpServer, HttpServerLayer};
/// use tower::{Layer, ServiceExt};
///
/// let router: axum::Router =
///     axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
/// // Around the whole router: every request, matched or not, is instrumented.
/// let app: HttpServer<axum::Router> = HttpServerLayer::new(Config::default()).layer(router);
///
/// let request = http::Request::get("/")
///     .body(axum::body::Body::empty())
///     .unwrap();
/// let response = app.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 200);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HttpServer<S> {
    inner: S,
    shared: Arc<ServerShared>,
    /// The route template last seen by this service and its clones. With
    /// `Router::layer`, axum builds one service per route, so this holds that route and
    /// `http.route` costs a reference count instead of an allocation per request.
    route_cache: Arc<OnceLock<StringValue>>,
}

impl<S> HttpServer<S> {
    pub(crate) fn new(inner: S, shared: Arc<ServerShared>) -> Self {
        Self {
            inner,
            shared,
            route_cache: Arc::default(),
        }
    }

    /// `http.route` for the template `route`, from the cache when it matches.
    fn route_value(&self, route: &str) -> StringValue {
        cached_value(&self.route_cache, route)
    }

    /// The wrapped service.
    ///
    /// ```
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::Layer;
    ///
    /// /// Stands for the service being wrapped.
    /// #[derive(Debug, PartialEq)]
    /// struct Inner {
    ///     name: &'static str,
    /// }
    ///
    /// let wrapped = HttpServerLayer::default().layer(Inner { name: "users" });
    /// assert_eq!(wrapped.get_ref().name, "users");
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::Layer;
    ///
    /// /// Stands for the service being wrapped.
    /// #[derive(Debug, PartialEq)]
    /// struct Inner {
    ///     name: &'static str,
    /// }
    ///
    /// let mut wrapped = HttpServerLayer::default().layer(Inner { name: "users" });
    /// wrapped.get_mut().name = "orders";
    /// assert_eq!(wrapped.get_ref().name, "orders");
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    ///
    /// ```
    /// use otel_tower::http::server::HttpServerLayer;
    /// use tower::Layer;
    ///
    /// /// Stands for the service being wrapped.
    /// #[derive(Debug, PartialEq)]
    /// struct Inner {
    ///     name: &'static str,
    /// }
    ///
    /// let wrapped = HttpServerLayer::default().layer(Inner { name: "users" });
    /// assert_eq!(wrapped.into_inner(), Inner { name: "users" });
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for HttpServer<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: std::fmt::Debug + 'static,
    ResBody: http_body::Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let shared = &self.shared;
        let config = &shared.config;
        let view = RequestView::new(&req);
        if let Some(filter) = &config.filter
            && !filter.should_instrument(&view)
        {
            return ResponseFuture::untraced(self.inner.call(req));
        }

        let method = config.known_methods.of(req.method());
        let scheme = scheme_of(&req);
        let version = protocol_version(req.version());
        let route: Option<StringValue> = view.route().map(|r| self.route_value(r));
        let parent = config.propagation.extract(req.headers());
        let sampling = ParentSampling::of(&parent);
        // No span when the caller did not sample (with `skip_unsampled`), or when spans go
        // nowhere (the no-op provider: telemetry off). The request still runs in the caller's
        // context and records its duration.
        let mut op = if (sampling == ParentSampling::Unsampled && config.skips_unsampled())
            || config.instrumentation.is_noop()
        {
            Operation::without_span(parent)
        } else {
            let final_name = || match (&config.span_name, &route) {
                (Some(namer), _) => namer.span_name(&view),
                (None, Some(route)) => {
                    Cow::Owned(format!("{} {}", method.span_name(), route.as_str()))
                }
                (None, None) => Cow::Borrowed(method.span_name()),
            };
            let instrumentation = &config.instrumentation;
            // What samplers look at, which the semantic conventions ask for at span creation
            // (method, scheme, path, route, and yours).
            let mut attrs = Vec::with_capacity(12);
            sampling_attributes(
                &req,
                &view,
                config,
                method,
                scheme,
                route.as_ref(),
                &mut attrs,
            );
            if sampling == ParentSampling::Sampled {
                // The span is all but certainly recorded: everything up front, so the SDK
                // takes it in one pass.
                more_attributes(&req, shared, version, &mut attrs);
                instrumentation.start(&parent, final_name(), SpanKind::Server, attrs)
            } else {
                // The sampler decides (no parent, or an unsampled one with `skip_unsampled`
                // off) with the final name and those attributes, so rules on the route, path
                // or name can decide. The rest only if it records: a dropped request builds
                // no more.
                let op = instrumentation.start(&parent, final_name(), SpanKind::Server, attrs);
                if op.is_recording() {
                    let mut more = Vec::with_capacity(8);
                    more_attributes(&req, shared, version, &mut more);
                    op.set_attributes(more);
                }
                op
            }
        };

        shared.active(method, scheme).add(1);
        let future = {
            // Finishes the request if `call` itself panics (not its future).
            let in_call = InCall {
                op: &mut op,
                shared: &self.shared,
                route: &route,
                method: method.index,
                https: scheme == "https",
                version: req.version(),
            };
            let _guard = in_call.op.context().clone().attach();
            let future = self.inner.call(req);
            in_call.returned();
            future
        };
        ResponseFuture::new(
            future,
            Some(RequestState {
                op,
                shared: Arc::clone(&self.shared),
                series: DurationKey {
                    method,
                    scheme,
                    version,
                    route,
                    status: None,
                    error_type: None,
                },
            }),
        )
    }
}

/// Watches a request while the inner service's `call` runs: if `call` panics, the request
/// is finished as failed with `error.type` `panic` (span ended with its error, duration
/// recorded, `http.server.active_requests` lowered again) as the stack unwinds, instead of
/// leaking the active request and ending the span as merely dropped.
///
/// It only borrows what the request state is then built from, and is forgotten when `call`
/// returns: the normal path builds the state as it would without it.
struct InCall<'a> {
    op: &'a mut Operation,
    shared: &'a Arc<ServerShared>,
    route: &'a Option<StringValue>,
    /// The series' method, scheme and version, packed (fewer stores on the normal path).
    method: u8,
    https: bool,
    version: http::Version,
}

impl InCall<'_> {
    /// `call` returned: nothing to do.
    fn returned(self) {
        std::mem::forget(self);
    }
}

impl Drop for InCall<'_> {
    fn drop(&mut self) {
        // Only reached while unwinding from a panic in `call`: the operation is swapped for
        // an empty one (dropped with the stack frame) and finished here.
        let op = std::mem::replace(
            self.op,
            Operation::without_span(opentelemetry::Context::new()),
        );
        let mut state = RequestState {
            op,
            shared: Arc::clone(self.shared),
            series: DurationKey {
                method: self
                    .shared
                    .config
                    .known_methods
                    .by_index(usize::from(self.method)),
                scheme: if self.https { "https" } else { "http" },
                version: protocol_version(self.version),
                route: self.route.clone(),
                status: None,
                error_type: None,
            },
        };
        state.fail(ERROR_PANIC, "the service panicked in `call`");
        state.finish();
    }
}

/// The request headers the SERVER span's attributes come from, found in one pass over the
/// (few) headers instead of one hashed lookup each.
#[derive(Default)]
struct SpanHeaders<'a> {
    host: Option<&'a HeaderValue>,
    user_agent: Option<&'a HeaderValue>,
    forwarded: Option<&'a HeaderValue>,
    x_forwarded_for: Option<&'a HeaderValue>,
    x_forwarded_host: Option<&'a HeaderValue>,
}

impl<'a> SpanHeaders<'a> {
    /// The first value of each.
    fn of(headers: &'a HeaderMap) -> Self {
        let mut found = SpanHeaders::default();
        for (name, value) in headers {
            let slot = if name == http::header::HOST {
                &mut found.host
            } else if name == http::header::USER_AGENT {
                &mut found.user_agent
            } else if name == http::header::FORWARDED {
                &mut found.forwarded
            } else if name.as_str() == "x-forwarded-for" {
                &mut found.x_forwarded_for
            } else if name.as_str() == "x-forwarded-host" {
                &mut found.x_forwarded_host
            } else {
                continue;
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        found
    }
}

/// The request attributes samplers look at, which the semantic conventions ask for at span
/// creation: method, scheme, path and route (only the path is copied).
fn sampling_attributes<B>(
    req: &Request<B>,
    view: &RequestView<'_>,
    config: &Config,
    method: KnownMethod,
    scheme: &'static str,
    route: Option<&StringValue>,
    attrs: &mut Vec<KeyValue>,
) {
    attrs.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, method.name));
    if method.is_other {
        attrs.push(KeyValue::new(
            semconv::HTTP_REQUEST_METHOD_ORIGINAL,
            req.method().as_str().to_owned(),
        ));
    }
    attrs.push(KeyValue::new(semconv::URL_PATH, view.path().to_owned()));
    attrs.push(KeyValue::new(semconv::URL_SCHEME, scheme));
    if let Some(route) = route {
        attrs.push(KeyValue::new(semconv::HTTP_ROUTE, route.clone()));
    }
    // Yours: the sampler sees them too (a rule on a tenant).
    if let Some(extra) = &config.request_attributes {
        extra.attributes(view, attrs);
    }
}

/// The rest of a SERVER span's request attributes (see the module documentation).
fn more_attributes<B>(
    req: &Request<B>,
    shared: &ServerShared,
    version: &'static str,
    attrs: &mut Vec<KeyValue>,
) {
    let config = &shared.config;
    let headers = SpanHeaders::of(req.headers());
    if let Some(query) = req.uri().query() {
        attrs.push(KeyValue::new(
            semconv::URL_QUERY,
            redact_query(query, config).into_owned(),
        ));
    }
    attrs.push(KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, version));
    // The name the client used, as the conventions order it: a proxy's `Forwarded: host=` or
    // `X-Forwarded-Host`, then the request's authority (HTTP/2, absolute-form), then `Host`.
    let host = forwarded_host(headers.forwarded, headers.x_forwarded_host)
        .or_else(|| req.uri().authority().map(http::uri::Authority::as_str))
        .or_else(|| headers.host.and_then(|h| h.to_str().ok()));
    if let Some(host) = host {
        let (address, port) = split_host_port(host);
        // A server answers under one name or a few: the first one seen is kept shared.
        attrs.push(KeyValue::new(
            semconv::SERVER_ADDRESS,
            cached_value(&shared.server_address, address),
        ));
        if let Some(port) = port {
            attrs.push(KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
        }
    }
    if let Some(client) = client_address(req, &headers) {
        attrs.push(KeyValue::new(semconv::CLIENT_ADDRESS, client));
    }
    if let Some(agent) = headers.user_agent.and_then(|h| h.to_str().ok()) {
        attrs.push(KeyValue::new(
            semconv::USER_AGENT_ORIGINAL,
            agent.to_owned(),
        ));
    }
    config.request_headers.capture(req.headers(), attrs);
}

/// `url.scheme`: the request URI's scheme when it has one (HTTP/2, absolute-form), else
/// `http`.
fn scheme_of<B>(req: &Request<B>) -> &'static str {
    match req.uri().scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    }
}

/// `client.address`: the first `Forwarded: for=` or `X-Forwarded-For` entry, else the peer
/// address from axum's `ConnectInfo<SocketAddr>` or a `SocketAddr` request extension.
fn client_address<B>(req: &Request<B>, headers: &SpanHeaders<'_>) -> Option<String> {
    if let Some(addr) = forwarded_for(headers.forwarded, headers.x_forwarded_for) {
        return Some(addr);
    }
    #[cfg(feature = "axum")]
    if let Some(info) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(info.0.ip().to_string());
    }
    req.extensions()
        .get::<std::net::SocketAddr>()
        .map(|addr| addr.ip().to_string())
}

/// The first `Forwarded: host=`, else the first `X-Forwarded-Host`.
fn forwarded_host<'a>(
    forwarded: Option<&'a HeaderValue>,
    x_forwarded_host: Option<&'a HeaderValue>,
) -> Option<&'a str> {
    if let Some(forwarded) = forwarded.and_then(|h| h.to_str().ok()) {
        let first = forwarded.split(',').next().unwrap_or_default();
        for pair in first.split(';') {
            let pair = pair.trim();
            if pair.len() > 5 && pair[..5].eq_ignore_ascii_case("host=") {
                let host = pair[5..].trim_matches('"');
                if !host.is_empty() {
                    return Some(host);
                }
            }
        }
    }
    let host = x_forwarded_host?.to_str().ok()?.split(',').next()?.trim();
    (!host.is_empty()).then_some(host)
}

/// The first address of `Forwarded: for=`, else of `X-Forwarded-For`.
fn forwarded_for(
    forwarded: Option<&HeaderValue>,
    x_forwarded_for: Option<&HeaderValue>,
) -> Option<String> {
    if let Some(forwarded) = forwarded.and_then(|h| h.to_str().ok()) {
        let first = forwarded.split(',').next().unwrap_or_default();
        for pair in first.split(';') {
            let pair = pair.trim();
            if pair.len() > 4 && pair[..4].eq_ignore_ascii_case("for=") {
                let value = pair[4..].trim_matches('"');
                let host = match value.strip_prefix('[') {
                    Some(rest) => rest.split(']').next().unwrap_or_default(),
                    None => value.split(':').next().unwrap_or_default(),
                };
                if !host.is_empty() {
                    return Some(host.to_owned());
                }
            }
        }
    }
    let xff = x_forwarded_for?.to_str().ok()?;
    let first = xff.split(',').next()?.trim();
    (!first.is_empty()).then(|| first.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn forwarded_for(headers: &HeaderMap) -> Option<String> {
        let found = SpanHeaders::of(headers);
        super::forwarded_for(found.forwarded, found.x_forwarded_for)
    }

    #[test]
    fn span_headers_take_the_first_value() {
        let mut h = HeaderMap::new();
        h.append(http::header::HOST, "a.example".parse().unwrap());
        h.append(http::header::HOST, "b.example".parse().unwrap());
        h.insert(http::header::USER_AGENT, "curl/8".parse().unwrap());
        h.insert(http::header::ACCEPT, "*/*".parse().unwrap());
        let found = SpanHeaders::of(&h);
        assert_eq!(found.host.unwrap(), "a.example");
        assert_eq!(found.user_agent.unwrap(), "curl/8");
        assert!(found.forwarded.is_none() && found.x_forwarded_for.is_none());
    }

    #[test]
    fn forwarded_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.7, 10.0.0.1".parse().unwrap());
        assert_eq!(forwarded_for(&h).as_deref(), Some("203.0.113.7"));
        h.insert(
            http::header::FORWARDED,
            "for=\"[2001:db8::1]:4711\";proto=https, for=10.0.0.1"
                .parse()
                .unwrap(),
        );
        assert_eq!(forwarded_for(&h).as_deref(), Some("2001:db8::1"));
        h.insert(
            http::header::FORWARDED,
            "For=192.0.2.60:80".parse().unwrap(),
        );
        assert_eq!(forwarded_for(&h).as_deref(), Some("192.0.2.60"));
    }
}
