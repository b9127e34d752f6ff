//! Tail mode: errors and slow calls are exported whole, the rest at the head rate.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, TraceId, Tracer as _, TracerProvider as _,
};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor, SpanData,
};
use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor, TailStats};

fn pipeline(config: TailConfig) -> (SdkTracerProvider, InMemorySpanExporter, TailStats) {
    pipeline_with_ratio(config, 0.01)
}

fn pipeline_with_ratio(
    config: TailConfig,
    ratio: f64,
) -> (SdkTracerProvider, InMemorySpanExporter, TailStats) {
    let exporter = InMemorySpanExporter::default();
    let tail = TailSpanProcessor::new(SimpleSpanProcessor::new(exporter.clone()), config);
    let stats = tail.stats();
    let provider = SdkTracerProvider::builder()
        .with_sampler(TailSampler::new(Sampler::ParentBased(Box::new(
            Sampler::TraceIdRatioBased(ratio),
        ))))
        .with_span_processor(tail)
        .build();
    (provider, exporter, stats)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Plain,
    Error,
    Slow,
}

/// One request: a server span with a db child and a cache child.
fn request(provider: &SdkTracerProvider, kind: Kind) -> TraceId {
    let tracer = provider.tracer("svc");
    let root = tracer
        .span_builder("GET /orders")
        .with_kind(SpanKind::Server)
        .start(&tracer);
    let trace_id = root.span_context().trace_id();
    let cx = opentelemetry::Context::current_with_span(root);
    let now = SystemTime::now();
    let mut db = tracer
        .span_builder("SELECT orders")
        .with_start_time(if kind == Kind::Slow {
            now - Duration::from_millis(800)
        } else {
            now
        })
        .start_with_context(&tracer, &cx);
    if kind == Kind::Error {
        db.set_status(Status::error("deadlock"));
    }
    db.end_with_timestamp(now);
    tracer.start_with_context("cache get", &cx).end();
    cx.span().end();
    trace_id
}

fn by_trace(spans: &[SpanData]) -> HashMap<TraceId, Vec<&SpanData>> {
    let mut m: HashMap<TraceId, Vec<&SpanData>> = HashMap::new();
    for s in spans {
        m.entry(s.span_context.trace_id()).or_default().push(s);
    }
    m
}

#[test]
fn one_percent_head_sampling_keeps_every_error_and_slow_local_trace() {
    let (provider, exporter, stats) =
        pipeline(TailConfig::new().with_slow_threshold(Duration::from_millis(500)));
    let mut notable = HashSet::new();
    let total = 10_000;
    for i in 0..total {
        let kind = match i % 1000 {
            17 => Kind::Error,
            503 => Kind::Slow,
            _ => Kind::Plain,
        };
        let id = request(&provider, kind);
        if kind != Kind::Plain {
            notable.insert(id);
        }
    }
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let traces = by_trace(&spans);
    assert_eq!(notable.len(), 20);
    for id in &notable {
        let t = traces.get(id).expect("every error/slow trace is exported");
        assert_eq!(t.len(), 3, "whole local trace");
        assert!(t.iter().all(|s| s.span_context.is_sampled()));
    }
    let rest = traces.keys().filter(|id| !notable.contains(id)).count();
    // ~1 % of 9 980 plain requests (≈100; binomial sd ≈ 10).
    assert!((60..=140).contains(&rest), "{rest} plain traces exported");
    assert!(traces.values().all(|t| t.len() == 3));
    assert_eq!(stats.spans_buffered(), 0);
    assert_eq!(stats.spans_evicted(), 0);
    // Notable traces the head sampler had not chosen were kept by the tail decision; every
    // other trace was either head-sampled (exported) or discarded.
    assert!(
        stats.traces_kept() <= 20 && stats.traces_kept() >= 15,
        "{stats:?}"
    );
    assert_eq!(stats.traces_discarded() + traces.len() as u64, total);
}

#[test]
fn p99_source_marks_slow_calls() {
    let p99 = |s: &SpanData| (s.name == "SELECT orders").then_some(Duration::from_millis(300));
    let (provider, exporter, _) = pipeline(TailConfig::new().with_p99(p99));
    let mut slow = Vec::new();
    for i in 0..200 {
        let id = request(
            &provider,
            if i % 50 == 0 { Kind::Slow } else { Kind::Plain },
        );
        if i % 50 == 0 {
            slow.push(id);
        }
    }
    let spans = exporter.get_finished_spans().unwrap();
    let traces = by_trace(&spans);
    for id in slow {
        assert_eq!(traces[&id].len(), 3);
    }
}

