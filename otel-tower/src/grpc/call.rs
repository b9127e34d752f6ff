//! One RPC's telemetry from start to final status, shared by the server and client layers.

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue, StringValue};
use opentelemetry_semantic_conventions::attribute as semconv;
use opentelemetry_semantic_conventions::metric::{
    RPC_CLIENT_CALL_DURATION, RPC_SERVER_CALL_DURATION,
};

use super::status::Code;
use crate::attributes::{ERROR_CANCELLED, ERROR_OTHER, ERROR_PANIC};
use crate::config::{Config, RequestView};
use crate::telemetry::{Histogram, Operation, ParentSampling};

/// `rpc.system.name` value for gRPC.
pub(crate) const GRPC: &str = "grpc";

/// Server or client side of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Server,
    Client,
}

/// What all services of one gRPC layer share.
///
/// Aligned to two cache lines, away from the `Arc`'s reference count that every request
/// changes (see the HTTP server's `ServerShared`).
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct RpcShared {
    pub(crate) config: Config,
    pub(crate) duration: Histogram,
    pub(crate) side: Side,
    pub(crate) server_address: Option<(StringValue, Option<u16>)>,
}

impl RpcShared {
    pub(crate) fn new(
        config: Config,
        side: Side,
        server_address: Option<(StringValue, Option<u16>)>,
    ) -> Self {
        let duration = match side {
            Side::Server => config.instrumentation.duration_histogram(
                RPC_SERVER_CALL_DURATION,
                "Measures the duration of an incoming Remote Procedure Call (RPC).",
            ),
            Side::Client => config.instrumentation.duration_histogram(
                RPC_CLIENT_CALL_DURATION,
                "Measures the duration of an outgoing Remote Procedure Call (RPC).",
            ),
        };
        Self {
            config,
            duration,
            side,
            server_address,
        }
    }
}

/// The fully-qualified method (`package.Service/Method`) of a gRPC request path, if the
/// path has that shape.
fn method_of(path: &str) -> Option<&str> {
    let method = path.strip_prefix('/')?;
    let (service, name) = method.split_once('/')?;
    (!service.is_empty() && !name.is_empty() && !name.contains('/')).then_some(method)
}

/// An RPC in flight.
#[derive(Debug)]
pub(crate) struct RpcCall {
    pub(crate) op: Operation,
    shared: Arc<RpcShared>,
    /// `rpc.method`, or `None` when the path is not a gRPC method path.
    method: Option<StringValue>,
    /// The method as sent (sampled calls only; without the leading `/` when the path is
    /// method-shaped), for `rpc.method_original` when the method is not recognised.
    path: Option<String>,
    code: Option<Code>,
    error_type: Option<Cow<'static, str>>,
}

impl RpcCall {
    /// Starts the span (SERVER: child of `parent`; CLIENT: child of the current context).
    pub(crate) fn start(shared: Arc<RpcShared>, parent: &Context, view: &RequestView<'_>) -> Self {
        let config = &shared.config;
        let path = view.uri().path();
        let method = method_of(path).map(|m| StringValue::from(m.to_owned()));
        let kind = match shared.side {
            Side::Server => SpanKind::Server,
            Side::Client => SpanKind::Client,
        };
        let name = match &config.span_name {
            Some(namer) => namer.span_name(view),
            None => Cow::Borrowed(GRPC),
        };
        let mut op = if shared.side == Side::Server
            && config.skip_unsampled
            && ParentSampling::of(parent) == ParentSampling::Unsampled
        {
            Operation::without_span(parent.clone())
        } else {
            config.instrumentation.start(parent, name, kind, Vec::new())
        };
        let op_recording = op.is_recording();
        if op_recording {
            let mut attrs = Vec::with_capacity(8);
            attrs.push(KeyValue::new(semconv::RPC_SYSTEM_NAME, GRPC));
            if shared.side == Side::Client {
                if let Some(method) = &method {
                    attrs.push(KeyValue::new(semconv::RPC_METHOD, method.clone()));
                } else {
                    attrs.push(KeyValue::new(semconv::RPC_METHOD, ERROR_OTHER));
                    attrs.push(KeyValue::new(semconv::RPC_METHOD_ORIGINAL, path.to_owned()));
                }
                if let Some((address, port)) = &shared.server_address {
                    attrs.push(KeyValue::new(semconv::SERVER_ADDRESS, address.clone()));
                    if let Some(port) = port {
                        attrs.push(KeyValue::new(semconv::SERVER_PORT, i64::from(*port)));
                    }
                }
            }
            if let Some(extra) = &config.request_attributes {
                extra.attributes(view, &mut attrs);
            }
            op.set_attributes(attrs);
            if config.span_name.is_none()
                && let Some(method) = &method
            {
                op.update_name(method.as_str().to_owned());
            }
        }
        Self {
            op,
            shared,
            method,
            path: op_recording.then(|| method_of(path).unwrap_or(path).to_owned()),
            code: None,
            error_type: None,
        }
    }

    /// Whether the final status is already known (trailers-only response).
    pub(crate) fn has_status(&self) -> bool {
        self.code.is_some()
    }

