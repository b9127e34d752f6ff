//! Integration tests against the RabbitMQ on loopback (`scripts/services.sh` starts it).
//!
//! Producer and consumer use separate connections and separate telemetry pipelines, sharing
//! nothing but the broker, as two processes would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicRejectOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel};
use opentelemetry::context::FutureExt;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, Value};
use opentelemetry_semantic_conventions::{attribute as semattr, metric as semmetric};
use otel_amqp::{ConsumerParent, InstrumentedChannel, InstrumentedConsumer};

const WAIT: Duration = Duration::from_secs(10);

fn instrumented(channel: Channel, telemetry: &TestTelemetry) -> InstrumentedChannel {
    InstrumentedChannel::builder(channel)
        .with_tracer_provider(telemetry.tracer_provider().clone())
        .with_metrics(telemetry.metrics().clone())
        .with_server("127.0.0.1", 5672)
        .build()
}

/// A producer on its own connection, with its own telemetry, as another process would be.
/// Keep the connection bound (`_connection`) for as long as the channel is used.
async fn separate_producer(
    telemetry: TestTelemetry,
) -> (TestTelemetry, InstrumentedChannel, lapin::Connection) {
    let connection = connect().await;
    let channel = instrumented(connection.create_channel().await.unwrap(), &telemetry);
    (telemetry, channel, connection)
}

/// Publishes `body` to `queue` through the default exchange with default properties; returns
/// the (instrumented) confirmation, which the caller may await in confirm mode.
async fn publish(
    producer: &InstrumentedChannel,
    queue: &str,
    body: &[u8],
) -> otel_amqp::InstrumentedPublisherConfirm {
    producer
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        )
        .await
        .unwrap()
}

/// A consumer on its own connection, with its own telemetry, on a fresh auto-delete queue.
struct Worker {
    telemetry: TestTelemetry,
    consumer: InstrumentedConsumer,
    _connection: lapin::Connection,
}

