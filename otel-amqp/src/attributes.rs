//! Attribute names, destination naming and error classification.

use std::borrow::Cow;

use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::{Error, ErrorKind};

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

/// Destination of the default exchange when there is no routing key either.
pub(crate) const DEFAULT_EXCHANGE: &str = "amq.default";

/// Prefix of the queue names the broker generates for server-named queues.
const GENERATED_QUEUE_PREFIX: &str = "amq.gen-";

/// Whether `queue` was named by the broker (anonymous, high cardinality).
pub(crate) fn is_anonymous_queue(queue: &str) -> bool {
    queue.starts_with(GENERATED_QUEUE_PREFIX)
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

/// `messaging.destination.name` on the producer side, as the RabbitMQ conventions define it:
/// `{exchange}:{routing key}`, or whichever of the two is non-empty, or `amq.default`.
pub(crate) fn producer_destination_name(exchange: &str, routing_key: &str) -> Cow<'static, str> {
    match (exchange.is_empty(), routing_key.is_empty()) {
        (false, false) => Cow::Owned(format!("{exchange}:{routing_key}")),
        (false, true) => Cow::Owned(exchange.to_owned()),
        (true, false) => Cow::Owned(routing_key.to_owned()),
        (true, true) => Cow::Borrowed(DEFAULT_EXCHANGE),
    }
}

/// `messaging.destination.name` on the consumer side, as the RabbitMQ conventions define it:
/// `{exchange}:{routing key}:{queue}`, leaving out empty parts, and the queue when it equals the
/// routing key. A broker-generated (anonymous) queue name is left out too, to keep the
/// attribute usable on metrics.
pub(crate) fn consumer_destination_name(
    exchange: &str,
    routing_key: &str,
    queue: &str,
) -> Cow<'static, str> {
    let queue = if queue == routing_key || is_anonymous_queue(queue) {
        ""
    } else {
        queue
    };
    let mut name = String::with_capacity(exchange.len() + routing_key.len() + queue.len() + 2);
    for part in [exchange, routing_key, queue] {
        if part.is_empty() {
            continue;
        }
        if !name.is_empty() {
            name.push(':');
        }
        name.push_str(part);
    }
    if name.is_empty() {
        Cow::Borrowed(DEFAULT_EXCHANGE)
    } else {
        Cow::Owned(name)
    }
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

    #[test]
    fn producer_destination_follows_rabbitmq_conventions() {
        assert_eq!(producer_destination_name("logs", "warning"), "logs:warning");
        assert_eq!(producer_destination_name("logs", ""), "logs");
        assert_eq!(producer_destination_name("", "jobs"), "jobs");
        assert_eq!(producer_destination_name("", ""), "amq.default");
    }

    #[test]
    fn consumer_destination_follows_rabbitmq_conventions() {
        assert_eq!(
            consumer_destination_name("logs", "warning", "q1"),
            "logs:warning:q1"
        );
        assert_eq!(consumer_destination_name("", "jobs", "jobs"), "jobs");
        assert_eq!(consumer_destination_name("ex", "", "q"), "ex:q");
        assert_eq!(
            consumer_destination_name("ex", "rk", "amq.gen-abc"),
            "ex:rk"
        );
        assert_eq!(consumer_destination_name("", "", ""), "amq.default");
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
        assert_eq!(span_name("process", "amq.gen-Xy"), "process");
        assert_eq!(span_name("receive", ""), "receive");
    }
}
