//! `cargo run -p quickstart` end to end: its spans reach an OTLP/HTTP receiver with the
//! configured resource, and with the collector's port closed it still ends quickly and says
//! how much it dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use otel_core::testing::OtlpHttpReceiver;

/// Spans of one run: per request a client span and a server span, plus the SQL spans (one for
/// each of the fast and slow requests; BEGIN, UPDATE and ROLLBACK for the failing one) and the
/// two `#[traced]` spans of the slow request (`analyze`, `score`).
const SPANS: usize = 13;

fn quickstart() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_quickstart"));
    c.env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env("RUST_LOG", "info");
    c
}

#[test]
fn delivers_spans_with_resource_to_otlp_http() {
    let rx = OtlpHttpReceiver::start().unwrap();
    let out = quickstart()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint())
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The waterfall and correlated log lines were printed.
    assert!(stdout.contains("GET /analyze/{id}"), "{stdout}");
    assert!(stdout.contains("✗ POST /transfer"), "{stdout}");
    assert!(stdout.contains("✗ UPDATE accounts"), "{stdout}");
    assert!(stdout.contains("    score "), "{stdout}");
    assert!(
        stdout.contains("handling request") && stdout.contains("trace_id="),
        "{stdout}"
    );

    let reqs = rx.trace_requests();
    let rs: Vec<_> = reqs.iter().flat_map(|r| r.resource_spans.iter()).collect();
    let spans: Vec<_> = rs
        .iter()
        .flat_map(|r| r.scope_spans.iter())
        .flat_map(|s| s.spans.iter())
        .collect();
    assert_eq!(spans.len(), SPANS, "{spans:?}");
    // Client → server → SQL is one trace: the server span's parent is the client span.
    let client = spans
        .iter()
        .find(|s| s.name == "POST" && s.kind == 3)
        .expect("client span");
    let server = spans
        .iter()
        .find(|s| s.name == "POST /transfer")
        .expect("server span");
    let update = spans
        .iter()
        .find(|s| s.name == "UPDATE accounts")
        .expect("SQL span");
    assert_eq!(server.trace_id, client.trace_id);
    assert_eq!(server.parent_span_id, client.span_id);
    assert_eq!(update.trace_id, client.trace_id);
    assert_eq!(update.parent_span_id, server.span_id);
    // The `#[traced]` handler sits between the server span and its SQL and scoring spans.
    let find = |name: &str| spans.iter().find(|s| s.name == name).expect(name);
    let (server, handler) = (find("GET /analyze/{id}"), find("analyze"));
    assert_eq!(handler.parent_span_id, server.span_id);
    assert_eq!(find("SELECT transactions").parent_span_id, handler.span_id);
    assert_eq!(find("score").parent_span_id, handler.span_id);
    assert!(
        handler
            .attributes
            .iter()
            .any(|kv| kv.key == "id" && format!("{:?}", kv.value).contains("IntValue(1)")),
        "{:?}",
        handler.attributes
    );
    let res = format!("{:?}", rs[0].resource);
    assert!(
        res.contains("\"quickstart\"") && res.contains("\"ci\""),
        "{res}"
    );
}

#[test]
fn closed_collector_port_finishes_fast_and_reports_drops() {
    let t0 = Instant::now();
    let out = quickstart()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let took = t0.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The work itself takes well under a second; the guard may add at most its deadline.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        stderr.contains(&format!(
            "{SPANS} of {SPANS} spans could not be exported to http://127.0.0.1:9/v1/traces"
        )),
        "{stderr}"
    );
}

#[test]
fn metrics_exemplars_point_at_printed_traces() {
    let out = quickstart()
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, metrics) = stdout
        .split_once("/metrics (Accept: application/openmetrics-text")
        .expect("the /metrics text is printed");
    let waterfalls = &stdout;
    let metrics = &metrics[..metrics.find("# EOF").expect("# EOF ends the text")];
    // Only the server duration histogram is printed, every route with a series.
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('{'))
        .collect();
    assert!(
        series
            .iter()
            .all(|l| l.starts_with("http_server_request_duration_seconds_")),
        "{metrics}"
    );
    for route in ["/accounts/{id}", "/analyze/{id}", "/transfer"] {
        assert!(
            metrics.contains(&format!("http_route=\"{route}\"")),
            "{route}: {metrics}"
        );
    }
    // Each exemplar's trace id is one of the printed waterfalls.
    let exemplar_traces: Vec<&str> = metrics
        .match_indices("# {trace_id=\"")
        .map(|(i, m)| &metrics[i + m.len()..i + m.len() + 32])
        .collect();
    assert_eq!(exemplar_traces.len(), 3, "{metrics}");
    for trace in exemplar_traces {
        assert!(
            waterfalls.contains(&format!("trace {trace} ·")),
            "exemplar trace {trace} not in the waterfalls:\n{waterfalls}"
        );
    }
}