async fn worker(queue: &str, parent: ConsumerParent) -> Worker {
    let telemetry = test_telemetry();
    let connection = connect().await;
    let channel = InstrumentedChannel::builder(connection.create_channel().await.unwrap())
        .with_tracer_provider(telemetry.tracer_provider().clone())
        .with_metrics(telemetry.metrics().clone())
        .with_server("127.0.0.1", 5672)
        .with_consumer_parent(parent)
        .build();
    declare(channel.get_ref(), queue).await;
    let consumer = channel
        .basic_consume(
            queue.into(),
            "worker".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    Worker {
        telemetry,
        consumer,
        _connection: connection,
    }
}

/// A consumer on its own connection, on a fresh auto-delete `queue`, its spans going to
/// `provider`. Keep the connection bound for as long as the consumer is used.
async fn consumer_on(
    provider: &opentelemetry_sdk::trace::SdkTracerProvider,
    queue: &str,
) -> (lapin::Connection, InstrumentedConsumer) {
    let connection = connect().await;
    let channel = InstrumentedChannel::builder(connection.create_channel().await.unwrap())
        .with_tracer_provider(provider.clone())
        .with_server("127.0.0.1", 5672)
        .build();
    declare(channel.get_ref(), queue).await;
    let consumer = channel
        .basic_consume(
            queue.into(),
            "worker".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    (connection, consumer)
}

/// Declares an exclusive, server-named queue (`amq.gen-…`); returns its name.
async fn server_named_queue(channel: &Channel) -> String {
    channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .name()
        .as_str()
        .to_owned()
}

async fn declare(channel: &Channel, queue: &str) {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
}

async fn next(consumer: &mut InstrumentedConsumer) -> otel_amqp::InstrumentedDelivery {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("no delivery within the time limit")
        .expect("consumer ended")
        .expect("consumer error")
}

fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

#[tokio::test]
async fn consumer_spans_join_the_publishers_trace() {
    let queue = unique_name("trace");
    let Worker {
        telemetry: consumer_telemetry,
        mut consumer,
        _connection,
        ..
    } = worker(&queue, ConsumerParent::CreationContext).await;

    // The worker runs in its own task, as a separate process would.
    let worker_task = tokio::spawn(async move {
        let mut delivery = next(&mut consumer).await;
        let headers = delivery.delivery().properties.headers().clone().unwrap();
        let handled = delivery
            .process(|message| {
                let body = message.data.clone();
                async move {
                    // The handler runs with the process span as its current span.
                    let span = Context::current().span().span_context().clone();
                    Ok::<_, std::io::Error>((body, span))
                }
            })
            .await
            .unwrap();
        assert!(delivery.ack(BasicAckOptions::default()).await.unwrap());
        (headers, handled)
    });

    let (producer_telemetry, producer, _producer_connection) =
        separate_producer(test_telemetry()).await;
    producer
        .get_ref()
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut user_headers = FieldTable::default();
    user_headers.insert("x-tenant".into(), long("acme"));
    user_headers.insert("x-attempt".into(), AMQPValue::LongInt(1));

    let request = producer_telemetry.tracer().start("request");
    let request_cx = Context::current_with_span(request);
    let confirmation = async {
        producer
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                b"analyse account 42",
                BasicProperties::default()
                    .with_headers(user_headers)
                    .with_message_id("msg-1".into())
                    .with_correlation_id("conv-1".into()),
            )
            .await
            .unwrap()
            .await
            .unwrap()
    }
    .with_context(request_cx.clone())
    .await;
    assert!(confirmation.is_ack());
    request_cx.span().end();

    let (headers, (body, handler_span)) = tokio::time::timeout(WAIT, worker_task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body, b"analyse account 42");
    // The user's headers survive next to the injected context.
    assert_eq!(headers.inner().get("x-tenant"), Some(&long("acme")));
    assert_eq!(
        headers.inner().get("x-attempt"),
        Some(&AMQPValue::LongInt(1))
    );
    assert!(headers.contains_key("traceparent"), "{headers:?}");

    // Producer side.
    let request = producer_telemetry.span("request");
    let publish = producer_telemetry.span(&format!("publish {queue}"));
    assert_eq!(publish.span_kind, SpanKind::Producer);
    assert_child_of(&publish, &request);
    assert_eq!(publish.status, Status::Unset);
    assert_attr(&publish, semattr::MESSAGING_SYSTEM, "rabbitmq");
    assert_attr(&publish, semattr::MESSAGING_OPERATION_NAME, "publish");
    assert_attr(&publish, semattr::MESSAGING_OPERATION_TYPE, "send");
    assert_attr(&publish, semattr::MESSAGING_DESTINATION_NAME, queue.clone());
    assert_attr(
        &publish,
        semattr::MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY,
        queue.clone(),
    );
    assert_attr(&publish, semattr::MESSAGING_MESSAGE_ID, "msg-1");
    assert_attr(
        &publish,
        semattr::MESSAGING_MESSAGE_CONVERSATION_ID,
        "conv-1",
    );
    assert_attr(&publish, semattr::MESSAGING_MESSAGE_BODY_SIZE, 18_i64);
    assert_attr(&publish, semattr::SERVER_ADDRESS, "127.0.0.1");
    assert_attr(&publish, semattr::SERVER_PORT, 5672_i64);
    assert_no_attr(&publish, semattr::ERROR_TYPE);
    assert_eq!(
        publish.instrumentation_scope.name(),
        "otel-amqp",
        "instrumentation scope"
    );
    assert!(publish.instrumentation_scope.schema_url().is_some());

    // Consumer side: same trace, parent and link to the publish span.
    let receive = consumer_telemetry.span(&format!("receive {queue}"));
    let process = consumer_telemetry.span(&format!("process {queue}"));
    let ack = consumer_telemetry.span(&format!("ack {queue}"));
    // The messaging conventions' span kinds: receive CLIENT, process CONSUMER, settle CLIENT.
    assert_eq!(receive.span_kind, SpanKind::Client);
    assert_eq!(process.span_kind, SpanKind::Consumer);
    assert_eq!(ack.span_kind, SpanKind::Client);
    assert_child_of(&receive, &publish);
    assert!(receive.parent_span_is_remote);
    assert!(links_to(&receive, &publish));
    // `process` is `receive`'s sibling (same remote parent), linked to it: each is a local
    // root, so the zero-length `receive` span does not end a local trace `process` is in.
    assert_child_of(&process, &publish);
    assert!(process.parent_span_is_remote);
    assert!(links_to(&process, &publish));
    assert!(links_to(&process, &receive));
    assert_child_of(&ack, &process);
    assert_eq!(handler_span.span_id(), process.span_context.span_id());
    assert_eq!(handler_span.trace_id(), request.span_context.trace_id());

    for span in [&receive, &process] {
        assert_attr(span, semattr::MESSAGING_SYSTEM, "rabbitmq");
        assert_attr(span, semattr::MESSAGING_DESTINATION_NAME, queue.clone());
        assert_attr(
            span,
            semattr::MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY,
            queue.clone(),
        );
        assert_attr(span, semattr::MESSAGING_MESSAGE_ID, "msg-1");
        assert_attr(span, semattr::MESSAGING_MESSAGE_CONVERSATION_ID, "conv-1");
        assert_attr(span, semattr::MESSAGING_MESSAGE_BODY_SIZE, 18_i64);
        assert_attr(span, otel_amqp::AMQP_REDELIVERED, false);
        assert_attr(span, semattr::SERVER_PORT, 5672_i64);
        assert!(attr(span, semattr::MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG).is_some());
    }
    for span in [&publish, &receive, &process, &ack] {
        assert_no_attr(span, semattr::MESSAGING_DESTINATION_ANONYMOUS);
    }
    assert_attr(&receive, semattr::MESSAGING_OPERATION_TYPE, "receive");
    assert_attr(&process, semattr::MESSAGING_OPERATION_TYPE, "process");
    assert_attr(&ack, semattr::MESSAGING_OPERATION_TYPE, "settle");
    assert_attr(&ack, semattr::MESSAGING_OPERATION_NAME, "ack");

    // Metrics on both sides.
    let sent = series(
        &producer_telemetry,
        semmetric::MESSAGING_CLIENT_SENT_MESSAGES,
    );
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].value(), 1);
    assert_eq!(
        point_attr(&sent[0], semattr::MESSAGING_DESTINATION_NAME),
        Some(Value::from(queue.clone()))
    );
    let publish_duration = series(
        &producer_telemetry,
        semmetric::MESSAGING_CLIENT_OPERATION_DURATION,
    );
    assert_eq!(publish_duration.len(), 1);
    assert_eq!(publish_duration[0].count(), 1);
    assert_eq!(
        point_attr(&publish_duration[0], semattr::MESSAGING_OPERATION_NAME),
        Some(Value::from("publish"))
    );
    assert_eq!(point_attr(&publish_duration[0], semattr::ERROR_TYPE), None);

    let consumed = series(
        &consumer_telemetry,
        semmetric::MESSAGING_CLIENT_CONSUMED_MESSAGES,
    );
    assert_eq!(consumed.iter().map(|p| p.value()).sum::<u64>(), 1);
    let processed = series(&consumer_telemetry, semmetric::MESSAGING_PROCESS_DURATION);
    assert_eq!(processed.len(), 1);
    assert_eq!(processed[0].count(), 1);
    let settled = series(
        &consumer_telemetry,
        semmetric::MESSAGING_CLIENT_OPERATION_DURATION,
    );
    assert_eq!(settled.len(), 1);
    assert_eq!(
        point_attr(&settled[0], semattr::MESSAGING_OPERATION_NAME),
        Some(Value::from("ack"))
    );

    // Exemplars: each duration histogram points at the very span it measured.
    let exemplar_span = |telemetry: &TestTelemetry, histogram: &str| {
        assert_exemplars_point_at_exported(telemetry.metrics(), histogram, &telemetry.spans());
        let exemplars = series(telemetry, histogram)[0]
            .histogram()
            .unwrap()
            .exemplars
            .clone();
        assert_eq!(exemplars.len(), 1);
        exemplars[0].span_id
    };
    assert_eq!(
        exemplar_span(
            &producer_telemetry,
            semmetric::MESSAGING_CLIENT_OPERATION_DURATION
        ),
        publish.span_context.span_id()
    );
    assert_eq!(
        exemplar_span(&consumer_telemetry, semmetric::MESSAGING_PROCESS_DURATION),
        process.span_context.span_id()
    );
    assert_eq!(
        exemplar_span(
            &consumer_telemetry,
            semmetric::MESSAGING_CLIENT_OPERATION_DURATION
        ),
        ack.span_context.span_id()
    );
}

#[tokio::test]
async fn nack_with_requeue_and_the_redelivery_are_visible() {
    let queue = unique_name("redeliver");
    let Worker {
        telemetry: consumer_telemetry,
        mut consumer,
        _connection,
        ..
    } = worker(&queue, ConsumerParent::CreationContext).await;

    let (producer_telemetry, producer, _producer_connection) =
        separate_producer(test_telemetry()).await;
    publish(&producer, &queue, b"flaky job").await;

    let mut first = next(&mut consumer).await;
    assert!(!first.redelivered());
    let failed: Result<(), std::io::Error> = first
        .process(|_| async { Err(std::io::Error::other("database unavailable")) })
        .await;
    assert!(failed.is_err());
    assert!(
        first
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await
            .unwrap()
    );

    let second = next(&mut consumer).await;
    assert!(second.redelivered());
    assert!(second.ack(BasicAckOptions::default()).await.unwrap());

    let publish = producer_telemetry.span(&format!("publish {queue}"));
    let mut processes = consumer_telemetry.spans_named(&format!("process {queue}"));
    processes.sort_by_key(|span| span.start_time);
    assert_eq!(processes.len(), 2);
    let receives = consumer_telemetry.spans_named(&format!("receive {queue}"));
    assert_eq!(receives.len(), 2);
    for span in processes.iter().chain(&receives) {
        assert_eq!(
            span.span_context.trace_id(),
            publish.span_context.trace_id()
        );
        assert!(links_to(span, &publish));
    }
    assert_attr(&processes[0], otel_amqp::AMQP_REDELIVERED, false);
    assert_attr(&processes[1], otel_amqp::AMQP_REDELIVERED, true);

    // The failed handler is on the first process span.
    assert!(matches!(processes[0].status, Status::Error { .. }));
    assert_attr(&processes[0], semattr::ERROR_TYPE, "std::io::error::Error");
    assert!(
        processes[0]
            .events
            .iter()
            .any(|event| event.name == "exception")
    );
    assert_eq!(processes[1].status, Status::Unset);

    let nack = consumer_telemetry.span(&format!("nack {queue}"));
    assert_child_of(&nack, &processes[0]);
    assert_attr(&nack, semattr::MESSAGING_OPERATION_NAME, "nack");
    assert_attr(&nack, otel_amqp::AMQP_REQUEUE, true);
    let ack = consumer_telemetry.span(&format!("ack {queue}"));
    assert_child_of(&ack, &processes[1]);

    let durations = series(&consumer_telemetry, semmetric::MESSAGING_PROCESS_DURATION);
    let failed_points: u64 = durations
        .iter()
        .filter(|p| point_attr(p, semattr::ERROR_TYPE).is_some())
        .map(|p| p.count())
        .sum();
    let ok_points: u64 = durations
        .iter()
        .filter(|p| point_attr(p, semattr::ERROR_TYPE).is_none())
        .map(|p| p.count())
        .sum();
    assert_eq!((failed_points, ok_points), (1, 1));
    let consumed = series(
        &consumer_telemetry,
        semmetric::MESSAGING_CLIENT_CONSUMED_MESSAGES,
    );
    assert_eq!(consumed.iter().map(|p| p.value()).sum::<u64>(), 2);
}

