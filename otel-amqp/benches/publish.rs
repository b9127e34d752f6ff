//! `cargo bench -p otel-amqp --bench publish`
//!
//! Publishing one message and waiting for its publisher confirm, to the RabbitMQ on loopback
//! (`scripts/services.sh` starts it): `publish/bare` is lapin's channel, `publish/otel_amqp` the
//! instrumented channel recording a sampled span (inside a request span, exported through the
//! batch processor to an exporter that drops it), injecting its context and recording its
//! metrics. Both publish to the same bounded queue over the same connection, interleaved (see
//! `paired`), so the two medians of one run compare directly.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use opentelemetry::Context;
use opentelemetry::metrics::MeterProvider;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use otel_amqp::{InstrumentedChannel, Metrics};

const AMQP_ADDR: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const PAYLOAD: &[u8] = b"{\"job\":\"analyse\",\"account\":42}";

/// Accepts spans and drops them: the cost measured is the instrumentation's, not an exporter's.
#[derive(Debug)]
struct DroppingExporter;

impl SpanExporter for DroppingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

async fn confirm_channel(connection: &Connection, queue: &str) -> Channel {
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
    let mut arguments = FieldTable::default();
    // Keep the broker's memory bounded however long the benchmark runs.
    arguments.insert("x-max-length".into(), AMQPValue::LongInt(1000));
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                exclusive: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await
        .expect("queue");
    channel
}

fn bench_publish(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let queue = format!("otel-amqp-bench-{}", std::process::id());

    let connection = runtime
        .block_on(Connection::connect(AMQP_ADDR, ConnectionProperties::default()))
        .unwrap_or_else(|error| {
            panic!("RabbitMQ is not reachable at {AMQP_ADDR} ({error}); start it with scripts/services.sh")
        });
    let bare = runtime.block_on(confirm_channel(&connection, &queue));
    let instrumented_inner = runtime.block_on(confirm_channel(&connection, &queue));

    // The batch processor, as in production: ending a span queues it for a background thread.
    let tracer_provider = SdkTracerProvider::builder()
        .with_batch_exporter(DroppingExporter)
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_periodic_exporter(InMemoryMetricExporter::default())
        .build();
    let instrumented = InstrumentedChannel::builder(instrumented_inner)
        .with_tracer_provider(tracer_provider.clone())
        .with_metrics(Metrics::from_meter(meter_provider.meter("bench")))
        .with_server("127.0.0.1", 5672)
        .build();
    let request_tracer = tracer_provider.tracer("bench");

    let publish_bare = || async {
        let confirmation = bare
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                PAYLOAD,
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirmation.is_ack());
    };
    let publish_instrumented = || async {
        let confirmation = instrumented
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                PAYLOAD,
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirmation.is_ack());
    };

    // Paired measurement: every iteration publishes once bare and once instrumented, in
    // alternating order, and each benchmark times only its own kind. Both medians are taken
    // under the same conditions, so load from other processes on the machine (which comes and
    // goes over seconds) cancels out of their ratio instead of landing on one side of it.
    // Every single publish of the run, by kind, for the paired summary printed at the end.
    let all_latencies: RefCell<[Vec<Duration>; 2]> = RefCell::new([Vec::new(), Vec::new()]);
    let paired = |iterations: u64, measure_instrumented: bool| -> Duration {
        let request = Context::current_with_span(request_tracer.start("request"));
        let _attached = request.clone().attach();
        let (elapsed, latencies) = runtime.block_on(async {
            let mut measured = Duration::ZERO;
            let mut latencies: [Vec<Duration>; 2] = Default::default();
            for i in 0..iterations {
                for instrumented_turn in [i % 2 == 0, i % 2 == 1] {
                    let start = Instant::now();
                    if instrumented_turn {
                        publish_instrumented().await;
                    } else {
                        publish_bare().await;
                    }
                    let latency = start.elapsed();
                    latencies[usize::from(instrumented_turn)].push(latency);
                    if instrumented_turn == measure_instrumented {
                        measured += latency;
                    }
                }
            }
            (measured, latencies)
        });
        let mut all = all_latencies.borrow_mut();
        for (all, new) in all.iter_mut().zip(latencies) {
            all.extend(new);
        }
        request.span().end();
        elapsed
    };

    let mut group = c.benchmark_group("publish");
    group
        .sample_size(60)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(3));
    group.bench_function("bare", |b| b.iter_custom(|n| paired(n, false)));
    group.bench_function("otel_amqp", |b| b.iter_custom(|n| paired(n, true)));
    group.finish();

    // The same comparison over every publish of the run, each bare publish next to an
    // instrumented one: the least window-dependent view of the overhead.
    let mut latencies = all_latencies.into_inner();
    let [bare_median, otel_median] = latencies.each_mut().map(|all| {
        all.sort_unstable();
        all[all.len() / 2]
    });
    eprintln!(
        "publish paired medians over {} publishes each: bare {:.1} µs, otel_amqp {:.1} µs, ratio {:.3}",
        latencies[0].len(),
        bare_median.as_secs_f64() * 1e6,
        otel_median.as_secs_f64() * 1e6,
        otel_median.as_secs_f64() / bare_median.as_secs_f64()
    );

    tracer_provider.shutdown().ok();
    meter_provider.shutdown().ok();
}

criterion_group!(benches, bench_publish);
criterion_main!(benches);
