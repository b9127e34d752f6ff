//! Attribute names, destination naming and error classification.

use std::borrow::Cow;
use std::sync::Arc;

use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::{Error, ErrorKind};
use opentelemetry::StringValue;

/// `true` on receive and process spans of a message the broker delivered again
/// (AMQP `redelivered` flag: it was delivered before and not acknowledged).
///
/// The messaging semantic conventions define no attribute for this; the name is this crate's.
///
/// ```
/// use opentelemetry::Value;
/// use opentelemetry_sdk::trace::SpanData;
/// use otel_amqp::AMQP_REDELIVERED;
/// use otel_core::testing::attr;
///
/// /// In a test: whether a process span is about a message delivered before.
/// fn was_redelivered(span: &SpanData) -> bool {
///     attr(span, AMQP_REDELIVERED) == Some(&Value::Bool(true))
/// }
/// assert_eq!(AMQP_REDELIVERED, "amqp.message.redelivered");
/// # let _ = was_redelivered;
/// ```
pub const AMQP_REDELIVERED: &str = "amqp.message.redelivered";

/// `true`/`false` on `nack` and `reject` settle spans: whether the message was handed back to
/// the queue (`requeue` option) rather than dropped or dead-lettered.
///
/// The messaging semantic conventions define no attribute for this; the name is this crate's.
///
/// ```
/// use opentelemetry::Value;
/// use opentelemetry_sdk::trace::SpanData;
/// use otel_amqp::AMQP_REQUEUE;
/// use otel_core::testing::attr;
///
/// /// In a test: whether a `nack`/`reject` span handed the message back to the queue.
/// fn was_requeued(span: &SpanData) -> bool {
///     attr(span, AMQP_REQUEUE) == Some(&Value::Bool(true))
/// }
/// assert_eq!(AMQP_REQUEUE, "amqp.settle.requeue");
/// # let _ = was_requeued;
/// ```
pub const AMQP_REQUEUE: &str = "amqp.settle.requeue";

/// `true` on `ack` and `nack` settle spans when the `multiple` option settled every
/// outstanding delivery up to this one.
///
/// The messaging semantic conventions define no attribute for this; the name is this crate's.
///
/// ```
/// use opentelemetry::Value;
/// use opentelemetry_sdk::trace::SpanData;
/// use otel_amqp::AMQP_MULTIPLE;
/// use otel_core::testing::attr;
///
/// /// In a test: whether an `ack`/`nack` span settled several deliveries at once.
/// fn settled_several(span: &SpanData) -> bool {
///     attr(span, AMQP_MULTIPLE) == Some(&Value::Bool(true))
/// }
/// assert_eq!(AMQP_MULTIPLE, "amqp.settle.multiple");
/// # let _ = settled_several;
/// ```
pub const AMQP_MULTIPLE: &str = "amqp.settle.multiple";

/// `true` on a publish span, and on its `messaging.client.operation.duration` and
/// `messaging.client.sent.messages` points, when the channel was in confirm mode but the
/// broker's answer was never seen: the [`InstrumentedPublisherConfirm`] was dropped without
/// being awaited, or unwrapped with
/// [`into_inner`](crate::InstrumentedPublisherConfirm::into_inner).
///
/// Such a publish is neither a success nor a failure: the span ends with status Unset and no
/// `error.type`, and the metric points carry this attribute so that success rates (points
/// without `error.type`) can leave them out. The duration recorded is the span's, up to the
/// drop or unwrap, not up to the broker's answer.
///
/// The messaging semantic conventions define no attribute for this; the name is this crate's.
///
/// [`InstrumentedPublisherConfirm`]: crate::InstrumentedPublisherConfirm
///
/// ```
/// use opentelemetry::Value;
/// use opentelemetry_sdk::trace::SpanData;
/// use otel_amqp::AMQP_CONFIRM_UNKNOWN;
/// use otel_core::testing::attr;
///
/// /// In a test: whether a publish span ended before the broker confirmed the message.
/// fn outcome_unknown(span: &SpanData) -> bool {
///     attr(span, AMQP_CONFIRM_UNKNOWN) == Some(&Value::Bool(true))
/// }
/// assert_eq!(AMQP_CONFIRM_UNKNOWN, "amqp.publish.confirm_unknown");
/// # let _ = outcome_unknown;
/// ```
pub const AMQP_CONFIRM_UNKNOWN: &str = "amqp.publish.confirm_unknown";

/// Destination of the default exchange when there is no routing key either.
pub(crate) const DEFAULT_EXCHANGE: &str = "amq.default";

/// Prefix of the queue names the broker generates for server-named queues.
const GENERATED_QUEUE_PREFIX: &str = "amq.gen-";

