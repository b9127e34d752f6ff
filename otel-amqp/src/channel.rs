//! The instrumented channel and its builder.

use std::sync::Arc;

use lapin::options::{BasicConsumeOptions, BasicGetOptions, BasicPublishOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Consumer};
use opentelemetry::trace::{Link, SpanKind, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use otel_core::metrics::Metrics;

use crate::attributes::{Destination, error_type};
use crate::carrier::{extract_context, inject_context};
use crate::consumer::{InstrumentedConsumer, QueueNames};
use crate::delivery::{InstrumentedDelivery, ReceiveKind};
use crate::publish::{InstrumentedPublisherConfirm, PendingPublish};
use crate::record::{self, InstrumentationBuilder};
use crate::shared::{ConsumerParent, Shared, push_message_attributes, push_routing_key};

/// A [`lapin::Channel`] whose publishing and consuming are traced and measured.
///
/// Publishing goes through [`basic_publish`](Self::basic_publish) (same arguments as lapin's),
/// consuming through [`basic_consume`](Self::basic_consume) or
/// [`basic_get`](Self::basic_get). Every other channel operation (declaring queues, QoS,
/// `confirm_select`, …) is done on the wrapped channel, reached with
/// [`get_ref`](Self::get_ref). Cloning is cheap and clones share the instrumentation.
///
/// ```no_run
/// # async fn run() -> lapin::Result<()> {
/// use lapin::{BasicProperties, Connection, ConnectionProperties, options::*};
/// use otel_amqp::InstrumentedChannel;
///
/// let connection =
///     Connection::connect("amqp://127.0.0.1:5672/%2f", ConnectionProperties::default())
///         .await?;
/// let channel = InstrumentedChannel::builder(connection.create_channel().await?)
///     .with_server("127.0.0.1", 5672)
///     .build();
/// channel
///     .get_ref()
///     .confirm_select(ConfirmSelectOptions::default())
///     .await?;
/// let confirmation = channel
///     .basic_publish(
///         "".into(),
///         "jobs".into(),
///         BasicPublishOptions::default(),
///         b"analyse account 42",
///         BasicProperties::default(),
///     )
///     .await?
///     .await?;
/// assert!(confirmation.is_ack());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct InstrumentedChannel {
    channel: Channel,
    shared: Arc<Shared>,
}

/// Builder of an [`InstrumentedChannel`]; see [`InstrumentedChannel::builder`].
///
/// ```
/// use otel_amqp::{ConsumerParent, InstrumentedChannel};
/// use otel_core::metrics::Metrics;
///
/// fn instrument(channel: lapin::Channel, metrics: Metrics) -> InstrumentedChannel {
///     InstrumentedChannel::builder(channel)
///         .with_metrics(metrics)
///         .with_server("rabbit.internal", 5672)
///         .with_consumer_parent(ConsumerParent::CreationContext)
///         .build()
/// }
/// # let _ = instrument;
/// ```
pub struct InstrumentedChannelBuilder {
    channel: Channel,
    instrumentation: InstrumentationBuilder,
    server: Option<(String, u16)>,
    consumer_parent: ConsumerParent,
}

impl std::fmt::Debug for InstrumentedChannelBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedChannelBuilder")
            .field("channel", &self.channel)
            .field("server", &self.server)
            .field("consumer_parent", &self.consumer_parent)
            .finish_non_exhaustive()
    }
}

