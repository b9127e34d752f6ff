//! `cargo bench -p otel-redis --bench get` (needs Redis on 127.0.0.1:6379; start it with
//! `scripts/services.sh`).
//!
//! One `GET` on a multiplexed connection, side by side in the same run:
//! - `get/bare`: redis-rs alone;
//! - `get/otel_redis`: through `InstrumentedConnection`, every span sampled and handed to a
//!   batch span processor (with an exporter that discards), the duration recorded in an
//!   `otel_core::metrics` histogram with its exemplar;
//! - `get/otel_redis_unsampled`: the same with a sampler that records nothing (the duration is
//!   still measured);
//! - `get/bare_control`: redis-rs alone on a second connection, the noise floor of the ratios.
//!
//! The three are measured interleaved (`otel_core::testing::Interleaved`): every round issues
//! one GET of each kind in rotating order, and each benchmark reports the median of its own
//! kind's calls. Load on the machine that comes and goes over seconds, and the loopback round
//! trip's multi-millisecond stalls, then weigh on all three alike instead of on whichever ran
//! during them. The per-call medians over the whole run are printed at the end.

use std::hint::black_box;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use otel_core::metrics::Metrics;
use otel_core::testing::Interleaved;
use otel_redis::Builder;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

const REDIS_ADDR: &str = "127.0.0.1:6379";
const VARIANTS: [&str; 4] = ["bare", "otel_redis", "otel_redis_unsampled", "bare_control"];

/// Discards spans: the bench measures recording and batching, not a network export.
#[derive(Debug)]
struct DiscardSpans;

impl SpanExporter for DiscardSpans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

fn require_redis() {
    let addr = REDIS_ADDR
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .expect("loopback address");
    if let Err(error) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        panic!(
            "Redis is not reachable on {REDIS_ADDR} ({error}); start it with scripts/services.sh"
        );
    }
}

fn tracer_provider(sampler: Sampler) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_batch_exporter(DiscardSpans)
        .build()
}

fn get(c: &mut Criterion) {
    require_redis();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let client = redis::Client::open(format!("redis://{REDIS_ADDR}/0")).expect("client");
    let connect = || -> MultiplexedConnection {
        runtime
            .block_on(client.get_multiplexed_async_connection())
            .expect("connect to Redis")
    };
    let key = format!("otel-redis-bench:get:{}", std::process::id());
    let mut setup = connect();
    runtime
        .block_on(setup.set::<_, _, ()>(&key, "a value of moderate length, like a cached row"))
        .expect("SET");

    let mut bare = connect();
    // A second bare connection, measured like the others: how far two identical calls differ
    // in this run (the noise floor of the ratios).
    let mut bare2 = connect();
    let tracer_provider = tracer_provider(Sampler::AlwaysOn);
    let mut instrumented = Builder::from(connect())
        .with_tracer_provider(tracer_provider.clone())
        .with_metrics(Metrics::default())
        .with_client(&client)
        .build();
    let off_tracer_provider = self::tracer_provider(Sampler::AlwaysOff);
    let mut unsampled = Builder::from(connect())
        .with_tracer_provider(off_tracer_provider.clone())
        .with_metrics(Metrics::default())
        .with_client(&client)
        .build();

    // One GET through connection `variant` (numbered as `VARIANTS`).
    let mut call = |variant: usize| {
        let value: Option<String> = match variant {
            0 => runtime.block_on(bare.get(&key)),
            1 => runtime.block_on(instrumented.get(&key)),
            2 => runtime.block_on(unsampled.get(&key)),
            _ => runtime.block_on(bare2.get(&key)),
        }
        .expect("GET");
        black_box(value);
    };
    let mut interleaved = Interleaved::new(VARIANTS.len());
    let mut group = c.benchmark_group("get");
    for (variant, id) in VARIANTS.iter().enumerate() {
        group.bench_function(*id, |b| {
            b.iter_custom(|rounds| interleaved.run(rounds, variant, &mut call))
        });
    }
    group.finish();

    let medians = interleaved.medians();
    eprintln!(
        "per-call medians over {} GETs of each kind:",
        interleaved.calls()
    );
    for (id, median) in VARIANTS.iter().zip(&medians) {
        eprintln!(
            "  get/{id:<22} {:7.2} µs  ratio to bare {:.3}",
            median.as_secs_f64() * 1e6,
            median.as_secs_f64() / medians[0].as_secs_f64()
        );
    }

    runtime.block_on(setup.del::<_, ()>(&key)).expect("DEL");
    let _ = tracer_provider.shutdown();
    let _ = off_tracer_provider.shutdown();
}

criterion_group!(benches, get);
criterion_main!(benches);