/// Publishes `headers` with a plain lapin channel: no instrumentation on the producer side.
async fn publish_plain(queue: &str, headers: Option<FieldTable>) -> lapin::Connection {
    let connection = connect().await;
    let channel = connection.create_channel().await.unwrap();
    // With confirms: the message is queued when this returns (a `basic_get` finds it).
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut properties = BasicProperties::default();
    if let Some(headers) = headers {
        properties = properties.with_headers(headers);
    }
    channel
        .basic_publish(
            "".into(),
            ShortString::from(queue),
            BasicPublishOptions::default(),
            b"plain",
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    connection
}

#[tokio::test]
async fn a_message_without_context_starts_a_new_trace() {
    let queue = unique_name("plain");
    let Worker {
        telemetry,
        mut consumer,
        _connection,
        ..
    } = worker(&queue, ConsumerParent::CreationContext).await;
    let _producer = publish_plain(&queue, None).await;

    let delivery = next(&mut consumer).await;
    assert!(!delivery.creation_context().span().span_context().is_valid());
    delivery
        .reject(BasicRejectOptions::default())
        .await
        .unwrap();

    let receive = telemetry.span(&format!("receive {queue}"));
    let process = telemetry.span(&format!("process {queue}"));
    assert_root(&receive);
    assert!(receive.links.is_empty());
    // No parent for either: two roots, of two traces, the process span linked to the receive.
    assert_root(&process);
    assert_eq!(process.links.len(), 1);
    assert!(links_to(&process, &receive));
    assert_ne!(
        process.span_context.trace_id(),
        receive.span_context.trace_id()
    );
    let reject = telemetry.span(&format!("reject {queue}"));
    assert_attr(&reject, otel_amqp::AMQP_REQUEUE, false);
}

#[tokio::test]
async fn garbage_in_traceparent_does_not_break_consumption() {
    let queue = unique_name("garbage");
    let Worker {
        telemetry,
        mut consumer,
        _connection,
        ..
    } = worker(&queue, ConsumerParent::CreationContext).await;

    let garbage = [
        long("garbage"),
        long("00-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-00f067aa0ba902b7-01"),
        AMQPValue::LongInt(42),
        AMQPValue::FieldTable(FieldTable::default()),
        AMQPValue::LongString(LongString::from(vec![0xff, 0xfe, 0x80])),
    ];
    let count = garbage.len();
    let mut connections = Vec::new();
    for value in garbage {
        let mut headers = FieldTable::default();
        headers.insert("traceparent".into(), value);
        headers.insert("tracestate".into(), long("=,=,==garbage"));
        headers.insert("x-kept".into(), long("yes"));
        connections.push(publish_plain(&queue, Some(headers)).await);
    }

    for _ in 0..count {
        let mut delivery = next(&mut consumer).await;
        assert!(!delivery.creation_context().span().span_context().is_valid());
        let kept = delivery
            .process(|message| {
                let kept = message
                    .properties
                    .headers()
                    .as_ref()
                    .and_then(|h| h.inner().get("x-kept").cloned());
                async move { Ok::<_, std::io::Error>(kept) }
            })
            .await
            .unwrap();
        assert_eq!(kept, Some(long("yes")));
        assert!(delivery.ack(BasicAckOptions::default()).await.unwrap());
    }

    let receives = telemetry.spans_named(&format!("receive {queue}"));
    assert_eq!(receives.len(), count);
    for receive in &receives {
        assert_root(receive);
        assert!(receive.links.is_empty());
    }
    let mut trace_ids: Vec<_> = receives.iter().map(|s| s.span_context.trace_id()).collect();
    trace_ids.dedup();
    assert_eq!(trace_ids.len(), count, "each message has its own trace");
}

#[tokio::test]
async fn basic_get_receives_inside_the_callers_span() {
    let queue = unique_name("pull");
    let telemetry = test_telemetry();
    let connection = connect().await;
    let channel = instrumented(connection.create_channel().await.unwrap(), &telemetry);
    declare(channel.get_ref(), &queue).await;

    let (producer_telemetry, producer, _producer_connection) =
        separate_producer(test_telemetry()).await;
    producer
        .get_ref()
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for body in [b"one", b"two"] {
        publish(&producer, &queue, body).await.await.unwrap();
    }
    let publishes = producer_telemetry.spans_named(&format!("publish {queue}"));
    assert_eq!(publishes.len(), 2);

    let job = telemetry.tracer().start("poll job");
    let job_cx = Context::current_with_span(job);
    let (first_count, got) = async {
        let first = channel
            .basic_get(queue.as_str().into(), BasicGetOptions::default())
            .await
            .unwrap()
            .expect("a message");
        let count = first.message_count();
        assert_eq!(first.data(), b"one");
        first.ack(BasicAckOptions::default()).await.unwrap();
        let second = channel
            .basic_get(queue.as_str().into(), BasicGetOptions::default())
            .await
            .unwrap()
            .expect("a message");
        second.ack(BasicAckOptions::default()).await.unwrap();
        let empty = channel
            .basic_get(queue.as_str().into(), BasicGetOptions::default())
            .await
            .unwrap();
        (count, empty.is_none())
    }
    .with_context(job_cx.clone())
    .await;
    job_cx.span().end();
    assert_eq!(first_count, Some(1));
    assert!(got, "the third get finds the queue empty");

    let job = telemetry.span("poll job");
    let mut receives = telemetry.spans_named(&format!("receive {queue}"));
    receives.sort_by_key(|s| s.start_time);
    assert_eq!(receives.len(), 3);
    let mut processes = telemetry.spans_named(&format!("process {queue}"));
    processes.sort_by_key(|s| s.start_time);
    assert_eq!(processes.len(), 2);
    let mut publishes = publishes;
    publishes.sort_by_key(|s| s.start_time);
    for ((receive, process), publish) in receives.iter().zip(&processes).zip(&publishes) {
        assert_eq!(receive.span_kind, SpanKind::Client);
        assert_child_of(receive, &job);
        assert!(links_to(receive, publish));
        assert_eq!(process.span_kind, SpanKind::Consumer);
        assert_child_of(process, publish);
        assert!(links_to(process, publish));
        assert!(
            links_to(process, receive),
            "process links to its receive span"
        );
    }
    // The empty get: a receive span without a link.
    assert_child_of(&receives[2], &job);
    assert!(receives[2].links.is_empty());

    let durations = series(&telemetry, semmetric::MESSAGING_CLIENT_OPERATION_DURATION);
    let receive_count: u64 = durations
        .iter()
        .filter(|p| {
            point_attr(p, semattr::MESSAGING_OPERATION_NAME) == Some(Value::from("receive"))
        })
        .map(|p| p.count())
        .sum();
    assert_eq!(receive_count, 3);
    let consumed = series(&telemetry, semmetric::MESSAGING_CLIENT_CONSUMED_MESSAGES);
    assert_eq!(consumed.iter().map(|p| p.value()).sum::<u64>(), 2);
}

#[tokio::test]
async fn ambient_parent_links_the_producer() {
    let queue = unique_name("ambient");
    let Worker {
        telemetry,
        mut consumer,
        _connection,
        ..
    } = worker(&queue, ConsumerParent::Ambient).await;
    let (producer_telemetry, producer, _producer_connection) =
        separate_producer(test_telemetry()).await;
    publish(&producer, &queue, b"batch item").await;

    let batch_cx = Context::current_with_span(telemetry.tracer().start("batch"));
    let delivery = next(&mut consumer).with_context(batch_cx.clone()).await;
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    batch_cx.span().end();

    let publish = producer_telemetry.span(&format!("publish {queue}"));
    let batch = telemetry.span("batch");
    let receive = telemetry.span(&format!("receive {queue}"));
    assert_child_of(&receive, &batch);
    assert!(links_to(&receive, &publish));
    let process = telemetry.span(&format!("process {queue}"));
    assert_child_of(&process, &batch);
    assert!(links_to(&process, &publish));
    assert!(links_to(&process, &receive));
}

#[tokio::test]
async fn a_consumer_inside_a_span_links_it_when_joining_the_producer() {
    let queue = unique_name("ambient-link");
    let Worker {
        telemetry,
        mut consumer,
        _connection,
        ..
    } = worker(&queue, ConsumerParent::CreationContext).await;
    let (producer_telemetry, producer, _producer_connection) =
        separate_producer(test_telemetry()).await;
    publish(&producer, &queue, b"x").await;
    let loop_cx = Context::current_with_span(telemetry.tracer().start("consume loop"));
    let delivery = next(&mut consumer).with_context(loop_cx.clone()).await;
    drop(delivery); // auto-settled elsewhere; the process span ends at the drop
    loop_cx.span().end();

    let publish = producer_telemetry.span(&format!("publish {queue}"));
    let consume_loop = telemetry.span("consume loop");
    let receive = telemetry.span(&format!("receive {queue}"));
    assert_child_of(&receive, &publish);
    assert!(links_to(&receive, &publish));
    assert!(links_to(&receive, &consume_loop));
    let process = telemetry.span(&format!("process {queue}"));
    assert_child_of(&process, &publish);
    assert!(links_to(&process, &publish));
    assert!(links_to(&process, &consume_loop));
    assert!(links_to(&process, &receive));
    assert_eq!(process.status, Status::Unset, "a drop is not an error");
}

#[tokio::test]
async fn a_context_already_in_the_headers_is_kept_and_linked() {
    let queue = unique_name("custom-context");
    let Worker {
        telemetry: consumer_telemetry,
        mut consumer,
        _connection,
        ..
    } = worker(&queue, ConsumerParent::CreationContext).await;
    let (producer_telemetry, producer, _producer_connection) =
        separate_producer(test_telemetry()).await;

    // A creation context the application attached itself.
    let creator = producer_telemetry.tracer().start("create job");
    let creator_cx = Context::current_with_span(creator);
    let mut headers = FieldTable::default();
    otel_amqp::inject_context(&creator_cx, &mut headers);
    creator_cx.span().end();
    let traceparent = headers.inner().get("traceparent").cloned().unwrap();

    producer
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default().with_headers(headers),
        )
        .await
        .unwrap();
    let delivery = next(&mut consumer).await;
    let received = delivery.delivery().properties.headers().clone().unwrap();
    delivery.ack(BasicAckOptions::default()).await.unwrap();
    assert_eq!(received.inner().get("traceparent"), Some(&traceparent));

    let create = producer_telemetry.span("create job");
    let publish = producer_telemetry.span(&format!("publish {queue}"));
    assert!(links_to(&publish, &create));
    let receive = consumer_telemetry.span(&format!("receive {queue}"));
    assert_child_of(&receive, &create);
    let process = consumer_telemetry.span(&format!("process {queue}"));
    assert_child_of(&process, &create);
}

