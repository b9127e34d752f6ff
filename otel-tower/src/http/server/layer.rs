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
