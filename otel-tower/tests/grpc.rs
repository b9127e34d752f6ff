//! gRPC layers against a real tonic server and client on loopback.
#![cfg(feature = "grpc")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use common::*;
use http::uri::PathAndQuery;
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry_sdk::trace::SdkTracer;
use opentelemetry_semantic_conventions::attribute as semconv;
use opentelemetry_semantic_conventions::metric;
use otel_tower::grpc::{GrpcClient, GrpcClientLayer, GrpcServerLayer};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tower::ServiceBuilder;

/// Hand-written protobuf messages (no protoc on the build machines).
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    #[prost(string, tag = "1")]
    pub message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    #[prost(string, tag = "1")]
    pub message: String,
}

/// Hand-written service `test.Echo`, routed the way tonic's generated servers are.
#[derive(Clone)]
struct EchoServer {
    tracer: SdkTracer,
}

impl NamedService for EchoServer {
    const NAME: &'static str = "test.Echo";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl tower::Service<http::Request<Body>> for EchoServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let tracer = self.tracer.clone();
        match req.uri().path() {
            "/test.Echo/Say" => Box::pin(async move {
                let svc = tower::service_fn(move |r: tonic::Request<EchoRequest>| {
                    let message = tracer.in_span("render reply", |_| r.into_inner().message);
                    async move { Ok::<_, Status>(tonic::Response::new(EchoReply { message })) }
                });
                let mut grpc =
                    tonic::server::Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
                Ok(grpc.unary(svc, req).await)
            }),
            "/test.Echo/Fail" => Box::pin(async move {
                let svc = tower::service_fn(|_r: tonic::Request<EchoRequest>| async {
                    Err::<tonic::Response<EchoReply>, _>(Status::not_found("no such echo"))
                });
                let mut grpc =
                    tonic::server::Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
                Ok(grpc.unary(svc, req).await)
            }),
            "/test.Echo/Slow" => Box::pin(async move {
                let svc = tower::service_fn(|_r: tonic::Request<EchoRequest>| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, Status>(tonic::Response::new(EchoReply::default()))
                });
                let mut grpc =
                    tonic::server::Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
                Ok(grpc.unary(svc, req).await)
            }),
            "/test.Echo/Crash" => Box::pin(async move {
                let svc = tower::service_fn(|_r: tonic::Request<EchoRequest>| async {
                    Err::<tonic::Response<EchoReply>, _>(Status::internal("database exploded"))
                });
                let mut grpc =
                    tonic::server::Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
                Ok(grpc.unary(svc, req).await)
            }),
            "/test.Echo/Stream" => Box::pin(async move {
                let svc = tower::service_fn(|_r: tonic::Request<EchoRequest>| async {
                    let stream = futures_util::stream::unfold(0u32, |i| async move {
                        match i {
                            0 | 1 => {
                                tokio::time::sleep(Duration::from_millis(120)).await;
                                Some((
                                    Ok(EchoReply {
                                        message: format!("part {i}"),
                                    }),
                                    i + 1,
                                ))
                            }
                            2 => Some((Err(Status::unavailable("backend went away")), 3)),
                            _ => None,
                        }
                    });
                    Ok::<_, Status>(tonic::Response::new(Box::pin(stream)
                        as Pin<
                            Box<dyn futures_util::Stream<Item = Result<EchoReply, Status>> + Send>,
                        >))
                });
                let mut grpc =
                    tonic::server::Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
                Ok(grpc.server_streaming(svc, req).await)
            }),
            _ => Box::pin(async move {
                let mut res = http::Response::new(Body::default());
                res.headers_mut()
                    .insert("grpc-status", (Code::Unimplemented as i32).into());
                res.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/grpc"),
                );
                Ok(res)
            }),
        }
    }
}

async fn serve(t: &Telemetry) -> SocketAddr {
    serve_with(t, GrpcServerLayer::new(t.config().build())).await
}

