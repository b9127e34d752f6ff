//! State shared by a channel, its consumers and their deliveries: the instrumentation, the
//! instruments, and the attributes every span and metric point carries.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use lapin::BasicProperties;
use opentelemetry::{KeyValue, StringValue};
use opentelemetry_semantic_conventions::{attribute as attr, metric};

use crate::attributes::{AMQP_CONFIRM_UNKNOWN, Destination, publish_span_destination, span_name};
use crate::record::{
    BoundCounter, BoundHistogram, Counter, Histogram, Instrumentation, RecentCache,
};

/// `messaging.system` value.
pub(crate) const SYSTEM: &str = "rabbitmq";

/// How the spans of a received message relate to the context the producer put in it.
///
/// Whatever the choice, each consumer span also carries a span link to the producer's context,
/// as the messaging conventions require.
///
/// ```
/// use otel_amqp::{ConsumerParent, InstrumentedChannel};
///
/// assert_eq!(ConsumerParent::default(), ConsumerParent::CreationContext);
///
/// /// A nightly job that drains a queue: one trace for the job, each message linked to the
/// /// trace that published it.
/// fn batch_channel(channel: lapin::Channel) -> InstrumentedChannel {
///     InstrumentedChannel::builder(channel)
///         .with_consumer_parent(ConsumerParent::Ambient)
///         .build()
/// }
/// # let _ = batch_channel;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsumerParent {
    /// The producer's context is the parent (the default): the consumer's spans join the
    /// producer's trace. When the consumer also runs inside a span of its own (the ambient
    /// context), that span is added as a link. Without a valid producer context (no or malformed
    /// headers) the ambient context is the parent, which starts a new trace when there is none.
    #[default]
    CreationContext,
    /// The ambient context (the consumer's current span, if any) is the parent; the producer's
    /// context is only linked. This is the conventions' default for consumers that process
    /// messages inside another span, for example a batch job.
    Ambient,
}

pub(crate) struct Shared {
    pub(crate) instrumentation: Instrumentation,
    pub(crate) operation_duration: Histogram,
    pub(crate) process_duration: Histogram,
    pub(crate) sent_messages: Counter,
    pub(crate) consumed_messages: Counter,
    /// `server.address` and `server.port`, when known.
    pub(crate) server: Vec<KeyValue>,
    pub(crate) consumer_parent: ConsumerParent,
    /// What publishing to the destinations used recently needs, computed once per destination.
    publish_targets: Mutex<RecentCache<(String, String), Arc<PublishTarget>>>,
}

/// Most publish destinations (exchange and routing key pairs) a channel keeps prepared.
const PUBLISH_TARGETS: usize = 32;

