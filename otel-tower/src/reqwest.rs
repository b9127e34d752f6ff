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
//! [`crate::http::client`], taken from reqwest's URL itself: `url.full` keeps the fragment
//! and has no length limit. Error messages (the `exception` event and the span status)
//! never quote the raw URL: reqwest's " for url (…)" shows the redacted one.
//!
//! # Retries
//!
//! Put `OtelMiddleware` *after* a retry middleware (`.with(retry).with(OtelMiddleware::…)`)
//! and every attempt is its own CLIENT span; each resend carries
//! `http.request.resend_count` (1 for the first resend, 2 for the second, …), counted in
//! the request's extensions, which reqwest-middleware hands to every attempt. Put it
//! *before* the retry middleware and one span covers all attempts, without the attribute.
//! Redirects that reqwest follows itself happen inside one attempt: no middleware sees
//! them, they are not counted.
//!
//! ```
//! use otel_tower::reqwest::OtelMiddleware;
//! use reqwest_middleware::{Middleware, Next};
//!
//! /// Sends each request twice (stands for a retry middleware such as reqwest-retry's).
//! struct Twice;
//!
//! #[async_trait::async_trait]
//! impl Middleware for Twice {
//!     async fn handle(
//!         &self,
//!         req: reqwest::Request,
//!         extensions: &mut http::Extensions,
//!         next: Next<'_>,
//!     ) -> reqwest_middleware::Result<reqwest::Response> {
//!         if let Some(copy) = req.try_clone() {
//!             let _ = next.clone().run(copy, extensions).await;
//!         }
//!         next.run(req, extensions).await
//!     }
//! }
//!
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(Twice) // outer: retries
//!     .with(OtelMiddleware::default()) // inner: one span per attempt
//!     .build();
//! # let _ = client;
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use http::{Extensions, Uri};
use opentelemetry::StringValue;
use opentelemetry::context::FutureExt;
use reqwest::Url;
use reqwest_middleware::{Middleware, Next};

use crate::attributes::{
    ERROR_CANCELLED, ERROR_OTHER, ERROR_TIMEOUT, REDACTED, Secrets, default_port,
    redact_query_noting,
};
use crate::config::{Config, RequestView};
use crate::http::client::ClientShared;
use crate::http::client::service::{ClientRequest, Target};

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

/// The error's message with the URL reqwest appends (" for url (…)", possibly a redirect
/// target rather than the request's URL) in its redacted form. [`ClientRequest::fail`]
/// then scrubs what the request's own URL hides, for messages of other middlewares.
fn message(error: &reqwest_middleware::Error, config: &Config) -> String {
    let message = error.to_string();
    match error.url() {
        Some(url) => {
            let mut secrets = Secrets::default();
            let redacted = url_full(url, config, &mut secrets);
            let message = message.replace(url.as_str(), &redacted);
            secrets.scrub(message)
        }
        None => message,
    }
}

/// How many times the request in these extensions has been sent through each middleware
/// (keyed by the middleware's shared state, so two `OtelMiddleware`s in one chain, one on
/// each side of a retry middleware, count apart): reqwest-middleware hands the same
/// extensions to every attempt of a retry middleware placed before one.
#[derive(Debug, Clone, Default)]
struct Attempts(Vec<(usize, u32)>);

/// Counts this attempt through middleware `key`; the resend ordinal (`None` for the first
/// send).
fn count_attempt(extensions: &mut Extensions, key: usize) -> Option<u32> {
    let attempts = extensions.get_or_insert_default::<Attempts>();
    match attempts.0.iter_mut().find(|(k, _)| *k == key) {
        Some((_, n)) => {
            *n = n.saturating_add(1);
            Some(*n)
        }
        None => {
            attempts.0.push((key, 0));
            None
        }
    }
}

/// `url.scheme`, `server.address` (IPv6 without brackets) and `server.port` (defaulting
/// from the scheme) of a reqwest URL.
pub(crate) fn url_destination(url: &Url) -> (&'static str, Option<StringValue>, Option<u16>) {
    let scheme = if url.scheme().eq_ignore_ascii_case("https") {
        "https"
    } else {
        "http"
    };
    let address = url.host_str().map(|host| {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        StringValue::from(host.to_owned())
    });
    let port = url.port().or_else(|| default_port(scheme));
    (scheme, address, port)
}