/// Prefix of the reply addresses RabbitMQ's direct reply-to gives each RPC client (it
/// rewrites `reply_to = "amq.rabbitmq.reply-to"` into one with a token per channel).
const DIRECT_REPLY_TO_PREFIX: &str = "amq.rabbitmq.reply-to.";

/// Whether `queue` was named by the broker (anonymous, high cardinality): a server-named
/// queue, or a direct reply-to address.
pub(crate) fn is_anonymous_queue(queue: &str) -> bool {
    queue.starts_with(GENERATED_QUEUE_PREFIX) || queue.starts_with(DIRECT_REPLY_TO_PREFIX)
}

/// The `{destination}` of a publish span name: the exchange, or for the default exchange the
/// routing key (the target queue), or `amq.default`.
pub(crate) fn publish_span_destination<'a>(exchange: &'a str, routing_key: &'a str) -> &'a str {
    if !exchange.is_empty() {
        exchange
    } else if !routing_key.is_empty() {
        routing_key
    } else {
        DEFAULT_EXCHANGE
    }
}

/// The destination of an operation as it is recorded.
///
/// Spans carry the full name of the RabbitMQ conventions, broker-generated (`amq.gen-…`) parts
/// included, since a span is about one message. Metric points carry it without the generated
/// parts (the semantic conventions put `messaging.destination.name` on metrics only when it
/// has low cardinality, and a generated name is new for each RPC client), and without the
/// attribute at all when nothing else names the destination. Both carry
/// `messaging.destination.anonymous = true` when the destination is a server-named queue.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Destination {
    /// `messaging.destination.name` on spans; `None` when nothing names the destination (a
    /// server-named queue referred to by the empty name).
    pub(crate) name: Option<StringValue>,
    /// `messaging.destination.name` on metric points: `name` without broker-generated parts;
    /// `None` when none is left.
    pub(crate) metric_name: Option<StringValue>,
    /// `messaging.destination.anonymous`: the destination is a server-named queue.
    pub(crate) anonymous: bool,
}

impl Destination {
    /// The producer side, as the RabbitMQ conventions define it: `{exchange}:{routing key}`, or
    /// whichever of the two is non-empty, or `amq.default`. Anonymous when the routing key (or,
    /// defensively, the exchange) is a generated queue name, as when replying to an RPC
    /// client's server-named reply queue.
    pub(crate) fn producer(exchange: &str, routing_key: &str) -> Self {
        let name = producer_destination_name(exchange, routing_key);
        let anonymous = is_anonymous_queue(exchange) || is_anonymous_queue(routing_key);
        let metric_name = if anonymous {
            let exchange = without_generated(exchange);
            let routing_key = without_generated(routing_key);
            (!exchange.is_empty() || !routing_key.is_empty())
                .then(|| producer_destination_name(exchange, routing_key))
        } else {
            Some(name.clone())
        };
        Self {
            name: Some(name),
            metric_name,
            anonymous,
        }
    }

    /// The consumer side, as the RabbitMQ conventions define it:
    /// `{exchange}:{routing key}:{queue}`, leaving out empty parts, and the queue when it
    /// equals the routing key. Anonymous when the queue consumed is server-named: a generated
    /// name, or the empty name (AMQP's "the queue last declared on this channel").
    pub(crate) fn consumer(exchange: &str, routing_key: &str, queue: &str) -> Self {
        let anonymous = queue.is_empty() || is_anonymous_queue(queue);
        let name = consumer_destination_name(exchange, routing_key, queue, true);
        let has_generated = is_anonymous_queue(exchange)
            || is_anonymous_queue(routing_key)
            || is_anonymous_queue(queue);
        let metric_name = if has_generated {
            consumer_destination_name(exchange, routing_key, queue, false)
        } else {
            name.clone()
        };
        Self {
            name,
            metric_name,
            anonymous,
        }
    }

    /// The destination of `basic.get` on `queue`: the queue.
    pub(crate) fn queue(queue: &str) -> Self {
        Self::consumer("", "", queue)
    }
}

/// `part`, or `""` when it is a generated queue name.
fn without_generated(part: &str) -> &str {
    if is_anonymous_queue(part) { "" } else { part }
}

/// A string value shared rather than copied: destination names are cloned into every span and
/// metric point of an operation.
fn shared(name: Cow<'static, str>) -> StringValue {
    match name {
        Cow::Borrowed(name) => StringValue::from(name),
        Cow::Owned(name) => StringValue::from(Arc::<str>::from(name)),
    }
}

