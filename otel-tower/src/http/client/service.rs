//! [`HttpClient`]: the instrumented client service, and the request bookkeeping shared with
//! the reqwest middleware.

use std::borrow::Cow;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use opentelemetry::trace::SpanKind;
use opentelemetry::{KeyValue, StringValue};
use opentelemetry_semantic_conventions::attribute as semconv;
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::ClientShared;
use crate::attributes::{
    KnownMethod, Secrets, default_port, protocol_version, split_host_port, url_full,
};
use crate::config::RequestView;
use crate::telemetry::{Operation, ParentSampling};

/// Service made by [`HttpClientLayer`](super::HttpClientLayer).
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::{Client, connect::HttpConnector};
/// use hyper_util::rt::TokioExecutor;
/// use otel_tower::Config;
/// use otel_tower::http::client::{HttpClient, HttpClientLayer};
/// use tower::Layer;
///
/// /// Application state holding the instrumented client.
/// struct AppState {
///     upstream: HttpClient<Client<HttpConnector, Full<Bytes>>>,
/// }
///
/// let client = Client::builder(TokioExecutor::new()).build_http();
/// let state = AppState {
///     upstream: HttpClientLayer::new(Config::default()).layer(client),
/// };
/// # let _ = state.upstream;
/// ```
#[derive(Debug, Clone)]
pub struct HttpClient<S> {
    inner: S,
    shared: Arc<ClientShared>,
}

impl<S> HttpClient<S> {
    pub(crate) fn new(inner: S, shared: Arc<ClientShared>) -> Self {
        Self { inner, shared }
    }

    /// The wrapped client.
    ///
    /// ```
    /// use otel_tower::http::client::HttpClientLayer;
    /// use tower::Layer;
    ///
    /// /// Stands for the client being wrapped.
    /// #[derive(Debug, PartialEq)]
    /// struct Inner {
    ///     name: &'static str,
    /// }
    ///
    /// let wrapped = HttpClientLayer::default().layer(Inner { name: "users" });
    /// assert_eq!(wrapped.get_ref().name, "users");
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped client, mutably.
    ///
    /// ```
    /// use otel_tower::http::client::HttpClientLayer;
    /// use tower::Layer;
    ///
    /// /// Stands for the client being wrapped.
    /// #[derive(Debug, PartialEq)]
    /// struct Inner {
    ///     name: &'static str,
    /// }
    ///
    /// let mut wrapped = HttpClientLayer::default().layer(Inner { name: "users" });
    /// wrapped.get_mut().name = "orders";
    /// assert_eq!(wrapped.get_ref().name, "orders");
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner client.
    ///
    /// ```
    /// use otel_tower::http::client::HttpClientLayer;
    /// use tower::Layer;
    ///
    /// /// Stands for the client being wrapped.
    /// #[derive(Debug, PartialEq)]
    /// struct Inner {
    ///     name: &'static str,
    /// }
    ///
    /// let wrapped = HttpClientLayer::default().layer(Inner { name: "users" });
    /// assert_eq!(wrapped.into_inner(), Inner { name: "users" });
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for HttpClient<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: std::fmt::Debug + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let view = RequestView::new(&req);
        if let Some(filter) = &self.shared.config.filter
            && !filter.should_instrument(&view)
        {
            return ResponseFuture::untraced(self.inner.call(req));
        }
        let state = ClientRequest::start(
            Arc::clone(&self.shared),
            &view,
            req.method(),
            Target::Uri(req.uri()),
            req.headers(),
            None,
        );
        let shared = &self.shared;
        shared
            .config
            .propagation
            .inject(state.op.context(), req.headers_mut());
        let future = {
            let _guard = state.op.context().clone().attach();
            self.inner.call(req)
        };
        ResponseFuture::traced(future, state)
    }
}

/// Where a request goes: the URI of an `http::Request`, or the URL of a reqwest request
/// (kept whole: fragment, and no length limit).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    Uri(&'a Uri),
    #[cfg(feature = "reqwest")]
    Url(&'a reqwest::Url),
}

/// One outgoing request's telemetry, from start to response head or failure.
#[derive(Debug)]
pub(crate) struct ClientRequest {
    pub(crate) op: Operation,
    shared: Arc<ClientShared>,
    method: KnownMethod,
    scheme: &'static str,
    server_address: Option<StringValue>,
    server_port: Option<u16>,
    /// From the response only: the request's version is what the caller asked for, not
    /// what was negotiated (semantic conventions: not set when not known).
    version: Option<&'static str>,
    status: Option<u16>,
    error_type: Option<Cow<'static, str>>,
    /// What `url.full` hides, scrubbed from error messages.
    secrets: Secrets,
}