impl InstrumentedChannelBuilder {
    /// Records spans through `provider` instead of the tracer provider installed globally when
    /// [`build`](Self::build) runs.
    ///
    /// ```
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// use otel_amqp::InstrumentedChannel;
    ///
    /// /// With the provider the service built, rather than the global one.
    /// fn instrument(
    ///     channel: lapin::Channel,
    ///     provider: &SdkTracerProvider,
    /// ) -> InstrumentedChannel {
    ///     InstrumentedChannel::builder(channel)
    ///         .with_tracer_provider(provider.clone())
    ///         .build()
    /// }
    /// # let _ = instrument;
    /// ```
    #[must_use]
    pub fn with_tracer_provider<P>(mut self, provider: P) -> Self
    where
        P: TracerProvider + Send + Sync + 'static,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        self.instrumentation = self.instrumentation.with_tracer_provider(provider);
        self
    }

    /// Records the metrics in `metrics` instead of [`Metrics::global`].
    ///
    /// ```
    /// use otel_amqp::InstrumentedChannel;
    /// use otel_core::testing::TestTelemetry;
    ///
    /// /// In a test: everything goes to an in-memory pipeline.
    /// fn instrument(channel: lapin::Channel, tt: &TestTelemetry) -> InstrumentedChannel {
    ///     InstrumentedChannel::builder(channel)
    ///         .with_tracer_provider(tt.tracer_provider().clone())
    ///         .with_metrics(tt.metrics().clone())
    ///         .build()
    /// }
    /// # let _ = instrument;
    /// ```
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.instrumentation = self.instrumentation.with_metrics(metrics);
        self
    }

    /// The broker's host name (or IP address) and port, recorded as `server.address` and
    /// `server.port` on every span and metric point. A lapin channel does not expose the
    /// address it is connected to, so without this call they are not recorded. Take them from
    /// the URI you connect with (never its credentials), for example with
    /// [`lapin::uri::AMQPUri`]'s `authority.host` and `authority.port`.
    ///
    /// ```
    /// use lapin::uri::AMQPUri;
    /// use otel_amqp::InstrumentedChannel;
    ///
    /// let uri: AMQPUri = "amqp://app:s3cret@rabbit.internal:5673/%2f"
    ///     .parse()
    ///     .unwrap();
    /// assert_eq!(
    ///     (uri.authority.host.as_str(), uri.authority.port),
    ///     ("rabbit.internal", 5673)
    /// );
    ///
    /// fn instrument(channel: lapin::Channel, uri: &AMQPUri) -> InstrumentedChannel {
    ///     InstrumentedChannel::builder(channel)
    ///         .with_server(uri.authority.host.clone(), uri.authority.port) // not the credentials
    ///         .build()
    /// }
    /// # let _ = instrument;
    /// ```
    #[must_use]
    pub fn with_server(mut self, address: impl Into<String>, port: u16) -> Self {
        self.server = Some((address.into(), port));
        self
    }

    /// Chooses whether consumer spans are children of the producer's span (the default) or of
    /// the consumer's ambient span; see [`ConsumerParent`].
    ///
    /// ```
    /// use otel_amqp::{ConsumerParent, InstrumentedChannel};
    ///
    /// /// A batch job: each message is processed under the job's span, linked to its producer.
    /// fn instrument(channel: lapin::Channel) -> InstrumentedChannel {
    ///     InstrumentedChannel::builder(channel)
    ///         .with_consumer_parent(ConsumerParent::Ambient)
    ///         .build()
    /// }
    /// # let _ = instrument;
    /// ```
    #[must_use]
    pub fn with_consumer_parent(mut self, consumer_parent: ConsumerParent) -> Self {
        self.consumer_parent = consumer_parent;
        self
    }

    /// Builds the instrumented channel.
    ///
    /// ```no_run
    /// # async fn run() -> lapin::Result<()> {
    /// use lapin::{Connection, ConnectionProperties};
    /// use otel_amqp::InstrumentedChannel;
    ///
    /// let connection =
    ///     Connection::connect("amqp://127.0.0.1:5672/%2f", ConnectionProperties::default())
    ///         .await?;
    /// let channel = InstrumentedChannel::builder(connection.create_channel().await?)
    ///     .with_server("127.0.0.1", 5672)
    ///     .build();
    /// # let _ = channel;
    /// # Ok(()) }
    /// ```
    pub fn build(self) -> InstrumentedChannel {
        InstrumentedChannel {
            channel: self.channel,
            shared: Arc::new(Shared::new(
                self.instrumentation.build(),
                self.server,
                self.consumer_parent,
            )),
        }
    }
}

impl From<Channel> for InstrumentedChannel {
    /// Wraps `channel` with the default configuration; see [`InstrumentedChannel::new`].
    fn from(channel: Channel) -> Self {
        Self::new(channel)
    }
}

impl InstrumentedChannel {
    /// Wraps `channel`, recording spans through the global tracer provider and metrics in
    /// [`Metrics::global`], without `server.*` attributes. The global tracer provider is read
    /// now: wrap channels after installing the pipeline. Use [`builder`](Self::builder) to
    /// configure.
    ///
    /// ```no_run
    /// # async fn run(connection: lapin::Connection) -> lapin::Result<()> {
    /// use otel_amqp::InstrumentedChannel;
    ///
    /// // After the OpenTelemetry pipeline is installed:
    /// let channel = InstrumentedChannel::new(connection.create_channel().await?);
    /// // Same as
    /// let other: InstrumentedChannel = connection.create_channel().await?.into();
    /// # let _ = (channel, other);
    /// # Ok(()) }
    /// ```
    pub fn new(channel: Channel) -> Self {
        Self::builder(channel).build()
    }