#[tokio::test]
async fn publish_failures_are_recorded() {
    let telemetry = test_telemetry();
    let connection = connect().await;
    let channel = instrumented(connection.create_channel().await.unwrap(), &telemetry);
    channel
        .get_ref()
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();

    // Unroutable mandatory message: returned by the broker.
    let nowhere = unique_name("nowhere");
    let confirmation = channel
        .basic_publish(
            "".into(),
            nowhere.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            b"lost",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirmation.take_message().is_some());
    let returned = telemetry.span(&format!("publish {nowhere}"));
    assert!(matches!(returned.status, Status::Error { .. }));
    assert_attr(&returned, semattr::ERROR_TYPE, "no-route");

    // Unknown exchange: the broker closes the channel.
    let exchange = unique_name("no-exchange");
    let outcome = async {
        channel
            .basic_publish(
                exchange.as_str().into(),
                "rk".into(),
                BasicPublishOptions::default(),
                b"lost",
                BasicProperties::default(),
            )
            .await?
            .await
    }
    .await;
    assert!(outcome.is_err(), "publishing to a missing exchange fails");
    let failed = telemetry.span(&format!("publish {exchange}"));
    assert!(matches!(failed.status, Status::Error { .. }));
    assert_attr(&failed, semattr::ERROR_TYPE, "not-found");
    assert_attr(
        &failed,
        semattr::MESSAGING_DESTINATION_NAME,
        format!("{exchange}:rk"),
    );

    // The channel is closed now: publishing fails before reaching the broker.
    let closed = channel
        .basic_publish(
            "".into(),
            "rk".into(),
            BasicPublishOptions::default(),
            b"lost",
            BasicProperties::default(),
        )
        .await;
    assert!(closed.is_err());
    let closed = telemetry.span("publish rk");
    assert_attr(&closed, semattr::ERROR_TYPE, "invalid-channel-state");

    let sent = series(&telemetry, semmetric::MESSAGING_CLIENT_SENT_MESSAGES);
    let mut error_types: Vec<String> = sent
        .iter()
        .filter_map(|p| point_attr(p, semattr::ERROR_TYPE))
        .map(|v| v.as_str().into_owned())
        .collect();
    error_types.sort();
    assert_eq!(
        error_types,
        ["invalid-channel-state", "no-route", "not-found"]
    );
}