#[test]
fn buffer_is_capped_and_old_open_traces_are_evicted() {
    let (provider, exporter, stats) = pipeline_with_ratio(
        TailConfig::new()
            .with_max_spans(100)
            .with_max_age(Duration::from_millis(50)),
        0.0,
    );
    let tracer = provider.tracer("svc");
    // 50 open traces (roots never end) with 4 children each: 200 spans, cap 100.
    let mut roots = Vec::new();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let writer = {
        let log = log.clone();
        move || LogWriter(log.clone())
    };
    let sub = tracing_subscriber::fmt().with_writer(writer).finish();
    tracing::subscriber::with_default(sub, || {
        for _ in 0..50 {
            let cx = opentelemetry::Context::current_with_span(tracer.start("open"));
            for _ in 0..4 {
                tracer.start_with_context("child", &cx).end();
            }
            roots.push(cx);
        }
    });
    let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    assert_eq!(
        log.matches("tail sampling dropped spans").count(),
        1,
        "one rate-limited warning: {log}"
    );
    assert!(stats.spans_buffered() <= 100);
    assert_eq!(
        stats.spans_evicted() + stats.spans_buffered() as u64,
        200,
        "{stats:?}"
    );
    std::thread::sleep(Duration::from_millis(120));
    // Later traffic sweeps the aged traces out of every shard it touches.
    for _ in 0..400 {
        request(&provider, Kind::Plain);
    }
    assert!(stats.spans_buffered() < 100, "{stats:?}");
    assert_eq!(
        exporter
            .get_finished_spans()
            .unwrap()
            .iter()
            .filter(|s| s.name == "child")
            .count(),
        0
    );
    drop(roots);
}

#[test]
fn pipeline_turns_tail_mode_and_redaction_on_from_env() {
    let exporter = InMemorySpanExporter::default();
    let env = otel_core::EnvSource::from_pairs([
        ("OTEL_CORE_TAIL_SAMPLING", "true"),
        ("OTEL_CORE_TAIL_SLOW_MS", "500"),
        ("OTEL_CORE_REDACTION", "true"),
        ("OTEL_TRACES_SAMPLER", "always_off"),
        ("OTEL_TRACES_EXPORTER", "none"),
    ]);
    let mut guard = otel_core::Telemetry::builder()
        .with_env(env)
        .without_resource_detectors()
        .with_tracing_subscriber(false)
        .with_span_exporter(exporter.clone())
        .build()
        .unwrap();
    let provider = guard.tracer_provider().unwrap().clone();
    let tracer = provider.tracer("svc");
    tracer.in_span("ok", |_| {});
    tracer.in_span("failing", |cx| {
        cx.span().set_attribute(opentelemetry::KeyValue::new(
            "user.email",
            "ann@example.com",
        ));
        cx.span().set_status(Status::error("boom"));
    });
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1, "only the failing trace");
    assert_eq!(spans[0].name, "failing");
    assert!(spans[0].span_context.is_sampled());
    assert_eq!(spans[0].attributes[0].value.to_string(), "[REDACTED]");
    let stats = guard.tail_stats().unwrap().clone();
    assert_eq!((stats.traces_kept(), stats.traces_discarded()), (1, 1));
    let _ = guard.shutdown(Duration::from_secs(1));
}

