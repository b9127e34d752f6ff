//! `cargo bench -p otel-redis --bench get` (needs Redis on 127.0.0.1:6379; start it with
//! `scripts/services.sh`).
//!
//! One `GET` on a multiplexed connection, side by side in the same run:
//! - `get/bare`: redis-rs alone;
//! - `get/otel_redis`: through `InstrumentedConnection`, every span sampled and handed to a
//!   batch span processor (with an exporter that discards), the duration recorded in an
//!   `otel_core::metrics` histogram with its exemplar;
//! - `get/otel_redis_unsampled`: the same with a sampler that records nothing (the duration is
//!   still measured).
//!
//! Criterion's time for a sample is the mean over its iterations, so on a busy machine a few
//! multi-millisecond scheduler stalls per sample dominate it. The `get_p50` group measures the
//! same three calls, but each sample reports the median latency of its calls (times the number
//! of calls): that is the per-call cost without the stalls, the fairer basis for the ratio.

use std::hint::black_box;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use otel_core::metrics::Metrics;
use otel_redis::Builder;
use redis::AsyncCommands;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use tokio::runtime::Runtime;

const REDIS_ADDR: &str = "127.0.0.1:6379";

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

/// Times `iters` GETs one by one and returns their median times `iters`.
fn median_of_calls<C>(runtime: &Runtime, con: &mut C, key: &str, iters: u64) -> Duration
where
    C: ConnectionLike + Send + Sync,
{
    let mut times: Vec<Duration> = Vec::with_capacity(usize::try_from(iters).unwrap_or(0));
    for _ in 0..iters {
        let start = Instant::now();
        let value: Option<String> = runtime.block_on(con.get(key)).expect("GET");
        times.push(start.elapsed());
        black_box(value);
    }
    times.sort_unstable();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    median * u32::try_from(iters).unwrap_or(u32::MAX)
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

    let mut group = c.benchmark_group("get");
    group.bench_function("bare", |b| {
        b.iter(|| {
            let value: Option<String> = runtime.block_on(bare.get(&key)).expect("GET");
            black_box(value)
        })
    });
    group.bench_function("otel_redis", |b| {
        b.iter(|| {
            let value: Option<String> = runtime.block_on(instrumented.get(&key)).expect("GET");
            black_box(value)
        })
    });
    group.bench_function("otel_redis_unsampled", |b| {
        b.iter(|| {
            let value: Option<String> = runtime.block_on(unsampled.get(&key)).expect("GET");
            black_box(value)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("get_p50");
    group.bench_function("bare", |b| {
        b.iter_custom(|iters| median_of_calls(&runtime, &mut bare, &key, iters))
    });
    group.bench_function("otel_redis", |b| {
        b.iter_custom(|iters| median_of_calls(&runtime, &mut instrumented, &key, iters))
    });
    group.bench_function("otel_redis_unsampled", |b| {
        b.iter_custom(|iters| median_of_calls(&runtime, &mut unsampled, &key, iters))
    });
    group.finish();

    runtime.block_on(setup.del::<_, ()>(&key)).expect("DEL");
    let _ = tracer_provider.shutdown();
    let _ = off_tracer_provider.shutdown();
}

criterion_group!(benches, get);
criterion_main!(benches);