/// The span name, attributes and bound metric series of publishing to one exchange with one
/// routing key.
pub(crate) struct PublishTarget {
    /// `publish {destination}`.
    pub(crate) span_name: Cow<'static, str>,
    /// The operation attributes of the span.
    pub(crate) span_attributes: Vec<KeyValue>,
    /// The operation attributes of the metric points (of a successful publish; with
    /// `error.type` for a failed one).
    pub(crate) metric_attributes: Vec<KeyValue>,
    /// `messaging.client.operation.duration` of a successful publish.
    pub(crate) duration: BoundHistogram,
    /// `messaging.client.sent.messages` of a successful publish.
    pub(crate) sent: BoundCounter,
    /// `messaging.client.operation.duration` of a publish whose confirm was never seen.
    pub(crate) unknown_duration: BoundHistogram,
    /// `messaging.client.sent.messages` of a publish whose confirm was never seen.
    pub(crate) unknown_sent: BoundCounter,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("server", &self.server)
            .field("consumer_parent", &self.consumer_parent)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        instrumentation: Instrumentation,
        server: Option<(String, u16)>,
        consumer_parent: ConsumerParent,
    ) -> Self {
        let metrics = instrumentation.metrics();
        let operation_duration = metrics
            .f64_histogram(metric::MESSAGING_CLIENT_OPERATION_DURATION)
            .with_unit("s")
            .with_description(
                "Duration of messaging operations initiated by a producer or consumer client.",
            )
            .build();
        let process_duration = metrics
            .f64_histogram(metric::MESSAGING_PROCESS_DURATION)
            .with_unit("s")
            .with_description("Duration of processing a received message.")
            .build();
        let sent_messages = metrics
            .u64_counter(metric::MESSAGING_CLIENT_SENT_MESSAGES)
            .with_unit("{message}")
            .with_description("Number of messages the producer attempted to send to the broker.")
            .build();
        let consumed_messages = metrics
            .u64_counter(metric::MESSAGING_CLIENT_CONSUMED_MESSAGES)
            .with_unit("{message}")
            .with_description("Number of messages delivered to the consumer.")
            .build();
        let server = server
            .map(|(address, port)| {
                vec![
                    KeyValue::new(attr::SERVER_ADDRESS, Arc::<str>::from(address)),
                    KeyValue::new(attr::SERVER_PORT, i64::from(port)),
                ]
            })
            .unwrap_or_default();
        Self {
            instrumentation,
            operation_duration,
            process_duration,
            sent_messages,
            consumed_messages,
            server,
            consumer_parent,
            publish_targets: Mutex::new(RecentCache::new(PUBLISH_TARGETS)),
        }
    }

    /// The prepared publish target of `exchange` and `routing_key`.
    pub(crate) fn publish_target(&self, exchange: &str, routing_key: &str) -> Arc<PublishTarget> {
        let mut targets = self
            .publish_targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let target = targets.get_or_insert_with(
            |(e, r)| e == exchange && r == routing_key,
            || {
                let destination = Destination::producer(exchange, routing_key);
                let metric_attributes = self.metric_attributes("publish", "send", &destination);
                let mut unknown = Vec::with_capacity(metric_attributes.len() + 1);
                unknown.extend_from_slice(&metric_attributes);
                unknown.push(KeyValue::new(AMQP_CONFIRM_UNKNOWN, true));
                // Bound series are created on their first recording: the unknown-outcome
                // ones stay absent from the export until a confirm is actually dropped.
                let target = PublishTarget {
                    span_name: span_name(
                        "publish",
                        publish_span_destination(exchange, routing_key),
                    ),
                    span_attributes: self.span_attributes("publish", "send", &destination, 0),
                    duration: self.operation_duration.bind(&metric_attributes),
                    sent: self.sent_messages.bind(&metric_attributes),
                    unknown_duration: self.operation_duration.bind(&unknown),
                    unknown_sent: self.sent_messages.bind(&unknown),
                    metric_attributes,
                };
                (
                    (exchange.to_owned(), routing_key.to_owned()),
                    Arc::new(target),
                )
            },
        );
        Arc::clone(target)
    }

    /// The attributes of the metric points of one operation: `messaging.system`,
    /// `messaging.operation.name`, `messaging.operation.type`, `messaging.destination.name`
    /// (without broker-generated names; left out when nothing else names the destination),
    /// `messaging.destination.anonymous` (when true), `server.address`, `server.port`.
    pub(crate) fn metric_attributes(
        &self,
        operation_name: &'static str,
        operation_type: &'static str,
        destination: &Destination,
    ) -> Vec<KeyValue> {
        self.operation_attributes(
            operation_name,
            operation_type,
            destination.metric_name.as_ref(),
            destination.anonymous,
            0,
        )
    }

    /// The attributes every span of one operation starts with: those of
    /// [`metric_attributes`](Self::metric_attributes), but with the destination's full name,
    /// broker-generated parts included. Room is left for `extra_capacity` more.
    pub(crate) fn span_attributes(
        &self,
        operation_name: &'static str,
        operation_type: &'static str,
        destination: &Destination,
        extra_capacity: usize,
    ) -> Vec<KeyValue> {
        self.operation_attributes(
            operation_name,
            operation_type,
            destination.name.as_ref(),
            destination.anonymous,
            extra_capacity,
        )
    }

    fn operation_attributes(
        &self,
        operation_name: &'static str,
        operation_type: &'static str,
        destination_name: Option<&StringValue>,
        anonymous: bool,
        extra_capacity: usize,
    ) -> Vec<KeyValue> {
        let mut attributes = Vec::with_capacity(5 + self.server.len() + extra_capacity);
        attributes.push(KeyValue::new(attr::MESSAGING_SYSTEM, SYSTEM));
        attributes.push(KeyValue::new(
            attr::MESSAGING_OPERATION_NAME,
            operation_name,
        ));
        attributes.push(KeyValue::new(
            attr::MESSAGING_OPERATION_TYPE,
            operation_type,
        ));
        if let Some(name) = destination_name {
            // A shared or static string: cloning it copies no text.
            attributes.push(KeyValue::new(
                attr::MESSAGING_DESTINATION_NAME,
                name.clone(),
            ));
        }
        if anonymous {
            attributes.push(KeyValue::new(attr::MESSAGING_DESTINATION_ANONYMOUS, true));
        }
        attributes.extend(self.server.iter().cloned());
        attributes
    }
}

/// Appends the per-message attributes (`messaging.message.id`,
/// `messaging.message.conversation_id`, `messaging.message.body.size`) of a message.
pub(crate) fn push_message_attributes(
    attributes: &mut Vec<KeyValue>,
    properties: &BasicProperties,
    body_size: usize,
) {
    if let Some(id) = properties.message_id() {
        attributes.push(KeyValue::new(attr::MESSAGING_MESSAGE_ID, id.to_string()));
    }
    if let Some(correlation) = properties.correlation_id() {
        attributes.push(KeyValue::new(
            attr::MESSAGING_MESSAGE_CONVERSATION_ID,
            correlation.to_string(),
        ));
    }
    attributes.push(KeyValue::new(
        attr::MESSAGING_MESSAGE_BODY_SIZE,
        i64::try_from(body_size).unwrap_or(i64::MAX),
    ));
}

/// Appends `messaging.rabbitmq.destination.routing_key` when the routing key is not empty.
pub(crate) fn push_routing_key(attributes: &mut Vec<KeyValue>, routing_key: &str) {
    if !routing_key.is_empty() {
        attributes.push(KeyValue::new(
            attr::MESSAGING_RABBITMQ_DESTINATION_ROUTING_KEY,
            routing_key.to_owned(),
        ));
    }
}

/// `attributes` plus `error.type` when there is one.
pub(crate) fn with_error_type<'a>(
    attributes: &'a [KeyValue],
    error_type: Option<Cow<'static, str>>,
) -> Cow<'a, [KeyValue]> {
    match error_type {
        None => Cow::Borrowed(attributes),
        Some(error_type) => {
            let mut owned = Vec::with_capacity(attributes.len() + 1);
            owned.extend_from_slice(attributes);
            owned.push(KeyValue::new(attr::ERROR_TYPE, error_type));
            Cow::Owned(owned)
        }
    }
}
