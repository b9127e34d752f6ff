//! A received message with its process span, and its settlement.

use std::borrow::Cow;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use lapin::types::MessageCount;
use opentelemetry::context::FutureExt;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use opentelemetry_semantic_conventions::attribute as attr;

use crate::attributes::{AMQP_MULTIPLE, AMQP_REDELIVERED, AMQP_REQUEUE, Destination, error_type};
use crate::consumer::QueueNames;
use crate::record::{self, Operation};
use crate::shared::{
    ConsumerParent, Shared, push_message_attributes, push_routing_key, with_error_type,
};

/// How a delivery reached the application.
pub(crate) enum ReceiveKind {
    /// Pushed by the broker to a consumer (`basic.consume`).
    Pushed,
    /// Fetched with `basic.get`; `receive` is the context of the receive span, `ambient` the
    /// caller's context when it called `basic_get`.
    Pulled {
        receive: Context,
        ambient: Context,
        message_count: MessageCount,
    },
}

/// A received message (from an [`InstrumentedConsumer`](crate::InstrumentedConsumer) or
/// [`InstrumentedChannel::basic_get`](crate::InstrumentedChannel::basic_get)) together with
/// the producer's context found in its headers and the open CONSUMER span `process {queue}`.
///
/// Run the handling of the message inside the process span, either with
/// [`process`](Self::process) or by attaching [`context`](Self::context) to your own future
/// (`opentelemetry::context::FutureExt::with_context`). Then settle it with
/// [`ack`](Self::ack), [`nack`](Self::nack) or [`reject`](Self::reject): each records a CLIENT
/// span (`ack {queue}`, …) under the process span and then ends the process span, recording
/// `messaging.process.duration`. Dropped without being settled (as with a consumer in
/// `no_ack` mode), the process span ends at the drop.
///
/// Settling through the inner delivery's own acker (`delivery().ack(…)`) works but is not
/// recorded.
///
/// ```no_run
/// # async fn run(channel: otel_amqp::InstrumentedChannel) -> lapin::Result<()> {
/// use futures_util::StreamExt;
/// use lapin::{options::*, types::FieldTable};
/// use opentelemetry::context::FutureExt as _;
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
///     let delivery = delivery?;
///     // Run the work inside the process span; its spans and logs join the producer's trace.
///     let work = analyse(delivery.data().to_vec()).with_context(delivery.context().clone());
///     match work.await {
///         Ok(()) => delivery.ack(BasicAckOptions::default()).await?,
///         Err(_) => {
///             delivery
///                 .reject(BasicRejectOptions { requeue: false })
///                 .await?
///         }
///     };
/// }
/// # async fn analyse(_: Vec<u8>) -> Result<(), String> { Ok(()) }
/// # Ok(()) }
/// ```
pub struct InstrumentedDelivery {
    delivery: Delivery,
    creation_context: Context,
    message_count: Option<MessageCount>,
    process: ProcessSpan,
}

impl std::fmt::Debug for InstrumentedDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedDelivery")
            .field("delivery", &self.delivery)
            .field("message_count", &self.message_count)
            .finish_non_exhaustive()
    }
}

