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
//! let op = inst.start(
//!     &opentelemetry::Context::current(),
//!     "GET",
//!     SpanKind::Client,
//!     vec![opentelemetry::KeyValue::new("db.system.name", "redis")],
//! );
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
///
/// ```
/// use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
/// use otel_core::testing::{TestTelemetry, assert_child_of};
///
/// let tt = TestTelemetry::new();
/// // The test opens a "request" itself; the code under test runs inside it.
/// let request = tt.root_context("request");
/// {
///     let _guard = request.clone().attach();
///     tt.tracer().in_span("load order", |_| {});
/// }
/// request.span().end();
/// assert_child_of(&tt.span("load order"), &tt.span("request"));
/// ```
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
    ///
    /// ```
    /// use opentelemetry::trace::Tracer as _;
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// tt.tracer().in_span("work", |_| {});
    /// assert_eq!(tt.spans().len(), 1);
    /// // Another instance sees nothing of it.
    /// assert!(TestTelemetry::new().spans().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_sampler(Sampler::AlwaysOn)
    }

    /// With a given head sampler (for testing unsampled paths).
    ///
    /// ```
    /// use opentelemetry::trace::{Span as _, Tracer as _};
    /// use opentelemetry_sdk::trace::Sampler;
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::with_sampler(Sampler::AlwaysOff);
    /// let span = tt.tracer().start("dropped");
    /// assert!(!span.span_context().is_sampled());
    /// drop(span);
    /// assert!(tt.spans().is_empty());
    /// ```
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
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// // What an adapter's `with_tracer_provider` takes.
    /// let provider = tt.tracer_provider().clone();
    /// provider.tracer("my-adapter").in_span("SELECT", |_| {});
    /// assert_eq!(tt.span("SELECT").instrumentation_scope.name(), "my-adapter");
    /// ```
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// The metrics registry to hand to the code under test.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    /// use otel_core::metrics::SnapshotExt as _;
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// // What an adapter's `with_metrics` takes.
    /// let requests = tt.metrics().u64_counter("app.requests").build();
    /// requests.add(1, &[KeyValue::new("route", "/cart")]);
    /// let snapshot = tt.metrics().snapshot();
    /// let series = snapshot
    ///     .find("app.requests")
    ///     .and_then(|m| m.find_series(&[KeyValue::new("route", "/cart")]));
    /// assert_eq!(series.and_then(|s| s.counter()), Some(1));
    /// ```
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A tracer of this pipeline, for parent spans a test opens itself (e.g. a "request").
    ///
    /// ```
    /// use opentelemetry::trace::{Span as _, Tracer as _};
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// let mut span = tt.tracer().start("checkout");
    /// span.set_attribute(opentelemetry::KeyValue::new("cart.items", 3));
    /// span.end();
    /// otel_core::testing::assert_attr(&tt.span("checkout"), "cart.items", 3);
    /// ```
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("otel-core-test")
    }

    /// An [`Instrumentation`] bound to this pipeline.
    ///
    /// ```
    /// use opentelemetry::trace::SpanKind;
    /// use opentelemetry::{Context, KeyValue};
    /// use otel_core::testing::{TestTelemetry, assert_attr};
    ///
    /// let tt = TestTelemetry::new();
    /// let inst = tt.instrumentation("my-adapter");
    /// let op = inst.start(
    ///     &Context::new(),
    ///     "PUBLISH orders",
    ///     SpanKind::Producer,
    ///     vec![KeyValue::new("messaging.system", "rabbitmq")],
    /// );
    /// op.end();
    /// let span = tt.span("PUBLISH orders");
    /// assert_attr(&span, "messaging.system", "rabbitmq");
    /// assert_eq!(span.instrumentation_scope.name(), "my-adapter");
    /// ```
    pub fn instrumentation(&self, scope: &'static str) -> Instrumentation {
        Instrumentation::builder(scope, "test")
            .with_tracer_provider(self.provider.clone())
            .with_metrics(self.metrics.clone())
            .build()
    }

    /// Starts a span named `name` in a new trace and returns the context holding it, for use
    /// as the parent of the code under test. End it with `cx.span().end()`.
    ///
    /// ```
    /// use opentelemetry::trace::{SpanKind, TraceContextExt as _};
    /// use otel_core::testing::{TestTelemetry, assert_child_of};
    ///
    /// let tt = TestTelemetry::new();
    /// let parent = tt.root_context("request");
    /// let op = tt
    ///     .instrumentation("my-adapter")
    ///     .start(&parent, "GET", SpanKind::Client, vec![]);
    /// op.end();
    /// parent.span().end();
    /// assert_child_of(&tt.span("GET"), &tt.span("request"));
    /// ```
    pub fn root_context(&self, name: &'static str) -> Context {
        use opentelemetry::trace::Tracer as _;
        let span = self.tracer().start(name);
        Context::current_with_span(span)
    }

    /// Installs, for the current thread until the guard drops, a `tracing` subscriber with the
    /// OpenTelemetry bridge bound to this pipeline and a text fmt layer writing to
    /// [`log_output`](Self::log_output).
    ///
    /// ```
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// let _guard = tt.set_tracing_default();
    /// tracing::info_span!("import").in_scope(|| tracing::warn!(rows = 3, "skipped"));
    /// // The `tracing` span became an OpenTelemetry span, and the log line carries its ids.
    /// let span = tt.span("import");
    /// let log = tt.log_output();
    /// assert!(log.contains("skipped rows=3"));
    /// assert!(log.contains(&format!("trace_id={}", span.span_context.trace_id())));
    /// ```
    pub fn set_tracing_default(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(self.subscriber(LogFormat::Text))
    }

    /// The same subscriber as [`set_tracing_default`](Self::set_tracing_default) with the given
    /// log format, for `tracing::subscriber::with_default` or a runtime's thread hooks.
    ///
    /// ```
    /// use otel_core::logs::LogFormat;
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// tracing::subscriber::with_default(tt.subscriber(LogFormat::Json), || {
    ///     tracing::info!(order = 42, "accepted");
    /// });
    /// let line: serde_json::Value = serde_json::from_str(tt.log_output().trim())?;
    /// assert_eq!(line["message"], "accepted");
    /// assert_eq!(line["fields"]["order"], 42);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn subscriber(
        &self,
        format: LogFormat,
    ) -> impl tracing::Subscriber + Send + Sync + 'static {
        tracing_subscriber::registry()
            .with(fmt_layer(format, self.log.clone()))
            .with(tracing_opentelemetry::layer().with_tracer(self.tracer()))
    }

    /// Everything the fmt layer printed so far.
    ///
    /// ```
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// assert_eq!(tt.log_output(), "");
    /// let _guard = tt.set_tracing_default();
    /// tracing::error!("disk full");
    /// assert!(tt.log_output().trim_end().ends_with("disk full"));
    /// ```
    pub fn log_output(&self) -> String {
        self.log.contents()
    }

    /// The finished spans, in the order they ended.
    ///
    /// ```
    /// use opentelemetry::trace::Tracer as _;
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// let tracer = tt.tracer();
    /// tracer.in_span("outer", |_| tracer.in_span("inner", |_| {}));
    /// let names: Vec<_> = tt.spans().into_iter().map(|s| s.name).collect();
    /// assert_eq!(names, ["inner", "outer"]); // in the order they ended
    /// ```
    pub fn spans(&self) -> Vec<SpanData> {
        let _ = self.provider.force_flush();
        self.exporter.get_finished_spans().unwrap_or_default()
    }

    /// The finished spans named `name`.
    ///
    /// ```
    /// use opentelemetry::trace::Tracer as _;
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// for _ in 0..3 {
    ///     tt.tracer().in_span("retry", |_| {});
    /// }
    /// tt.tracer().in_span("done", |_| {});
    /// assert_eq!(tt.spans_named("retry").len(), 3);
    /// assert!(tt.spans_named("missing").is_empty());
    /// ```
    pub fn spans_named(&self, name: &str) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// The one finished span named `name`; panics listing the names present otherwise.
    ///
    /// ```
    /// use opentelemetry::trace::Tracer as _;
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// tt.tracer().in_span("charge card", |_| {});
    /// assert_eq!(tt.span("charge card").name, "charge card");
    /// // `tt.span("refund")` would panic: "expected one span named \"refund\", found 0; spans: [\"charge card\"]".
    /// ```
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
    ///
    /// ```
    /// use opentelemetry::trace::Tracer as _;
    /// use otel_core::testing::TestTelemetry;
    /// use std::time::Duration;
    ///
    /// let tt = TestTelemetry::new();
    /// let tracer = tt.tracer();
    /// let worker = std::thread::spawn(move || tracer.in_span("background job", |_| {}));
    /// let span = tt.wait_for_span("background job", Duration::from_secs(5));
    /// assert!(span.is_some());
    /// worker.join().expect("the worker finished");
    /// assert!(
    ///     tt.wait_for_span("never", Duration::from_millis(20))
    ///         .is_none()
    /// );
    /// ```
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
    ///
    /// ```
    /// use opentelemetry::trace::Tracer as _;
    /// use otel_core::testing::TestTelemetry;
    ///
    /// let tt = TestTelemetry::new();
    /// tt.tracer().in_span("setup", |_| {});
    /// tt.reset();
    /// tt.tracer().in_span("under test", |_| {});
    /// assert_eq!(tt.spans().len(), 1);
    /// ```
    pub fn reset(&self) {
        self.exporter.reset();
    }
}

