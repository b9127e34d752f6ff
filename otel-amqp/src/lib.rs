//! OpenTelemetry instrumentation for [lapin](https://docs.rs/lapin) (RabbitMQ, AMQP 0-9-1).
//!
//! A job handed from one service to another over RabbitMQ stays in one distributed trace: the
//! publisher's context travels in the AMQP message headers, and the consumer's spans join it.
//!
//! - [`InstrumentedChannel`] wraps a [`lapin::Channel`]. Its
//!   [`basic_publish`](InstrumentedChannel::basic_publish) takes lapin's arguments, records a
//!   PRODUCER span and injects its context into the message headers; the publisher confirm it
//!   returns ([`InstrumentedPublisherConfirm`]) keeps the span open until the broker answers.
//! - [`InstrumentedConsumer`] wraps a [`lapin::Consumer`]: a stream of
//!   [`InstrumentedDelivery`], each carrying the producer's context and an open process span
//!   that the handler runs in ([`InstrumentedDelivery::process`]) and that settling
//!   ([`ack`](InstrumentedDelivery::ack), [`nack`](InstrumentedDelivery::nack),
//!   [`reject`](InstrumentedDelivery::reject)) ends.
//! - [`InstrumentedChannel::basic_get`] does the same for pull-style consumption.
//! - [`AmqpHeaderInjector`] and [`AmqpHeaderExtractor`] are the carriers between
//!   OpenTelemetry propagators and AMQP header tables, for code that publishes or consumes
//!   without the wrappers.
//!
//! ```no_run
//! # async fn run() -> lapin::Result<()> {
//! use futures_util::StreamExt;
//! use lapin::{BasicProperties, Connection, ConnectionProperties, options::*, types::FieldTable};
//! use otel_amqp::InstrumentedChannel;
//!
//! let connection =
//!     Connection::connect("amqp://127.0.0.1:5672/%2f", ConnectionProperties::default()).await?;
//! let channel = InstrumentedChannel::builder(connection.create_channel().await?)
//!     .with_server("127.0.0.1", 5672)
//!     .build();
//!
//! // API gateway: inside the request span.
//! channel
//!     .basic_publish("".into(), "jobs".into(), BasicPublishOptions::default(), b"job 42",
//!                    BasicProperties::default())
//!     .await?;
//!
//! // Worker (another process): its spans join the gateway's trace.
//! let mut consumer = channel
//!     .basic_consume("jobs".into(), "worker".into(), BasicConsumeOptions::default(),
//!                    FieldTable::default())
//!     .await?;
//! while let Some(delivery) = consumer.next().await {
//!     let mut delivery = delivery?;
//!     let result = delivery
//!         .process(|message| async move { std::str::from_utf8(&message.data).map(str::len) })
//!         .await;
//!     if result.is_ok() {
//!         delivery.ack(BasicAckOptions::default()).await?;
//!     } else {
//!         delivery.reject(BasicRejectOptions::default()).await?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Trace structure
//!
//! Span names follow the messaging conventions' `{operation} {destination}`; the destination is
//! left out when it is a broker-generated (`amq.gen-…`) queue name.
//!
//! | span | kind | parent | links | when |
//! | --- | --- | --- | --- | --- |
//! | `publish {exchange}` (`publish {routing key}` on the default exchange, `publish amq.default` without either) | PRODUCER | current context | a trace context the caller already put in the headers | each `basic_publish`; ends when the confirm resolves in confirm mode |
//! | `receive {queue}` (push) | CONSUMER | producer's span (see below) | producer's span; consumer's current span | each delivery taken from an [`InstrumentedConsumer`]; ends at once |
//! | `process {queue}` (push) | CONSUMER | the `receive` span | producer's span; consumer's current span | opened with the delivery, ended by settling or dropping it |
//! | `receive {queue}` (pull) | CLIENT | current context | producer's span (added when the message arrives) | each `basic_get`, covering the round trip |
//! | `process {queue}` (pull) | CONSUMER | producer's span (see below) | producer's span; the `receive` span | opened with the message, ended by settling or dropping it |
//! | `ack {queue}`, `nack {queue}`, `reject {queue}` | CLIENT | the `process` span | | each settlement through [`InstrumentedDelivery`] |
//!
//! **Parent or link.** The messaging conventions make a link to the producer's context (the
//! "creation context") the required correlation, and allow the creation context to be the
//! parent of the consumer spans of a single message. This crate does both by default
//! ([`ConsumerParent::CreationContext`]): consumer spans are in the producer's trace, so one
//! trace shows the request, the publish and the worker's processing, and every consumer span
//! also links to the publish span. If the consumer runs inside a span of its own, that span is
//! added as a second link. With [`ConsumerParent::Ambient`] the consumer's current context is
//! the parent and the producer is only linked. A message without a valid context in its
//! headers (plain publisher, or garbage in `traceparent`) is not an error: its spans have the
//! consumer's current context as parent, which starts a new trace in a worker loop.
//!
//! The push-side `receive` span departs from the latest conventions, which want only a
//! `process` span for push consumption: it marks the moment the message was handed to the
//! application (and carries the count in `messaging.client.consumed.messages`), so the time a
//! message waited before its processing started or ended is visible in the trace.
//!
//! # Attributes
//!
//! On every span: `messaging.system` = `rabbitmq`, `messaging.operation.name` (`publish`,
//! `receive`, `process`, `ack`, `nack`, `reject`), `messaging.operation.type` (`send`,
//! `receive`, `process`, `settle`), `messaging.destination.name`, and `server.address` /
//! `server.port` when configured with [`InstrumentedChannelBuilder::with_server`].
//!
//! `messaging.destination.name` follows the RabbitMQ conventions: `{exchange}:{routing key}`
//! when publishing (either part alone when the other is empty, `amq.default` when both are),
//! `{exchange}:{routing key}:{queue}` when consuming (empty parts left out, the queue left out
//! when it equals the routing key or was named by the broker). For `basic_get` the `receive`
//! span's destination is the queue.
//!
//! On spans about one message (publish, receive, process):
//! `messaging.rabbitmq.destination.routing_key` (when not empty), `messaging.message.id` and
//! `messaging.message.conversation_id` (the `message_id` and `correlation_id` properties, when
//! set), `messaging.message.body.size`. On consumer spans also
//! `messaging.rabbitmq.message.delivery_tag` and [`AMQP_REDELIVERED`]
//! (`amqp.message.redelivered`). On settle spans [`AMQP_REQUEUE`] (`amqp.settle.requeue`, nack
//! and reject) and [`AMQP_MULTIPLE`] (`amqp.settle.multiple`, ack and nack).
//!
//! On failure: span status Error, `error.type` and an `exception` event. Error types are the
//! AMQP reply names in lower case for broker errors (`not-found`, `no-route`,
//! `precondition-failed`, `channel-error`, …), a fixed name per lapin error kind otherwise
//! (`io-error`, `invalid-channel-state`, …), `nack` for a negative publisher confirm,
//! `not-settled` when an ack/nack/reject sent nothing (already settled, or channel closed),
//! `cancelled` when a publish future is dropped before completing, and the error's type name
//! for a failed [`process`](InstrumentedDelivery::process) handler.
//!
//! Never recorded: message bodies, header values, connection credentials.
//!
//! # Metrics
//!
//! | metric | instrument | recorded for | attributes |
//! | --- | --- | --- | --- |
//! | `messaging.client.operation.duration` (s) | histogram | publish (up to the confirm), pull receive, ack/nack/reject | system, operation name and type, destination, server, `error.type` |
//! | `messaging.process.duration` (s) | histogram | process spans | system, operation name and type, destination, server, `error.type` |
//! | `messaging.client.sent.messages` | counter | each publish | system, operation name and type, destination, server, `error.type` |
//! | `messaging.client.consumed.messages` | counter | each delivered or fetched message | system, operation name and type, destination, server |
//!
//! The histograms are `otel-core`'s exemplar histograms (bucket boundaries: the semantic
//! conventions' duration buckets): each duration is recorded with the context of the span it
//! measures, so a bucket's exemplar opens the very publish, receive, process or settle span.
//!
//! # Cost
//!
//! `cargo bench -p otel-amqp --bench publish` publishes with publisher confirms to the RabbitMQ
//! on loopback, interleaving lapin's channel, lapin's channel with a `traceparent` header, and
//! the instrumented channel (sampled span, batch span processor, exemplar histograms). On a
//! shared 2-vCPU VM under load, per-publish medians over 134 000 publishes each: 153.8 µs bare,
//! 156.0 µs with the header alone (×1.014), 166.0 µs instrumented (×1.079). The instrumented
//! call's own work is a span, two metric recordings and one injected header; the rest of the
//! difference is lapin's publish and confirm waiting longer on locks its I/O thread holds.
//!
//! # Propagation
//!
//! The context is written with the globally installed propagator (W3C trace-context by
//! default) as AMQP long-string headers, and read back from long strings, short strings or
//! UTF-8 byte arrays; headers of any other type are ignored. Headers the publisher set
//! themselves are kept.

mod attributes;
mod carrier;
mod channel;
mod consumer;
mod delivery;
mod publish;
mod record;
mod shared;

pub use attributes::{AMQP_MULTIPLE, AMQP_REDELIVERED, AMQP_REQUEUE};
pub use carrier::{AmqpHeaderExtractor, AmqpHeaderInjector, extract_context, inject_context};
pub use channel::{InstrumentedChannel, InstrumentedChannelBuilder};
pub use consumer::InstrumentedConsumer;
pub use delivery::InstrumentedDelivery;
pub use publish::InstrumentedPublisherConfirm;
pub use shared::ConsumerParent;