#[test]
fn p99_from_the_exemplar_histogram_marks_slow_calls() {
    use opentelemetry::KeyValue;
    use otel_core::metrics::{Metrics, MetricsConfig};
    use otel_core::sampling::tail::HistogramP99;
    use otel_core::semconv::attribute::DB_OPERATION_NAME;

    let metrics = Metrics::new(MetricsConfig::default());
    let hist = metrics
        .f64_histogram("db.client.operation.duration")
        .with_unit("s")
        .build();
    let series = |name: &str| vec![KeyValue::new(DB_OPERATION_NAME, name.to_owned())];
    // 1 000 earlier calls of 5–15 ms: p99 ≈ 15 ms.
    for i in 0..1000 {
        hist.record(
            0.005 + f64::from(i % 100) * 0.0001,
            &series("SELECT orders"),
        );
    }
    let p99 = HistogramP99::new(hist, move |s: &SpanData| Some(series(&s.name)));
    let (provider, exporter, _) = pipeline_with_ratio(TailConfig::new().with_p99(p99), 0.0);
    let slow = request(&provider, Kind::Slow); // db took 800 ms
    let plain = request(&provider, Kind::Plain); // db took ~0 ms
    let spans = exporter.get_finished_spans().unwrap();
    let traces = by_trace(&spans);
    assert_eq!(traces[&slow].len(), 3);
    assert!(!traces.contains_key(&plain));
}

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A local root SERVER span `name`, in a context of its own.
fn server_root(
    tracer: &opentelemetry_sdk::trace::SdkTracer,
    name: &'static str,
) -> opentelemetry::Context {
    opentelemetry::Context::new().with_span(
        tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .start(tracer),
    )
}

/// A span `name` under `parent`, in a context of its own.
fn child_of(
    tracer: &opentelemetry_sdk::trace::SdkTracer,
    name: &'static str,
    parent: &opentelemetry::Context,
) -> opentelemetry::Context {
    opentelemetry::Context::new().with_span(tracer.start_with_context(name, parent))
}

/// The names of the spans `exporter` received, sorted.
fn exported_names(exporter: &InMemorySpanExporter) -> Vec<String> {
    let mut names: Vec<String> = exporter
        .get_finished_spans()
        .unwrap()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    names.sort();
    names
}

/// Two local roots of one trace in flight at once (a caller's parallel requests to this
/// service): each is decided with its own spans, whichever ends first.
#[test]
fn local_roots_of_one_trace_are_decided_apart() {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};

    let (provider, exporter, stats) = pipeline_with_ratio(TailConfig::new(), 0.0);
    let tracer = provider.tracer("svc");
    // The caller's (remote, unsampled) span, parent of both requests.
    let caller = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(0x4bf9_u128),
        SpanId::from(0x00f0_u64),
        TraceFlags::default(),
        true,
        TraceState::NONE,
    ));
    let request = |name: &'static str| {
        let root = tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .start_with_context(&tracer, &caller);
        opentelemetry::Context::new().with_span(root)
    };
    let a = request("GET /a");
    let b = request("GET /b");
    tracer.start_with_context("SELECT a", &a).end();
    let mut failing = tracer.start_with_context("SELECT b", &b);
    failing.set_status(Status::error("deadlock"));
    failing.end();
    // A ends first, with nothing notable: it must not take B's spans with it.
    a.span().end();
    b.span().end();

    let names = exported_names(&exporter);
    assert_eq!(names, ["GET /b", "SELECT b"]);
    assert_eq!(stats.traces_kept(), 1);
    assert_eq!(stats.traces_discarded(), 1);
    assert_eq!(stats.spans_buffered(), 0);
}

/// A span that starts after its parent ended (work the parent spawned and did not wait for)
/// still belongs to the parent's local root.
#[test]
fn a_child_started_after_its_parent_ended_joins_the_local_trace() {
    let (provider, exporter, stats) = pipeline_with_ratio(TailConfig::new(), 0.0);
    let tracer = provider.tracer("svc");
    let root = server_root(&tracer, "GET /jobs");
    let child = child_of(&tracer, "enqueue", &root);
    child.span().end();
    let mut late = tracer.start_with_context("run job", &child);
    late.set_status(Status::error("failed"));
    late.end();
    root.span().end();

    let names = exported_names(&exporter);
    assert_eq!(names, ["GET /jobs", "enqueue", "run job"]);
    assert_eq!(stats.spans_buffered(), 0);
}

/// Work a request spawned and did not wait for, starting after the request's span ended,
/// is a local trace of its own: decided when it ends, not left waiting for a root that has
/// ended.
#[test]
fn work_started_after_its_local_root_ended_is_decided_on_its_own() {
    let (provider, exporter, stats) = pipeline_with_ratio(TailConfig::new(), 0.0);
    let tracer = provider.tracer("svc");
    let root = server_root(&tracer, "POST /orders");
    root.span().end();
    let spawned = child_of(&tracer, "send mail", &root);
    let mut smtp = tracer.start_with_context("SMTP", &spawned);
    smtp.set_status(Status::error("refused"));
    smtp.end();
    spawned.span().end();

    let names = exported_names(&exporter);
    assert_eq!(names, ["SMTP", "send mail"]);
    assert_eq!(stats.spans_buffered(), 0);
}

