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
    /// Server: the services and methods declared with `GrpcServerLayer::with_services` /
    /// `with_methods`.
    pub(crate) declared: Declared,
}

/// The services and methods a server layer was told it serves (sorted, for binary search).
#[derive(Debug, Clone, Default)]
pub(crate) struct Declared {
    services: Box<[Box<str>]>,
    methods: Box<[Box<str>]>,
}

impl Declared {
    /// Adds services (`package.Service`, tonic's `NamedService::NAME`).
    pub(crate) fn with_services<I, S>(&self, services: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            services: merged(&self.services, services),
            methods: self.methods.clone(),
        }
    }

    /// Adds fully-qualified methods (`package.Service/Method`, with or without the leading
    /// `/`).
    pub(crate) fn with_methods<I, S>(&self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let methods = methods
            .into_iter()
            .map(|m| m.as_ref().trim().trim_start_matches('/').to_owned());
        Self {
            services: self.services.clone(),
            methods: merged(&self.methods, methods),
        }
    }

    /// What is known, before any answer, of `method` (`package.Service/Method`).
    fn recognition(&self, method: &str) -> Recognition {
        if self.methods.is_empty() && self.services.is_empty() {
            return Recognition::Pending;
        }
        if self.methods.binary_search_by(|m| (**m).cmp(method)).is_ok() {
            return Recognition::Declared;
        }
        let service = method
            .split_once('/')
            .map_or(method, |(service, _)| service);
        if self
            .services
            .binary_search_by(|s| (**s).cmp(service))
            .is_ok()
        {
            Recognition::Pending
        } else {
            Recognition::Unrecognized
        }
    }
}

/// `existing` and `more` (trimmed, empty entries dropped), sorted and without repeats.
fn merged<I, S>(existing: &[Box<str>], more: I) -> Box<[Box<str>]>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut all: Vec<Box<str>> = existing.to_vec();
    all.extend(more.into_iter().filter_map(|s| {
        let s = s.as_ref().trim();
        (!s.is_empty()).then(|| s.into())
    }));
    all.sort_unstable();
    all.dedup();
    all.into()
}