    /// Starts configuring the instrumentation of `channel`.
    ///
    /// ```no_run
    /// # async fn run(connection: lapin::Connection) -> lapin::Result<()> {
    /// use otel_amqp::InstrumentedChannel;
    ///
    /// let channel = InstrumentedChannel::builder(connection.create_channel().await?)
    ///     .with_server("127.0.0.1", 5672)
    ///     .build();
    /// # let _ = channel;
    /// # Ok(()) }
    /// ```
    pub fn builder(channel: Channel) -> InstrumentedChannelBuilder {
        InstrumentedChannelBuilder {
            channel,
            instrumentation: record::instrumentation_builder(),
            server: None,
            consumer_parent: ConsumerParent::default(),
        }
    }

    /// The wrapped channel, for operations this wrapper does not instrument.
    ///
    /// ```no_run
    /// # async fn run(channel: otel_amqp::InstrumentedChannel) -> lapin::Result<()> {
    /// use lapin::{options::QueueDeclareOptions, types::FieldTable};
    ///
    /// // Declaring a queue is not traced: do it on the wrapped channel.
    /// channel
    ///     .get_ref()
    ///     .queue_declare(
    ///         "jobs".into(),
    ///         QueueDeclareOptions::default(),
    ///         FieldTable::default(),
    ///     )
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn get_ref(&self) -> &Channel {
        &self.channel
    }

    /// The wrapped channel, mutably.
    ///
    /// ```
    /// # fn run(mut channel: otel_amqp::InstrumentedChannel) {
    /// let inner: &mut lapin::Channel = channel.get_mut();
    /// # let _ = inner;
    /// # }
    /// ```
    pub fn get_mut(&mut self) -> &mut Channel {
        &mut self.channel
    }

    /// Unwraps the channel; later operations on it are not instrumented.
    ///
    /// ```no_run
    /// # async fn run(channel: otel_amqp::InstrumentedChannel) -> lapin::Result<()> {
    /// // Done with tracing: close the channel itself.
    /// let channel: lapin::Channel = channel.into_inner();
    /// channel.close(200, "bye".into()).await?;
    /// # Ok(()) }
    /// ```
    pub fn into_inner(self) -> Channel {
        self.channel
    }

