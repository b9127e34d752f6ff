//! The OTLP headers sent with span exports are exactly the ones the pipeline resolved, even
//! when the process environment holds `OTEL_EXPORTER_OTLP_HEADERS` that opentelemetry-otlp
//! would add on top: `with_otlp_header` wins, and an `EnvSource` replaces the process
//! environment. The test runs itself again as a child process with the variable set (the
//! workspace forbids the `unsafe` of `std::env::set_var`).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otel_core::{EnvSource, OtlpProtocol, Telemetry};

/// Header names (lower case) and values of one request, in order.
type Headers = Vec<(String, String)>;

/// The request headers of every request an HTTP/1.1 listener receives.
fn http_header_capture() -> (String, Arc<Mutex<Vec<Headers>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Headers>>> = Arc::default();
    let sink = seen.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let mut headers = Vec::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    let (k, v) = line.split_once(':').unwrap();
                    let (k, v) = (k.to_ascii_lowercase(), v.trim().to_owned());
                    if k == "content-length" {
                        length = v.parse().unwrap();
                    }
                    headers.push((k, v));
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                sink.lock().unwrap().push(headers);
                let reply = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                stream.write_all(reply.as_bytes()).unwrap();
            }
        }
    });
    (format!("http://{addr}"), seen)
}

struct Receiver {
    tx: mpsc::Sender<Headers>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let metadata = request
            .metadata()
            .clone()
            .into_headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let _ = self.tx.send(metadata);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// One span exported by a pipeline for `endpoint` over `protocol`, configured by an
/// `EnvSource` with its own headers and by `with_otlp_header`.
fn export_one_span(endpoint: &str, protocol: OtlpProtocol) {
    let mut guard = Telemetry::builder()
        .with_env(EnvSource::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=t1"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ]))
        .with_otlp_protocol(protocol)
        .with_otlp_header("authorization", "new")
        .with_tracing_subscriber(false)
        .build()
        .unwrap();
    guard
        .tracer_provider()
        .unwrap()
        .tracer("t")
        .start("exported")
        .end();
    let report = guard.shutdown(Duration::from_secs(5));
    assert_eq!(report.spans_exported, 1, "{report:?}");
}

/// Marks the child run, which has the deployment's variable in its environment.
const CHILD: &str = "OTEL_CORE_TEST_HEADERS_CHILD";

#[test]
fn exported_headers_are_the_resolved_ones_not_the_process_environments() {
    if std::env::var_os(CHILD).is_none() {
        // The process environment a deployment set, which the code overrides (one key) and
        // replaces (the whole variable, through `EnvSource`).
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "exported_headers_are_the_resolved_ones_not_the_process_environments",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .env("OTEL_EXPORTER_OTLP_HEADERS", "authorization=old,x-stale=1")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "the child run failed:\n{log}");
        assert!(log.contains("1 passed"), "the child ran no test:\n{log}");
        return;
    }
    assert_eq!(
        std::env::var("OTEL_EXPORTER_OTLP_HEADERS").as_deref(),
        Ok("authorization=old,x-stale=1")
    );

    let (endpoint, seen) = http_header_capture();
    export_one_span(&endpoint, OtlpProtocol::HttpProtobuf);
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let get = |k: &str| {
        requests[0]
            .iter()
            .filter(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(get("authorization"), ["new"]);
    assert_eq!(get("x-tenant"), ["t1"]);
    assert!(get("x-stale").is_empty(), "{requests:?}");
    assert_eq!(get("content-type"), ["application/x-protobuf"]);

    let (tx, rx) = mpsc::channel();
    let endpoint = common::serve_grpc(TraceServiceServer::new(Receiver { tx }));
    export_one_span(&endpoint, OtlpProtocol::Grpc);
    let metadata = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let get = |k: &str| {
        metadata
            .iter()
            .filter(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(get("authorization"), ["new"], "{metadata:?}");
    assert_eq!(get("x-tenant"), ["t1"], "{metadata:?}");
    assert!(get("x-stale").is_empty(), "{metadata:?}");
}
