//! Spans exported over OTLP/gRPC (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`) to a real gRPC receiver
//! (the generated `TraceServiceServer` on hyper) on loopback, headers sent as metadata.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::mpsc;
use std::time::Duration;

use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otel_core::{EnvSource, Telemetry};

type Received = (ExportTraceServiceRequest, Option<String>);

struct Receiver {
    tx: mpsc::Sender<Received>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let key = request
            .metadata()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = self.tx.send((request.into_inner(), key));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn grpc_receiver() -> (String, mpsc::Receiver<Received>) {
    let (tx, rx) = mpsc::channel();
    (
        common::serve_grpc(TraceServiceServer::new(Receiver { tx })),
        rx,
    )
}

#[test]
fn spans_reach_a_grpc_collector_with_metadata_and_resource() {
    let (endpoint, received) = grpc_receiver();
    // Inside the application's runtime, as a service builds it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let mut guard = Telemetry::builder()
        .with_env(EnvSource::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret-1"),
            ("OTEL_SERVICE_NAME", "grpc-exported"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ]))
        .with_tracing_subscriber(false)
        .build()
        .unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("t");
    tracer.start("over-grpc").end();
    let report = guard.shutdown(Duration::from_secs(5));
    assert_eq!(report.spans_exported, 1, "{report:?}");
    let (request, key) = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(key.as_deref(), Some("secret-1"));
    let rs = &request.resource_spans[0];
    let resource = format!("{:?}", rs.resource);
    assert!(resource.contains("grpc-exported"), "{resource}");
    assert_eq!(rs.scope_spans[0].spans[0].name, "over-grpc");
}

fn grpc_guard(endpoint: &str) -> otel_core::TelemetryGuard {
    Telemetry::builder()
        .with_env(EnvSource::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ]))
        .with_tracing_subscriber(false)
        .build()
        .unwrap()
}

#[test]
fn grpc_export_needs_no_runtime_of_the_application() {
    let (endpoint, received) = grpc_receiver();
    // Built and used with no tokio runtime anywhere on this thread.
    assert!(tokio::runtime::Handle::try_current().is_err());
    let mut guard = grpc_guard(&endpoint);
    guard
        .tracer_provider()
        .unwrap()
        .tracer("t")
        .start("no-runtime")
        .end();
    let report = guard.shutdown(Duration::from_secs(5));
    assert!(report.completed_in_time, "{report:?}");
    assert_eq!(report.spans_exported, 1, "{report:?}");
    let (request, _) = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        request.resource_spans[0].scope_spans[0].spans[0].name,
        "no-runtime"
    );
}

/// `#[tokio::main(flavor = "current_thread")]`: the guard is dropped inside async code on the
/// runtime's only thread, which then waits for the last export. The export must not need
/// that thread, and dropping must not panic.
#[test]
fn grpc_guard_dropped_on_a_current_thread_runtime_flushes_in_time() {
    let (endpoint, received) = grpc_receiver();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(async {
        let mut guard = grpc_guard(&endpoint);
        guard
            .tracer_provider()
            .unwrap()
            .tracer("t")
            .start("last-span")
            .end();
        let report = guard.shutdown(Duration::from_secs(5));
        drop(guard);
        report
    });
    assert!(report.completed_in_time, "{report:?}");
    assert_eq!(report.spans_exported, 1, "{report:?}");
    let (request, _) = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        request.resource_spans[0].scope_spans[0].spans[0].name,
        "last-span"
    );
}
