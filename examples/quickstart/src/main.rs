//! Run with `cargo run -p quickstart`. Set `OTEL_EXPORTER_OTLP_ENDPOINT` to also export to a
//! collector.
//!
//! A handful of "requests" go through the suite's recording helper: one fast, one slow, one
//! failing. Each prints as a waterfall (the development console exporter of `otel-core`), log
//! lines carry the trace and span ids, and on exit the pipeline reports what it could not
//! deliver.

use std::time::Duration;

use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue};
use otel_core::context::FutureExt as _;
use otel_core::instrument::Instrumentation;
use otel_core::semconv::attribute as attr;
use otel_core::{Telemetry, TracesExporter};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exporters = if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        vec![TracesExporter::Console, TracesExporter::Otlp]
    } else {
        vec![TracesExporter::Console]
    };
    let guard = Telemetry::builder()
        .with_service_name("quickstart")
        .with_service_version(env!("CARGO_PKG_VERSION"))
        .with_traces_exporters(exporters)
        .with_shutdown_timeout(Duration::from_secs(3))
        .install()?;

    let inst = Instrumentation::builder("quickstart", env!("CARGO_PKG_VERSION")).build();
    let duration = inst
        .metrics()
        .f64_histogram("http.server.request.duration")
        .with_unit("s")
        .build();

    for (route, delay_ms, fail) in [
        ("/accounts/{id}", 2, false),
        ("/analyze/{id}", 40, false),
        ("/transfer", 5, true),
    ] {
        let mut op = inst.start(
            &Context::current(),
            format!("GET {route}"),
            SpanKind::Server,
            vec![
                KeyValue::new(attr::HTTP_REQUEST_METHOD, "GET"),
                KeyValue::new(attr::HTTP_ROUTE, route),
            ],
        );
        let cx = op.context().clone();
        let inner = inst.clone();
        async move {
            tracing::info!(route, "handling request");
            let q = inner.start(
                &Context::current(),
                "SELECT accounts",
                SpanKind::Client,
                vec![KeyValue::new(attr::DB_SYSTEM_NAME, "sqlite")],
            );
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            q.end();
        }
        .with_context(cx)
        .await;
        let status = if fail { 500 } else { 200 };
        op.set_attribute(KeyValue::new(attr::HTTP_RESPONSE_STATUS_CODE, status));
        if fail {
            op.record_error("500", "insufficient funds service failed");
        }
        op.end_with_duration(
            &duration,
            &[
                KeyValue::new(attr::HTTP_REQUEST_METHOD, "GET"),
                KeyValue::new(attr::HTTP_ROUTE, route),
            ],
        );
    }
    // Let the console exporter print before the guard flushes the rest.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(guard);
    Ok(())
}