#[tracing::instrument(skip(body))]
fn score_job(body: &[u8]) -> usize {
    tracing::info!(len = body.len(), "scoring");
    body.len()
}

#[tokio::test]
async fn tracing_spans_interoperate() {
    use tracing::Instrument as _;

    let queue = unique_name("tracing");
    let telemetry = test_telemetry();
    let _guard = telemetry.set_tracing_default();
    let connection = connect().await;
    let channel = instrumented(connection.create_channel().await.unwrap(), &telemetry);
    declare(channel.get_ref(), &queue).await;
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "worker".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    // The publish span is a child of the user's `tracing` span.
    channel
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            b"job",
            BasicProperties::default(),
        )
        .instrument(tracing::info_span!("handle_request"))
        .await
        .unwrap();

    // A `#[tracing::instrument]` function run by the handler is a child of the process span,
    // and its log line carries the process span's trace.
    let mut delivery = next(&mut consumer).await;
    let scored = delivery
        .process(|message| async move { Ok::<_, std::io::Error>(score_job(&message.data)) })
        .await
        .unwrap();
    assert_eq!(scored, 3);
    let process_trace = delivery.context().span().span_context().trace_id();
    delivery.ack(BasicAckOptions::default()).await.unwrap();

    let request = telemetry.span("handle_request");
    let publish = telemetry.span(&format!("publish {queue}"));
    assert_child_of(&publish, &request);
    let process = telemetry.span(&format!("process {queue}"));
    assert_eq!(
        process.span_context.trace_id(),
        request.span_context.trace_id()
    );
    let score = telemetry.span("score_job");
    assert_child_of(&score, &process);
    let logs = telemetry.log_output();
    assert!(
        logs.lines()
            .any(|line| line.contains("scoring") && line.contains(&process_trace.to_string())),
        "{logs}"
    );
}

#[tokio::test]
async fn an_unsampled_publish_records_nothing_but_still_propagates() {
    let queue = unique_name("unsampled");
    let Worker {
        telemetry: consumer_telemetry,
        mut consumer,
        _connection,
        ..
    } = worker(&queue, ConsumerParent::CreationContext).await;
    let (producer_telemetry, producer, _producer_connection) = separate_producer(
        telemetry_with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff),
    )
    .await;
    publish(&producer, &queue, b"x").await;
    let delivery = next(&mut consumer).await;
    let headers = delivery.delivery().properties.headers().clone().unwrap();
    let creation = delivery.creation_context().span().span_context().clone();
    delivery.ack(BasicAckOptions::default()).await.unwrap();

    assert!(producer_telemetry.spans().is_empty());
    let Some(AMQPValue::LongString(traceparent)) = headers.inner().get("traceparent") else {
        panic!("no traceparent in {headers:?}");
    };
    assert!(
        traceparent.to_string().ends_with("-00"),
        "not sampled: {traceparent}"
    );
    assert!(creation.is_valid() && !creation.is_sampled());
    let receive = consumer_telemetry.span(&format!("receive {queue}"));
    assert_eq!(receive.span_context.trace_id(), creation.trace_id());
    // Metrics are recorded whether or not the span is sampled.
    let sent = series(
        &producer_telemetry,
        semmetric::MESSAGING_CLIENT_SENT_MESSAGES,
    );
    assert_eq!(sent.iter().map(|p| p.value()).sum::<u64>(), 1);
}

/// A pushed message's `receive` and `process` spans are both entry spans for otel-core's
/// `RuleSampler` (siblings under the producer's remote context): each is decided by its own
/// rules, whatever the producer sampled, and the settle span follows `process`.
#[tokio::test]
async fn rule_sampler_rules_decide_pushed_messages() {
    use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};
    use otel_core::sampling::{RuleMatch, RuleSampler};

    for (dropped, kept, gone) in [
        ("receive*", &["process", "ack"][..], &["receive"][..]),
        ("process*", &["receive"][..], &["process", "ack"][..]),
    ] {
        let queue = unique_name("rules");
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(
                RuleSampler::builder()
                    .rule(RuleMatch::name(dropped), Sampler::AlwaysOff)
                    .fallback(Sampler::AlwaysOn)
                    .build(),
            )
            .with_simple_exporter(exporter.clone())
            .build();
        let (_connection, mut consumer) = consumer_on(&provider, &queue).await;
        // The producer samples its trace.
        let (producer_telemetry, producer, _producer_connection) =
            separate_producer(test_telemetry()).await;
        publish(&producer, &queue, b"x").await;
        let delivery = next(&mut consumer).await;
        assert!(
            delivery
                .creation_context()
                .span()
                .span_context()
                .is_sampled()
        );
        delivery.ack(BasicAckOptions::default()).await.unwrap();

        assert_eq!(producer_telemetry.spans().len(), 1);
        let names: Vec<String> = exporter
            .get_finished_spans()
            .unwrap()
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        for operation in kept {
            assert!(
                names.contains(&format!("{operation} {queue}")),
                "rule {dropped}: {operation} missing from {names:?}"
            );
        }
        for operation in gone {
            assert!(
                names.iter().all(|n| !n.starts_with(operation)),
                "rule {dropped}: {operation} exported in {names:?}"
            );
        }
    }
}

/// otel-core's tail mode decides a local trace when its local root ends. A pushed message's
/// `process` span is a local root of its own (the zero-length `receive` span is not its
/// parent), so a failed processing is exported, with its handler's and settle spans, as soon
/// as the message is settled, not after the tail buffer's age sweep (30 s by default).
#[tokio::test]
async fn tail_mode_exports_a_failed_processing_when_it_is_settled() {
    use opentelemetry::trace::{Span as _, TracerProvider as _};
    use opentelemetry_sdk::trace::{
        InMemorySpanExporter, Sampler, SdkTracerProvider, SimpleSpanProcessor,
    };
    use otel_core::sampling::tail::{TailConfig, TailSampler, TailSpanProcessor};

    let queue = unique_name("tail");
    let exporter = InMemorySpanExporter::default();
    // The default maximum age (30 s): the test asserts long before any sweep.
    let tail = TailSpanProcessor::new(
        SimpleSpanProcessor::new(exporter.clone()),
        TailConfig::new(),
    );
    let stats = tail.stats();
    // Head sampling keeps nothing: whatever is exported, tail mode kept.
    let provider = SdkTracerProvider::builder()
        .with_sampler(TailSampler::new(Sampler::AlwaysOff))
        .with_span_processor(tail)
        .build();
    let (_connection, mut consumer) = consumer_on(&provider, &queue).await;
    let (producer_telemetry, producer, _producer_connection) =
        separate_producer(test_telemetry()).await;
    publish(&producer, &queue, b"job").await;

    let started = std::time::Instant::now();
    let mut delivery = next(&mut consumer).await;
    let tracer = provider.tracer("handler");
    let failed: Result<(), std::io::Error> = delivery
        .process(|_| async {
            // A span of the handler, under the process span.
            let mut query = tracer.start("load account");
            query.end();
            Err(std::io::Error::other("account locked"))
        })
        .await;
    assert!(failed.is_err());
    delivery
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();

    // Right after the settlement, with nothing waiting for a sweep.
    let exported = exporter.get_finished_spans().unwrap();
    let names: Vec<&str> = exported.iter().map(|s| s.name.as_ref()).collect();
    let named = |name: String| {
        exported
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} not exported; exported: {names:?}"))
    };
    let publish = producer_telemetry.span(&format!("publish {queue}"));
    let process = named(format!("process {queue}"));
    let handler = named("load account".to_owned());
    let reject = named(format!("reject {queue}"));
    assert!(matches!(process.status, Status::Error { .. }));
    assert_child_of(process, &publish);
    assert!(process.parent_span_is_remote, "process is a local root");
    assert_child_of(handler, process);
    assert_child_of(reject, process);
    for span in [process, handler, reject] {
        assert!(span.span_context.is_sampled(), "tail mode's exported copy");
    }
    // The receive span is a local trace of its own, with nothing notable: discarded.
    assert!(names.iter().all(|n| !n.starts_with("receive")), "{names:?}");
    assert_eq!(exported.len(), 3, "{names:?}");
    assert_eq!(stats.traces_kept(), 1);
    assert_eq!(stats.spans_kept(), 3);
    assert_eq!(stats.traces_discarded(), 1);
    assert_eq!(stats.spans_discarded(), 1);
    assert_eq!(
        stats.spans_buffered(),
        0,
        "nothing left waiting for the sweep"
    );
    assert_eq!(stats.spans_evicted(), 0);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "decided well before the 30 s maximum age"
    );
}