/// Whether a call's method may be recorded as `rpc.method` (server side).
///
/// The path is chosen by the client. The semantic conventions ask for the method only when
/// the framework recognises it, `_OTHER` otherwise; recording whatever path a client sends
/// would let it grow the metric's series without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recognition {
    /// Declared with `with_methods` (or the client side, which chose it): recorded.
    Declared,
    /// Decided by the answer: recorded when it proves a handler served the call (see
    /// [`RpcCall::recognized`]).
    Pending,
    /// Not a method path, or outside the declared services and methods: `_OTHER`.
    Unrecognized,
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
            declared: Declared::default(),
        }
    }

    /// The same layer state with `declared` services and methods.
    pub(crate) fn with_declared(&self, declared: Declared) -> Self {
        Self {
            config: self.config.clone(),
            duration: self.duration.clone(),
            side: self.side,
            server_address: self.server_address.clone(),
            declared,
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
    /// The method path (`package.Service/Method`), or `None` when the path is not a gRPC
    /// method path or is not recognised before any answer.
    method: Option<StringValue>,
    recognition: Recognition,
    /// The method as sent (recording server spans whose recognition waits for the
    /// answer), for `rpc.method_original` if it ends unrecognised.
    path: Option<String>,
    /// The response head was a regular gRPC response (HTTP 200, `application/grpc`, the
    /// status to come in the trailers): only a handler answers that way.
    handler_answered: bool,
    code: Option<Code>,
    error_type: Option<Cow<'static, str>>,
}

impl RpcCall {
    /// Starts the span (SERVER: child of `parent`; CLIENT: child of the current context),
    /// with its final name and its `rpc.*` attributes as far as they are known, so that
    /// the sampler sees them.
    pub(crate) fn start(shared: Arc<RpcShared>, parent: &Context, view: &RequestView<'_>) -> Self {
        let config = &shared.config;
        let side = shared.side;
        let path = view.uri().path();
        let shaped = method_of(path);
        let recognition = match (side, shaped) {
            (_, None) => Recognition::Unrecognized,
            (Side::Client, Some(_)) => Recognition::Declared,
            (Side::Server, Some(method)) => shared.declared.recognition(method),
        };
        let method = match recognition {
            Recognition::Unrecognized => None,
            _ => shaped.map(|m| StringValue::from(m.to_owned())),
        };
        let kind = match side {
            Side::Server => SpanKind::Server,
            Side::Client => SpanKind::Client,
        };
        // The final name: the method, or `grpc` when it is not recognised. A server call
        // whose recognition waits for the answer is renamed `grpc` if the answer does not
        // recognise it.
        let final_name = || match &config.span_name {
            Some(namer) => namer.span_name(view),
            None => match &method {
                Some(method) => Cow::Owned(method.as_str().to_owned()),
                None => Cow::Borrowed(GRPC),
            },
        };
        let attributes = || {
            let mut attrs = Vec::with_capacity(8);
            attrs.push(KeyValue::new(semconv::RPC_SYSTEM_NAME, GRPC));
            match (&method, recognition) {
                (Some(method), Recognition::Declared) => {
                    attrs.push(KeyValue::new(semconv::RPC_METHOD, method.clone()));
                }
                (_, Recognition::Unrecognized) => {
                    attrs.push(KeyValue::new(semconv::RPC_METHOD, ERROR_OTHER));
                    attrs.push(KeyValue::new(
                        semconv::RPC_METHOD_ORIGINAL,
                        shaped
                            .unwrap_or(path.strip_prefix('/').unwrap_or(path))
                            .to_owned(),
                    ));
                }
                // Set when the answer has decided.
                _ => {}
            }
            if side == Side::Client
                && let Some((address, port)) = &shared.server_address
            {
                attrs.push(KeyValue::new(semconv::SERVER_ADDRESS, address.clone()));
                if let Some(port) = port {
                    attrs.push(KeyValue::new(semconv::SERVER_PORT, i64::from(*port)));
                }
            }
            if let Some(extra) = &config.request_attributes {
                extra.attributes(view, &mut attrs);
            }
            attrs
        };
        // No span when spans go nowhere (the no-op provider: telemetry off), or, on a server
        // with `skip_unsampled`, when the caller did not sample.
        let op = if config.instrumentation.is_noop()
            || (side == Side::Server
                && config.skips_unsampled()
                && ParentSampling::of(parent) == ParentSampling::Unsampled)
        {
            Operation::without_span(parent.clone())
        } else if side == Side::Client && ParentSampling::unsampled_parent(parent) {
            // Samplers follow an unsampled parent: name and attributes only if the span
            // records anyway.
            let name = match &config.span_name {
                Some(namer) => namer.span_name(view),
                None => Cow::Borrowed(GRPC),
            };
            let mut op = config.instrumentation.start(parent, name, kind, Vec::new());
            if op.is_recording() {
                op.set_attributes(attributes());
                if config.span_name.is_none()
                    && let Some(method) = &method
                {
                    op.update_name(method.as_str().to_owned());
                }
            }
            op
        } else {
            config
                .instrumentation
                .start(parent, final_name(), kind, attributes())
        };
        let path = (op.is_recording() && recognition == Recognition::Pending).then(|| {
            shaped
                .unwrap_or(path.strip_prefix('/').unwrap_or(path))
                .to_owned()
        });
        Self {
            op,
            shared,
            method,
            recognition,
            path,
            handler_answered: false,
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
        } else {
            self.handler_answered = headers
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        }
    }

    /// Reads the status from the trailers; trailers without `grpc-status` end the call
    /// without one (UNKNOWN, as gRPC clients read it).
    pub(crate) fn on_trailers(&mut self, trailers: &HeaderMap) {
        match Code::from_headers(trailers) {
            Some(code) => self.code = Some(code),
            None => self.on_end_without_status(),
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

    /// Runs the inner service's `call` in this call's context. If that `call` itself panics
    /// (not its future), the call is finished as it unwinds, with `error.type` `panic` and
    /// its duration recorded, instead of its span ending as merely dropped.
    pub(crate) fn run_inner<T>(self, inner: impl FnOnce() -> T) -> (T, Self) {
        /// Finishes the call as panicked unless disarmed.
        struct Armed(Option<RpcCall>);
        impl Drop for Armed {
            fn drop(&mut self) {
                if let Some(call) = self.0.take() {
                    call.abandon(true);
                }
            }
        }
        let mut armed = Armed(Some(self));
        let result = {
            let _cx = armed.0.as_ref().map(|c| c.op.context().clone().attach());
            inner()
        };
        let call = armed.0.take().expect("armed until here");
        (result, call)
    }

    /// Whether the method is recorded as `rpc.method` (else `_OTHER`).
    ///
    /// A declared method (or a client's) always is; an undeclared one outside the declared
    /// services never. Otherwise only an answer that proves a handler served the call
    /// recognises it: status OK, or a regular gRPC response (HTTP 200, the status in the
    /// trailers after the messages, which tonic produces only once a handler has returned
    /// a response) with any status but UNIMPLEMENTED. Trailers-only answers prove nothing:
    /// tonic's router and generated servers answer unknown services and methods that way,
    /// and so does an interceptor or a load shedder rejecting the call before routing (a
    /// unary handler's `Err(Status)` too, which is why `with_methods` exists). Neither do
    /// transport errors, panics and calls dropped before their response head.
    fn recognized(&self) -> bool {
        match self.recognition {
            Recognition::Declared => self.method.is_some(),
            Recognition::Unrecognized => false,
            Recognition::Pending => {
                self.method.is_some()
                    && (self.code == Some(Code::OK)
                        || (self.handler_answered && self.code != Some(Code::UNIMPLEMENTED)))
            }
        }
    }

    /// Ends the span and records the call duration.
    pub(crate) fn finish(mut self) {
        let side = self.shared.side;
        let recognized = self.recognized();
        let method_value: StringValue = match &self.method {
            Some(method) if recognized => method.clone(),
            _ => ERROR_OTHER.into(),
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
            // Decided by the answer: not set at the start.
            if self.recognition == Recognition::Pending {
                if !recognized {
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