impl InstrumentedDelivery {
    /// Records the receipt (for a pushed message) and opens the process span.
    pub(crate) fn start(
        delivery: Delivery,
        creation_context: Context,
        kind: ReceiveKind,
        names: Arc<QueueNames>,
        shared: Arc<Shared>,
    ) -> Self {
        let ambient = match &kind {
            ReceiveKind::Pushed => Context::current(),
            ReceiveKind::Pulled { ambient, .. } => ambient.clone(),
        };
        let creation_span = creation_context.span().span_context().clone();
        let use_creation =
            creation_span.is_valid() && shared.consumer_parent == ConsumerParent::CreationContext;
        let mut links = Vec::with_capacity(3);
        if creation_span.is_valid() {
            links.push(Link::with_context(creation_span));
        }
        let ambient_span = ambient.span().span_context().clone();
        if use_creation && ambient_span.is_valid() {
            links.push(Link::with_context(ambient_span));
        }
        let parent = if use_creation {
            &creation_context
        } else {
            &ambient
        };

        let destination = Destination::consumer(
            delivery.exchange.as_str(),
            delivery.routing_key.as_str(),
            &names.queue,
        );
        let message_attributes = |attributes: &mut Vec<KeyValue>| {
            push_message_attributes(attributes, &delivery.properties, delivery.data.len());
            push_delivery_ids(attributes, &delivery);
            attributes.push(KeyValue::new(AMQP_REDELIVERED, delivery.redelivered));
        };

        let message_count = match kind {
            ReceiveKind::Pushed => {
                let receive_metrics = shared.metric_attributes("receive", "receive", &destination);
                let mut attributes = shared.span_attributes("receive", "receive", &destination, 6);
                message_attributes(&mut attributes);
                // `receive` is a CLIENT span in the messaging conventions' span kind table,
                // whether the application pulled the message or the broker pushed it.
                let receive = record::start(
                    &shared.instrumentation,
                    parent,
                    names.receive.clone(),
                    SpanKind::Client,
                    attributes,
                    links.clone(),
                );
                shared.consumed_messages.add(1, &receive_metrics);
                let receive_span = receive.context().span().span_context().clone();
                receive.end();
                // The process span is the receive span's sibling, not its child: it has the
                // same parent, so that each is the local root of its own part of the trace.
                // The receive span ends at once; a child process span would wait under a
                // root that already ended, and otel-core's tail mode, which decides a local
                // trace when its local root ends, would decide the receive span alone and
                // leave the processing to its age sweep. The process span links to the
                // receive span instead (as with `basic_get`).
                if receive_span.is_valid() {
                    links.push(Link::with_context(receive_span));
                }
                None
            }
            // The receive span ended when `basic_get` returned: the process span has the same
            // parent choice as for a pushed message, and links to it.
            ReceiveKind::Pulled {
                receive,
                message_count,
                ..
            } => {
                let receive_span = receive.span().span_context().clone();
                if receive_span.is_valid() {
                    links.push(Link::with_context(receive_span));
                }
                Some(message_count)
            }
        };

        let metric_attributes = shared.metric_attributes("process", "process", &destination);
        let mut attributes = shared.span_attributes("process", "process", &destination, 6);
        message_attributes(&mut attributes);
        let operation = record::start(
            &shared.instrumentation,
            parent,
            names.process.clone(),
            SpanKind::Consumer,
            attributes,
            links,
        );
        Self {
            delivery,
            creation_context,
            message_count,
            process: ProcessSpan {
                context: operation.context().clone(),
                operation: Some(operation),
                metric_attributes,
                destination,
                error_type: None,
                names,
                shared,
            },
        }
    }