/// Every attribute value of every metric point `telemetry` exported that names a
/// broker-generated queue, as `instrument: key=value`.
fn generated_names_in_metrics(telemetry: &TestTelemetry) -> Vec<String> {
    let snapshot = telemetry.metrics().snapshot();
    let mut found = Vec::new();
    for metric in snapshot.iter() {
        for series in &metric.series {
            for kv in &series.attributes {
                let value = kv.value.as_str();
                if value.contains("amq.gen-") {
                    found.push(format!("{}: {}={value}", metric.name, kv.key));
                }
            }
        }
    }
    found
}

/// Asserts every point of every instrument in `names` has no `messaging.destination.name` and
/// `messaging.destination.anonymous = true`; returns how many points there were.
fn assert_anonymous_points(telemetry: &TestTelemetry, names: &[&str]) -> usize {
    let mut points = 0;
    for name in names {
        for point in series(telemetry, name) {
            assert_eq!(
                point_attr(&point, semattr::MESSAGING_DESTINATION_NAME),
                None,
                "{name}: {point:?}"
            );
            assert_eq!(
                point_attr(&point, semattr::MESSAGING_DESTINATION_ANONYMOUS),
                Some(Value::Bool(true)),
                "{name}: {point:?}"
            );
            points += 1;
        }
    }
    points
}

