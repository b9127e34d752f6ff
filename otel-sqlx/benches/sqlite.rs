//! `cargo bench -p otel-sqlx --features sqlite --bench sqlite`
//!
//! `SELECT 1` on an in-memory SQLite pool, bare and through the wrapper, in the same run:
//! - `query/bare`: plain sqlx on `&SqlitePool`;
//! - `query/otel_sqlx`: the same call on `&InstrumentedPool` with an SDK tracer provider
//!   (always-on sampler, batch processor to a discarding exporter) and an otel-core metrics
//!   registry (exemplar-tagged histograms);
//! - `query/otel_sqlx_off`: the wrapper with nothing installed (global no-op tracer, no-op
//!   metrics).
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use otel_core::metrics::{Metrics, MetricsConfig};
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

/// Time of `n` calls of `measured`, each preceded by an unmeasured call of `other`.
fn interleaved(n: u64, measured: &dyn Fn(), other: &dyn Fn()) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..n {
        other();
        let start = Instant::now();
        measured();
        total += start.elapsed();
    }
    total
}

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

    let bare = || {
        rt.block_on(async {
            sqlx::query("SELECT 1").fetch_one(&pool).await.unwrap();
        });
    };
    let otel = || {
        rt.block_on(async {
            sqlx::query("SELECT 1")
                .fetch_one(&instrumented)
                .await
                .unwrap();
        });
    };
    let otel_off = || {
        rt.block_on(async {
            sqlx::query("SELECT 1").fetch_one(&off).await.unwrap();
        });
    };

    // This machine is shared: load from elsewhere comes and goes during a run. Each
    // measured call is therefore preceded by an unmeasured call of the variant it is compared
    // with, so all variants run under the same mix and their medians can be compared.
    let mut group = c.benchmark_group("query");
    group.bench_function("bare", |b| b.iter_custom(|n| interleaved(n, &bare, &otel)));
    group.bench_function("otel_sqlx", |b| {
        b.iter_custom(|n| interleaved(n, &otel, &bare))
    });
    group.bench_function("otel_sqlx_off", |b| {
        b.iter_custom(|n| interleaved(n, &otel_off, &bare))
    });
    group.finish();
    tracer_provider.shutdown().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