/// Work a request spawned before its span ended, and that outlives it, is decided as a
/// local trace of its own when it ends, with the spans it opened after the request ended.
#[test]
fn work_spawned_before_its_local_root_ended_and_outliving_it_is_decided_on_its_own() {
    let (provider, exporter, stats) = pipeline_with_ratio(TailConfig::new(), 0.0);
    let tracer = provider.tracer("svc");
    let root = server_root(&tracer, "POST /orders");
    let spawned = child_of(&tracer, "send mail", &root);
    root.span().end();
    let mut smtp = tracer.start_with_context("SMTP", &spawned);
    smtp.set_status(Status::error("refused"));
    smtp.end();
    spawned.span().end();

    assert_eq!(exported_names(&exporter), ["SMTP", "send mail"]);
    assert_eq!(stats.spans_buffered(), 0);
    assert_eq!(stats.traces_discarded(), 1); // the request alone
    assert_eq!(stats.spans_evicted(), 0);
}

/// A local trace larger than the per-shard table of roots still finds the root of its deep
/// spans: a grandchild's error keeps the whole local trace.
#[test]
fn a_deep_span_beyond_the_roots_table_still_joins_its_local_trace() {
    let (provider, exporter, stats) =
        pipeline_with_ratio(TailConfig::new().with_max_spans(1024), 0.0);
    let tracer = provider.tracer("svc");
    let root = server_root(&tracer, "POST /import");
    let child = child_of(&tracer, "parse", &root);
    // More spans than the table follows per shard (a quarter of the buffer): the last ones
    // are not tracked, and neither is the grandchild.
    for i in 0..300 {
        tracer.start_with_context(format!("row {i}"), &root).end();
    }
    let mut grandchild = tracer.start_with_context("decode", &child);
    grandchild.set_status(Status::error("bad row"));
    grandchild.end();
    child.span().end();
    root.span().end();

    assert_eq!(exporter.get_finished_spans().unwrap().len(), 303);
    assert_eq!(stats.spans_buffered(), 0);
    assert_eq!(stats.traces_kept(), 1);
}

/// With the buffer full, an error still marks its local trace: the root is exported.
#[test]
fn an_error_marks_its_trace_even_with_the_buffer_full() {
    let (provider, exporter, stats) = pipeline_with_ratio(TailConfig::new().with_max_spans(1), 0.0);
    let tracer = provider.tracer("svc");
    let a = opentelemetry::Context::new().with_span(tracer.start("GET /a"));
    tracer.start_with_context("a1", &a).end(); // fills the buffer
    let b = opentelemetry::Context::new().with_span(tracer.start("GET /b"));
    let mut failing = tracer.start_with_context("b1", &b);
    failing.set_status(Status::error("deadlock"));
    failing.end(); // evicted, but marks B
    b.span().end();
    a.span().end();

    assert_eq!(exported_names(&exporter), ["GET /b"]);
    assert_eq!(stats.traces_kept(), 1);
    assert_eq!(stats.traces_discarded(), 1);
    assert_eq!(stats.spans_evicted(), 1);
    assert_eq!(stats.spans_buffered(), 0);
}

/// A marked local trace evicted by age stays marked: what ends after the eviction, its root
/// included, is exported too, and it counts as one kept trace.
#[test]
fn a_marked_trace_evicted_by_age_stays_marked() {
    let (provider, exporter, stats) = pipeline_with_ratio(
        TailConfig::new().with_max_age(Duration::from_millis(50)),
        0.0,
    );
    let tracer = provider.tracer("svc");
    let root = opentelemetry::Context::new().with_span(tracer.start("GET /report"));
    let mut failing = tracer.start_with_context("query", &root);
    failing.set_status(Status::error("timeout"));
    failing.end();
    std::thread::sleep(Duration::from_millis(120));
    tracer.start_with_context("render", &root).end(); // sweeps: "query" exported
    root.span().end();

    assert_eq!(
        exported_names(&exporter),
        ["GET /report", "query", "render"]
    );
    assert_eq!(stats.traces_kept(), 1);
    assert_eq!(stats.traces_discarded(), 0);
    assert_eq!(stats.spans_buffered(), 0);
}