#[tokio::test]
async fn rpc_reply_queues_stay_out_of_metric_labels_and_span_names() {
    // RabbitMQ's RPC pattern: the client declares a server-named reply queue, sends the request
    // with `reply_to` set to it; the server replies through the default exchange with the
    // reply queue's generated name as routing key.
    let request_queue = unique_name("rpc");
    let client_telemetry = test_telemetry();
    let client_connection = connect().await;
    let client = instrumented(
        client_connection.create_channel().await.unwrap(),
        &client_telemetry,
    );
    declare(client.get_ref(), &request_queue).await;
    let reply_queue = server_named_queue(client.get_ref()).await;
    assert!(reply_queue.starts_with("amq.gen-"), "{reply_queue}");
    let mut replies = client
        .basic_consume(
            reply_queue.as_str().into(),
            "rpc-client".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    let (server_telemetry, server, _server_connection) = separate_producer(test_telemetry()).await;
    server
        .get_ref()
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut requests = server
        .basic_consume(
            request_queue.as_str().into(),
            "rpc-server".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    client
        .basic_publish(
            "".into(),
            request_queue.as_str().into(),
            BasicPublishOptions::default(),
            b"fib 10",
            BasicProperties::default()
                .with_reply_to(reply_queue.as_str().into())
                .with_correlation_id("call-1".into()),
        )
        .await
        .unwrap();

    let request = next(&mut requests).await;
    let reply_to = request
        .delivery()
        .properties
        .reply_to()
        .clone()
        .expect("reply_to");
    let confirmation = server
        .basic_publish(
            "".into(),
            reply_to,
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            b"55",
            BasicProperties::default().with_correlation_id("call-1".into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirmation.is_ack());
    assert!(
        confirmation.take_message().is_none(),
        "the reply was routed"
    );
    request.ack(BasicAckOptions::default()).await.unwrap();

    let reply = next(&mut replies).await;
    assert_eq!(reply.data(), b"55");
    reply.ack(BasicAckOptions::default()).await.unwrap();

    // Spans: the generated name is the destination of the reply's spans, never their name.
    let reply_publish = server_telemetry.span("publish");
    assert_eq!(reply_publish.span_kind, SpanKind::Producer);
    assert_attr(
        &reply_publish,
        semattr::MESSAGING_DESTINATION_NAME,
        reply_queue.clone(),
    );
    assert_attr(
        &reply_publish,
        semattr::MESSAGING_DESTINATION_ANONYMOUS,
        true,
    );
    let request_process = server_telemetry.span(&format!("process {request_queue}"));
    assert_no_attr(&request_process, semattr::MESSAGING_DESTINATION_ANONYMOUS);
    for (name, kind) in [
        ("receive", SpanKind::Client),
        ("process", SpanKind::Consumer),
        ("ack", SpanKind::Client),
    ] {
        let span = client_telemetry.span(name);
        assert_eq!(span.span_kind, kind, "{name}");
        assert_attr(
            &span,
            semattr::MESSAGING_DESTINATION_NAME,
            reply_queue.clone(),
        );
        assert_attr(&span, semattr::MESSAGING_DESTINATION_ANONYMOUS, true);
        if name != "ack" {
            assert_attr(&span, semattr::MESSAGING_MESSAGE_CONVERSATION_ID, "call-1");
        }
    }
    for telemetry in [&client_telemetry, &server_telemetry] {
        for span in telemetry.spans() {
            assert!(!span.name.contains("amq.gen-"), "span name {:?}", span.name);
        }
    }

    // Metrics: no series per RPC client.
    assert_eq!(
        generated_names_in_metrics(&server_telemetry),
        Vec::<String>::new()
    );
    assert_eq!(
        generated_names_in_metrics(&client_telemetry),
        Vec::<String>::new()
    );
    let reply_points = |telemetry: &TestTelemetry, name: &str| -> Vec<_> {
        series(telemetry, name)
            .into_iter()
            .filter(|p| point_attr(p, semattr::MESSAGING_DESTINATION_ANONYMOUS).is_some())
            .collect()
    };
    let sent = reply_points(&server_telemetry, semmetric::MESSAGING_CLIENT_SENT_MESSAGES);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].value(), 1);
    assert_eq!(
        point_attr(&sent[0], semattr::MESSAGING_DESTINATION_NAME),
        None
    );
    assert_eq!(
        point_attr(&sent[0], semattr::MESSAGING_DESTINATION_ANONYMOUS),
        Some(Value::Bool(true))
    );
    // The request's own series keep their (named) destination.
    let request_sent = series(&client_telemetry, semmetric::MESSAGING_CLIENT_SENT_MESSAGES);
    assert_eq!(request_sent.len(), 1);
    assert_eq!(
        point_attr(&request_sent[0], semattr::MESSAGING_DESTINATION_NAME),
        Some(Value::from(request_queue.clone()))
    );
    assert_eq!(
        point_attr(&request_sent[0], semattr::MESSAGING_DESTINATION_ANONYMOUS),
        None
    );
    // Every point about the reply, on the client side, is anonymous and unnamed.
    let consumed = series(
        &client_telemetry,
        semmetric::MESSAGING_CLIENT_CONSUMED_MESSAGES,
    );
    assert_eq!(consumed.iter().map(|p| p.value()).sum::<u64>(), 1);
    let points = assert_anonymous_points(
        &client_telemetry,
        &[
            semmetric::MESSAGING_CLIENT_CONSUMED_MESSAGES,
            semmetric::MESSAGING_PROCESS_DURATION,
        ],
    );
    assert_eq!(points, 2);
    let settle: Vec<_> = series(
        &client_telemetry,
        semmetric::MESSAGING_CLIENT_OPERATION_DURATION,
    )
    .into_iter()
    .filter(|p| point_attr(p, semattr::MESSAGING_OPERATION_NAME) == Some(Value::from("ack")))
    .collect();
    assert_eq!(settle.len(), 1);
    assert_eq!(
        point_attr(&settle[0], semattr::MESSAGING_DESTINATION_NAME),
        None
    );
    assert_eq!(
        point_attr(&settle[0], semattr::MESSAGING_DESTINATION_ANONYMOUS),
        Some(Value::Bool(true))
    );
}

#[tokio::test]
async fn basic_get_on_a_server_named_queue_is_anonymous_not_the_default_exchange() {
    let telemetry = test_telemetry();
    let connection = connect().await;
    let channel = instrumented(connection.create_channel().await.unwrap(), &telemetry);
    let queue = server_named_queue(channel.get_ref()).await;
    assert!(queue.starts_with("amq.gen-"), "{queue}");
    for body in [b"one", b"two"] {
        channel
            .get_ref()
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .unwrap();
    }

    // The empty name: the queue last declared on this channel.
    let by_empty_name = tokio::time::timeout(
        WAIT,
        channel.basic_get("".into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .unwrap()
    .unwrap()
    .expect("a message");
    assert_eq!(by_empty_name.data(), b"one");
    drop(by_empty_name);
    let by_generated_name = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(by_generated_name.data(), b"two");
    drop(by_generated_name);

    let mut receives = telemetry.spans_named("receive");
    receives.sort_by_key(|s| s.start_time);
    assert_eq!(receives.len(), 2);
    for receive in &receives {
        assert_eq!(receive.span_kind, SpanKind::Client);
        assert_attr(receive, semattr::MESSAGING_DESTINATION_ANONYMOUS, true);
        assert_ne!(
            attr(receive, semattr::MESSAGING_DESTINATION_NAME),
            Some(&Value::from("amq.default")),
            "basic.get never touches the default exchange"
        );
    }
    // Nothing names the queue asked for by the empty name; the generated name is only on the
    // span.
    assert_no_attr(&receives[0], semattr::MESSAGING_DESTINATION_NAME);
    assert_attr(
        &receives[1],
        semattr::MESSAGING_DESTINATION_NAME,
        queue.clone(),
    );
    // The process spans know the routing key the message came with.
    for process in telemetry.spans_named("process") {
        assert_attr(&process, semattr::MESSAGING_DESTINATION_NAME, queue.clone());
        assert_attr(&process, semattr::MESSAGING_DESTINATION_ANONYMOUS, true);
    }

    assert_eq!(generated_names_in_metrics(&telemetry), Vec::<String>::new());
    let points = assert_anonymous_points(
        &telemetry,
        &[
            semmetric::MESSAGING_CLIENT_OPERATION_DURATION,
            semmetric::MESSAGING_CLIENT_CONSUMED_MESSAGES,
            semmetric::MESSAGING_PROCESS_DURATION,
        ],
    );
    assert!(points >= 3, "{points} points");
    let receive_count: u64 = series(&telemetry, semmetric::MESSAGING_CLIENT_OPERATION_DURATION)
        .iter()
        .filter(|p| {
            point_attr(p, semattr::MESSAGING_OPERATION_NAME) == Some(Value::from("receive"))
        })
        .map(|p| p.count())
        .sum();
    assert_eq!(receive_count, 2);
}

#[tokio::test]
async fn a_confirm_dropped_or_unwrapped_is_not_counted_as_a_success() {
    let queue = unique_name("unknown-confirm");
    let telemetry = test_telemetry();
    let connection = connect().await;
    let channel = instrumented(connection.create_channel().await.unwrap(), &telemetry);
    declare(channel.get_ref(), &queue).await;
    channel
        .get_ref()
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();

    let confirmed = publish(&channel, &queue, b"awaited").await.await.unwrap();
    assert!(confirmed.is_ack());
    drop(publish(&channel, &queue, b"dropped").await);
    let unwrapped = publish(&channel, &queue, b"unwrapped").await.into_inner();
    assert!(unwrapped.await.unwrap().is_ack());
    assert!(
        channel
            .get_ref()
            .wait_for_confirms()
            .await
            .unwrap()
            .is_empty()
    );

    let mut spans = telemetry.spans_named(&format!("publish {queue}"));
    spans.sort_by_key(|s| s.start_time);
    assert_eq!(spans.len(), 3);
    assert_no_attr(&spans[0], otel_amqp::AMQP_CONFIRM_UNKNOWN);
    for span in &spans[1..] {
        assert_attr(span, otel_amqp::AMQP_CONFIRM_UNKNOWN, true);
        assert_eq!(span.status, Status::Unset);
        assert_no_attr(span, semattr::ERROR_TYPE);
    }

    let unknown = |p: &otel_core::metrics::SeriesSnapshot| {
        point_attr(p, otel_amqp::AMQP_CONFIRM_UNKNOWN) == Some(Value::Bool(true))
    };
    for name in [
        semmetric::MESSAGING_CLIENT_SENT_MESSAGES,
        semmetric::MESSAGING_CLIENT_OPERATION_DURATION,
    ] {
        let points = series(&telemetry, name);
        assert_eq!(points.len(), 2, "{name}: {points:?}");
        for point in &points {
            assert_eq!(point_attr(point, semattr::ERROR_TYPE), None, "{name}");
            assert_eq!(
                point_attr(point, semattr::MESSAGING_DESTINATION_NAME),
                Some(Value::from(queue.clone()))
            );
        }
        let (unknown_points, successes): (Vec<_>, Vec<_>) =
            points.into_iter().partition(|p| unknown(p));
        let total = |points: &[otel_core::metrics::SeriesSnapshot]| -> u64 {
            points
                .iter()
                .map(|p| {
                    if p.counter().is_some() {
                        p.value()
                    } else {
                        p.count()
                    }
                })
                .sum()
        };
        assert_eq!(
            total(&successes),
            1,
            "{name}: only the awaited confirm is a success"
        );
        assert_eq!(total(&unknown_points), 2, "{name}");
    }
    // Each series' exemplars point at publish spans that were exported (one bucket exemplar
    // at least per series).
    let exemplars = assert_exemplars_point_at_exported(
        telemetry.metrics(),
        semmetric::MESSAGING_CLIENT_OPERATION_DURATION,
        &spans,
    );
    assert!(exemplars >= 2, "{exemplars} exemplars");
}

/// A pulled message is processed as the consumer parent says, like a pushed one: with the
/// ambient parent, or with no producer context in the message, the process span is a child
/// of the caller's span (not of the ended receive span) and links to the receive span.
#[tokio::test]
async fn a_pulled_message_is_processed_under_the_callers_span() {
    for (parent, with_context) in [
        (ConsumerParent::Ambient, true),
        (ConsumerParent::CreationContext, false),
    ] {
        let queue = unique_name("pull-parent");
        let telemetry = test_telemetry();
        let connection = connect().await;
        let channel = InstrumentedChannel::builder(connection.create_channel().await.unwrap())
            .with_tracer_provider(telemetry.tracer_provider().clone())
            .with_metrics(telemetry.metrics().clone())
            .with_consumer_parent(parent)
            .build();
        declare(channel.get_ref(), &queue).await;
        let (producer_telemetry, producer, _producer_connection) =
            separate_producer(test_telemetry()).await;
        let _plain = if with_context {
            producer
                .get_ref()
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .unwrap();
            publish(&producer, &queue, b"job").await.await.unwrap();
            None
        } else {
            Some(publish_plain(&queue, None).await)
        };

        let job_cx = Context::current_with_span(telemetry.tracer().start("poll job"));
        async {
            let delivery = channel
                .basic_get(queue.as_str().into(), BasicGetOptions::default())
                .await
                .unwrap()
                .expect("a message");
            delivery.ack(BasicAckOptions::default()).await.unwrap();
        }
        .with_context(job_cx.clone())
        .await;
        job_cx.span().end();

        let job = telemetry.span("poll job");
        let receive = telemetry.span(&format!("receive {queue}"));
        let process = telemetry.span(&format!("process {queue}"));
        assert_child_of(&receive, &job);
        assert_child_of(&process, &job);
        assert!(links_to(&process, &receive), "{:?}", process.links);
        if with_context {
            let publish = producer_telemetry.span(&format!("publish {queue}"));
            assert!(links_to(&process, &publish));
        }
    }
}

/// Settlement spans carry the message's delivery tag and routing key, as the RabbitMQ
/// conventions ask of every span about a message.
#[tokio::test]
async fn settle_spans_carry_the_delivery_tag_and_routing_key() {
    let queue = unique_name("settle-ids");
    let Worker {
        telemetry,
        mut consumer,
        _connection,
    } = worker(&queue, ConsumerParent::CreationContext).await;
    let _plain = publish_plain(&queue, None).await;
    let delivery = next(&mut consumer).await;
    delivery.ack(BasicAckOptions::default()).await.unwrap();

    let ack = telemetry.span(&format!("ack {queue}"));
    assert_eq!(
        attr(&ack, semattr::MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG),
        Some(&Value::I64(1))
    );
    assert_attr(
        &ack,
        semattr::MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY,
        queue.clone(),
    );
}

/// A publish dropped while lapin sends it (a timeout) is measured as cancelled: a sent-message
/// point and a duration point with `error.type=cancelled`.
#[tokio::test]
async fn a_cancelled_publish_is_measured() {
    use futures_util::FutureExt as _;

    let queue = unique_name("cancelled-publish");
    let telemetry = test_telemetry();
    let connection = connect().await;
    let channel = instrumented(connection.create_channel().await.unwrap(), &telemetry);
    declare(channel.get_ref(), &queue).await;
    let mut cancelled = false;
    for _ in 0..20 {
        let publish = channel.basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            b"maybe",
            BasicProperties::default(),
        );
        if publish.now_or_never().is_none() {
            cancelled = true;
            break;
        }
    }
    assert!(cancelled, "every publish completed at its first poll");

    let span = telemetry
        .spans_named(&format!("publish {queue}"))
        .into_iter()
        .find(|s| attr(s, semattr::ERROR_TYPE).is_some())
        .expect("a cancelled publish span");
    assert_attr(&span, semattr::ERROR_TYPE, "cancelled");
    for name in [
        semmetric::MESSAGING_CLIENT_SENT_MESSAGES,
        semmetric::MESSAGING_CLIENT_OPERATION_DURATION,
    ] {
        let points = series(&telemetry, name);
        assert!(
            points
                .iter()
                .any(|p| { point_attr(p, semattr::ERROR_TYPE) == Some(Value::from("cancelled")) }),
            "{name}: {points:?}"
        );
    }
}

/// RabbitMQ's direct reply-to addresses (a token per RPC client's channel) stay off span names
/// and metric points, like server-named queues.
#[tokio::test]
async fn direct_reply_to_addresses_stay_out_of_metric_labels_and_span_names() {
    let queue = unique_name("direct-rpc");
    let client_telemetry = test_telemetry();
    let client_connection = connect().await;
    let client = instrumented(
        client_connection.create_channel().await.unwrap(),
        &client_telemetry,
    );
    declare(client.get_ref(), &queue).await;
    let mut replies = client
        .basic_consume(
            "amq.rabbitmq.reply-to".into(),
            "rpc-client".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    client
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            b"ping",
            BasicProperties::default().with_reply_to("amq.rabbitmq.reply-to".into()),
        )
        .await
        .unwrap();

    let server_telemetry = test_telemetry();
    let server_connection = connect().await;
    let server = instrumented(
        server_connection.create_channel().await.unwrap(),
        &server_telemetry,
    );
    let request = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(request) = server
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                break request;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the request arrives");
    let reply_to = request
        .delivery()
        .properties
        .reply_to()
        .clone()
        .expect("a reply address")
        .to_string();
    assert!(reply_to.starts_with("amq.rabbitmq.reply-to."), "{reply_to}");
    server
        .basic_publish(
            "".into(),
            reply_to.as_str().into(),
            BasicPublishOptions::default(),
            b"pong",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    drop(request);
    let reply = tokio::time::timeout(WAIT, replies.next())
        .await
        .expect("the reply arrives")
        .expect("a delivery")
        .unwrap();
    assert_eq!(reply.data(), b"pong");
    drop(reply);

    assert_eq!(server_telemetry.span("publish").name, "publish");
    for telemetry in [&server_telemetry, &client_telemetry] {
        let snapshot = telemetry.metrics().snapshot();
        for metric in snapshot.iter() {
            for series in &metric.series {
                for kv in &series.attributes {
                    assert!(
                        !kv.value.as_str().contains("reply-to."),
                        "{}: {}={}",
                        metric.name,
                        kv.key,
                        kv.value.as_str()
                    );
                }
            }
        }
        for span in telemetry.spans() {
            assert!(!span.name.contains("reply-to."), "{}", span.name);
        }
    }
}