    /// The message as lapin delivered it: body (`data`), properties and headers, routing.
    ///
    /// ```no_run
    /// # async fn run(mut delivery: otel_amqp::InstrumentedDelivery) -> lapin::Result<()> {
    /// let message = delivery.delivery();
    /// println!(
    ///     "{} from exchange {:?}",
    ///     message.delivery_tag,
    ///     message.exchange.as_str()
    /// );
    /// let content_type = message
    ///     .properties
    ///     .content_type()
    ///     .as_ref()
    ///     .map(|c| c.as_str());
    /// # let _ = content_type;
    /// # Ok(()) }
    /// ```
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// The message, mutably (for example to take its body).
    ///
    /// ```no_run
    /// # async fn run(mut delivery: otel_amqp::InstrumentedDelivery) -> lapin::Result<()> {
    /// use lapin::options::BasicAckOptions;
    ///
    /// // Take the body without copying it.
    /// let body: Vec<u8> = std::mem::take(&mut delivery.delivery_mut().data);
    /// # let _ = body;
    /// delivery.ack(BasicAckOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub fn delivery_mut(&mut self) -> &mut Delivery {
        &mut self.delivery
    }

    /// The message body.
    ///
    /// ```no_run
    /// # async fn run(mut delivery: otel_amqp::InstrumentedDelivery) -> lapin::Result<()> {
    /// let job: &str = std::str::from_utf8(delivery.data()).unwrap_or("<binary>");
    /// # let _ = job;
    /// # Ok(()) }
    /// ```
    pub fn data(&self) -> &[u8] {
        &self.delivery.data
    }

    /// Whether the broker delivered this message before (it was not acknowledged then).
    ///
    /// ```no_run
    /// # async fn run(mut delivery: otel_amqp::InstrumentedDelivery) -> lapin::Result<()> {
    /// use lapin::options::{BasicAckOptions, BasicRejectOptions};
    ///
    /// if delivery.redelivered() {
    ///     // Failed once already: dead-letter it instead of looping.
    ///     delivery
    ///         .reject(BasicRejectOptions { requeue: false })
    ///         .await?;
    /// } else {
    ///     delivery.ack(BasicAckOptions::default()).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn redelivered(&self) -> bool {
        self.delivery.redelivered
    }

    /// For a message fetched with `basic_get`: how many messages were left in the queue.
    ///
    /// ```no_run
    /// # async fn run(channel: otel_amqp::InstrumentedChannel) -> lapin::Result<()> {
    /// use lapin::options::BasicGetOptions;
    ///
    /// while let Some(delivery) = channel
    ///     .basic_get("jobs".into(), BasicGetOptions { no_ack: true })
    ///     .await?
    /// {
    ///     if delivery.message_count() == Some(0) {
    ///         break; // that was the last one
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn message_count(&self) -> Option<MessageCount> {
        self.message_count
    }

    /// The producer's context extracted from the message headers: its span is the publish span
    /// when the producer was instrumented. Holds no valid span when the headers carried no
    /// context or a malformed one.
    ///
    /// ```no_run
    /// # async fn run(mut delivery: otel_amqp::InstrumentedDelivery) -> lapin::Result<()> {
    /// use opentelemetry::trace::TraceContextExt;
    ///
    /// let producer = delivery.creation_context().span().span_context().clone();
    /// if producer.is_valid() {
    ///     println!("published in trace {}", producer.trace_id());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn creation_context(&self) -> &Context {
        &self.creation_context
    }

    /// The context of the process span: attach it to the work done for this message so that
    /// its spans are children of the process span.
    ///
    /// ```no_run
    /// # async fn run(mut delivery: otel_amqp::InstrumentedDelivery) -> lapin::Result<()> {
    /// use opentelemetry::context::FutureExt as _;
    ///
    /// // Spawned work stays inside the process span.
    /// let cx = delivery.context().clone();
    /// let data = delivery.data().to_vec();
    /// tokio::spawn(async move { analyse(data).await }.with_context(cx));
    /// # async fn analyse(_: Vec<u8>) {}
    /// # Ok(()) }
    /// ```
    pub fn context(&self) -> &Context {
        &self.process.context
    }

    /// Runs `handler` on the message inside the process span and returns its result. An `Err`
    /// is recorded on the process span (status Error, `error.type` = the error's type name,
    /// an `exception` event with its message) and in `messaging.process.duration`. The
    /// message is not settled: call [`ack`](Self::ack), [`nack`](Self::nack) or
    /// [`reject`](Self::reject) afterwards.
    ///
    /// ```no_run
    /// # async fn run(mut delivery: otel_amqp::InstrumentedDelivery) -> lapin::Result<()> {
    /// use lapin::options::{BasicAckOptions, BasicNackOptions};
    ///
    /// let parsed = delivery
    ///     .process(|message| async move { std::str::from_utf8(&message.data).map(str::to_owned) })
    ///     .await; // an `Err` marks the process span as failed
    /// match parsed {
    ///     Ok(_) => delivery.ack(BasicAckOptions::default()).await?,
    ///     Err(_) => delivery.nack(BasicNackOptions::default()).await?,
    /// };
    /// # Ok(()) }
    /// ```
    pub async fn process<'a, F, Fut, T, E>(&'a mut self, handler: F) -> Result<T, E>
    where
        F: FnOnce(&'a Delivery) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Display,
    {
        let context = self.process.context.clone();
        let result = handler(&self.delivery).with_context(context).await;
        if let Err(error) = &result {
            self.process
                .record_error(std::any::type_name::<E>().into(), error.to_string().into());
        }
        result
    }

    /// Marks the processing of this message as failed with `error_type` (low cardinality, for
    /// example an error's type name) and `message`, as [`process`](Self::process) does for an
    /// `Err`.
    ///
    /// ```no_run
    /// # async fn run(mut delivery: otel_amqp::InstrumentedDelivery) -> lapin::Result<()> {
    /// use lapin::options::BasicRejectOptions;
    ///
    /// if delivery.data().len() > 1 << 20 {
    ///     delivery.record_error("payload_too_large", "job payload over 1 MiB");
    ///     delivery
    ///         .reject(BasicRejectOptions { requeue: false })
    ///         .await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn record_error(
        &mut self,
        error_type: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) {
        self.process.record_error(error_type.into(), message.into());
    }

    /// Acknowledges the message (`basic.ack`) inside an `ack {queue}` span, then ends the
    /// process span. Returns lapin's result: `Ok(false)` when nothing was sent because the
    /// delivery was already settled or its channel is closed (recorded as `error.type`
    /// `not-settled`).
    ///
    /// ```no_run
    /// # async fn run(mut delivery: otel_amqp::InstrumentedDelivery) -> lapin::Result<()> {
    /// use lapin::options::BasicAckOptions;
    ///
    /// let sent = delivery.ack(BasicAckOptions::default()).await?; // span `ack {queue}`
    /// assert!(sent);
    /// # Ok(()) }
    /// ```
    pub async fn ack(self, options: BasicAckOptions) -> lapin::Result<bool> {
        let mut attributes = vec![KeyValue::new(AMQP_MULTIPLE, options.multiple)];
        let Self {
            delivery, process, ..
        } = self;
        push_delivery_ids(&mut attributes, &delivery);
        process
            .settle("ack", attributes, delivery.acker.ack(options))
            .await
    }

    /// Negatively acknowledges the message (`basic.nack`) inside a `nack {queue}` span that
    /// records whether it is requeued, then ends the process span. Returns lapin's result; see
    /// [`ack`](Self::ack).
    ///
    /// ```no_run
    /// # async fn run(mut delivery: otel_amqp::InstrumentedDelivery) -> lapin::Result<()> {
    /// use lapin::options::BasicNackOptions;
    ///
    /// // Hand it back for another worker; `amqp.settle.requeue = true` on the span.
    /// delivery
    ///     .nack(BasicNackOptions {
    ///         requeue: true,
    ///         ..Default::default()
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn nack(self, options: BasicNackOptions) -> lapin::Result<bool> {
        let mut attributes = vec![
            KeyValue::new(AMQP_REQUEUE, options.requeue),
            KeyValue::new(AMQP_MULTIPLE, options.multiple),
        ];
        let Self {
            delivery, process, ..
        } = self;
        push_delivery_ids(&mut attributes, &delivery);
        process
            .settle("nack", attributes, delivery.acker.nack(options))
            .await
    }

    /// Rejects the message (`basic.reject`) inside a `reject {queue}` span that records
    /// whether it is requeued, then ends the process span. Returns lapin's result; see
    /// [`ack`](Self::ack).
    ///
    /// ```no_run
    /// # async fn run(mut delivery: otel_amqp::InstrumentedDelivery) -> lapin::Result<()> {
    /// use lapin::options::BasicRejectOptions;
    ///
    /// // Poison message: drop it (or dead-letter it, if the queue has a dead-letter exchange).
    /// delivery
    ///     .reject(BasicRejectOptions { requeue: false })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn reject(self, options: BasicRejectOptions) -> lapin::Result<bool> {
        let mut attributes = vec![KeyValue::new(AMQP_REQUEUE, options.requeue)];
        let Self {
            delivery, process, ..
        } = self;
        push_delivery_ids(&mut attributes, &delivery);
        process
            .settle("reject", attributes, delivery.acker.reject(options))
            .await
    }

    /// Ends the process span now and returns the lapin delivery (settle it yourself).
    ///
    /// ```no_run
    /// # async fn run(mut delivery: otel_amqp::InstrumentedDelivery) -> lapin::Result<()> {
    /// use lapin::options::BasicAckOptions;
    ///
    /// let delivery: lapin::message::Delivery = delivery.into_inner(); // process span ends here
    /// delivery.ack(BasicAckOptions::default()).await?; // not traced
    ///     
    /// # Ok(()) }
    /// ```
    pub fn into_inner(self) -> Delivery {
        let Self {
            delivery,
            mut process,
            ..
        } = self;
        process.finish();
        delivery
    }
}