async fn serve_with(t: &Telemetry, layer: GrpcServerLayer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .layer(layer)
        .add_service(EchoServer { tracer: t.tracer() });
    tokio::spawn(async move {
        server
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    addr
}

async fn client(t: &Telemetry, addr: SocketAddr) -> tonic::client::Grpc<GrpcClient<Channel>> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let channel = ServiceBuilder::new()
        .layer(
            GrpcClientLayer::new(t.config().build())
                .with_server_address(addr.ip().to_string(), Some(addr.port())),
        )
        .service(channel);
    tonic::client::Grpc::new(channel)
}

async fn unary(
    grpc: &mut tonic::client::Grpc<GrpcClient<Channel>>,
    path: &'static str,
) -> Result<tonic::Response<EchoReply>, Status> {
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(EchoRequest {
            message: "hello".into(),
        }),
        PathAndQuery::from_static(path),
        ProstCodec::<EchoRequest, EchoReply>::default(),
    )
    .await
}

#[tokio::test]
async fn unary_call_is_one_trace_with_rpc_attributes() {
    let t = Telemetry::new();
    let addr = serve(&t).await;
    let mut grpc = client(&t, addr).await;

    let cx = Context::current_with_span(t.tracer().start("caller"));
    let reply = unary(&mut grpc, "/test.Echo/Say")
        .with_context(cx.clone())
        .await
        .unwrap();
    assert_eq!(reply.into_inner().message, "hello");
    cx.span().end();

    let caller = t.wait_span("caller", SpanKind::Internal).await;
    let client_span = t.wait_span("test.Echo/Say", SpanKind::Client).await;
    let server_span = t.wait_span("test.Echo/Say", SpanKind::Server).await;
    let inner = t.wait_span("render reply", SpanKind::Internal).await;
    assert_child_of(&client_span, &caller);
    assert_child_of(&server_span, &client_span);
    assert_child_of(&inner, &server_span);

    for span in [&client_span, &server_span] {
        assert_attr(span, semconv::RPC_SYSTEM_NAME, "grpc");
        assert_attr(span, semconv::RPC_METHOD, "test.Echo/Say");
        assert_attr(span, semconv::RPC_RESPONSE_STATUS_CODE, "OK");
        assert_no_attr(span, semconv::ERROR_TYPE);
        assert_unset_status(span);
    }
    assert_attr(&client_span, semconv::SERVER_ADDRESS, "127.0.0.1");
    assert_attr(&client_span, semconv::SERVER_PORT, i64::from(addr.port()));

    for name in [
        metric::RPC_SERVER_CALL_DURATION,
        metric::RPC_CLIENT_CALL_DURATION,
    ] {
        let points = t.histogram(name);
        assert_eq!(points.len(), 1, "{name}");
        let p = &points[0];
        assert_eq!(count(p), 1);
        assert!(point_has(p, semconv::RPC_SYSTEM_NAME, "grpc"));
        assert!(point_has(p, semconv::RPC_METHOD, "test.Echo/Say"));
        assert!(point_has(p, semconv::RPC_RESPONSE_STATUS_CODE, "OK"));
        assert!(point_attr(p, semconv::ERROR_TYPE).is_none());
    }
    let server_point = &t.histogram(metric::RPC_SERVER_CALL_DURATION)[0];
    assert!(exemplar_for(server_point, &server_span));
    let client_point = &t.histogram(metric::RPC_CLIENT_CALL_DURATION)[0];
    assert!(exemplar_for(client_point, &client_span));
    t.assert_exemplars(metric::RPC_SERVER_CALL_DURATION);
    t.assert_exemplars(metric::RPC_CLIENT_CALL_DURATION);
}

