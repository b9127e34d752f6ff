//! `tracing` interop (DESIGN, fixed decision 1), each case on exported spans or printed lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::trace::{
    Span as _, SpanKind, TraceContextExt, Tracer as _, TracerProvider as _,
};
use otel_core::context::FutureExt as _;
use otel_core::logs::LogFormat;
use otel_core::testing::{OtlpHttpReceiver, TestTelemetry, assert_child_of};
use otel_core::{EnvSource, Telemetry};

#[tracing::instrument]
fn load_account(id: u32) -> u32 {
    tracing::info!(id, "loading");
    id * 2
}

#[test]
fn instrument_span_inside_operation_is_its_child() {
    let tt = TestTelemetry::new();
    let _g = tt.set_tracing_default();
    let inst = tt.instrumentation("test");
    let op = inst.start(
        &Context::current(),
        "GET /accounts/{id}",
        SpanKind::Server,
        vec![],
    );
    {
        let _attached = op.context().clone().attach();
        assert_eq!(load_account(21), 42);
    }
    op.end();
    let request = tt.span("GET /accounts/{id}");
    let inner = tt.span("load_account");
    assert_child_of(&inner, &request);
}

#[test]
fn operation_inside_user_tracing_span_is_its_child() {
    let tt = TestTelemetry::new();
    let _g = tt.set_tracing_default();
    let inst = tt.instrumentation("test");
    tracing::info_span!("checkout").in_scope(|| {
        inst.start(
            &Context::current(),
            "SELECT orders",
            SpanKind::Client,
            vec![],
        )
        .end();
    });
    assert_child_of(&tt.span("SELECT orders"), &tt.span("checkout"));
}

#[test]
fn text_log_lines_carry_trace_and_span_ids() {
    let tt = TestTelemetry::new();
    let _g = tt.set_tracing_default();
    let inst = tt.instrumentation("test");
    tracing::info!("outside any span");
    let op = inst.start(&Context::current(), "work", SpanKind::Internal, vec![]);
    let (trace_id, span_id) = {
        let _a = op.context().clone().attach();
        tracing::warn!(order = 7, "inside the operation");
        let sc = op.context().span().span_context().clone();
        (sc.trace_id().to_string(), sc.span_id().to_string())
    };
    op.end();
    let out = tt.log_output();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(!lines[0].contains("trace_id="), "{}", lines[0]);
    assert!(lines[1].contains("inside the operation") && lines[1].contains("order=7"));
    assert!(
        lines[1].ends_with(&format!("trace_id={trace_id} span_id={span_id}")),
        "{}",
        lines[1]
    );
}

#[test]
fn json_log_lines_carry_ids_of_instrument_spans() {
    let tt = TestTelemetry::new();
    let sub = tt.subscriber(LogFormat::Json);
    tracing::subscriber::with_default(sub, || {
        load_account(5);
    });
    let inner = tt.span("load_account");
    let out = tt.log_output();
    let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(line["message"], "loading");
    assert_eq!(line["fields"]["id"], 5);
    assert_eq!(line["span"], "load_account");
    assert_eq!(line["trace_id"], inner.span_context.trace_id().to_string());
    assert_eq!(line["span_id"], inner.span_context.span_id().to_string());
}

#[test]
fn context_follows_await_and_spawn() {
    let tt = TestTelemetry::new();
    let inst = tt.instrumentation("test");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let op = inst.start(&Context::current(), "request", SpanKind::Server, vec![]);
    let cx = op.context().clone();
    let inst2 = inst.clone();
    rt.block_on(
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            inst2
                .start(
                    &Context::current(),
                    "after-await",
                    SpanKind::Internal,
                    vec![],
                )
                .end();
            let inst3 = inst2.clone();
            otel_core::context::spawn(async move {
                tokio::task::yield_now().await;
                inst3
                    .start(&Context::current(), "spawned", SpanKind::Internal, vec![])
                    .end();
            })
            .await
            .unwrap();
            // A plain tokio::spawn starts with an empty context: a new trace.
            let inst4 = inst2.clone();
            tokio::spawn(async move {
                inst4
                    .start(&Context::current(), "detached", SpanKind::Internal, vec![])
                    .end();
            })
            .await
            .unwrap();
        }
        .with_context(cx),
    );
    op.end();
    let request = tt.span("request");
    assert_child_of(&tt.span("after-await"), &request);
    assert_child_of(&tt.span("spawned"), &request);
    assert_ne!(
        tt.span("detached").span_context.trace_id(),
        request.span_context.trace_id()
    );
}