impl ClientRequest {
    /// Starts the CLIENT span as a child of the current context. `resend_count` is the
    /// ordinal of this attempt when it is a resend of the same request (1 for the first
    /// resend).
    pub(crate) fn start(
        shared: Arc<ClientShared>,
        view: &RequestView<'_>,
        method: &Method,
        target: Target<'_>,
        headers: &HeaderMap,
        resend_count: Option<u32>,
    ) -> Self {
        let config = &shared.config;
        let known = config.known_methods.of(method);
        let (scheme, server_address, server_port) = match target {
            Target::Uri(uri) => uri_destination(uri, headers),
            #[cfg(feature = "reqwest")]
            Target::Url(url) => crate::reqwest::url_destination(url),
        };
        let name = match &config.span_name {
            Some(namer) => namer.span_name(view),
            None => Cow::Borrowed(known.span_name()),
        };
        let mut secrets = Secrets::default();
        let mut attributes = || {
            let mut attrs = Vec::with_capacity(12);
            attrs.push(KeyValue::new(semconv::HTTP_REQUEST_METHOD, known.name));
            if known.is_other {
                attrs.push(KeyValue::new(
                    semconv::HTTP_REQUEST_METHOD_ORIGINAL,
                    method.as_str().to_owned(),
                ));
            }
            if let Some(address) = &server_address {
                attrs.push(KeyValue::new(semconv::SERVER_ADDRESS, address.clone()));
            }
            if let Some(port) = server_port {
                attrs.push(KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
            }
            let full = match target {
                Target::Uri(uri) => url_full(uri, config, &mut secrets),
                #[cfg(feature = "reqwest")]
                Target::Url(url) => crate::reqwest::url_full(url, config, &mut secrets),
            };
            attrs.push(KeyValue::new(semconv::URL_FULL, full));
            attrs.push(KeyValue::new(semconv::URL_SCHEME, scheme));
            if let Some(count) = resend_count {
                attrs.push(KeyValue::new(
                    semconv::HTTP_REQUEST_RESEND_COUNT,
                    i64::from(count),
                ));
            }
            config.request_headers.capture(headers, &mut attrs);
            if let Some(extra) = &config.request_attributes {
                extra.attributes(view, &mut attrs);
            }
            attrs
        };
        let op = opentelemetry::Context::map_current(|parent| {
            if config.instrumentation.is_noop() {
                // Spans go nowhere (telemetry off): the call runs in the caller's context,
                // which is still injected, and records its duration.
                Operation::without_span(parent.clone())
            } else if ParentSampling::unsampled_parent(parent) {
                // Samplers follow an unsampled parent: attributes only if it records anyway.
                let op = config
                    .instrumentation
                    .start(parent, name, SpanKind::Client, Vec::new());
                if op.is_recording() {
                    op.set_attributes(attributes());
                }
                op
            } else {
                // The sampler decides: it sees the attributes (semantic conventions:
                // sampling-relevant attributes at span creation).
                config
                    .instrumentation
                    .start(parent, name, SpanKind::Client, attributes())
            }
        });
        Self {
            op,
            shared,
            method: known,
            scheme,
            server_address,
            server_port,
            version: None,
            status: None,
            error_type: None,
            secrets,
        }
    }

    /// Records the response head: status (Error for ≥ 400), protocol version, headers.
    pub(crate) fn on_response(
        &mut self,
        status: StatusCode,
        version: Version,
        headers: &HeaderMap,
    ) {
        let code = status.as_u16();
        self.status = Some(code);
        let version = protocol_version(version);
        self.version = Some(version);
        if code >= 400 {
            self.op.set_error_status(Cow::Borrowed(""));
            self.error_type = Some(Cow::Owned(code.to_string()));
        }
        if self.op.is_recording() {
            let mut attrs = Vec::with_capacity(4);
            attrs.push(KeyValue::new(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(code),
            ));
            attrs.push(KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, version));
            if let Some(error_type) = &self.error_type {
                attrs.push(KeyValue::new(semconv::ERROR_TYPE, error_type.clone()));
            }
            self.shared
                .config
                .response_headers
                .capture(headers, &mut attrs);
            self.op.set_attributes(attrs);
        }
    }

    /// Marks the request failed: `error.type`, status Error, `exception` event. The values
    /// `url.full` redacts are scrubbed from `message` (error messages may quote the URL).
    pub(crate) fn fail(&mut self, error_type: Cow<'static, str>, message: String) {
        let message = self.secrets.scrub(message);
        self.op
            .record_error(error_type.clone(), Cow::Owned(message));
        self.error_type = Some(error_type);
    }

    /// Ends the span and records `http.client.request.duration`.
    pub(crate) fn finish(self) {
        let mut attrs: [KeyValue; 7] = [
            KeyValue::new(semconv::HTTP_REQUEST_METHOD, self.method.name),
            KeyValue::new(semconv::URL_SCHEME, self.scheme),
            KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, ""),
            KeyValue::new(semconv::SERVER_ADDRESS, ""),
            KeyValue::new(semconv::SERVER_PORT, 0_i64),
            KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, 0_i64),
            KeyValue::new(semconv::ERROR_TYPE, ""),
        ];
        let mut n = 2;
        if let Some(version) = self.version {
            attrs[n] = KeyValue::new(semconv::NETWORK_PROTOCOL_VERSION, version);
            n += 1;
        }
        if let Some(address) = self.server_address {
            attrs[n] = KeyValue::new(semconv::SERVER_ADDRESS, address);
            n += 1;
        }
        if let Some(port) = self.server_port {
            attrs[n] = KeyValue::new(semconv::SERVER_PORT, i64::from(port));
            n += 1;
        }
        if let Some(status) = self.status {
            attrs[n] = KeyValue::new(semconv::HTTP_RESPONSE_STATUS_CODE, i64::from(status));
            n += 1;
        }
        if let Some(error_type) = self.error_type {
            attrs[n] = KeyValue::new(semconv::ERROR_TYPE, error_type);
            n += 1;
        }
        self.op
            .end_with_duration(&self.shared.duration, &attrs[..n]);
    }
}

/// `url.scheme`, `server.address` and `server.port` of an `http::Uri` (authority, else the
/// `Host` header; the port defaults from the scheme).
fn uri_destination(
    uri: &Uri,
    headers: &HeaderMap,
) -> (&'static str, Option<StringValue>, Option<u16>) {
    let scheme = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let authority = uri
        .authority()
        .map(http::uri::Authority::as_str)
        .or_else(|| {
            headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        });
    match authority {
        Some(authority) => {
            let (host, port) = split_host_port(authority);
            (
                scheme,
                Some(StringValue::from(host.to_owned())),
                port.or_else(|| default_port(scheme)),
            )
        }
        None => (scheme, None, None),
    }
}