/// A series whose values overflow a `Duration` has no p99 (instead of a panic inside
/// `Span::end`).
#[test]
fn a_p99_too_large_for_a_duration_is_unknown() {
    use opentelemetry::KeyValue;
    use otel_core::metrics::{Metrics, MetricsConfig};
    use otel_core::sampling::tail::{HistogramP99, P99Source as _};

    let metrics = Metrics::new(MetricsConfig::default());
    let hist = metrics.f64_histogram("app.duration").with_unit("s").build();
    for _ in 0..100 {
        hist.record(1e20, &[KeyValue::new("call", "huge")]);
    }
    let p99 = HistogramP99::new(hist, |_: &SpanData| {
        Some(vec![KeyValue::new("call", "huge")])
    });
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    provider.tracer("t").start("huge").end();
    let span = exporter.get_finished_spans().unwrap().remove(0);
    assert_eq!(p99.p99(&span), None);
}

/// A marked local trace evicted by age stays marked for as long as its root runs: a span
/// that starts after the eviction, and the root itself, are exported too, even after a
/// quiet spell longer than the maximum age.
#[test]
fn a_marked_trace_stays_marked_across_sweeps_while_its_root_runs() {
    let (provider, exporter, stats) = pipeline_with_ratio(
        TailConfig::new().with_max_age(Duration::from_millis(50)),
        0.0,
    );
    let tracer = provider.tracer("svc");
    let root = opentelemetry::Context::new().with_span(tracer.start("GET /report"));
    let mut failing = tracer.start_with_context("query", &root);
    failing.set_status(Status::error("timeout"));
    failing.end();
    std::thread::sleep(Duration::from_millis(120));
    provider.force_flush().unwrap(); // sweeps: "query" exported
    tracer.start_with_context("render", &root).end();
    std::thread::sleep(Duration::from_millis(120));
    provider.force_flush().unwrap(); // sweeps: "render" exported
    std::thread::sleep(Duration::from_millis(120));
    provider.force_flush().unwrap(); // nothing new: the mark stays
    root.span().end();

    assert_eq!(
        exported_names(&exporter),
        ["GET /report", "query", "render"]
    );
    assert_eq!(stats.traces_kept(), 1);
    assert_eq!(stats.traces_discarded(), 0);
    assert_eq!(stats.spans_buffered(), 0);
}

/// The mark an error leaves with the buffer full outlives a sweep while its root runs.
#[test]
fn a_mark_left_with_the_buffer_full_outlives_a_sweep() {
    let (provider, exporter, _stats) = pipeline_with_ratio(
        TailConfig::new()
            .with_max_spans(1)
            .with_max_age(Duration::from_millis(50)),
        0.0,
    );
    let tracer = provider.tracer("svc");
    let a = opentelemetry::Context::new().with_span(tracer.start("GET /a"));
    tracer.start_with_context("a1", &a).end(); // fills the buffer
    let b = opentelemetry::Context::new().with_span(tracer.start("GET /b"));
    let mut failing = tracer.start_with_context("b1", &b);
    failing.set_status(Status::error("deadlock"));
    failing.end();
    std::thread::sleep(Duration::from_millis(120));
    provider.force_flush().unwrap();
    b.span().end();
    a.span().end();

    assert_eq!(exported_names(&exporter), ["GET /b"]);
}