/// The log records exported over OTLP/HTTP when `emit` runs inside a span, with that span's
/// context, by a pipeline configured with `pairs` (plus the receiver's endpoint and
/// `OTEL_LOGS_EXPORTER=otlp`).
fn exported_log_records(
    pairs: &[(&str, &str)],
    emit: impl FnOnce(),
) -> (
    Vec<opentelemetry_proto::tonic::logs::v1::LogRecord>,
    opentelemetry::trace::SpanContext,
) {
    let rx = OtlpHttpReceiver::start().unwrap();
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), rx.endpoint()),
        ("OTEL_LOGS_EXPORTER".to_owned(), "otlp".to_owned()),
    ];
    env.extend(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let mut guard = Telemetry::builder()
        .with_env(EnvSource::from_pairs(env))
        .with_log_format(LogFormat::Off)
        .build()
        .unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("t");
    let subscriber = {
        use tracing_subscriber::layer::SubscriberExt;
        tracing_subscriber::registry().with(guard.tracing_layer())
    };
    let span = tracer.start("handler");
    let sc = span.span_context().clone();
    let cx = Context::current_with_span(span);
    tracing::subscriber::with_default(subscriber, || {
        let _a = cx.clone().attach();
        emit();
    });
    cx.span().end();
    let _ = guard.shutdown(Duration::from_secs(5));
    let records = rx
        .log_requests()
        .into_iter()
        .flat_map(|r| r.resource_logs)
        .flat_map(|r| r.scope_logs)
        .flat_map(|s| s.log_records)
        .collect();
    (records, sc)
}

#[test]
fn tracing_events_exported_as_otlp_logs_with_trace_context() {
    let (records, sc) = exported_log_records(&[("OTEL_SERVICE_NAME", "logger")], || {
        tracing::error!(account = "acc-001", "payment declined");
    });
    let rec = records
        .iter()
        .find(|r| format!("{:?}", r.body).contains("payment declined"))
        .unwrap_or_else(|| panic!("no exported log record: {records:?}"));
    assert_eq!(rec.trace_id, sc.trace_id().to_bytes().to_vec());
    assert_eq!(rec.span_id, sc.span_id().to_bytes().to_vec());
    assert_eq!(rec.severity_text, "ERROR");
    assert!(rec.attributes.iter().any(|kv| kv.key == "account"));
}

/// Exported log records are redacted and cut like spans: secret-named fields, personal data
/// in the message and in fields, and long field values, with the trace context kept.
#[test]
fn exported_log_records_are_redacted_and_cut() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    let long = "y".repeat(1 << 16);
    let (records, sc) = exported_log_records(
        &[
            ("OTEL_CORE_REDACTION", "true"),
            // The log-record variable wins over the general one (and spans keep theirs).
            ("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "10"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "3"),
        ],
        || {
            tracing::warn!(
                password = "hunter2",
                card = 4_111_111_111_111_111_u64,
                user_agent = long.as_str(),
                note = "ok",
                "reset link sent to ann@example.com"
            );
        },
    );
    assert_eq!(records.len(), 1, "{records:?}");
    let rec = &records[0];
    let string = |v: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>| match v
        .and_then(|v| v.value.as_ref())
    {
        Some(Value::StringValue(s)) => s.clone(),
        other => panic!("not a string: {other:?}"),
    };
    assert_eq!(string(rec.body.as_ref()), "reset link sent to [REDACTED]");
    let attr = |key: &str| {
        string(
            rec.attributes
                .iter()
                .find(|kv| kv.key == key)
                .unwrap_or_else(|| panic!("no {key} in {:?}", rec.attributes))
                .value
                .as_ref(),
        )
    };
    // Masked first, then cut: `[REDACTED]` is exactly ten characters.
    assert_eq!(attr("password"), "[REDACTED]");
    assert_eq!(attr("card"), "[REDACTED]");
    assert_eq!(attr("user_agent"), "y".repeat(10));
    assert_eq!(attr("note"), "ok");
    assert_eq!(rec.trace_id, sc.trace_id().to_bytes().to_vec());
    assert_eq!(rec.span_id, sc.span_id().to_bytes().to_vec());
    assert_eq!(rec.severity_text, "WARN");
}