#[tokio::test]
async fn trailers_only_error_statuses() {
    let t = Telemetry::new();
    // A unary handler's `Err(Status)` is a trailers-only answer, which alone does not prove
    // the method exists: declared, these methods are recorded by name.
    let layer = GrpcServerLayer::new(t.config().build())
        .with_services([EchoServer::NAME])
        .with_methods(["test.Echo/Fail", "/test.Echo/Crash"]);
    let addr = serve_with(&t, layer).await;
    let mut grpc = client(&t, addr).await;

    // NOT_FOUND: an error for the client, not for the server.
    let status = unary(&mut grpc, "/test.Echo/Fail").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let client_span = t.wait_span("test.Echo/Fail", SpanKind::Client).await;
    let server_span = t.wait_span("test.Echo/Fail", SpanKind::Server).await;
    assert_child_of(&server_span, &client_span);
    for span in [&client_span, &server_span] {
        assert_attr(span, semconv::RPC_RESPONSE_STATUS_CODE, "NOT_FOUND");
    }
    assert_attr(&client_span, semconv::ERROR_TYPE, "NOT_FOUND");
    assert_error_status(&client_span);
    assert_no_attr(&server_span, semconv::ERROR_TYPE);
    assert_unset_status(&server_span);

    // INTERNAL: an error on both sides.
    let status = unary(&mut grpc, "/test.Echo/Crash").await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    let server_span = t.wait_span("test.Echo/Crash", SpanKind::Server).await;
    assert_attr(&server_span, semconv::RPC_RESPONSE_STATUS_CODE, "INTERNAL");
    assert_attr(&server_span, semconv::ERROR_TYPE, "INTERNAL");
    assert_error_status(&server_span);

    // Unknown method: UNIMPLEMENTED; the server records `_OTHER` (bounded series).
    let status = unary(&mut grpc, "/test.Echo/Nope").await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    let server_span = t.wait_span("grpc", SpanKind::Server).await;
    assert_attr(&server_span, semconv::RPC_METHOD, "_OTHER");
    assert_attr(&server_span, semconv::RPC_METHOD_ORIGINAL, "test.Echo/Nope");
    assert_attr(
        &server_span,
        semconv::RPC_RESPONSE_STATUS_CODE,
        "UNIMPLEMENTED",
    );
    assert_error_status(&server_span);
    let client_span = t.wait_span("test.Echo/Nope", SpanKind::Client).await;
    assert_attr(&client_span, semconv::RPC_METHOD, "test.Echo/Nope");

    let server_points = t.histogram(metric::RPC_SERVER_CALL_DURATION);
    assert!(server_points.iter().any(|p| point_has(
        p,
        semconv::RPC_RESPONSE_STATUS_CODE,
        "NOT_FOUND"
    ) && point_attr(p, semconv::ERROR_TYPE).is_none()));
    assert!(
        server_points
            .iter()
            .any(|p| point_has(p, semconv::ERROR_TYPE, "INTERNAL"))
    );
    assert!(
        server_points
            .iter()
            .any(|p| point_has(p, semconv::RPC_METHOD, "_OTHER"))
    );
    assert!(
        !server_points
            .iter()
            .any(|p| point_has(p, semconv::RPC_METHOD, "test.Echo/Nope"))
    );
    let client_points = t.histogram(metric::RPC_CLIENT_CALL_DURATION);
    assert!(
        client_points
            .iter()
            .any(|p| point_has(p, semconv::ERROR_TYPE, "NOT_FOUND")
                && point_has(p, semconv::SERVER_PORT, i64::from(addr.port())))
    );
}

#[tokio::test]
async fn status_from_trailers_after_a_stream() {
    let t = Telemetry::new();
    let addr = serve(&t).await;
    let mut grpc = client(&t, addr).await;
    grpc.ready().await.unwrap();
    let mut stream = grpc
        .server_streaming(
            tonic::Request::new(EchoRequest::default()),
            PathAndQuery::from_static("/test.Echo/Stream"),
            ProstCodec::<EchoRequest, EchoReply>::default(),
        )
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    let err = loop {
        match stream.message().await {
            Ok(Some(m)) => got.push(m.message),
            Ok(None) => panic!("stream ended without the error"),
            Err(status) => break status,
        }
    };
    assert_eq!(got, ["part 0", "part 1"]);
    assert_eq!(err.code(), Code::Unavailable);
    drop(stream);

    let client_span = t.wait_span("test.Echo/Stream", SpanKind::Client).await;
    let server_span = t.wait_span("test.Echo/Stream", SpanKind::Server).await;
    for span in [&client_span, &server_span] {
        assert_attr(span, semconv::RPC_RESPONSE_STATUS_CODE, "UNAVAILABLE");
        assert_attr(span, semconv::ERROR_TYPE, "UNAVAILABLE");
        assert_error_status(span);
        let lasted = span.end_time.duration_since(span.start_time).unwrap();
        assert!(
            lasted >= Duration::from_millis(230),
            "{} lasted {lasted:?}",
            span.span_kind_str()
        );
    }
    let server_point = t
        .histogram(metric::RPC_SERVER_CALL_DURATION)
        .into_iter()
        .find(|p| point_has(p, semconv::RPC_RESPONSE_STATUS_CODE, "UNAVAILABLE"))
        .unwrap();
    assert!(sum(&server_point) >= 0.23, "{}", sum(&server_point));
    assert!(exemplar_for(&server_point, &server_span));
}

