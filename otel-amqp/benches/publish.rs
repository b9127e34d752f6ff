//! `cargo bench -p otel-amqp --bench publish`
//!
//! Publishing one message and waiting for its publisher confirm, to the RabbitMQ on loopback
//! (`scripts/services.sh` starts it):
//!
//! - `publish/bare`: lapin's channel;
//! - `publish/bare_traceparent`: lapin's channel, the message carrying a `traceparent` header
//!   (the cost of propagation itself, paid by any instrumentation);
//! - `publish/otel_amqp`: the instrumented channel, recording a sampled span (inside a request
//!   span, exported through the batch processor to an exporter that drops it), injecting its
//!   context and recording its metrics.
//!
//! All publish to the same bounded queue over the same connection, interleaved (see
//! `otel_core::testing::Interleaved`), so the medians of one run compare directly.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use opentelemetry::Context;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use otel_amqp::InstrumentedChannel;
use otel_core::metrics::{Metrics, MetricsConfig};
use otel_core::propagation::Propagators;
use otel_core::testing::Interleaved;

const AMQP_ADDR: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const PAYLOAD: &[u8] = b"{\"job\":\"analyse\",\"account\":42}";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bare = 0,
    BareTraceparent = 1,
    OtelAmqp = 2,
}

const KINDS: [Kind; 3] = [Kind::Bare, Kind::BareTraceparent, Kind::OtelAmqp];

impl Kind {
    fn id(self) -> &'static str {
        match self {
            Kind::Bare => "bare",
            Kind::BareTraceparent => "bare_traceparent",
            Kind::OtelAmqp => "otel_amqp",
        }
    }
}

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
    opentelemetry::global::set_text_map_propagator(Propagators::default());
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
    let instrumented = InstrumentedChannel::builder(instrumented_inner)
        .with_tracer_provider(tracer_provider.clone())
        .with_metrics(Metrics::new(MetricsConfig::default()))
        .with_server("127.0.0.1", 5672)
        .build();
    let request_tracer = tracer_provider.tracer("bench");

    // What the propagation itself costs: a bare publish carrying a traceparent header as large
    // as the one the instrumentation injects.
    let mut traceparent = FieldTable::default();
    traceparent.insert(
        "traceparent".into(),
        AMQPValue::LongString(LongString::from(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )),
    );

    // One publish of `kind`, awaiting its confirm.
    let publish = |kind: Kind| {
        let traceparent = traceparent.clone();
        let bare = &bare;
        let instrumented = &instrumented;
        let queue = queue.as_str();
        async move {
            let confirmation = match kind {
                Kind::Bare => {
                    bare.basic_publish(
                        "".into(),
                        queue.into(),
                        BasicPublishOptions::default(),
                        PAYLOAD,
                        BasicProperties::default(),
                    )
                    .await
                    .expect("publish")
                    .await
                }
                Kind::BareTraceparent => {
                    bare.basic_publish(
                        "".into(),
                        queue.into(),
                        BasicPublishOptions::default(),
                        PAYLOAD,
                        BasicProperties::default().with_headers(traceparent),
                    )
                    .await
                    .expect("publish")
                    .await
                }
                Kind::OtelAmqp => {
                    instrumented
                        .basic_publish(
                            "".into(),
                            queue.into(),
                            BasicPublishOptions::default(),
                            PAYLOAD,
                            BasicProperties::default(),
                        )
                        .await
                        .expect("publish")
                        .await
                }
            };
            assert!(confirmation.expect("confirm").is_ack());
        }
    };

    // Interleaved measurement (see `otel_core::testing::Interleaved`): every round publishes
    // once of each kind, in rotating order, and each benchmark reports the median of its own
    // kind's publishes. Load from other processes on the machine (which comes and goes over
    // seconds) weighs on all kinds alike, and a few stalls of the machine do not dominate a
    // sample. The per-publish medians over the whole run are printed at the end.
    let request = Context::current_with_span(request_tracer.start("request"));
    let mut interleaved = Interleaved::new(KINDS.len());
    let mut call = |kind: usize| {
        let _attached = request.clone().attach();
        runtime.block_on(publish(KINDS[kind]));
    };

    let mut group = c.benchmark_group("publish");
    group
        .sample_size(60)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(3));
    for kind in KINDS {
        group.bench_function(kind.id(), |b| {
            b.iter_custom(|rounds| interleaved.run(rounds, kind as usize, &mut call))
        });
    }
    group.finish();
    request.span().end();

    let medians = interleaved.medians();
    eprintln!(
        "per-publish medians over {} publishes of each kind:",
        interleaved.calls()
    );
    for kind in KINDS {
        let median = medians[kind as usize].as_secs_f64();
        eprintln!(
            "  publish/{:<16} {:7.1} µs  ratio to bare {:.3}",
            kind.id(),
            median * 1e6,
            median / medians[Kind::Bare as usize].as_secs_f64()
        );
    }

    tracer_provider.shutdown().ok();
}

criterion_group!(benches, bench_publish);
criterion_main!(benches);