/// `messaging.destination.name` on the producer side: `{exchange}:{routing key}`, or whichever
/// of the two is non-empty, or `amq.default`.
fn producer_destination_name(exchange: &str, routing_key: &str) -> StringValue {
    shared(match (exchange.is_empty(), routing_key.is_empty()) {
        (false, false) => Cow::Owned(format!("{exchange}:{routing_key}")),
        (false, true) => Cow::Owned(exchange.to_owned()),
        (true, false) => Cow::Owned(routing_key.to_owned()),
        (true, true) => Cow::Borrowed(DEFAULT_EXCHANGE),
    })
}

/// `messaging.destination.name` on the consumer side: `{exchange}:{routing key}:{queue}`,
/// leaving out empty parts, the queue when it equals the routing key, and unless
/// `keep_generated` the broker-generated parts. `None` when no part is left.
fn consumer_destination_name(
    exchange: &str,
    routing_key: &str,
    queue: &str,
    keep_generated: bool,
) -> Option<StringValue> {
    let queue = if queue == routing_key { "" } else { queue };
    let mut name = String::with_capacity(exchange.len() + routing_key.len() + queue.len() + 2);
    for part in [exchange, routing_key, queue] {
        if part.is_empty() || (!keep_generated && is_anonymous_queue(part)) {
            continue;
        }
        if !name.is_empty() {
            name.push(':');
        }
        name.push_str(part);
    }
    (!name.is_empty()).then(|| shared(Cow::Owned(name)))
}

/// Span name `{operation} {destination}`, or just `{operation}` when there is no usable
/// destination (empty or broker-generated).
pub(crate) fn span_name(operation: &'static str, destination: &str) -> Cow<'static, str> {
    if destination.is_empty() || is_anonymous_queue(destination) {
        Cow::Borrowed(operation)
    } else {
        Cow::Owned(format!("{operation} {destination}"))
    }
}

/// The low-cardinality `error.type` of a lapin error.
///
/// Broker errors map to the AMQP reply name in lower case (`not-found`, `channel-error`, …);
/// client-side errors to a fixed name per kind (`io-error`, `invalid-channel-state`, …).
pub(crate) fn error_type(error: &Error) -> &'static str {
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => amqp_error_type(amqp.kind()),
        ErrorKind::ChannelsLimitReached => "channels-limit-reached",
        ErrorKind::InvalidProtocolVersion(_) => "invalid-protocol-version",
        ErrorKind::InvalidChannel(_) => "invalid-channel",
        ErrorKind::InvalidChannelState(..) => "invalid-channel-state",
        ErrorKind::InvalidConnectionState(_) => "invalid-connection-state",
        ErrorKind::IOError(_) => "io-error",
        ErrorKind::RuntimeShutdownError(_) => "runtime-shutdown",
        ErrorKind::ParsingError(_) => "parsing-error",
        ErrorKind::SerialisationError(_) => "serialisation-error",
        ErrorKind::AuthProviderError(_) => "auth-provider-error",
        ErrorKind::FutureCompleted => "future-completed",
        ErrorKind::NoDefaultRuntime => "no-default-runtime",
        ErrorKind::MissingHeartbeatError => "missing-heartbeat",
        _ => "_OTHER",
    }
}