trait KindStr {
    fn span_kind_str(&self) -> String;
}

impl KindStr for opentelemetry_sdk::trace::SpanData {
    fn span_kind_str(&self) -> String {
        format!("{:?}", self.span_kind)
    }
}

/// A plain tonic client (no layer): the server sees no `traceparent`.
async fn plain_client(addr: SocketAddr) -> tonic::client::Grpc<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic::client::Grpc::new(channel)
}

async fn plain_unary(
    grpc: &mut tonic::client::Grpc<Channel>,
    path: String,
) -> Result<tonic::Response<EchoReply>, Status> {
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(EchoRequest::default()),
        PathAndQuery::try_from(path).unwrap(),
        ProstCodec::<EchoRequest, EchoReply>::default(),
    )
    .await
}

/// A path segment no one would guess.
fn random_name() -> String {
    use std::hash::BuildHasher;
    let state = std::collections::hash_map::RandomState::new();
    format!("x{:016x}", state.hash_one(std::time::Instant::now()))
}

/// An interceptor inside the layer rejects every call before routing: the answers prove
/// nothing about the paths, so client-chosen paths never become `rpc.method` values.
#[tokio::test]
async fn rejected_and_cancelled_calls_do_not_record_client_chosen_paths() {
    let t = Telemetry::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reject = |_req: tonic::Request<()>| -> Result<tonic::Request<()>, Status> {
        Err(Status::unauthenticated("no credentials"))
    };
    let server = tonic::transport::Server::builder()
        .layer(GrpcServerLayer::new(t.config().build()))
        .layer(tonic::service::InterceptorLayer::new(reject))
        .add_service(EchoServer { tracer: t.tracer() });
    tokio::spawn(async move {
        server
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });

    let mut grpc = plain_client(addr).await;
    let paths = [
        format!("test.Echo/{}", random_name()),
        format!("{}.Svc/{}", random_name(), random_name()),
        format!("{}/{}", random_name(), random_name()),
    ];
    for path in &paths {
        let status = plain_unary(&mut grpc, format!("/{path}"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    let spans = t.wait_count(3).await;
    for path in &paths {
        let span = spans
            .iter()
            .find(|s| {
                attr(s, semconv::RPC_METHOD_ORIGINAL).is_some_and(|v| v.as_str() == path.as_str())
            })
            .unwrap_or_else(|| panic!("no span for {path}: {:?}", t.span_names()));
        assert_eq!(span.name, "grpc");
        assert_attr(span, semconv::RPC_METHOD, "_OTHER");
        assert_attr(span, semconv::RPC_RESPONSE_STATUS_CODE, "UNAUTHENTICATED");
    }

    // A call dropped before its answer proves nothing either.
    let pending = tower::service_fn(|_req: http::Request<String>| {
        std::future::pending::<Result<http::Response<String>, Infallible>>()
    });
    let mut service = tower::Layer::layer(&GrpcServerLayer::new(t.config().build()), pending);
    let cancelled = format!("/test.Echo/{}", random_name());
    let request = http::Request::post(cancelled.as_str())
        .header("content-type", "application/grpc")
        .body(String::new())
        .unwrap();
    drop(tower::Service::call(&mut service, request));

    let points = t.histogram(metric::RPC_SERVER_CALL_DURATION);
    let total: u64 = points.iter().map(count).sum();
    assert_eq!(total, 4);
    for p in &points {
        assert!(
            point_has(p, semconv::RPC_METHOD, "_OTHER"),
            "{:?}",
            point_attr(p, semconv::RPC_METHOD)
        );
    }
    assert!(
        points
            .iter()
            .any(|p| point_has(p, semconv::ERROR_TYPE, "cancelled"))
    );
}

/// Without declarations the method is recorded when a handler's answer proves it: OK, or a
/// regular response (status in the trailers). A handler's trailers-only error does not.
#[tokio::test]
async fn undeclared_methods_are_recorded_only_when_a_handler_answered() {
    let t = Telemetry::new();
    let addr = serve(&t).await;
    let mut grpc = plain_client(addr).await;
    plain_unary(&mut grpc, "/test.Echo/Say".into())
        .await
        .unwrap();
    let status = plain_unary(&mut grpc, "/test.Echo/Fail".into())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let say = t.wait_span("test.Echo/Say", SpanKind::Server).await;
    assert_attr(&say, semconv::RPC_METHOD, "test.Echo/Say");
    let fail = t.wait_span("grpc", SpanKind::Server).await;
    assert_attr(&fail, semconv::RPC_METHOD, "_OTHER");
    assert_attr(&fail, semconv::RPC_METHOD_ORIGINAL, "test.Echo/Fail");
    assert_attr(&fail, semconv::RPC_RESPONSE_STATUS_CODE, "NOT_FOUND");

    // Declared services: another service is `_OTHER` from the start.
    let t = Telemetry::new();
    let addr = serve_with(
        &t,
        GrpcServerLayer::new(t.config().build()).with_services([EchoServer::NAME]),
    )
    .await;
    let mut grpc = plain_client(addr).await;
    let status = plain_unary(&mut grpc, "/other.Svc/Do".into())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    let other = t.wait_span("grpc", SpanKind::Server).await;
    assert_attr(&other, semconv::RPC_METHOD, "_OTHER");
    assert_attr(&other, semconv::RPC_METHOD_ORIGINAL, "other.Svc/Do");
}

/// Entry spans start with their final name and `rpc.*` attributes, so a `RuleSampler`
/// rule on the method decides (server without `traceparent`, and the client).
#[tokio::test]
async fn rule_sampler_sees_the_rpc_method_at_span_start() {
    use opentelemetry_sdk::trace::Sampler;
    use otel_core::sampling::{RuleMatch, RuleSampler};

    let rules = RuleSampler::builder()
        .rule(RuleMatch::name("test.Echo/Crash"), Sampler::AlwaysOff)
        .fallback(Sampler::AlwaysOn)
        .build();
    let t = Telemetry::with_sampler(Sampler::ParentBased(Box::new(rules)));
    let addr = serve(&t).await;

    // No client layer: the server span is an entry span.
    let mut plain = plain_client(addr).await;
    let status = plain_unary(&mut plain, "/test.Echo/Crash".into())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    plain_unary(&mut plain, "/test.Echo/Say".into())
        .await
        .unwrap();
    let say = t.wait_span("test.Echo/Say", SpanKind::Server).await;
    assert_attr(&say, semconv::RPC_SYSTEM_NAME, "grpc");

    // Through the client layer: the client span is the entry span; dropped, its
    // unsampled context makes the server start none either.
    let mut grpc = client(&t, addr).await;
    let status = unary(&mut grpc, "/test.Echo/Crash").await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    unary(&mut grpc, "/test.Echo/Say").await.unwrap();
    t.wait_span("test.Echo/Say", SpanKind::Client).await;
    // The server span of the second Say call ends a moment after the client's.
    t.wait_count(5).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let names = t.span_names();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n == "test.Echo/Say" || n == "render reply"),
        "only the Say calls are sampled: {names:?}"
    );
    // Both Crash calls still count in the server's duration metric.
    let crash: u64 = t
        .histogram(metric::RPC_SERVER_CALL_DURATION)
        .iter()
        .filter(|p| point_has(p, semconv::RPC_RESPONSE_STATUS_CODE, "INTERNAL"))
        .map(count)
        .sum();
    assert_eq!(crash, 2);
}

/// A response that ends without `grpc-status` is UNKNOWN, not cancelled: a data frame
/// ending the body, or trailers without the status.
#[tokio::test]
async fn response_ending_without_grpc_status_is_unknown() {
    use bytes::Bytes;
    use http_body::Frame;
    use http_body_util::{BodyExt, Full, StreamBody};

    let t = Telemetry::new();
    let layer = GrpcServerLayer::new(t.config().build());
    let head = || {
        http::Response::builder()
            .header("content-type", "application/grpc")
            .status(200)
    };
    let request = |path: &str| {
        http::Request::post(path)
            .header("content-type", "application/grpc")
            .body(String::new())
            .unwrap()
    };

    let full = tower::service_fn(move |_req: http::Request<String>| async move {
        let body = Full::new(Bytes::from_static(b"\0\0\0\0\0"));
        Ok::<_, Infallible>(head().body(body).unwrap())
    });
    let response =
        tower::ServiceExt::oneshot(tower::Layer::layer(&layer, full), request("/a.B/Full"))
            .await
            .unwrap();
    response.into_body().collect().await.unwrap();

    let trailers_without_status =
        tower::service_fn(move |_req: http::Request<String>| async move {
            let mut trailers = http::HeaderMap::new();
            trailers.insert("x-extra", http::HeaderValue::from_static("1"));
            let frames = [
                Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
                Ok(Frame::trailers(trailers)),
            ];
            let body = StreamBody::new(futures_util::stream::iter(frames));
            Ok::<_, Infallible>(head().body(body).unwrap())
        });
    let response = tower::ServiceExt::oneshot(
        tower::Layer::layer(&layer, trailers_without_status),
        request("/a.B/Trailers"),
    )
    .await
    .unwrap();
    response.into_body().collect().await.unwrap();

    for name in ["a.B/Full", "a.B/Trailers"] {
        let span = t.wait_span(name, SpanKind::Server).await;
        assert_attr(&span, semconv::RPC_RESPONSE_STATUS_CODE, "UNKNOWN");
        assert_attr(&span, semconv::ERROR_TYPE, "UNKNOWN");
        assert_error_status(&span);
    }
    let points = t.histogram(metric::RPC_SERVER_CALL_DURATION);
    assert_eq!(points.len(), 2);
    for p in &points {
        assert!(point_has(p, semconv::RPC_RESPONSE_STATUS_CODE, "UNKNOWN"));
        assert!(point_has(p, semconv::ERROR_TYPE, "UNKNOWN"));
    }
}

/// Panics in its `call` itself, not in the future it would return.
#[derive(Clone)]
struct PanicsInCall;

impl tower::Service<http::Request<String>> for PanicsInCall {
    type Response = http::Response<http_body_util::Full<bytes::Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: http::Request<String>) -> Self::Future {
        panic!("call panicked on purpose")
    }
}