/// A cloneable in-memory writer for the fmt layer.
///
/// ```
/// use otel_core::logs::{LogFormat, fmt_layer};
/// use otel_core::testing::LogBuffer;
/// use tracing_subscriber::prelude::*;
///
/// let buffer = LogBuffer::default();
/// let subscriber =
///     tracing_subscriber::registry().with(fmt_layer(LogFormat::Text, buffer.clone()));
/// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
/// assert!(buffer.contents().trim_end().ends_with("hello"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// What was written, as text.
    ///
    /// ```
    /// use otel_core::testing::LogBuffer;
    /// use std::io::Write as _;
    ///
    /// let buffer = LogBuffer::default();
    /// let mut writer = buffer.clone(); // clones share the buffer
    /// writer.write_all(b"line 1\n")?;
    /// assert_eq!(buffer.contents(), "line 1\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
///
/// ```
/// use opentelemetry::trace::{Span as _, Tracer as _};
/// use opentelemetry::{KeyValue, Value};
/// use otel_core::testing::{TestTelemetry, attr};
///
/// let tt = TestTelemetry::new();
/// let mut span = tt.tracer().start("GET");
/// span.set_attribute(KeyValue::new("http.response.status_code", 200));
/// span.end();
/// let span = tt.span("GET");
/// assert_eq!(
///     attr(&span, "http.response.status_code"),
///     Some(&Value::I64(200))
/// );
/// assert_eq!(attr(&span, "error.type"), None);
/// ```
pub fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// Asserts that `span` has attribute `key` equal to `expected`.
///
/// ```
/// use opentelemetry::KeyValue;
/// use opentelemetry::trace::{Span as _, Tracer as _};
/// use otel_core::testing::{TestTelemetry, assert_attr};
///
/// let tt = TestTelemetry::new();
/// let mut span = tt.tracer().start("SELECT");
/// span.set_attribute(KeyValue::new("db.system.name", "postgresql"));
/// span.set_attribute(KeyValue::new("db.response.returned_rows", 3));
/// span.end();
/// let span = tt.span("SELECT");
/// assert_attr(&span, "db.system.name", "postgresql");
/// assert_attr(&span, "db.response.returned_rows", 3);
/// ```
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
///
/// ```
/// use opentelemetry::trace::Tracer as _;
/// use otel_core::testing::{TestTelemetry, assert_no_attr};
///
/// let tt = TestTelemetry::new();
/// tt.tracer().in_span("ok call", |_| {});
/// assert_no_attr(&tt.span("ok call"), "error.type");
/// ```
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
///
/// ```
/// use opentelemetry::trace::Tracer as _;
/// use otel_core::testing::{TestTelemetry, assert_child_of};
///
/// let tt = TestTelemetry::new();
/// let tracer = tt.tracer();
/// tracer.in_span("parent", |_| tracer.in_span("child", |_| {}));
/// assert_child_of(&tt.span("child"), &tt.span("parent"));
/// ```
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
///
/// ```
/// use opentelemetry::trace::Tracer as _;
/// use otel_core::testing::{TestTelemetry, assert_same_trace};
///
/// let tt = TestTelemetry::new();
/// let tracer = tt.tracer();
/// tracer.in_span("request", |_| {
///     tracer.in_span("query", |_| {});
///     tracer.in_span("publish", |_| {});
/// });
/// let (request, query, publish) = (tt.span("request"), tt.span("query"), tt.span("publish"));
/// assert_same_trace(&[&request, &query, &publish]);
/// ```
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
///
/// ```
/// use opentelemetry::trace::TraceContextExt as _;
/// use otel_core::testing::{TestTelemetry, span_id_of};
///
/// let tt = TestTelemetry::new();
/// let cx = tt.root_context("request");
/// let id = span_id_of(&cx);
/// cx.span().end();
/// assert_eq!(tt.span("request").span_context.span_id(), id);
/// ```
pub fn span_id_of(cx: &Context) -> opentelemetry::trace::SpanId {
    cx.span().span_context().span_id()
}

