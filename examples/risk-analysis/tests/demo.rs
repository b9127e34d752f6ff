//! Runs the demo against the local servers (`scripts/services.sh`) and checks, from the spans
//! the three processes exported over OTLP/HTTP, that one trace covers every hop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry::Value;
use opentelemetry::trace::{SpanKind, TraceId};
use otel_core::semconv::attribute as attr;
use otel_core::testing::require_server;
use risk_analysis::demo::{self, DemoOptions, DemoOutcome};
use risk_analysis::settings::Settings;
use risk_analysis::spans::ReceivedSpan;

mod common;
use common::host_port;

fn require_servers() {
    let s = Settings::from_env().expect("settings");
    require_server("PostgreSQL", &host_port(&s.database_url, 5432));
    require_server("Redis", &host_port(&s.redis_url, 6379));
    require_server("RabbitMQ", &host_port(&s.amqp_url, 5672));
}

fn in_trace(outcome: &DemoOutcome, trace: TraceId) -> Vec<&ReceivedSpan> {
    outcome
        .spans
        .iter()
        .filter(|s| s.span.span_context.trace_id() == trace)
        .collect()
}

fn find<'a>(
    spans: &[&'a ReceivedSpan],
    what: &str,
    pred: impl Fn(&ReceivedSpan) -> bool,
) -> &'a ReceivedSpan {
    spans.iter().copied().find(|s| pred(s)).unwrap_or_else(|| {
        let names: Vec<String> = spans
            .iter()
            .map(|s| format!("[{}] {} {:?}", s.service, s.span.name, s.span.span_kind))
            .collect();
        panic!("no {what} span in the trace; spans: {names:#?}")
    })
}

fn is(s: &ReceivedSpan, key: &str, value: &str) -> bool {
    s.attr(key).is_some_and(|v| v.as_str() == value)
}

fn status_code(s: &ReceivedSpan) -> Option<i64> {
    match s.attr(attr::HTTP_RESPONSE_STATUS_CODE) {
        Some(Value::I64(code)) => Some(*code),
        _ => None,
    }
}

fn parent_of(child: &ReceivedSpan, parent: &ReceivedSpan) -> bool {
    child.span.parent_span_id == parent.span.span_context.span_id()
}