/// A panic inside the inner service's `call` (not its future) still finishes the call, on
/// the server and on the client: span ended with `error.type` `panic`, duration recorded.
#[tokio::test]
async fn synchronous_panic_in_call_is_recorded() {
    use tower::{Layer as _, Service as _, ServiceExt as _};

    let request = || {
        http::Request::post("/a.B/Boom")
            .header("content-type", "application/grpc")
            .body(String::new())
            .unwrap()
    };
    let t = Telemetry::new();
    let mut server = GrpcServerLayer::new(t.config().build()).layer(PanicsInCall);
    let mut client = GrpcClientLayer::new(t.config().build()).layer(PanicsInCall);
    server.ready().await.unwrap();
    client.ready().await.unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.call(request())));
    assert!(caught.is_err());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| client.call(request())));
    assert!(caught.is_err());

    for kind in [SpanKind::Server, SpanKind::Client] {
        let span = t
            .spans()
            .into_iter()
            .find(|s| s.span_kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} span"));
        assert_attr(&span, semconv::ERROR_TYPE, "panic");
        assert_error_status(&span);
    }
    for name in [
        metric::RPC_SERVER_CALL_DURATION,
        metric::RPC_CLIENT_CALL_DURATION,
    ] {
        let points = t.histogram(name);
        assert_eq!(points.len(), 1, "{name}");
        assert!(
            point_has(&points[0], semconv::ERROR_TYPE, "panic"),
            "{name}"
        );
        assert_eq!(count(&points[0]), 1, "{name}");
    }
}