/// Fails unless a TCP connection to `addr` succeeds within two seconds, with a message naming
/// the server and how to start it. Tests that need a server call this first: an unreachable
/// server is a failure, never a silent skip.
///
/// ```
/// use otel_core::testing::require_server;
///
/// // In a test of the Redis adapter: `require_server("Redis", "127.0.0.1:6379");`
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// require_server("the test server", &listener.local_addr()?.to_string());
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// ```
/// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
/// use otel_core::testing::OtlpHttpReceiver;
/// use otel_core::{EnvSource, Telemetry};
/// use std::time::Duration;
///
/// let collector = OtlpHttpReceiver::start()?;
/// let mut guard = Telemetry::builder()
///     .with_env(EnvSource::from_pairs([(
///         "OTEL_EXPORTER_OTLP_ENDPOINT",
///         collector.endpoint(),
///     )]))
///     .with_service_name("checkout")
///     .with_metrics_export(false)
///     .build()?;
/// guard
///     .tracer_provider()
///     .expect("the SDK is enabled")
///     .tracer("example")
///     .in_span("GET /cart", |_| {});
/// let _ = guard.shutdown(Duration::from_secs(5));
///
/// let requests = collector.trace_requests();
/// let span = &requests[0].resource_spans[0].scope_spans[0].spans[0];
/// assert_eq!(span.name, "GET /cart");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct OtlpHttpReceiver {
    addr: std::net::SocketAddr,
    received: Received,
}