/// The message's routing key (when not empty) and delivery tag, which the RabbitMQ semantic
/// conventions ask for on every span about the message, settlements included.
pub(crate) fn push_delivery_ids(attributes: &mut Vec<KeyValue>, delivery: &Delivery) {
    push_routing_key(attributes, delivery.routing_key.as_str());
    attributes.push(KeyValue::new(
        attr::MESSAGING_RABBITMQ_MESSAGE_DELIVERY_TAG,
        i64::try_from(delivery.delivery_tag).unwrap_or(i64::MAX),
    ));
}

/// The open process span of a delivery; ends it when dropped.
struct ProcessSpan {
    context: Context,
    operation: Option<Operation>,
    metric_attributes: Vec<KeyValue>,
    destination: Destination,
    error_type: Option<Cow<'static, str>>,
    names: Arc<QueueNames>,
    shared: Arc<Shared>,
}

impl ProcessSpan {
    fn record_error(&mut self, error_type: Cow<'static, str>, message: Cow<'static, str>) {
        if let Some(operation) = self.operation.as_mut() {
            operation.record_error(error_type.clone(), message);
        }
        self.error_type = Some(error_type);
    }

    /// Runs the settlement `settle` inside a settle span, then ends the process span.
    async fn settle(
        mut self,
        operation_name: &'static str,
        extra_attributes: Vec<KeyValue>,
        settle: impl Future<Output = lapin::Result<bool>>,
    ) -> lapin::Result<bool> {
        let name = match operation_name {
            "ack" => self.names.ack.clone(),
            "nack" => self.names.nack.clone(),
            _ => self.names.reject.clone(),
        };
        let metric_attributes =
            self.shared
                .metric_attributes(operation_name, "settle", &self.destination);
        let mut attributes = self.shared.span_attributes(
            operation_name,
            "settle",
            &self.destination,
            extra_attributes.len(),
        );
        attributes.extend(extra_attributes);
        let mut operation = record::start(
            &self.shared.instrumentation,
            &self.context,
            name,
            SpanKind::Client,
            attributes,
            Vec::new(),
        );
        let result = settle.await;
        let error = match &result {
            Ok(true) => None,
            Ok(false) => Some((
                Cow::Borrowed("not-settled"),
                "nothing sent: the delivery was already settled or its channel is closed"
                    .to_owned(),
            )),
            Err(error) => Some((Cow::Borrowed(error_type(error)), error.to_string())),
        };
        let error_type = error.map(|(error_type, message)| {
            operation.record_error(error_type.clone(), message);
            error_type
        });
        let attributes = with_error_type(&metric_attributes, error_type);
        record::end_with_duration(operation, &self.shared.operation_duration, &attributes);
        self.finish();
        result
    }

    fn finish(&mut self) {
        if let Some(operation) = self.operation.take() {
            let attributes = with_error_type(&self.metric_attributes, self.error_type.take());
            record::end_with_duration(operation, &self.shared.process_duration, &attributes);
        }
    }
}

impl Drop for ProcessSpan {
    fn drop(&mut self) {
        self.finish();
    }
}