/// A streaming response runs in the call's context also when no span of ours records: the
/// spans the stream opens follow an unsampled caller's decision.
#[tokio::test]
async fn a_stream_of_an_unsampled_caller_runs_in_the_callers_context() {
    use bytes::Bytes;
    use futures_util::StreamExt as _;
    use http_body::Frame;
    use http_body_util::{BodyExt, StreamBody};

    // Every entry span would be sampled.
    let t = Telemetry::with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
        otel_core::sampling::RuleSampler::builder().build(),
    )));
    let tracer = t.tracer();
    let layer = GrpcServerLayer::new(t.config().build());
    let streaming = tower::service_fn(move |_req: http::Request<String>| {
        let tracer = tracer.clone();
        async move {
            let frames = futures_util::stream::once(async move {
                tracer.in_span("part", |_| ());
                Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"\0\0\0\0\0")))
            })
            .chain(futures_util::stream::once(async {
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                Ok(Frame::trailers(trailers))
            }));
            let body = StreamBody::new(frames);
            Ok::<_, Infallible>(
                http::Response::builder()
                    .header("content-type", "application/grpc")
                    .body(body)
                    .unwrap(),
            )
        }
    });
    let request = http::Request::post("/test.Echo/Stream")
        .header("content-type", "application/grpc")
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-00"))
        .body(String::new())
        .unwrap();
    let response = tower::ServiceExt::oneshot(tower::Layer::layer(&layer, streaming), request)
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(t.spans().is_empty(), "{:?}", t.span_names());
}