impl OtlpHttpReceiver {
    /// Starts listening on an ephemeral loopback port; runs until the process ends.
    ///
    /// ```
    /// use otel_core::testing::OtlpHttpReceiver;
    ///
    /// let collector = OtlpHttpReceiver::start()?;
    /// assert!(collector.requests().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
    ///
    /// ```
    /// use otel_core::testing::OtlpHttpReceiver;
    ///
    /// let collector = OtlpHttpReceiver::start()?;
    /// assert!(collector.endpoint().starts_with("http://127.0.0.1:"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far as (path, body).
    ///
    /// ```
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use std::io::{Read as _, Write as _};
    ///
    /// let collector = OtlpHttpReceiver::start()?;
    /// let address = collector
    ///     .endpoint()
    ///     .trim_start_matches("http://")
    ///     .to_owned();
    /// let mut stream = std::net::TcpStream::connect(address)?;
    /// stream.write_all(b"POST /v1/traces HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc")?;
    /// let mut reply = [0; 15];
    /// stream.read_exact(&mut reply)?; // answered once stored
    /// assert_eq!(&reply, b"HTTP/1.1 200 OK");
    /// assert_eq!(
    ///     collector.requests(),
    ///     [("/v1/traces".to_owned(), b"abc".to_vec())]
    /// );
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn requests(&self) -> Vec<(String, Vec<u8>)> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The decoded bodies of `POST /v1/traces`.
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    ///
    /// let collector = OtlpHttpReceiver::start()?;
    /// let mut guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs::<&str, &str>([]))
    ///     .with_otlp_endpoint(collector.endpoint())
    ///     .with_metrics_export(false)
    ///     .build()?;
    /// let tracer = guard
    ///     .tracer_provider()
    ///     .expect("the SDK is enabled")
    ///     .tracer("example");
    /// tracer.in_span("parent", |_| tracer.in_span("child", |_| {}));
    /// let _ = guard.shutdown(Duration::from_secs(5));
    /// let names: Vec<String> = collector
    ///     .trace_requests()
    ///     .into_iter()
    ///     .flat_map(|r| r.resource_spans)
    ///     .flat_map(|r| r.scope_spans)
    ///     .flat_map(|s| s.spans)
    ///     .map(|s| s.name)
    ///     .collect();
    /// assert_eq!(names, ["child", "parent"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn trace_requests(
        &self,
    ) -> Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest> {
        self.decode("/v1/traces")
    }

    /// The decoded bodies of `POST /v1/logs`.
    ///
    /// ```
    /// use otel_core::logs::LogFormat;
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let collector = OtlpHttpReceiver::start()?;
    /// let mut guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([
    ///         ("OTEL_TRACES_EXPORTER", "none"),
    ///         ("OTEL_LOGS_EXPORTER", "otlp"),
    ///     ]))
    ///     .with_otlp_endpoint(collector.endpoint())
    ///     .with_log_format(LogFormat::Off)
    ///     .build()?;
    /// let subscriber = tracing_subscriber::registry().with(guard.tracing_layer());
    /// tracing::subscriber::with_default(subscriber, || tracing::warn!("low stock"));
    /// let _ = guard.shutdown(Duration::from_secs(5));
    /// let severities: Vec<String> = collector
    ///     .log_requests()
    ///     .into_iter()
    ///     .flat_map(|r| r.resource_logs)
    ///     .flat_map(|r| r.scope_logs)
    ///     .flat_map(|s| s.log_records)
    ///     .map(|l| l.severity_text)
    ///     .collect();
    /// assert_eq!(severities, ["WARN"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn log_requests(
        &self,
    ) -> Vec<opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest> {
        self.decode("/v1/logs")
    }

    /// The decoded bodies of `POST /v1/metrics`.
    ///
    /// ```
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    ///
    /// let collector = OtlpHttpReceiver::start()?;
    /// let mut guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([
    ///         ("OTEL_TRACES_EXPORTER", "none"),
    ///         ("OTEL_METRICS_EXPORTER", "otlp"),
    ///     ]))
    ///     .with_otlp_endpoint(collector.endpoint())
    ///     .build()?;
    /// guard
    ///     .metrics()
    ///     .f64_histogram("job.duration")
    ///     .with_unit("s")
    ///     .build()
    ///     .record(0.25, &[]);
    /// let _ = guard.shutdown(Duration::from_secs(5)); // the last push
    /// let metric = collector
    ///     .metric_requests()
    ///     .into_iter()
    ///     .flat_map(|r| r.resource_metrics)
    ///     .flat_map(|r| r.scope_metrics)
    ///     .flat_map(|s| s.metrics)
    ///     .find(|m| m.name == "job.duration")
    ///     .expect("the histogram was pushed");
    /// assert_eq!(metric.unit, "s");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use otel_core::testing::OtlpHttpReceiver;
    /// use otel_core::{EnvSource, Telemetry};
    /// use std::time::Duration;
    ///
    /// let collector = OtlpHttpReceiver::start()?;
    /// let guard = Telemetry::builder()
    ///     .with_env(EnvSource::from_pairs([("OTEL_BSP_SCHEDULE_DELAY", "10")]))
    ///     .with_otlp_endpoint(collector.endpoint())
    ///     .with_metrics_export(false)
    ///     .build()?;
    /// guard
    ///     .tracer_provider()
    ///     .expect("the SDK is enabled")
    ///     .tracer("example")
    ///     .in_span("work", |_| {});
    /// // Exported in the background by the batch processor, without a flush.
    /// assert!(collector.wait_for("/v1/traces", Duration::from_secs(5)));
    /// assert!(!collector.wait_for("/v1/logs", Duration::from_millis(20)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
