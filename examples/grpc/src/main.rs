//! Run with `cargo run -p grpc`. Set `OTEL_EXPORTER_OTLP_ENDPOINT` to also export to a
//! collector.
//!
//! A tonic server behind `otel-tower`'s [`GrpcServerLayer`] and a tonic client behind its
//! [`GrpcClientLayer`], both in this process on a loopback port. The client makes two unary
//! calls to `bank.Accounts/Get`: one finds the account, the other asks for one that does not
//! exist and gets `NOT_FOUND`. Each call is one trace (client span → server span → the
//! handler's own span), printed as a waterfall by the console exporter of `otel-core`; the
//! failing call's client span is marked `✗` with `error.type=NOT_FOUND`.
//!
//! There is no `.proto` file and no protoc: the messages are written by hand with
//! `prost::Message`, and the service is routed by path the way tonic's generated code does,
//! with tonic's generic `Grpc` client and server.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use http::uri::PathAndQuery;
use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use otel_core::{Telemetry, TracesExporter};
use otel_tower::Config;
use otel_tower::grpc::{GrpcClient, GrpcClientLayer, GrpcServerLayer};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tower::ServiceBuilder;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// `bank.GetAccountRequest { int64 id = 1; }`, written by hand.
#[derive(Clone, PartialEq, prost::Message)]
struct GetAccountRequest {
    #[prost(int64, tag = "1")]
    id: i64,
}

/// `bank.Account { int64 id = 1; string owner = 2; }`, written by hand.
#[derive(Clone, PartialEq, prost::Message)]
struct Account {
    #[prost(int64, tag = "1")]
    id: i64,
    #[prost(string, tag = "2")]
    owner: String,
}

/// The full method path of `bank.Accounts/Get`.
const GET: &str = "/bank.Accounts/Get";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let exporters = if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        vec![TracesExporter::Console, TracesExporter::Otlp]
    } else {
        vec![TracesExporter::Console]
    };
    let guard = Telemetry::builder()
        .with_service_name("grpc-example")
        .with_service_version(env!("CARGO_PKG_VERSION"))
        .with_traces_exporters(exporters)
        .with_shutdown_timeout(Duration::from_secs(3))
        .install()?;

    let addr = serve().await?;
    let mut client = connect(addr).await?;
    for id in [1, 404] {
        match get_account(&mut client, id).await {
            Ok(account) => tracing::info!(id, owner = %account.owner, "found"),
            Err(status) => {
                tracing::info!(id, code = ?status.code(), message = status.message(), "failed")
            }
        }
    }

    // Dropping the guard flushes: the console exporter prints what it still holds.
    drop(guard);
    Ok(())
}

/// Serves `bank.Accounts` on a free loopback port; returns its address.
async fn serve() -> Result<SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tonic::transport::Server::builder()
        // The methods this server serves: recorded as `rpc.method` even when a handler
        // answers with an error (without the list, only answers that prove a handler ran
        // carry the method, so that client-chosen paths never become metric series).
        .layer(GrpcServerLayer::new(Config::default()).with_methods(["bank.Accounts/Get"]))
        .add_service(AccountsServer);
    tokio::spawn(async move {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        if let Err(e) = server.serve_with_incoming(incoming).await {
            tracing::error!(error = %e, "gRPC server stopped");
        }
    });
    Ok(addr)
}

/// A client channel to `addr` with the client layer, which injects the trace context into the
/// request metadata.
async fn connect(addr: SocketAddr) -> Result<tonic::client::Grpc<GrpcClient<Channel>>, Error> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let channel = ServiceBuilder::new()
        .layer(
            GrpcClientLayer::new(Config::default())
                .with_server_address(addr.ip().to_string(), Some(addr.port())),
        )
        .service(channel);
    Ok(tonic::client::Grpc::new(channel))
}

/// Calls `bank.Accounts/Get`.
async fn get_account(
    client: &mut tonic::client::Grpc<GrpcClient<Channel>>,
    id: i64,
) -> Result<Account, Status> {
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let response = client
        .unary(
            tonic::Request::new(GetAccountRequest { id }),
            PathAndQuery::from_static(GET),
            ProstCodec::<GetAccountRequest, Account>::default(),
        )
        .await?;
    Ok(response.into_inner())
}

/// The `bank.Accounts` service, routed by path as tonic's generated servers are.
#[derive(Clone)]
struct AccountsServer;

impl NamedService for AccountsServer {
    const NAME: &'static str = "bank.Accounts";
}

/// The handler of `bank.Accounts/Get`: account 1 exists, every other id is `NOT_FOUND`.
async fn get(
    request: tonic::Request<GetAccountRequest>,
) -> Result<tonic::Response<Account>, Status> {
    let id = request.into_inner().id;
    tracing::info!(id, "looking up account");
    // A span of the handler's own, a child of the server span.
    let tracer = opentelemetry::global::tracer_provider().tracer("grpc-example");
    let found = tracer.in_span("load account", |_| (id == 1).then(|| "ada".to_owned()));
    tokio::time::sleep(Duration::from_millis(5)).await;
    match found {
        Some(owner) => Ok(tonic::Response::new(Account { id, owner })),
        None => Err(Status::not_found(format!("no account {id}"))),
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl tower::Service<http::Request<Body>> for AccountsServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if req.uri().path() == GET {
            Box::pin(async move {
                let mut grpc =
                    tonic::server::Grpc::new(ProstCodec::<Account, GetAccountRequest>::default());
                Ok(grpc.unary(tower::service_fn(get), req).await)
            })
        } else {
            Box::pin(async move { Ok(Status::new(Code::Unimplemented, "").into_http()) })
        }
    }
}
