//! The pipeline each process installs: `service.name` fixed per role, everything else from the
//! `OTEL_*` environment variables (endpoint, protocol, sampler, batch delays, …).

use std::time::Duration;

use otel_core::{Telemetry, TelemetryGuard};

/// Installs the global pipeline for the service `name` (`gateway`, `analyzer` or `worker`).
pub fn install(name: &'static str) -> Result<TelemetryGuard, Box<dyn std::error::Error>> {
    Ok(Telemetry::builder()
        .with_service_name(name)
        .with_service_namespace("risk-analysis")
        .with_service_version(env!("CARGO_PKG_VERSION"))
        .with_shutdown_timeout(Duration::from_secs(5))
        .install()?)
}

/// Flushes and shuts the pipeline down, logging what could not be delivered.
pub fn shutdown(mut guard: TelemetryGuard) {
    let report = guard.shutdown(Duration::from_secs(5));
    if report.spans_dropped > 0 || !report.completed_in_time {
        tracing::warn!(?report, "telemetry shutdown lost data");
    }
}

/// Resolves when the process should stop: with `watch_stdin`, when standard input reaches end
/// of file (Ctrl-D in a terminal; the demo closes its children's stdin), otherwise never.
///
/// Ctrl-C and SIGTERM are not caught: tokio's `signal` feature would split tokio's feature set
/// in the workspace (`cargo tree -d`), so a process stopped by a signal exits without flushing
/// its last batch of spans. Use `--stop-on-stdin-eof` for a clean stop.
pub async fn stop_signal(watch_stdin: bool) {
    if !watch_stdin {
        return std::future::pending().await;
    }
    // A blocking read on a thread of tokio's blocking pool; it ends with the process.
    let _ = tokio::task::spawn_blocking(|| {
        use std::io::Read as _;
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    })
    .await;
}
