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

/// Resolves when the process should stop: Ctrl-C, SIGTERM, or (with `watch_stdin`) standard
/// input reaching end of file, which is how the demo stops its children without signals.
pub async fn stop_signal(watch_stdin: bool) {
    let stdin_closed = async {
        if watch_stdin {
            use tokio::io::AsyncReadExt as _;
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        } else {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
        () = stdin_closed => {}
    }
}
