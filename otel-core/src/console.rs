//! A development exporter that prints each finished local trace as a waterfall.
//!
//! ```text
//! trace 4bf92f3577b34da6a3ce929d0e0e4736 · 5 spans · 12.41 ms
//! GET /accounts/{id}          server   [██████████████████████████████]  12.41 ms  http.response.status_code=200
//!   SELECT accounts           client   [ ████████                     ]   3.10 ms  db.system.name=sqlite
//!   ✗ analyze                 internal [           ██████████         ]   4.02 ms  ERROR boom
//! ```
//!
//! Turn it on with `OTEL_TRACES_EXPORTER=console` (alone or beside `otlp`) or
//! `with_traces_exporters([TracesExporter::Console])`. Spans are held until the root of their
//! trace ends (a span without parent), then the whole tree is printed. A part of a trace whose
//! root is remote (a server span continuing a caller's trace) is printed [`REMOTE_ROOT_GRACE`]
//! after it ended, at the next export or at shutdown, so that when the caller is in the same
//! process (a client calling its own server) the whole trace still prints as one tree.
//! Memory is bounded: at most [`MAX_PENDING_SPANS`] spans wait; the oldest trace is printed
//! incomplete to make room.
//!
//! ```
//! use otel_core::{Telemetry, TracesExporter};
//!
//! // Development: every finished trace printed as a waterfall, nothing sent anywhere.
//! let builder = Telemetry::builder().with_traces_exporters([TracesExporter::Console]);
//! # drop(builder);
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Spans held at most while waiting for their local root.
///
/// ```
/// use opentelemetry::Context;
/// use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use otel_core::console::{ConsoleExporter, MAX_PENDING_SPANS};
/// use std::sync::{Arc, Mutex};
///
/// let out = Arc::new(Mutex::new(String::new()));
/// let provider = SdkTracerProvider::builder()
///     .with_simple_exporter(ConsoleExporter::to_buffer(out.clone()))
///     .build();
/// let tracer = provider.tracer("example");
/// // The children of a root that has not ended wait for it…
/// let job = Context::new().with_span(tracer.start("long job"));
/// for _ in 0..MAX_PENDING_SPANS {
///     tracer.start_with_context("step", &job).end();
/// }
/// assert!(out.lock().unwrap().is_empty());
/// // …until one more would pass the bound: the trace is printed incomplete.
/// tracer.start_with_context("step", &job).end();
/// assert!(
///     out.lock()
///         .unwrap()
///         .contains(&format!(" · {} spans · ", MAX_PENDING_SPANS + 1))
/// );
/// ```
pub const MAX_PENDING_SPANS: usize = 10_000;

/// How long the part of a trace under a remote parent waits for the rest of its trace.
///
/// ```
/// use opentelemetry::Context;
/// use opentelemetry::trace::{
///     Span as _, SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
///     Tracer as _, TracerProvider as _,
/// };
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use otel_core::console::ConsoleExporter;
/// use std::sync::{Arc, Mutex};
///
/// let out = Arc::new(Mutex::new(String::new()));
/// let provider = SdkTracerProvider::builder()
///     .with_simple_exporter(ConsoleExporter::to_buffer(out.clone()))
///     .build();
/// // A server span continuing a caller's trace: its parent is remote.
/// let caller = Context::new().with_remote_span_context(SpanContext::new(
///     TraceId::from(0x0af7651916cd43dd8448eb211c80319c),
///     SpanId::from(0xb7ad6b7169203331),
///     TraceFlags::SAMPLED,
///     true,
///     TraceState::NONE,
/// ));
/// provider
///     .tracer("example")
///     .start_with_context("GET /accounts", &caller)
///     .end();
/// // Held for REMOTE_ROOT_GRACE, in case the caller's spans end in this process too…
/// assert!(out.lock().unwrap().is_empty());
/// // …then printed at the next export, or at shutdown.
/// provider.shutdown()?;
/// assert!(out.lock().unwrap().contains("GET /accounts"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const REMOTE_ROOT_GRACE: Duration = Duration::from_millis(500);

/// Attributes shown after the bar, when present, in this order.
const KEY_ATTRIBUTES: &[&str] = &[
    opentelemetry_semantic_conventions::attribute::HTTP_RESPONSE_STATUS_CODE,
    opentelemetry_semantic_conventions::attribute::DB_SYSTEM_NAME,
    opentelemetry_semantic_conventions::attribute::DB_QUERY_TEXT,
    opentelemetry_semantic_conventions::attribute::MESSAGING_DESTINATION_NAME,
    opentelemetry_semantic_conventions::attribute::RPC_METHOD,
    opentelemetry_semantic_conventions::attribute::SERVER_ADDRESS,
    opentelemetry_semantic_conventions::attribute::ERROR_TYPE,
];

const BAR_WIDTH: usize = 30;