/// `url.full` of a reqwest URL: credentials replaced by `REDACTED:REDACTED` (`REDACTED`
/// for a user name alone), sensitive query values redacted, the fragment kept. What was
/// hidden is noted in `secrets`.
pub(crate) fn url_full(url: &Url, config: &Config, secrets: &mut Secrets) -> String {
    let mut out = String::with_capacity(url.as_str().len());
    out.push_str(url.scheme());
    out.push(':');
    if url.has_authority() {
        out.push_str("//");
        let user = url.username();
        match url.password() {
            Some(password) => {
                secrets.note_userinfo(&format!("{user}:{password}"));
                out.push_str(REDACTED);
                out.push(':');
                out.push_str(REDACTED);
                out.push('@');
            }
            None if !user.is_empty() => {
                secrets.note_userinfo(user);
                out.push_str(REDACTED);
                out.push('@');
            }
            None => {}
        }
        if let Some(host) = url.host_str() {
            out.push_str(host);
        }
        if let Some(port) = url.port() {
            out.push(':');
            out.push_str(&port.to_string());
        }
    }
    out.push_str(url.path());
    if let Some(query) = url.query() {
        out.push('?');
        out.push_str(&redact_query_noting(query, config, Some(secrets)));
    }
    if let Some(fragment) = url.fragment() {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// The URL as an `http::Uri` for the [`RequestView`] hooks. An `http::Uri` is limited to
/// 65534 bytes and has no fragment: a longer URL is shown without its query, or as its
/// origin alone (the recorded attributes come from the URL itself).
fn view_uri(url: &Url) -> Uri {
    let full = url.as_str();
    if let Ok(uri) = full.parse() {
        return uri;
    }
    let end = full.find(['?', '#']).unwrap_or(full.len());
    full[..end]
        .parse()
        .or_else(|_| format!("{}/", url.origin().ascii_serialization()).parse())
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl Middleware for OtelMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let resend_count = count_attempt(extensions, Arc::as_ptr(&self.shared) as usize);
        let uri = view_uri(req.url());
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
                    Target::Url(req.url()),
                    req.headers(),
                    resend_count,
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
                Err(err) => state.fail(classify(err), message(err, config)),
            }
            state.finish();
        }
        result
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn full(url: &str) -> String {
        let config = Config::builder().with_redaction(["session"]).build();
        url_full(&Url::parse(url).unwrap(), &config, &mut Secrets::default())
    }

    #[test]
    fn url_full_from_reqwest_url() {
        assert_eq!(
            full("https://u:p@example.com:8443/a?sig=1&session=2&x=3#frag"),
            "https://REDACTED:REDACTED@example.com:8443/a?sig=REDACTED&session=REDACTED&x=3#frag"
        );
        assert_eq!(full("http://u@[::1]/"), "http://REDACTED@[::1]/");
        // The default port is not written by `Url`, nor here.
        assert_eq!(full("https://example.com:443/"), "https://example.com/");
    }

    #[test]
    fn destination_from_reqwest_url() {
        let (scheme, address, port) = url_destination(&Url::parse("https://[::1]/x").unwrap());
        assert_eq!(scheme, "https");
        assert_eq!(address.unwrap().as_str(), "::1");
        assert_eq!(port, Some(443));
    }

    #[test]
    fn view_uri_of_a_url_too_long_for_http_uri() {
        let long = format!("http://example.com/p?q={}", "a".repeat(70_000));
        assert_eq!(
            view_uri(&Url::parse(&long).unwrap()),
            "http://example.com/p"
        );
        let long = format!("http://example.com/{}", "a".repeat(70_000));
        assert_eq!(view_uri(&Url::parse(&long).unwrap()), "http://example.com/");
    }

    #[test]
    fn attempts_are_counted_in_the_extensions_per_middleware() {
        let mut extensions = Extensions::new();
        assert_eq!(count_attempt(&mut extensions, 1), None);
        // Another middleware in the same chain counts its own attempts.
        assert_eq!(count_attempt(&mut extensions, 2), None);
        assert_eq!(count_attempt(&mut extensions, 1), Some(1));
        assert_eq!(count_attempt(&mut extensions, 1), Some(2));
        assert_eq!(count_attempt(&mut extensions, 2), Some(1));
    }
}
