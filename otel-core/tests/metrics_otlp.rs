//! OTLP export: the request decoded back from bytes and checked field by field, and the
//! exporters against loopback receivers (HTTP/protobuf on a std `TcpListener`, gRPC with the
//! generated `MetricsServiceServer` on hyper).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService as MetricsServiceTrait, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue as PbKeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, exemplar, metric::Data, number_data_point,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use opentelemetry_semantic_conventions::attribute::{HTTP_REQUEST_METHOD, SERVICE_NAME};
use opentelemetry_semantic_conventions::metric::{
    HTTP_SERVER_ACTIVE_REQUESTS, HTTP_SERVER_REQUEST_DURATION,
};
use otel_core::metrics::otlp::{
    OtlpMetricsConfig, OtlpMetricsExporter, OtlpProtocol, PeriodicConfig, PeriodicMetricsExporter,
    SCOPE_NAME, to_otlp_request,
};
use otel_core::metrics::{Metrics, MetricsConfig, MetricsError};
use prost::Message;

fn string_value(kv: &PbKeyValue) -> Option<&str> {
    match kv.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s),
        _ => None,
    }
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([KeyValue::new(SERVICE_NAME, "gateway")])
        .build()
}

/// A registry with one sampled-span measurement, exported through a real tracer pipeline.
fn populated() -> (Metrics, opentelemetry::trace::SpanContext) {
    let metrics = Metrics::new(MetricsConfig::default().with_resource(resource()));
    let duration = metrics
        .f64_histogram(HTTP_SERVER_REQUEST_DURATION)
        .with_unit("s")
        .with_description("Duration of HTTP server requests.")
        .build();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let mut span = provider.tracer("test").start("GET /");
    let span_context = span.span_context().clone();
    let cx = Context::new().with_remote_span_context(span_context.clone());
    let get = [KeyValue::new(HTTP_REQUEST_METHOD, "GET")];
    duration.record_with_context(0.07, &get, &cx);
    duration.record(0.3, &get);
    span.end();
    assert_eq!(exporter.get_finished_spans().unwrap().len(), 1);
    let requests = metrics
        .u64_counter("app.requests")
        .with_unit("{request}")
        .build();
    requests.add(5, &get);
    metrics
        .i64_up_down_counter(HTTP_SERVER_ACTIVE_REQUESTS)
        .with_unit("{request}")
        .build()
        .add(-1, &get);
    (metrics, span_context)
}