    /// Publishes a message, like [`Channel::basic_publish`], inside a PRODUCER span
    /// `publish {exchange}` (or `publish {routing key}` on the default exchange).
    ///
    /// The span's context is injected into the message headers (`traceparent`, … with the
    /// global propagator) next to the headers already in `properties`, which are kept. If those
    /// headers already carry a valid trace context, it is left as it is and the span links to it.
    ///
    /// When the channel is in confirm mode, the span stays open until the returned
    /// [`InstrumentedPublisherConfirm`] resolves, so the wait for the broker's confirmation is
    /// inside it, and a nack or a returned (unroutable mandatory) message marks it as an error.
    /// Otherwise the span ends when this call returns. Errors are recorded on the span, in
    /// `error.type`, and on the metrics.
    ///
    /// ```no_run
    /// # async fn run(channel: otel_amqp::InstrumentedChannel) -> lapin::Result<()> {
    /// use lapin::types::{AMQPValue, FieldTable};
    /// use lapin::{BasicProperties, options::*};
    ///
    /// // Confirm mode: the publish span also covers the broker's confirmation.
    /// channel
    ///     .get_ref()
    ///     .confirm_select(ConfirmSelectOptions::default())
    ///     .await?;
    /// let mut headers = FieldTable::default();
    /// headers.insert("tenant".into(), AMQPValue::LongString("acme".into())); // kept as it is
    /// let confirmation = channel
    ///     .basic_publish(
    ///         "analysis".into(),   // exchange: span `publish analysis`
    ///         "account.42".into(), // routing key
    ///         BasicPublishOptions {
    ///             mandatory: true,
    ///             ..Default::default()
    ///         },
    ///         br#"{"account":42}"#,
    ///         BasicProperties::default().with_headers(headers),
    ///     )
    ///     .await?
    ///     .await?;
    /// assert!(confirmation.is_ack());
    /// # Ok(()) }
    /// ```
    pub async fn basic_publish(
        &self,
        exchange: ShortString,
        routing_key: ShortString,
        options: BasicPublishOptions,
        payload: &[u8],
        properties: BasicProperties,
    ) -> lapin::Result<InstrumentedPublisherConfirm> {
        let shared = &self.shared;
        let target = shared.publish_target(exchange.as_str(), routing_key.as_str());
        // A context the user already put in the headers is their creation context: keep it,
        // link to it.
        let (mut headers, had_headers) = match properties.headers() {
            Some(headers) => (headers.clone(), true),
            None => (FieldTable::default(), false),
        };
        let user_context = if had_headers {
            let cx = extract_context(&headers);
            let span_context = cx.span().span_context().clone();
            span_context.is_valid().then_some(span_context)
        } else {
            None
        };
        let links = user_context
            .iter()
            .map(|span_context| Link::with_context(span_context.clone()))
            .collect();

        // Started with the attributes samplers may look at; those about the message are set once
        // the message is on its way, while the broker works on it.
        let operation = record::start(
            &shared.instrumentation,
            &Context::current(),
            target.span_name.clone(),
            SpanKind::Producer,
            target.span_attributes.clone(),
            links,
        );
        let message_attributes = operation.is_recording().then(|| {
            let mut attributes = Vec::with_capacity(5);
            push_routing_key(&mut attributes, routing_key.as_str());
            push_message_attributes(&mut attributes, &properties, payload.len());
            attributes
        });

        let properties = if user_context.is_none() {
            inject_context(operation.context(), &mut headers);
            if had_headers || !headers.inner().is_empty() {
                properties.with_headers(headers)
            } else {
                properties
            }
        } else {
            properties
        };

        // Dropped while lapin sends it (a timeout), the publish is still measured, as
        // cancelled.
        let mut pending = PendingPublish::sending(operation, target, shared.clone());
        let sent = self
            .channel
            .basic_publish(exchange, routing_key, options, payload, properties)
            .await;
        pending.sent();
        if let Some(attributes) = message_attributes {
            pending.set_attributes(attributes);
        }
        match sent {
            Err(error) => {
                let error_type = error_type(&error);
                pending.record_error(error_type.into(), error.to_string());
                pending.finish(Some(error_type.into()));
                Err(error)
            }
            Ok(confirm) => {
                if self.channel.status().confirm() {
                    Ok(InstrumentedPublisherConfirm::new(confirm, Some(pending)))
                } else {
                    pending.finish(None);
                    Ok(InstrumentedPublisherConfirm::new(confirm, None))
                }
            }
        }
    }

    /// Starts a consumer, like [`Channel::basic_consume`], whose deliveries are traced; see
    /// [`InstrumentedConsumer`].
    ///
    /// ```no_run
    /// # async fn run(channel: otel_amqp::InstrumentedChannel) -> lapin::Result<()> {
    /// use futures_util::StreamExt;
    /// use lapin::{options::*, types::FieldTable};
    ///
    /// let mut consumer = channel
    ///     .basic_consume(
    ///         "jobs".into(),
    ///         "worker-1".into(),
    ///         BasicConsumeOptions::default(),
    ///         FieldTable::default(),
    ///     )
    ///     .await?;
    /// while let Some(delivery) = consumer.next().await {
    ///     let delivery = delivery?; // the `process jobs` span is open from here…
    ///     delivery.ack(BasicAckOptions::default()).await?; // …to here
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn basic_consume(
        &self,
        queue: ShortString,
        consumer_tag: ShortString,
        options: BasicConsumeOptions,
        arguments: FieldTable,
    ) -> lapin::Result<InstrumentedConsumer> {
        let consumer = self
            .channel
            .basic_consume(queue, consumer_tag, options, arguments)
            .await?;
        Ok(self.instrument_consumer(consumer))
    }

    /// Wraps a consumer started on the inner channel (for example with a
    /// [`ConsumerDelegate`](lapin::ConsumerDelegate)-free stream obtained elsewhere), with this
    /// channel's instrumentation.
    ///
    /// ```no_run
    /// # async fn run(channel: otel_amqp::InstrumentedChannel) -> lapin::Result<()> {
    /// use lapin::{options::BasicConsumeOptions, types::FieldTable};
    ///
    /// // A consumer started on the wrapped channel, traced after all.
    /// let consumer = channel
    ///     .get_ref()
    ///     .basic_consume(
    ///         "jobs".into(),
    ///         "worker-1".into(),
    ///         BasicConsumeOptions::default(),
    ///         FieldTable::default(),
    ///     )
    ///     .await?;
    /// let consumer = channel.instrument_consumer(consumer);
    /// assert_eq!(consumer.queue(), "jobs");
    /// # Ok(()) }
    /// ```
    pub fn instrument_consumer(&self, consumer: Consumer) -> InstrumentedConsumer {
        InstrumentedConsumer::new(consumer, self.shared.clone())
    }

