//! `cargo run -p quickstart` end to end: its spans reach an OTLP/HTTP receiver with the
//! configured resource, and with the collector's port closed it still ends quickly and says
//! how much it dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use otel_core::testing::OtlpHttpReceiver;

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
    assert!(stdout.contains("✗ GET /transfer"), "{stdout}");
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
    assert_eq!(spans.len(), 6, "{spans:?}");
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
        stderr.contains("6 of 6 spans could not be exported to http://127.0.0.1:9/v1/traces"),
        "{stderr}"
    );
}
