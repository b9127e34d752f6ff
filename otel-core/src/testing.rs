//! An in-memory pipeline for tests, and assertions on what it captured.
//!
//! [`TestTelemetry`] owns its own tracer provider and metrics registry and touches no global
//! state, so tests running in parallel do not see each other's telemetry. Hand its provider and
//! metrics to the adapter under test (every adapter has `with_tracer_provider` and
//! `with_metrics`), run the code, then assert on [`TestTelemetry::spans`] and
//! [`Metrics::snapshot`](crate::metrics::Metrics::snapshot).
//!
//! ```
//! use opentelemetry::trace::{SpanKind, Tracer as _};
//! use otel_core::testing::{TestTelemetry, assert_attr};
//!
//! let tt = TestTelemetry::new();
//! let inst = tt.instrumentation("my-adapter");
//! let op = inst.start(&opentelemetry::Context::current(), "GET", SpanKind::Client,
//!     vec![opentelemetry::KeyValue::new("db.system.name", "redis")]);
//! op.end();
//! assert_attr(&tt.span("GET"), "db.system.name", "redis");
//! ```

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SdkTracer, SdkTracerProvider, SpanData,
};
use tracing_subscriber::layer::SubscriberExt;

use crate::instrument::Instrumentation;
use crate::logs::{LogFormat, fmt_layer};
use crate::metrics::{Metrics, MetricsConfig};

/// An isolated in-memory pipeline: spans go to memory, metrics to a private registry, and
/// (with [`set_tracing_default`](Self::set_tracing_default)) `tracing` output to a buffer.
#[derive(Debug, Clone)]
pub struct TestTelemetry {
    provider: SdkTracerProvider,
    exporter: InMemorySpanExporter,
    metrics: Metrics,
    log: LogBuffer,
}

impl Default for TestTelemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl TestTelemetry {
    /// Every span sampled.
    pub fn new() -> Self {
        Self::with_sampler(Sampler::AlwaysOn)
    }

    /// With a given head sampler (for testing unsampled paths).
    pub fn with_sampler(sampler: Sampler) -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_simple_exporter(exporter.clone())
            .build();
        Self {
            provider,
            exporter,
            metrics: Metrics::new(MetricsConfig::default()),
            log: LogBuffer::default(),
        }
    }

    /// The tracer provider to hand to the code under test.
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// The metrics registry to hand to the code under test.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A tracer of this pipeline, for parent spans a test opens itself (e.g. a "request").
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("otel-core-test")
    }

    /// An [`Instrumentation`] bound to this pipeline.
    pub fn instrumentation(&self, scope: &'static str) -> Instrumentation {
        Instrumentation::builder(scope, "test")
            .with_tracer_provider(self.provider.clone())
            .with_metrics(self.metrics.clone())
            .build()
    }

    /// Starts a span named `name` in a new trace and returns the context holding it, for use
    /// as the parent of the code under test. End it with `cx.span().end()`.
    pub fn root_context(&self, name: &'static str) -> Context {
        use opentelemetry::trace::Tracer as _;
        let span = self.tracer().start(name);
        Context::current_with_span(span)
    }

    /// Installs, for the current thread until the guard drops, a `tracing` subscriber with the
    /// OpenTelemetry bridge bound to this pipeline and a text fmt layer writing to
    /// [`log_output`](Self::log_output).
    pub fn set_tracing_default(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(self.subscriber(LogFormat::Text))
    }

    /// The same subscriber as [`set_tracing_default`](Self::set_tracing_default) with the given
    /// log format, for `tracing::subscriber::with_default` or a runtime's thread hooks.
    pub fn subscriber(
        &self,
        format: LogFormat,
    ) -> impl tracing::Subscriber + Send + Sync + 'static {
        tracing_subscriber::registry()
            .with(fmt_layer(format, self.log.clone()))
            .with(tracing_opentelemetry::layer().with_tracer(self.tracer()))
    }

    /// Everything the fmt layer printed so far.
    pub fn log_output(&self) -> String {
        self.log.contents()
    }

    /// The finished spans, in the order they ended.
    pub fn spans(&self) -> Vec<SpanData> {
        let _ = self.provider.force_flush();
        self.exporter.get_finished_spans().unwrap_or_default()
    }

    /// The finished spans named `name`.
    pub fn spans_named(&self, name: &str) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// The one finished span named `name`; panics listing the names present otherwise.
    pub fn span(&self, name: &str) -> SpanData {
        let spans = self.spans();
        let mut found: Vec<SpanData> = spans.iter().filter(|s| s.name == name).cloned().collect();
        match found.len() {
            1 => found.remove(0),
            n => panic!(
                "expected one span named {name:?}, found {n}; spans: {:?}",
                spans.iter().map(|s| s.name.as_ref()).collect::<Vec<_>>()
            ),
        }
    }

    /// Waits up to `timeout` until a span named `name` has finished (for work on other tasks).
    pub fn wait_for_span(&self, name: &str, timeout: Duration) -> Option<SpanData> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(s) = self.spans().into_iter().find(|s| s.name == name) {
                return Some(s);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Forgets the spans captured so far.
    pub fn reset(&self) {
        self.exporter.reset();
    }
}