/// Whether `ancestor` is on the parent chain of `span` within `trace`.
fn descends_from(trace: &[&ReceivedSpan], span: &ReceivedSpan, ancestor: &ReceivedSpan) -> bool {
    let mut current = span;
    for _ in 0..trace.len() {
        if parent_of(current, ancestor) {
            return true;
        }
        match trace
            .iter()
            .find(|s| s.span.span_context.span_id() == current.span.parent_span_id)
        {
            Some(parent) => current = parent,
            None => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_covers_gateway_sql_redis_analyzer_rabbitmq_and_worker() {
    require_servers();
    let outcome = demo::run(DemoOptions {
        exe: env!("CARGO_BIN_EXE_risk-analysis").into(),
        analyzer: demo::Analyzer::Rust,
        generated: 50,
        print: false,
    })
    .await
    .expect("the demo runs");

    let statuses: Vec<(&str, u16)> = outcome
        .exchanges
        .iter()
        .map(|e| (e.path.as_str(), e.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("/analyze/acc-001", 200),
            ("/analyze/acc-001", 200),
            ("/analyze/acc-004", 200),
            ("/analyze/acc-isolated-999", 200),
            ("/analyze/acc-unknown-000", 404),
            ("/analyze/acc-002", 502),
            ("/analyze/gen-00000", 200),
        ]
    );
    let first: serde_json::Value = serde_json::from_str(&outcome.exchanges[0].body).unwrap();
    assert_eq!(first["cached"], false);
    assert_eq!(first["flagged"], true);
    assert_eq!(
        first["analysis"]["cycles"][0]["accounts"],
        serde_json::json!(["acc-001", "acc-002", "acc-003"])
    );
    assert_eq!(first["analysis"]["sinks"], serde_json::json!(["acc-004"]));
    let second: serde_json::Value = serde_json::from_str(&outcome.exchanges[1].body).unwrap();
    assert_eq!(second["cached"], true);
    let isolated: serde_json::Value = serde_json::from_str(&outcome.exchanges[3].body).unwrap();
    assert_eq!(isolated["flagged"], false);
    assert_eq!(
        isolated["analysis"]["communities"],
        serde_json::json!([{ "accounts": ["acc-isolated-999"], "total_amount": 0.0 }])
    );
    assert_eq!(outcome.risk_level_after.as_deref(), Some("high"));

    // The first request crosses every hop, in one trace.
    let full = in_trace(&outcome, outcome.full_trace);
    let server = find(&full, "gateway SERVER", |s| {
        s.service == "gateway" && s.span.span_kind == SpanKind::Server
    });
    assert_eq!(status_code(server), Some(200));
    assert!(is(server, attr::HTTP_ROUTE, "/analyze/{account_id}"));
    let sql = find(&full, "PostgreSQL", |s| {
        s.service == "gateway" && is(s, attr::DB_SYSTEM_NAME, "postgresql")
    });
    assert!(descends_from(&full, sql, server));
    let redis = find(&full, "Redis", |s| {
        s.service == "gateway" && is(s, attr::DB_SYSTEM_NAME, "redis")
    });
    assert!(descends_from(&full, redis, server));
    let client = find(&full, "HTTP CLIENT", |s| {
        s.service == "gateway"
            && s.span.span_kind == SpanKind::Client
            && s.attr(attr::HTTP_REQUEST_METHOD).is_some()
    });
    let analyzer = find(&full, "analyzer SERVER", |s| {
        s.service == "analyzer" && s.span.span_kind == SpanKind::Server
    });
    assert!(
        parent_of(analyzer, client),
        "analyzer span continues the gateway's client span"
    );
    assert_eq!(status_code(analyzer), Some(200));
    let publish = find(&full, "RabbitMQ publish", |s| {
        s.service == "gateway"
            && s.span.span_kind == SpanKind::Producer
            && is(s, attr::MESSAGING_SYSTEM, "rabbitmq")
    });
    assert!(descends_from(&full, publish, server));
    let process = find(&full, "worker process", |s| {
        s.service == "worker"
            && s.span.span_kind == SpanKind::Consumer
            && is(s, attr::MESSAGING_OPERATION_TYPE, "process")
    });
    let receive = find(&full, "worker receive", |s| {
        s.service == "worker" && is(s, attr::MESSAGING_OPERATION_TYPE, "receive")
    });
    assert!(
        parent_of(receive, publish),
        "the worker joins through the message headers"
    );
    // `process` is `receive`'s sibling, not its child: both are local roots of the worker's
    // part of the trace, so that tail mode decides the processing when it ends.
    assert!(
        parent_of(process, publish),
        "the process span's parent is the publish span, as the receive span's"
    );
    let update = find(&full, "worker UPDATE", |s| {
        s.service == "worker" && is(s, attr::DB_SYSTEM_NAME, "postgresql")
    });
    assert!(descends_from(&full, update, process));
    assert!(
        full.iter().all(|s| !s.is_error()),
        "the ring request has no errors"
    );

    // The second request is served from the cache: no SQL.
    let cached = in_trace(&outcome, outcome.exchanges[1].trace_id);
    assert!(
        cached
            .iter()
            .all(|s| !is(s, attr::DB_SYSTEM_NAME, "postgresql") || s.service == "worker")
    );
    find(&cached, "Redis", |s| is(s, attr::DB_SYSTEM_NAME, "redis"));

    // The isolated account publishes nothing.
    let isolated = in_trace(&outcome, outcome.exchanges[3].trace_id);
    assert!(
        isolated
            .iter()
            .all(|s| s.span.span_kind != SpanKind::Producer)
    );

    // 404: visible as the status code, not an error.
    let missing = in_trace(&outcome, outcome.exchanges[4].trace_id);
    let server = find(&missing, "gateway SERVER (404)", |s| {
        s.service == "gateway" && s.span.span_kind == SpanKind::Server
    });
    assert_eq!(status_code(server), Some(404));
    assert!(!server.is_error());
    assert!(
        missing.iter().all(|s| s.service == "gateway"),
        "no analyzer call for an unknown account"
    );

    // Analyzer failure: 500 on the analyzer, an error client span, 502 on the gateway.
    let failed = in_trace(&outcome, outcome.exchanges[5].trace_id);
    let analyzer = find(&failed, "analyzer SERVER (500)", |s| {
        s.service == "analyzer" && s.span.span_kind == SpanKind::Server
    });
    assert_eq!(status_code(analyzer), Some(500));
    assert!(analyzer.is_error());
    let client = find(&failed, "HTTP CLIENT (500)", |s| {
        s.service == "gateway"
            && s.span.span_kind == SpanKind::Client
            && s.attr(attr::HTTP_REQUEST_METHOD).is_some()
    });
    assert_eq!(status_code(client), Some(500));
    assert!(client.is_error());
    let server = find(&failed, "gateway SERVER (502)", |s| {
        s.service == "gateway" && s.span.span_kind == SpanKind::Server
    });
    assert_eq!(status_code(server), Some(502));
    assert!(server.is_error());
    let handler = find(&failed, "#[traced] analyze_account (err)", |s| {
        s.span.name == "analyze_account"
    });
    assert!(handler.is_error(), "`err` marks the handler span");

    // The waterfall renders the whole trace, each span under its service.
    let waterfall = risk_analysis::spans::waterfall(&outcome.spans, outcome.full_trace);
    for needle in [
        "[gateway] GET /analyze/{account_id}",
        "[analyzer] POST /analyze",
        "[worker] process",
    ] {
        assert!(
            waterfall.contains(needle),
            "{needle:?} missing from\n{waterfall}"
        );
    }
}

#[test]
fn the_demo_subcommand_exits_zero_and_prints_the_waterfall() {
    require_servers();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_risk-analysis"))
        .arg("demo")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("[worker] process"), "{stdout}");
    assert!(stdout.contains("→ 404"), "{stdout}");
    assert!(stdout.contains("→ 502"), "{stdout}");
}