#[test]
fn otlp_request_decodes_field_by_field() {
    let (metrics, span_context) = populated();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let request = to_otlp_request(&metrics.snapshot(), &metrics.resource());
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let bytes = request.encode_to_vec();
    let decoded = ExportMetricsServiceRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded, request);

    assert_eq!(decoded.resource_metrics.len(), 1);
    let rm = &decoded.resource_metrics[0];
    let resource = rm.resource.as_ref().unwrap();
    assert_eq!(resource.attributes.len(), 1);
    assert_eq!(resource.attributes[0].key, SERVICE_NAME);
    assert_eq!(string_value(&resource.attributes[0]), Some("gateway"));
    assert_eq!(rm.scope_metrics.len(), 1);
    let scope = rm.scope_metrics[0].scope.as_ref().unwrap();
    assert_eq!(scope.name, SCOPE_NAME);
    assert_eq!(scope.version, env!("CARGO_PKG_VERSION"));
    let metrics_pb = &rm.scope_metrics[0].metrics;
    assert_eq!(metrics_pb.len(), 3);

    // Histogram.
    let m = &metrics_pb[0];
    assert_eq!(m.name, HTTP_SERVER_REQUEST_DURATION);
    assert_eq!(m.unit, "s");
    assert_eq!(m.description, "Duration of HTTP server requests.");
    let Some(Data::Histogram(h)) = &m.data else {
        panic!("not a histogram: {:?}", m.data)
    };
    assert_eq!(
        h.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    assert_eq!(h.data_points.len(), 1);
    let dp = &h.data_points[0];
    assert_eq!(dp.attributes.len(), 1);
    assert_eq!(dp.attributes[0].key, HTTP_REQUEST_METHOD);
    assert_eq!(string_value(&dp.attributes[0]), Some("GET"));
    assert_eq!(dp.count, 2);
    assert_eq!(dp.sum, Some(0.07 + 0.3));
    assert_eq!(dp.min, Some(0.07));
    assert_eq!(dp.max, Some(0.3));
    assert_eq!(
        dp.explicit_bounds,
        vec![
            0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0
        ]
    );
    let mut buckets = vec![0u64; 15];
    buckets[4] = 1; // 0.07 ∈ (0.05, 0.075]
    buckets[7] = 1; // 0.3 ∈ (0.25, 0.5]
    assert_eq!(dp.bucket_counts, buckets);
    assert!(dp.start_time_unix_nano > 0 && dp.start_time_unix_nano <= dp.time_unix_nano);
    assert!(dp.time_unix_nano >= before && dp.time_unix_nano <= after);
    assert_eq!(dp.flags, 0);
    // Exactly one exemplar: the call inside the sampled span.
    assert_eq!(dp.exemplars.len(), 1);
    let e = &dp.exemplars[0];
    assert_eq!(e.trace_id, span_context.trace_id().to_bytes().to_vec());
    assert_eq!(e.span_id, span_context.span_id().to_bytes().to_vec());
    assert_eq!(e.value, Some(exemplar::Value::AsDouble(0.07)));
    assert!(e.time_unix_nano >= dp.start_time_unix_nano && e.time_unix_nano <= dp.time_unix_nano);
    assert!(e.filtered_attributes.is_empty());

    // Counter: monotonic cumulative sum.
    let m = &metrics_pb[1];
    assert_eq!(
        (m.name.as_str(), m.unit.as_str()),
        ("app.requests", "{request}")
    );
    let Some(Data::Sum(sum)) = &m.data else {
        panic!("not a sum")
    };
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    assert_eq!(
        sum.data_points[0].value,
        Some(number_data_point::Value::AsInt(5))
    );
    assert_eq!(string_value(&sum.data_points[0].attributes[0]), Some("GET"));

    // Up-down counter: non-monotonic sum.
    let m = &metrics_pb[2];
    assert_eq!(m.name, HTTP_SERVER_ACTIVE_REQUESTS);
    let Some(Data::Sum(sum)) = &m.data else {
        panic!("not a sum")
    };
    assert!(!sum.is_monotonic);
    assert_eq!(
        sum.data_points[0].value,
        Some(number_data_point::Value::AsInt(-1))
    );
}

// ---------------------------------------------------------------------------------------------
// Loopback OTLP/HTTP receiver.
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    request: ExportMetricsServiceRequest,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves HTTP/1.1 on loopback, answering every request with `status`; returns the base URL.
fn http_receiver(status: u16) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || serve_connection(stream, status, &tx));
        }
    });
    (base, rx)
}

fn serve_connection(stream: TcpStream, status: u16, tx: &mpsc::Sender<Received>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').unwrap();
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let request = ExportMetricsServiceRequest::decode(body.as_slice()).unwrap();
        let _ = tx.send(Received {
            method,
            path,
            headers,
            request,
        });
        let reply = ExportMetricsServiceResponse::default().encode_to_vec();
        write!(
            writer,
            "HTTP/1.1 {status} X\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
            reply.len()
        )
        .unwrap();
        writer.write_all(&reply).unwrap();
        writer.flush().unwrap();
    }
}

/// Accepts connections and never answers.
fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    base
}

fn http_config(base: &str) -> OtlpMetricsConfig {
    OtlpMetricsConfig {
        endpoint: Some(base.to_owned()),
        protocol: OtlpProtocol::HttpProtobuf,
        headers: vec![("x-tenant".to_owned(), "blue".to_owned())],
        timeout: Duration::from_secs(5),
        ..OtlpMetricsConfig::default()
    }
}