/// A cloneable in-memory writer for the fmt layer.
#[derive(Debug, Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// What was written, as text.
    pub fn contents(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The value of attribute `key` on `span`.
pub fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// Asserts that `span` has attribute `key` equal to `expected`.
#[track_caller]
pub fn assert_attr(span: &SpanData, key: &str, expected: impl Into<Value>) {
    let expected = expected.into();
    match attr(span, key) {
        Some(v) => assert_eq!(v, &expected, "attribute {key} of span {:?}", span.name),
        None => panic!(
            "span {:?} has no attribute {key}; it has {:?}",
            span.name,
            span.attributes
                .iter()
                .map(|kv| kv.key.as_str())
                .collect::<Vec<_>>()
        ),
    }
}

/// Asserts that `span` has no attribute `key`.
#[track_caller]
pub fn assert_no_attr(span: &SpanData, key: &str) {
    if let Some(v) = attr(span, key) {
        panic!(
            "span {:?} has attribute {key} = {v:?}, expected none",
            span.name
        );
    }
}

/// Asserts that `child`'s parent is `parent` (same trace, parent span id).
#[track_caller]
pub fn assert_child_of(child: &SpanData, parent: &SpanData) {
    assert_eq!(
        child.span_context.trace_id(),
        parent.span_context.trace_id(),
        "span {:?} is not in the trace of {:?}",
        child.name,
        parent.name
    );
    assert_eq!(
        child.parent_span_id,
        parent.span_context.span_id(),
        "span {:?} is not a child of {:?}",
        child.name,
        parent.name
    );
}

/// Asserts that all `spans` share one trace id.
#[track_caller]
pub fn assert_same_trace(spans: &[&SpanData]) {
    if let Some(first) = spans.first() {
        for s in spans {
            assert_eq!(
                s.span_context.trace_id(),
                first.span_context.trace_id(),
                "span {:?} is in another trace than {:?}",
                s.name,
                first.name
            );
        }
    }
}

/// The span of `cx`, for comparisons with exported [`SpanData`].
pub fn span_id_of(cx: &Context) -> opentelemetry::trace::SpanId {
    cx.span().span_context().span_id()
}

/// Fails unless a TCP connection to `addr` succeeds within two seconds, with a message naming
/// the server and how to start it. Tests that need a server call this first: an unreachable
/// server is a failure, never a silent skip.
#[track_caller]
pub fn require_server(name: &str, addr: &str) {
    use std::net::ToSocketAddrs;
    let ok = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    assert!(
        ok,
        "{name} is not reachable at {addr}; start the local servers with `scripts/services.sh`"
    );
}

type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A minimal OTLP/HTTP receiver on loopback for tests: it accepts `POST /v1/traces`,
/// `/v1/metrics` and `/v1/logs` with protobuf bodies, answers `200 OK`, and keeps every request.
///
/// Written by hand (a few dozen lines over `std::net`) so tests need no HTTP server crate.
#[derive(Debug, Clone)]
pub struct OtlpHttpReceiver {
    addr: std::net::SocketAddr,
    received: Received,
}

impl OtlpHttpReceiver {
    /// Starts listening on an ephemeral loopback port; runs until the process ends.
    pub fn start() -> io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let received: Received = Arc::default();
        let sink = received.clone();
        std::thread::Builder::new()
            .name("otlp-test-receiver".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let sink = sink.clone();
                    let _ = std::thread::Builder::new().spawn(move || serve(stream, &sink));
                }
            })?;
        Ok(Self { addr, received })
    }

    /// The base endpoint to configure (`http://127.0.0.1:<port>`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far as (path, body).
    pub fn requests(&self) -> Vec<(String, Vec<u8>)> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The decoded bodies of `POST /v1/traces`.
    pub fn trace_requests(
        &self,
    ) -> Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest> {
        self.decode("/v1/traces")
    }

    /// The decoded bodies of `POST /v1/logs`.
    pub fn log_requests(
        &self,
    ) -> Vec<opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest> {
        self.decode("/v1/logs")
    }

    /// The decoded bodies of `POST /v1/metrics`.
    pub fn metric_requests(
        &self,
    ) -> Vec<opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest> {
        self.decode("/v1/metrics")
    }

    fn decode<M: prost::Message + Default>(&self, path: &str) -> Vec<M> {
        self.requests()
            .into_iter()
            .filter(|(p, _)| p == path)
            .filter_map(|(_, body)| M::decode(body.as_slice()).ok())
            .collect()
    }

    /// Waits up to `timeout` until a request for `path` arrived.
    pub fn wait_for(&self, path: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.requests().iter().any(|(p, _)| p == path) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

fn serve(mut stream: std::net::TcpStream, sink: &Mutex<Vec<(String, Vec<u8>)>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0).min(64 << 20);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Ok(mut s) = sink.lock() {
            s.push((path, body));
        }
        let reply =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// Asserts that histogram `name` in `metrics` has at least one exemplar and that every
/// exemplar points at a span in `spans` (same trace id and span id); returns how many there are.
#[track_caller]
pub fn assert_exemplars_point_at_exported(
    metrics: &Metrics,
    name: &str,
    spans: &[SpanData],
) -> usize {
    use crate::metrics::SnapshotExt as _;
    let snapshot = metrics.snapshot();
    let Some(metric) = snapshot.find(name) else {
        panic!(
            "no instrument named {name}; instruments: {:?}",
            snapshot.iter().map(|m| m.name.as_str()).collect::<Vec<_>>()
        );
    };
    let exemplars: Vec<_> = metric.exemplars().collect();
    assert!(!exemplars.is_empty(), "histogram {name} has no exemplar");
    for e in &exemplars {
        assert!(
            spans.iter().any(|s| s.span_context.trace_id() == e.trace_id
                && s.span_context.span_id() == e.span_id),
            "exemplar {e:?} of {name} points at no exported span"
        );
    }
    exemplars.len()
}
