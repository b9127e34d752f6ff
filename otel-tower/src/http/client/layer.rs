//! [`HttpClientLayer`]: builds [`HttpClient`] services.

use std::sync::Arc;

use opentelemetry_semantic_conventions::metric::HTTP_CLIENT_REQUEST_DURATION;
use tower_layer::Layer;

use super::service::HttpClient;
use crate::config::Config;
use crate::telemetry::Histogram;

/// What every [`HttpClient`] built by one layer shares.
#[derive(Debug)]
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