///
/// ```
/// use opentelemetry::trace::Tracer as _;
/// use otel_core::testing::{TestTelemetry, assert_exemplars_point_at_exported};
///
/// let tt = TestTelemetry::new();
/// let duration = tt
///     .metrics()
///     .f64_histogram("job.duration")
///     .with_unit("s")
///     .build();
/// // Recorded inside a sampled span: the exemplar points at it.
/// tt.tracer().in_span("job", |_| duration.record(0.25, &[]));
/// assert_eq!(
///     assert_exemplars_point_at_exported(tt.metrics(), "job.duration", &tt.spans()),
///     1
/// );
/// ```
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

/// Interleaved latency measurement for benchmarks that compare variants of one call (bare
/// against instrumented) whose latency is dominated by a server round trip.
///
/// Each round calls every variant once, in an order that rotates from round to round, and
/// times each call. A benchmark of one variant reports the **median** of that variant's calls in
/// the rounds it ran, times the number of rounds, which is what criterion's `iter_custom`
/// expects. So:
/// - every variant runs under the same conditions (load that comes and goes over seconds on the
///   machine, the server's state), and drift cancels out of the ratios instead of landing on one
///   side of them;
/// - a few multi-millisecond scheduler stalls in a sample do not dominate it, as they dominate a
///   sample's mean.
///
/// [`medians`](Self::medians) gives the per-call median of each variant over every round run.
///
/// ```
/// use std::time::Duration;
/// use otel_core::testing::Interleaved;
///
/// let mut interleaved = Interleaved::new(2);
/// // In a criterion bench: `b.iter_custom(|n| interleaved.run(n, 1, |variant| call(variant)))`.
/// let total = interleaved.run(20, 1, |variant| {
///     std::thread::sleep(Duration::from_micros(if variant == 0 { 100 } else { 300 }));
/// });
/// assert!(total >= Duration::from_micros(300) * 20);
/// let medians = interleaved.medians();
/// assert!(medians[0] >= Duration::from_micros(100) && medians[0] < medians[1]);
/// ```
#[derive(Debug, Clone)]
pub struct Interleaved {
    latencies: Vec<Vec<Duration>>,
}