#[derive(Debug, Clone)]
enum Sink {
    Stdout,
    Buffer(Arc<Mutex<String>>),
}

/// The waterfall exporter. See the module docs.
///
/// ```
/// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use otel_core::console::ConsoleExporter;
/// use std::sync::{Arc, Mutex};
///
/// let out = Arc::new(Mutex::new(String::new()));
/// let provider = SdkTracerProvider::builder()
///     .with_simple_exporter(ConsoleExporter::to_buffer(out.clone()))
///     .build();
/// let tracer = provider.tracer("example");
/// tracer.in_span("GET /accounts/{id}", |_| {
///     tracer.in_span("SELECT accounts", |_| {});
/// });
/// // Printed once the root ended: the root, then its child indented.
/// let text = out.lock().unwrap().clone();
/// let lines: Vec<&str> = text.lines().collect();
/// assert!(lines[0].starts_with("trace ") && lines[0].contains(" · 2 spans · "));
/// assert!(lines[1].starts_with("GET /accounts/{id}"));
/// assert!(lines[2].starts_with("  SELECT accounts"));
/// ```
#[derive(Debug)]
pub struct ConsoleExporter {
    sink: Sink,
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    by_trace: HashMap<TraceId, Vec<SpanData>>,
    order: VecDeque<TraceId>,
    /// Traces whose local root (under a remote parent) ended, with when to print them.
    due: HashMap<TraceId, std::time::Instant>,
    count: usize,
}

impl Pending {
    fn take(&mut self, trace: TraceId) -> Option<Vec<SpanData>> {
        let spans = self.by_trace.remove(&trace)?;
        self.count -= spans.len();
        self.order.retain(|t| *t != trace);
        self.due.remove(&trace);
        Some(spans)
    }
}

impl ConsoleExporter {
    /// Prints to standard output.
    ///
    /// ```
    /// use opentelemetry::trace::TracerProvider as _;
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// use otel_core::console::ConsoleExporter;
    ///
    /// let provider = SdkTracerProvider::builder()
    ///     .with_batch_exporter(ConsoleExporter::stdout())
    ///     .build();
    /// let _tracer = provider.tracer("dev");
    /// // … each trace started with the tracer prints as a waterfall when its root ends.
    /// provider.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stdout() -> Self {
        Self {
            sink: Sink::Stdout,
            pending: Mutex::default(),
        }
    }

    /// Appends to a shared string instead (for tests and for programs that print it later).
    ///
    /// ```
    /// use opentelemetry::trace::{Span as _, Status, Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// use otel_core::console::ConsoleExporter;
    /// use std::sync::{Arc, Mutex};
    ///
    /// let out = Arc::new(Mutex::new(String::new()));
    /// let provider = SdkTracerProvider::builder()
    ///     .with_simple_exporter(ConsoleExporter::to_buffer(out.clone()))
    ///     .build();
    /// let mut span = provider.tracer("example").start("analyze");
    /// span.set_status(Status::error("boom"));
    /// span.end();
    /// let text = out.lock().unwrap().clone();
    /// assert!(text.contains("✗ analyze"));
    /// assert!(text.trim_end().ends_with("ERROR boom"));
    /// ```
    pub fn to_buffer(buffer: Arc<Mutex<String>>) -> Self {
        Self {
            sink: Sink::Buffer(buffer),
            pending: Mutex::default(),
        }
    }

    fn emit(&self, text: &str) {
        match &self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
            Sink::Buffer(b) => {
                if let Ok(mut b) = b.lock() {
                    b.push_str(text);
                }
            }
        }
    }
}

impl SpanExporter for ConsoleExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut ready = Vec::new();
        if let Ok(mut p) = self.pending.lock() {
            let now = std::time::Instant::now();
            for span in batch {
                let trace = span.span_context.trace_id();
                let root = span.parent_span_id == SpanId::INVALID;
                let remote_root = span.parent_span_is_remote;
                if !p.by_trace.contains_key(&trace) {
                    p.order.push_back(trace);
                }
                p.by_trace.entry(trace).or_default().push(span);
                p.count += 1;
                if root {
                    ready.extend(p.take(trace));
                } else if remote_root {
                    p.due.insert(trace, now + REMOTE_ROOT_GRACE);
                }
                while p.count > MAX_PENDING_SPANS {
                    let Some(oldest) = p.order.front().copied() else {
                        break;
                    };
                    ready.extend(p.take(oldest));
                }
            }
            let expired: Vec<TraceId> = p
                .due
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(t, _)| *t)
                .collect();
            for t in expired {
                ready.extend(p.take(t));
            }
        }
        for spans in ready {
            self.emit(&render_waterfall(&spans));
        }
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        let rest: Vec<Vec<SpanData>> = match self.pending.lock() {
            Ok(mut p) => {
                let order: Vec<TraceId> = p.order.iter().copied().collect();
                order.into_iter().filter_map(|t| p.take(t)).collect()
            }
            Err(_) => Vec::new(),
        };
        for spans in rest {
            self.emit(&render_waterfall(&spans));
        }
        Ok(())
    }
}