#[test]
fn http_export_reaches_a_loopback_collector() {
    let (metrics, span_context) = populated();
    let (base, received) = http_receiver(200);
    let mut exporter = OtlpMetricsExporter::new(http_config(&base)).unwrap();
    assert_eq!(exporter.url(), format!("{base}/v1/metrics"));
    exporter.export_metrics(&metrics).unwrap();
    let got = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/v1/metrics");
    assert_eq!(got.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(got.header("x-tenant"), Some("blue"));
    let dp = match &got.request.resource_metrics[0].scope_metrics[0].metrics[0].data {
        Some(Data::Histogram(h)) => h.data_points[0].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(dp.count, 2);
    assert_eq!(
        dp.exemplars[0].span_id,
        span_context.span_id().to_bytes().to_vec()
    );

    // A signal-specific endpoint is used as is.
    let config = OtlpMetricsConfig {
        metrics_endpoint: Some(format!("{base}/custom")),
        ..http_config(&base)
    };
    OtlpMetricsExporter::new(config)
        .unwrap()
        .export_metrics(&metrics)
        .unwrap();
    assert_eq!(
        received.recv_timeout(Duration::from_secs(5)).unwrap().path,
        "/custom"
    );
}

#[test]
fn http_error_status_is_an_error() {
    let (metrics, _) = populated();
    let (base, received) = http_receiver(503);
    let mut exporter = OtlpMetricsExporter::new(http_config(&base)).unwrap();
    let err = exporter.export_metrics(&metrics).unwrap_err();
    assert!(received.recv_timeout(Duration::from_secs(5)).is_ok());
    let text = err.to_string();
    assert!(text.contains("503") && text.contains(&base), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Loopback OTLP/gRPC receiver.
// ---------------------------------------------------------------------------------------------

struct GrpcReceiver {
    tx: mpsc::Sender<(ExportMetricsServiceRequest, Option<String>)>,
}

#[tonic::async_trait]
impl MetricsServiceTrait for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let tenant = request
            .metadata()
            .get("x-tenant")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = self.tx.send((request.into_inner(), tenant));
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn grpc_receiver() -> (
    String,
    mpsc::Receiver<(ExportMetricsServiceRequest, Option<String>)>,
) {
    let (tx, rx) = mpsc::channel();
    (
        common::serve_grpc(MetricsServiceServer::new(GrpcReceiver { tx })),
        rx,
    )
}

#[test]
fn grpc_export_reaches_a_loopback_collector() {
    let (metrics, span_context) = populated();
    let (endpoint, received) = grpc_receiver();
    let mut exporter = OtlpMetricsExporter::new(OtlpMetricsConfig {
        endpoint: Some(endpoint.clone()),
        protocol: OtlpProtocol::Grpc,
        headers: vec![("x-tenant".to_owned(), "green".to_owned())],
        timeout: Duration::from_secs(5),
        ..OtlpMetricsConfig::default()
    })
    .unwrap();
    assert_eq!(exporter.url(), endpoint);
    exporter.export_metrics(&metrics).unwrap();
    exporter.export_metrics(&metrics).unwrap();
    for _ in 0..2 {
        let (request, tenant) = received.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(tenant.as_deref(), Some("green"));
        let expected =
            to_otlp_request(&metrics.snapshot_without_percentiles(), &metrics.resource());
        let got = &request.resource_metrics[0];
        assert_eq!(got.resource, expected.resource_metrics[0].resource);
        let Some(Data::Histogram(h)) = &got.scope_metrics[0].metrics[0].data else {
            panic!("not a histogram")
        };
        assert_eq!(
            h.data_points[0].exemplars[0].trace_id,
            span_context.trace_id().to_bytes().to_vec()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Periodic exporter.
// ---------------------------------------------------------------------------------------------

#[test]
fn periodic_exporter_exports_every_interval_and_on_shutdown() {
    let (metrics, _) = populated();
    let (base, received) = http_receiver(200);
    let periodic = PeriodicMetricsExporter::start(
        metrics.clone(),
        OtlpMetricsExporter::new(http_config(&base)).unwrap(),
        PeriodicConfig::default().with_interval(Duration::from_millis(50)),
    )
    .unwrap();
    for _ in 0..2 {
        received.recv_timeout(Duration::from_secs(5)).unwrap();
    }
    // Drain, record more, shut down: the final export carries it.
    while received.try_recv().is_ok() {}
    metrics
        .f64_histogram(HTTP_SERVER_REQUEST_DURATION)
        .build()
        .record(0.5, &[KeyValue::new(HTTP_REQUEST_METHOD, "GET")]);
    periodic.shutdown(Duration::from_secs(5)).unwrap();
    let last = std::iter::from_fn(|| received.recv_timeout(Duration::from_millis(200)).ok())
        .last()
        .unwrap();
    let Some(Data::Histogram(h)) =
        &last.request.resource_metrics[0].scope_metrics[0].metrics[0].data
    else {
        panic!("not a histogram")
    };
    assert_eq!(h.data_points[0].count, 3);
    let stats = periodic.stats();
    assert!(stats.succeeded >= 3, "{stats:?}");
    assert_eq!(stats.failed, 0);
    assert!(matches!(
        periodic.shutdown(Duration::from_secs(1)),
        Err(MetricsError::Thread(_))
    ));
    assert!(periodic.force_flush(Duration::from_secs(1)).is_err());
}

#[test]
fn shutdown_returns_within_the_deadline_when_the_collector_hangs() {
    let (metrics, _) = populated();
    let base = black_hole();
    let periodic = PeriodicMetricsExporter::start(
        metrics,
        OtlpMetricsExporter::new(OtlpMetricsConfig {
            timeout: Duration::from_secs(30),
            ..http_config(&base)
        })
        .unwrap(),
        PeriodicConfig::default(),
    )
    .unwrap();
    let start = Instant::now();
    let result = periodic.shutdown(Duration::from_millis(300));
    let took = start.elapsed();
    assert!(result.is_err(), "{result:?}");
    assert!(took < Duration::from_millis(1500), "shutdown took {took:?}");
    // The final export failed on its own timeout (the deadline) and was counted.
    let deadline = Instant::now() + Duration::from_secs(5);
    while periodic.stats().failed == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = periodic.stats();
    assert_eq!(stats.failed, 1, "{stats:?}");
    assert!(stats.last_error.is_some());
}

#[test]
fn failed_periodic_exports_are_counted() {
    let (metrics, _) = populated();
    // Nothing listens on this port (bound, then released).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let periodic = PeriodicMetricsExporter::start(
        metrics,
        OtlpMetricsExporter::new(http_config(&format!("http://127.0.0.1:{port}"))).unwrap(),
        PeriodicConfig::default().with_interval(Duration::from_millis(20)),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while periodic.stats().failed < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = periodic.stats();
    assert!(stats.failed >= 3, "{stats:?}");
    assert_eq!(stats.succeeded, 0);
    assert!(stats.last_error.unwrap().contains(&port.to_string()));
    assert!(periodic.shutdown(Duration::from_secs(2)).is_err());
}

/// The OTLP timeout caps each periodic export even when the periodic timeout is longer:
/// a collector that never answers holds a flush for the smaller of the two.
#[test]
fn the_otlp_timeout_caps_a_periodic_export() {
    let (metrics, _) = populated();
    let base = black_hole();
    let periodic = PeriodicMetricsExporter::start(
        metrics,
        OtlpMetricsExporter::new(OtlpMetricsConfig {
            timeout: Duration::from_millis(200),
            ..http_config(&base)
        })
        .unwrap(),
        PeriodicConfig::default(), // 30 s per export
    )
    .unwrap();
    let start = Instant::now();
    let result = periodic.force_flush(Duration::from_secs(10));
    let took = start.elapsed();
    assert!(result.is_err(), "{result:?}");
    assert!(took < Duration::from_secs(2), "the flush took {took:?}");
    drop(periodic.shutdown(Duration::from_millis(300)));
}
