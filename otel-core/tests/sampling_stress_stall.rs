//! An exporter that stalls forever never slows requests; export resumes when a receiver is up.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use otel_core::{EnvSource, OtlpProtocol, Telemetry, TracesExporter};

/// Blocks in `export` until `open`; then counts what it receives.
#[derive(Debug, Clone, Default)]
struct StallingExporter {
    open: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
}

impl SpanExporter for StallingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        while !self.open.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.received
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Runs `n` requests (a server span with two children); returns the slowest.
fn requests(tracer: &opentelemetry_sdk::trace::SdkTracer, n: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for _ in 0..n {
        let t = Instant::now();
        tracer.in_span("request", |cx| {
            tracer.start_with_context("db", &cx).end();
            tracer.start_with_context("cache", &cx).end();
        });
        slowest = slowest.max(t.elapsed());
    }
    slowest
}

#[test]
fn stalled_exporter_never_blocks_requests_and_export_resumes() {
    let exporter = StallingExporter::default();
    let mut guard = Telemetry::builder()
        .with_env(EnvSource::from_pairs([("OTEL_BSP_SCHEDULE_DELAY", "20")]))
        .without_resource_detectors()
        .with_tracing_subscriber(false)
        .with_traces_exporters([])
        .with_span_exporter(exporter.clone())
        .with_shutdown_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("stall");
    let start = Instant::now();
    let slowest = requests(&tracer, 30_000);
    // The export is stuck forever: any wait on it would hang here, so finishing at all is
    // the proof. (No timing bound: timing belongs in benchmarks.)
    eprintln!(
        "30 000 requests in {:?}, slowest {slowest:?}",
        start.elapsed()
    );
    assert_eq!(exporter.received.load(Ordering::Relaxed), 0);

    // The receiver comes up: the stuck export completes and new spans flow again.
    exporter.open.store(true, Ordering::Release);
    std::thread::sleep(Duration::from_millis(200));
    let before = exporter.received.load(Ordering::Relaxed);
    requests(&tracer, 100);
    let deadline = Instant::now() + Duration::from_secs(5);
    while exporter.received.load(Ordering::Relaxed) < before + 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        exporter.received.load(Ordering::Relaxed) >= before + 300,
        "export did not resume"
    );
    let report = guard.shutdown(Duration::from_secs(2));
    assert!(report.completed_in_time, "{report:?}");
}

/// A bare OTLP/HTTP receiver on a given port: answers 200 to every request, counts them.
fn receiver_on(port: u16, count: Arc<AtomicU64>) {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let count = count.clone();
            std::thread::spawn(move || {
                let mut out = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    let _ = out.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                    );
                }
            });
        }
    });
}

#[test]
fn otlp_export_resumes_when_the_collector_comes_back() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut guard = Telemetry::builder()
        .with_env(EnvSource::from_pairs([("OTEL_BSP_SCHEDULE_DELAY", "50")]))
        .without_resource_detectors()
        .with_tracing_subscriber(false)
        .with_traces_exporters([TracesExporter::Otlp])
        .with_otlp_protocol(OtlpProtocol::HttpProtobuf)
        .with_otlp_endpoint(format!("http://127.0.0.1:{port}"))
        .with_otlp_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("down-up");
    let started = Instant::now();
    let slowest = requests(&tracer, 5_000);
    // Waiting on the unreachable collector would cost its 2 s timeout per export: a coarse
    // bound far above any scheduling noise catches that without timing the request path.
    let took = started.elapsed();
    eprintln!("5 000 requests with the collector down in {took:?}, slowest {slowest:?}");
    assert!(
        took < Duration::from_secs(60),
        "requests waited on export: {took:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(guard.stats().spans_exported(), 0);

    let count = Arc::new(AtomicU64::new(0));
    receiver_on(port, count.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while guard.stats().spans_exported() == 0 && Instant::now() < deadline {
        requests(&tracer, 10);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        count.load(Ordering::Relaxed) > 0,
        "no request reached the receiver"
    );
    assert!(guard.stats().spans_exported() > 0, "export did not resume");
    let report = guard.shutdown(Duration::from_secs(2));
    assert!(
        report.spans_dropped > 0,
        "spans lost while down are counted"
    );
}