/// Renders spans (usually of one trace) as an indented tree with a time bar per span, its
/// duration, status and key attributes; spans ending in error are marked `✗`.
///
/// ```
/// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
/// use otel_core::console::render_waterfall;
///
/// let exporter = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder()
///     .with_simple_exporter(exporter.clone())
///     .build();
/// let tracer = provider.tracer("example");
/// tracer.in_span("checkout", |_| {
///     tracer.in_span("charge card", |_| {});
///     tracer.in_span("send receipt", |_| {});
/// });
/// let text = render_waterfall(&exporter.get_finished_spans()?);
/// let lines: Vec<&str> = text.lines().collect();
/// assert!(lines[0].contains(" · 3 spans · "));
/// assert!(lines[1].starts_with("checkout "));
/// assert!(lines[2].starts_with("  charge card "));
/// assert!(lines[3].starts_with("  send receipt "));
/// assert_eq!(render_waterfall(&[]), "");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render_waterfall(spans: &[SpanData]) -> String {
    let mut out = String::new();
    if spans.is_empty() {
        return out;
    }
    let start = spans
        .iter()
        .map(|s| s.start_time)
        .min()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let end = spans.iter().map(|s| s.end_time).max().unwrap_or(start);
    let total = end.duration_since(start).unwrap_or_default();
    let ids: std::collections::HashSet<SpanId> =
        spans.iter().map(|s| s.span_context.span_id()).collect();
    let mut children: HashMap<SpanId, Vec<&SpanData>> = HashMap::new();
    let mut roots = Vec::new();
    for s in spans {
        if ids.contains(&s.parent_span_id) && s.parent_span_id != s.span_context.span_id() {
            children.entry(s.parent_span_id).or_default().push(s);
        } else {
            roots.push(s);
        }
    }
    for v in children.values_mut() {
        v.sort_by_key(|s| s.start_time);
    }
    roots.sort_by_key(|s| s.start_time);
    let traces: std::collections::BTreeSet<String> = spans
        .iter()
        .map(|s| s.span_context.trace_id().to_string())
        .collect();
    let _ = writeln!(
        out,
        "trace {} · {} spans · {}",
        traces.into_iter().collect::<Vec<_>>().join(","),
        spans.len(),
        fmt_duration(total)
    );
    let mut stack: Vec<(&SpanData, usize)> = roots.into_iter().rev().map(|s| (s, 0)).collect();
    let mut guard = 0;
    while let Some((span, depth)) = stack.pop() {
        guard += 1;
        if guard > spans.len() {
            break;
        }
        line(&mut out, span, depth, start, total);
        if let Some(kids) = children.get(&span.span_context.span_id()) {
            for k in kids.iter().rev() {
                stack.push((k, depth + 1));
            }
        }
    }
    out
}

fn line(out: &mut String, span: &SpanData, depth: usize, t0: SystemTime, total: Duration) {
    let err = matches!(span.status, Status::Error { .. });
    let name = format!(
        "{}{}{}",
        "  ".repeat(depth.min(20)),
        if err { "✗ " } else { "" },
        span.name
    );
    let offset = span.start_time.duration_since(t0).unwrap_or_default();
    let dur = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or_default();
    let scale = |d: Duration| -> usize {
        if total.is_zero() {
            0
        } else {
            ((d.as_secs_f64() / total.as_secs_f64()) * BAR_WIDTH as f64).round() as usize
        }
    };
    let lead = scale(offset).min(BAR_WIDTH);
    let width = scale(dur).clamp(1, BAR_WIDTH - lead.min(BAR_WIDTH - 1));
    let bar: String = (0..BAR_WIDTH)
        .map(|i| {
            if i >= lead && i < lead + width {
                '█'
            } else {
                ' '
            }
        })
        .collect();
    let kind = match span.span_kind {
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
    };
    let _ = write!(
        out,
        "{name:<36} {kind:<8} [{bar}] {:>10}",
        fmt_duration(dur)
    );
    for key in KEY_ATTRIBUTES {
        if let Some(kv) = span.attributes.iter().find(|kv| kv.key.as_str() == *key) {
            let mut v = kv.value.to_string();
            if v.len() > 60 {
                let cut = (0..=57).rev().find(|i| v.is_char_boundary(*i)).unwrap_or(0);
                v.truncate(cut);
                v.push('…');
            }
            let _ = write!(out, "  {key}={v}");
        }
    }
    if let Status::Error { description } = &span.status {
        out.push_str("  ERROR");
        if !description.is_empty() {
            let _ = write!(out, " {description}");
        }
    }
    out.push('\n');
}

fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}