/// The `error.type` of an AMQP reply code (`not-found`, `no-route`, …).
pub(crate) fn amqp_error_type(kind: &AMQPErrorKind) -> &'static str {
    match kind {
        AMQPErrorKind::Soft(soft) => match soft {
            AMQPSoftError::CONTENTTOOLARGE => "content-too-large",
            AMQPSoftError::NOROUTE => "no-route",
            AMQPSoftError::NOCONSUMERS => "no-consumers",
            AMQPSoftError::ACCESSREFUSED => "access-refused",
            AMQPSoftError::NOTFOUND => "not-found",
            AMQPSoftError::RESOURCELOCKED => "resource-locked",
            AMQPSoftError::PRECONDITIONFAILED => "precondition-failed",
        },
        AMQPErrorKind::Hard(hard) => match hard {
            AMQPHardError::CONNECTIONFORCED => "connection-forced",
            AMQPHardError::INVALIDPATH => "invalid-path",
            AMQPHardError::FRAMEERROR => "frame-error",
            AMQPHardError::SYNTAXERROR => "syntax-error",
            AMQPHardError::COMMANDINVALID => "command-invalid",
            AMQPHardError::CHANNELERROR => "channel-error",
            AMQPHardError::UNEXPECTEDFRAME => "unexpected-frame",
            AMQPHardError::RESOURCEERROR => "resource-error",
            AMQPHardError::NOTALLOWED => "not-allowed",
            AMQPHardError::NOTIMPLEMENTED => "not-implemented",
            AMQPHardError::INTERNALERROR => "internal-error",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn producer(exchange: &str, routing_key: &str) -> (Option<String>, Option<String>, bool) {
        parts(&Destination::producer(exchange, routing_key))
    }

    fn consumer(
        exchange: &str,
        routing_key: &str,
        queue: &str,
    ) -> (Option<String>, Option<String>, bool) {
        parts(&Destination::consumer(exchange, routing_key, queue))
    }

    /// (span name, metric name, anonymous).
    fn parts(destination: &Destination) -> (Option<String>, Option<String>, bool) {
        (
            destination.name.as_ref().map(|n| n.as_str().to_owned()),
            destination
                .metric_name
                .as_ref()
                .map(|n| n.as_str().to_owned()),
            destination.anonymous,
        )
    }

    fn named(name: &str) -> (Option<String>, Option<String>, bool) {
        (Some(name.to_owned()), Some(name.to_owned()), false)
    }

    #[test]
    fn producer_destination_follows_rabbitmq_conventions() {
        assert_eq!(producer("logs", "warning"), named("logs:warning"));
        assert_eq!(producer("logs", ""), named("logs"));
        assert_eq!(producer("", "jobs"), named("jobs"));
        assert_eq!(producer("", ""), named("amq.default"));
    }

    #[test]
    fn consumer_destination_follows_rabbitmq_conventions() {
        assert_eq!(consumer("logs", "warning", "q1"), named("logs:warning:q1"));
        assert_eq!(consumer("", "jobs", "jobs"), named("jobs"));
        assert_eq!(consumer("ex", "", "q"), named("ex:q"));
        assert_eq!(
            Destination::queue("jobs"),
            Destination::consumer("", "", "jobs")
        );
        assert_eq!(consumer("", "", "jobs"), named("jobs"));
    }

    #[test]
    fn generated_names_stay_on_spans_and_off_metrics() {
        // RPC reply: the server publishes to the default exchange with the client's
        // server-named reply queue as routing key.
        assert_eq!(
            producer("", "amq.gen-Xy1"),
            (Some("amq.gen-Xy1".to_owned()), None, true)
        );
        // Direct reply-to: a token per RPC client's channel.
        assert_eq!(
            producer("", "amq.rabbitmq.reply-to.g1h2AA5yZWJpdEBy"),
            (
                Some("amq.rabbitmq.reply-to.g1h2AA5yZWJpdEBy".to_owned()),
                None,
                true
            )
        );
        assert_eq!(
            span_name(
                "publish",
                publish_span_destination("", "amq.rabbitmq.reply-to.g1h2")
            ),
            "publish"
        );
        assert_eq!(
            producer("amq.direct", "amq.gen-Xy1"),
            (
                Some("amq.direct:amq.gen-Xy1".to_owned()),
                Some("amq.direct".to_owned()),
                true
            )
        );
        // The RPC client consuming its reply queue.
        assert_eq!(
            consumer("", "amq.gen-Xy1", "amq.gen-Xy1"),
            (Some("amq.gen-Xy1".to_owned()), None, true)
        );
        // A server-named queue bound to a named exchange.
        assert_eq!(
            consumer("logs", "warning", "amq.gen-abc"),
            (
                Some("logs:warning:amq.gen-abc".to_owned()),
                Some("logs:warning".to_owned()),
                true
            )
        );
        // A generated routing key reaching a named queue: the queue is not anonymous.
        assert_eq!(
            consumer("amq.topic", "amq.gen-abc", "audit"),
            (
                Some("amq.topic:amq.gen-abc:audit".to_owned()),
                Some("amq.topic:audit".to_owned()),
                false
            )
        );
        // The empty queue name: the queue last declared on the channel, server-named.
        assert_eq!(consumer("", "", ""), (None, None, true));
        assert_eq!(
            consumer("", "amq.gen-Q", ""),
            (Some("amq.gen-Q".to_owned()), None, true)
        );
        assert_eq!(
            consumer("logs", "", ""),
            (Some("logs".to_owned()), Some("logs".to_owned()), true)
        );
        // `basic.get` on a server-named queue never claims the default exchange.
        assert_eq!(parts(&Destination::queue("")), (None, None, true));
        assert_eq!(
            parts(&Destination::queue("amq.gen-Z")),
            (Some("amq.gen-Z".to_owned()), None, true)
        );
    }

    #[test]
    fn span_names() {
        assert_eq!(
            span_name("publish", publish_span_destination("orders", "x")),
            "publish orders"
        );
        assert_eq!(
            span_name("publish", publish_span_destination("", "jobs")),
            "publish jobs"
        );
        assert_eq!(
            span_name("publish", publish_span_destination("", "")),
            "publish amq.default"
        );
        assert_eq!(
            span_name("publish", publish_span_destination("", "amq.gen-Xy")),
            "publish"
        );
        assert_eq!(span_name("process", "amq.gen-Xy"), "process");
        assert_eq!(span_name("receive", ""), "receive");
    }
}