/// A `grpc-status` that is not canonical decimal is UNKNOWN, as tonic reads it.
#[tokio::test]
async fn a_non_canonical_grpc_status_is_unknown_as_the_client_reads_it() {
    let t = Telemetry::new();
    let channel = tower::service_fn(|_: http::Request<Body>| async {
        Ok::<_, Infallible>(
            http::Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "00")
                .body(Body::default())
                .unwrap(),
        )
    });
    let mut grpc = tonic::client::Grpc::new(tower::Layer::layer(
        &GrpcClientLayer::new(t.config().build()),
        channel,
    ));
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            tonic::Request::new(EchoRequest::default()),
            PathAndQuery::from_static("/test.Echo/Say"),
            ProstCodec::<EchoRequest, EchoReply>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unknown);
    let span = t.wait_span("test.Echo/Say", SpanKind::Client).await;
    assert_attr(&span, semconv::RPC_RESPONSE_STATUS_CODE, "UNKNOWN");
    assert_error_status(&span);
}

/// A tonic deadline (`Request::set_timeout`) that expires is `error.type` `timeout`.
#[tokio::test]
async fn a_client_deadline_is_a_timeout() {
    let t = Telemetry::new();
    let addr = serve(&t).await;
    let mut grpc = client(&t, addr).await;
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(EchoRequest::default());
    request.set_timeout(Duration::from_millis(20));
    let status = grpc
        .unary(
            request,
            PathAndQuery::from_static("/test.Echo/Slow"),
            ProstCodec::<EchoRequest, EchoReply>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    let span = t.wait_span("test.Echo/Slow", SpanKind::Client).await;
    assert_attr(&span, semconv::ERROR_TYPE, "timeout");
}

/// `rpc.method_original` is the path without its leading `/`, also when it is not shaped
/// like a method.
#[tokio::test]
async fn the_original_method_has_no_leading_slash() {
    let t = Telemetry::new();
    let layer = GrpcServerLayer::new(t.config().build());
    let unimplemented = tower::service_fn(|_req: http::Request<String>| async {
        Ok::<_, Infallible>(
            http::Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "12")
                .body(String::new())
                .unwrap(),
        )
    });
    let request = http::Request::post("/Svc")
        .header("content-type", "application/grpc")
        .body(String::new())
        .unwrap();
    drop(
        tower::ServiceExt::oneshot(tower::Layer::layer(&layer, unimplemented), request)
            .await
            .unwrap(),
    );
    let span = t.wait_span("grpc", SpanKind::Server).await;
    assert_attr(&span, semconv::RPC_METHOD_ORIGINAL, "Svc");
}