    /// Fetches one message, like [`Channel::basic_get`] (pull style), inside a CLIENT span
    /// `receive {queue}`.
    ///
    /// The receive span is a child of the current context; when a message arrives it links to
    /// the producer's context found in the message headers, and the returned
    /// [`InstrumentedDelivery`] opens the CONSUMER span `process {queue}` for it (parented as
    /// [`ConsumerParent`] says, linked to the receive span). `Ok(None)` means the queue was
    /// empty; the receive span then has no link.
    ///
    /// ```no_run
    /// # async fn run(channel: otel_amqp::InstrumentedChannel) -> lapin::Result<()> {
    /// use lapin::options::{BasicAckOptions, BasicGetOptions};
    ///
    /// if let Some(mut delivery) = channel
    ///     .basic_get("jobs".into(), BasicGetOptions::default())
    ///     .await?
    /// {
    ///     println!("{:?} more waiting", delivery.message_count());
    ///     let _ = delivery
    ///         .process(|message| async move { handle(&message.data) })
    ///         .await;
    ///     delivery.ack(BasicAckOptions::default()).await?;
    /// }
    /// # fn handle(_: &[u8]) -> Result<(), String> { Ok(()) }
    /// # Ok(()) }
    /// ```
    pub async fn basic_get(
        &self,
        queue: ShortString,
        options: BasicGetOptions,
    ) -> lapin::Result<Option<InstrumentedDelivery>> {
        let shared = &self.shared;
        let names = Arc::new(QueueNames::new(queue.as_str()));
        let destination = Destination::queue(queue.as_str());
        let metric_attributes = shared.metric_attributes("receive", "receive", &destination);
        let ambient = Context::current();
        let mut receive = record::start(
            &shared.instrumentation,
            &ambient,
            names.receive.clone(),
            SpanKind::Client,
            shared.span_attributes("receive", "receive", &destination, 6),
            Vec::new(),
        );
        match self.channel.basic_get(queue, options).await {
            Err(error) => {
                let error_type = error_type(&error);
                receive.record_error(error_type, error.to_string());
                let attributes =
                    crate::shared::with_error_type(&metric_attributes, Some(error_type.into()));
                record::end_with_duration(receive, &shared.operation_duration, &attributes);
                Err(error)
            }
            Ok(None) => {
                record::end_with_duration(receive, &shared.operation_duration, &metric_attributes);
                Ok(None)
            }
            Ok(Some(message)) => {
                let message_count = message.message_count;
                let delivery = message.delivery;
                let creation = delivery
                    .properties
                    .headers()
                    .as_ref()
                    .map(extract_context)
                    .unwrap_or_default();
                let creation_span = creation.span().span_context().clone();
                if receive.is_recording() {
                    if creation_span.is_valid() {
                        receive
                            .context()
                            .span()
                            .add_link(creation_span.clone(), Vec::new());
                    }
                    let mut message_attributes: Vec<KeyValue> = Vec::with_capacity(6);
                    push_message_attributes(
                        &mut message_attributes,
                        &delivery.properties,
                        delivery.data.len(),
                    );
                    crate::delivery::push_delivery_ids(&mut message_attributes, &delivery);
                    message_attributes.push(KeyValue::new(
                        crate::attributes::AMQP_REDELIVERED,
                        delivery.redelivered,
                    ));
                    for kv in message_attributes {
                        receive.set_attribute(kv);
                    }
                }
                shared.consumed_messages.add(1, &metric_attributes);
                let receive_context = receive.context().clone();
                record::end_with_duration(receive, &shared.operation_duration, &metric_attributes);
                Ok(Some(InstrumentedDelivery::start(
                    delivery,
                    creation,
                    ReceiveKind::Pulled {
                        receive: receive_context,
                        ambient,
                        message_count,
                    },
                    names,
                    shared.clone(),
                )))
            }
        }
    }
}