    /// Reads the status from the response head: `grpc-status` there means a trailers-only
    /// response; a non-200 HTTP status without it maps per the gRPC spec.
    pub(crate) fn on_response_head(&mut self, status: StatusCode, headers: &HeaderMap) {
        if let Some(code) = Code::from_headers(headers) {
            self.code = Some(code);
        } else if status != StatusCode::OK {
            self.code = Some(Code::from_http_status(status));
        }
    }

    /// Reads the status from the trailers.
    pub(crate) fn on_trailers(&mut self, trailers: &HeaderMap) {
        if let Some(code) = Code::from_headers(trailers) {
            self.code = Some(code);
        }
    }

    /// The body ended without trailers carrying `grpc-status`: a protocol error, read as
    /// UNKNOWN as gRPC clients do.
    pub(crate) fn on_end_without_status(&mut self) {
        if self.code.is_none() && self.error_type.is_none() {
            self.code = Some(Code::UNKNOWN);
        }
    }

    /// Marks the call failed without a gRPC status (transport error, panic, drop).
    pub(crate) fn fail(&mut self, error_type: Cow<'static, str>, message: Cow<'static, str>) {
        self.op.record_error(error_type.clone(), message);
        self.error_type = Some(error_type);
    }

    /// The body ended or was dropped, or the future was dropped: classify and finish.
    pub(crate) fn abandon(mut self, panicked: bool) {
        if panicked {
            self.fail(
                Cow::Borrowed(ERROR_PANIC),
                Cow::Borrowed("the call panicked"),
            );
        } else if self.code.is_none() && self.error_type.is_none() {
            self.fail(
                Cow::Borrowed(ERROR_CANCELLED),
                Cow::Borrowed("the call ended before its status was known"),
            );
        }
        self.finish();
    }

    /// Ends the span and records the call duration.
    pub(crate) fn finish(mut self) {
        let side = self.shared.side;
        // A server cannot tell a method it serves from an unknown one except by the
        // UNIMPLEMENTED answer; recording unknown paths verbatim would let any client grow
        // the metric's series without bound.
        let method_value: StringValue = match (&self.method, self.code) {
            (Some(_), Some(Code::UNIMPLEMENTED)) if side == Side::Server => ERROR_OTHER.into(),
            (Some(method), _) => method.clone(),
            (None, _) => ERROR_OTHER.into(),
        };
        let mut code_error = false;
        if let Some(code) = self.code {
            let is_error = match side {
                Side::Server => code.is_server_error(),
                Side::Client => code.is_client_error(),
            };
            if is_error && self.error_type.is_none() {
                self.op.set_error_status(Cow::Borrowed(code.name()));
                self.error_type = Some(Cow::Borrowed(code.name()));
                code_error = true;
            }
        }
        if self.op.is_recording() {
            let mut attrs = Vec::with_capacity(4);
            if side == Side::Server {
                if method_value.as_str() == ERROR_OTHER {
                    if let Some(path) = self.path.take() {
                        attrs.push(KeyValue::new(semconv::RPC_METHOD_ORIGINAL, path));
                    }
                    if self.shared.config.span_name.is_none() {
                        self.op.update_name(GRPC.to_owned());
                    }
                }
                attrs.push(KeyValue::new(semconv::RPC_METHOD, method_value.clone()));
            }
            if let Some(code) = self.code {
                attrs.push(KeyValue::new(
                    semconv::RPC_RESPONSE_STATUS_CODE,
                    code.name(),
                ));
            }
            if let Some(error_type) = &self.error_type
                && code_error
            {
                attrs.push(KeyValue::new(semconv::ERROR_TYPE, error_type.clone()));
            }
            self.op.set_attributes(attrs);
        }
        let mut attrs: [KeyValue; 6] = [
            KeyValue::new(semconv::RPC_SYSTEM_NAME, GRPC),
            KeyValue::new(semconv::RPC_METHOD, method_value),
            KeyValue::new(semconv::RPC_RESPONSE_STATUS_CODE, ""),
            KeyValue::new(semconv::ERROR_TYPE, ""),
            KeyValue::new(semconv::SERVER_ADDRESS, ""),
            KeyValue::new(semconv::SERVER_PORT, 0_i64),
        ];
        let mut n = 2;
        if let Some(code) = self.code {
            attrs[n] = KeyValue::new(semconv::RPC_RESPONSE_STATUS_CODE, code.name());
            n += 1;
        }
        if let Some(error_type) = self.error_type {
            attrs[n] = KeyValue::new(semconv::ERROR_TYPE, error_type);
            n += 1;
        }
        if side == Side::Client
            && let Some((address, port)) = &self.shared.server_address
        {
            attrs[n] = KeyValue::new(semconv::SERVER_ADDRESS, address.clone());
            n += 1;
            if let Some(port) = port {
                attrs[n] = KeyValue::new(semconv::SERVER_PORT, i64::from(*port));
                n += 1;
            }
        }
        self.op
            .end_with_duration(&self.shared.duration, &attrs[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::method_of;

    #[test]
    fn method_paths() {
        assert_eq!(method_of("/pkg.Svc/Call"), Some("pkg.Svc/Call"));
        assert_eq!(method_of("/Svc/Call"), Some("Svc/Call"));
        assert_eq!(method_of("/Svc"), None);
        assert_eq!(method_of("/a/b/c"), None);
        assert_eq!(method_of("//x"), None);
        assert_eq!(method_of("no-slash"), None);
    }
}
