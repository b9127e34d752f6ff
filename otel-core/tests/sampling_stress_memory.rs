//! 200 000 spans with the collector down: requests never wait and memory stays bounded.
//! (Alone in its file so no other test shares the process while memory is measured.)
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use otel_core::{EnvSource, OtlpProtocol, Telemetry, TracesExporter};

/// Resident set size of this process, from /proc/self/status.
fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Memory the process may grow by while 200 000 spans pass through a pipeline whose queue
/// holds 2 048 spans: the queue, one export batch in flight and allocator slack.
const BOUND_KIB: u64 = 64 * 1024;

#[test]
fn collector_down_200k_spans_memory_stays_bounded() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let mut guard = Telemetry::builder()
        .with_env(EnvSource::from_pairs([("OTEL_BSP_MAX_QUEUE_SIZE", "2048")]))
        .without_resource_detectors()
        .with_tracing_subscriber(false)
        .with_traces_exporters([TracesExporter::Otlp])
        .with_otlp_protocol(OtlpProtocol::HttpProtobuf)
        .with_otlp_endpoint(endpoint)
        .with_otlp_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("stress");
    // Warm up allocator and exporter thread before the baseline.
    for _ in 0..5_000 {
        tracer.start("warmup").end();
    }
    let before = vm_rss_kib();
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let n = 200_000u64;
    for i in 0..n {
        let t = Instant::now();
        let mut span = tracer.start("GET /orders/{id}");
        span.set_attribute(KeyValue::new("http.request.method", "GET"));
        span.set_attribute(KeyValue::new("order.id", i as i64));
        span.end();
        slowest = slowest.max(t.elapsed());
    }
    let took = start.elapsed();
    let after = vm_rss_kib();
    let report = guard.shutdown(Duration::from_secs(2));
    eprintln!(
        "200k spans in {took:?}, slowest {slowest:?}, RSS {before} KiB -> {after} KiB, {report:?}"
    );
    assert!(
        after.saturating_sub(before) < BOUND_KIB,
        "RSS grew by {} KiB (bound {BOUND_KIB} KiB)",
        after - before
    );
    // No timed assertion here (timing belongs in benchmarks); that the request path never
    // waits on export is proven by sampling_stress_stall.rs, whose exporter never returns.
    assert!(report.spans_ended >= n);
    assert!(
        report.spans_dropped >= n - 2048,
        "dropped spans are counted: {report:?}"
    );
    assert_eq!(report.spans_exported, 0);
}