impl Interleaved {
    /// A measurement of `variants` variants, numbered `0..variants`.
    ///
    /// ```
    /// let interleaved = otel_core::testing::Interleaved::new(3);
    /// assert_eq!(interleaved.medians().len(), 3);
    /// ```
    pub fn new(variants: usize) -> Self {
        Self {
            latencies: vec![Vec::new(); variants.max(1)],
        }
    }

    /// Runs `rounds` rounds, each calling `call(variant)` once for every variant, and returns
    /// the median latency of variant `measured` in these rounds times `rounds`.
    ///
    /// ```
    /// let mut interleaved = otel_core::testing::Interleaved::new(2);
    /// let mut calls = [0, 0];
    /// interleaved.run(5, 0, |variant| calls[variant] += 1);
    /// assert_eq!(calls, [5, 5]);
    /// ```
    pub fn run(&mut self, rounds: u64, measured: usize, mut call: impl FnMut(usize)) -> Duration {
        let variants = self.latencies.len();
        let mut own = Vec::with_capacity(usize::try_from(rounds).unwrap_or(0));
        for round in 0..rounds {
            for turn in 0..variants {
                #[allow(clippy::cast_possible_truncation)]
                let variant = (turn + round as usize) % variants;
                let start = std::time::Instant::now();
                call(variant);
                let latency = start.elapsed();
                self.latencies[variant].push(latency);
                if variant == measured {
                    own.push(latency);
                }
            }
        }
        median(&mut own) * u32::try_from(rounds).unwrap_or(u32::MAX)
    }

    /// The per-call median latency of each variant over every round run so far.
    ///
    /// ```
    /// let mut interleaved = otel_core::testing::Interleaved::new(2);
    /// interleaved.run(3, 0, |_| {});
    /// assert_eq!(interleaved.medians().len(), 2);
    /// ```
    pub fn medians(&self) -> Vec<Duration> {
        self.latencies
            .iter()
            .map(|latencies| median(&mut latencies.clone()))
            .collect()
    }

    /// How many calls of each variant were timed so far.
    ///
    /// ```
    /// let mut interleaved = otel_core::testing::Interleaved::new(2);
    /// interleaved.run(4, 1, |_| {});
    /// assert_eq!(interleaved.calls(), 4);
    /// ```
    pub fn calls(&self) -> usize {
        self.latencies.first().map_or(0, Vec::len)
    }
}

fn median(latencies: &mut [Duration]) -> Duration {
    latencies.sort_unstable();
    latencies
        .get(latencies.len() / 2)
        .copied()
        .unwrap_or_default()
}