/// One trace holding many spans in a shard does not split the small local traces of other
/// traces there: a failing request's root is still exported with its failing child.
#[test]
fn a_busy_trace_does_not_split_other_local_traces() {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};

    let (provider, exporter, stats) =
        pipeline_with_ratio(TailConfig::new().with_max_spans(1024), 0.0);
    let tracer = provider.tracer("svc");
    let remote = |trace: u128| {
        opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(trace),
            SpanId::from(0x00f0_u64),
            TraceFlags::default(),
            true,
            TraceState::NONE,
        ))
    };
    // A long-lived local root with many finished children (a worker loop).
    let busy = remote(0x4bf9);
    let worker = opentelemetry::Context::new().with_span(
        tracer
            .span_builder("worker loop")
            .with_kind(SpanKind::Server)
            .start_with_context(&tracer, &busy),
    );
    for i in 0..400 {
        tracer.start_with_context(format!("job {i}"), &worker).end();
    }
    // Another trace in the same shard (trace ids 16 apart).
    let other = remote(0x4bf9 + 16);
    let request = opentelemetry::Context::new().with_span(
        tracer
            .span_builder("GET /x")
            .with_kind(SpanKind::Server)
            .start_with_context(&tracer, &other),
    );
    let mut query = tracer.start_with_context("SELECT", &request);
    query.set_status(Status::error("deadlock"));
    query.end();
    request.span().end();

    assert_eq!(exported_names(&exporter), ["GET /x", "SELECT"]);
    assert_eq!(stats.traces_kept(), 1);
    drop(worker);
}

/// Work that outlives its root takes along the spans under it that ended before the root
/// did: they are decided with it.
#[test]
fn outliving_work_takes_its_finished_children_along() {
    let (provider, exporter, _stats) = pipeline_with_ratio(TailConfig::new(), 0.0);
    let tracer = provider.tracer("svc");
    let root = opentelemetry::Context::new().with_span(tracer.start("POST /orders"));
    let spawned = child_of(&tracer, "send mail", &root);
    tracer.start_with_context("render mail", &spawned).end();
    root.span().end(); // nothing notable yet: the request alone is discarded
    let span = spawned.span();
    span.set_status(Status::error("refused"));
    span.end();

    assert_eq!(exported_names(&exporter), ["render mail", "send mail"]);
}

/// An error under outliving work, before its root ended, keeps the root, the work and the
/// error: one local trace decided in two parts.
#[test]
fn an_error_under_outliving_work_keeps_the_work_too() {
    let (provider, exporter, stats) = pipeline_with_ratio(TailConfig::new(), 0.0);
    let tracer = provider.tracer("svc");
    let root = opentelemetry::Context::new().with_span(tracer.start("POST /orders"));
    let spawned = child_of(&tracer, "send mail", &root);
    let mut smtp = tracer.start_with_context("SMTP", &spawned);
    smtp.set_status(Status::error("refused"));
    smtp.end();
    root.span().end();
    spawned.span().end();

    assert_eq!(
        exported_names(&exporter),
        ["POST /orders", "SMTP", "send mail"]
    );
    assert_eq!(stats.traces_kept(), 2); // decided in two parts
    assert_eq!(stats.spans_buffered(), 0);
}

/// Running work under a span that ended, itself under running work, stays with the
/// topmost running span when the root ends.
#[test]
fn running_work_below_a_finished_span_stays_with_the_topmost_running_one() {
    let (provider, exporter, _stats) = pipeline_with_ratio(TailConfig::new(), 0.0);
    let tracer = provider.tracer("svc");
    let root = opentelemetry::Context::new().with_span(tracer.start("POST /import"));
    let a = child_of(&tracer, "import", &root);
    let b = child_of(&tracer, "batch", &a);
    let c = child_of(&tracer, "row", &b);
    b.span().end();
    root.span().end();
    let row = c.span();
    row.set_status(Status::error("bad row"));
    row.end();
    a.span().end();

    assert_eq!(exported_names(&exporter), ["batch", "import", "row"]);
}

/// Deep running chains that end from the outside in settle in reasonable time.
#[test]
fn a_deep_running_chain_ending_outside_in_settles() {
    let (provider, exporter, stats) = pipeline_with_ratio(TailConfig::new(), 0.0);
    let tracer = provider.tracer("svc");
    let root = opentelemetry::Context::new().with_span(tracer.start("root"));
    let mut chain = vec![root];
    for i in 0..500 {
        let parent = chain.last().unwrap();
        let span = tracer.start_with_context(format!("level {i}"), parent);
        chain.push(opentelemetry::Context::new().with_span(span));
    }
    for cx in &chain {
        cx.span().end();
    }
    drop(chain);
    assert!(exporter.get_finished_spans().unwrap().is_empty());
    assert_eq!(stats.traces_discarded(), 501);
    assert_eq!(stats.spans_buffered(), 0);
}
