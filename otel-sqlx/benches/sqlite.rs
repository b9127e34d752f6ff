//! `cargo bench -p otel-sqlx --features sqlite --bench sqlite`
//!
//! `SELECT 1` on an in-memory SQLite pool, bare and through the wrapper, in the same run:
//! - `query/bare`: plain sqlx on `&SqlitePool`;
//! - `query/otel_sqlx`: the same call on `&InstrumentedPool` with an SDK tracer provider
//!   (always-on sampler, batch processor to a discarding exporter) and an otel-core metrics
//!   registry (exemplar-tagged histograms);
//! - `query/otel_sqlx_off`: the wrapper with nothing installed (global no-op tracer, no-op
//!   metrics).
//!
//! Measured interleaved (`otel_core::testing::Interleaved`), as the Redis and AMQP benchmarks
//! are; at the end it prints each variant's per-call median over the whole run and its ratio
//! to `query/bare`.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use otel_core::metrics::{Metrics, MetricsConfig};
use otel_core::testing::Interleaved;
use otel_sqlx::PoolBuilder;
use sqlx::sqlite::SqlitePoolOptions;

/// Drops every batch: measures recording, not export.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

/// The ids, in the order `call` numbers them.
const VARIANTS: [&str; 3] = ["bare", "otel_sqlx", "otel_sqlx_off"];

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = rt.block_on(async {
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    });
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .build();
    let metrics = Metrics::new(MetricsConfig::default());
    let instrumented = PoolBuilder::from(pool.clone())
        .with_tracer_provider(tracer_provider.clone())
        .with_metrics(metrics.clone())
        .build();
    let off = PoolBuilder::from(pool.clone())
        .with_metrics(Metrics::noop())
        .build();

    // One `SELECT 1` through pool `variant` (numbered as `VARIANTS`).
    let mut call = |variant: usize| {
        rt.block_on(async {
            match variant {
                0 => sqlx::query("SELECT 1").fetch_one(&pool).await,
                1 => sqlx::query("SELECT 1").fetch_one(&instrumented).await,
                _ => sqlx::query("SELECT 1").fetch_one(&off).await,
            }
            .unwrap();
        });
    };

    // Each call crosses to SQLite's worker thread and back, and this 2-core machine is
    // shared: per-call latency varies by tens of microseconds. The variants are therefore
    // measured interleaved (every round calls each once, in rotating order) and compared by
    // their per-call medians.
    let mut interleaved = Interleaved::new(VARIANTS.len());
    let mut group = c.benchmark_group("query");
    for (variant, id) in VARIANTS.iter().enumerate() {
        group.bench_function(*id, |b| {
            b.iter_custom(|rounds| interleaved.run(rounds, variant, &mut call))
        });
    }
    group.finish();

    let medians = interleaved.medians();
    eprintln!(
        "per-call medians over {} queries of each kind:",
        interleaved.calls()
    );
    for (id, median) in VARIANTS.iter().zip(&medians) {
        eprintln!(
            "  query/{id:<16} {:7.2} µs  ratio to bare {:.3}",
            median.as_secs_f64() * 1e6,
            median.as_secs_f64() / medians[0].as_secs_f64()
        );
    }
    tracer_provider.shutdown().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
