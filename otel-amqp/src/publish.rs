//! The publisher-confirm future that ends the publish span.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use lapin::protocol::AMQPErrorKind;
use lapin::{Confirmation, PublisherConfirm};
use opentelemetry::KeyValue;

use crate::attributes::{AMQP_CONFIRM_UNKNOWN, amqp_error_type, error_type};
use crate::record::{self, Operation};
use crate::shared::{PublishTarget, Shared, with_error_type};

/// The broker's confirmation of a message published with
/// [`InstrumentedChannel::basic_publish`](crate::InstrumentedChannel::basic_publish): a
/// future resolving to lapin's [`Confirmation`], exactly as [`PublisherConfirm`] does.
///
/// On a channel in confirm mode the publish span is still open while this is pending and ends
/// when it resolves: an `Ack` ends it successfully; a `Nack` (`error.type` `nack`) or a
/// returned message (`error.type` from the reply code, such as `no-route`) end it as an error.
/// Dropped without being awaited, or unwrapped with [`into_inner`](Self::into_inner), the span
/// ends then without an outcome (lapin hands the confirmation to
/// [`Channel::wait_for_confirms`](lapin::Channel::wait_for_confirms) instead): status Unset, no
/// `error.type`, and [`AMQP_CONFIRM_UNKNOWN`](crate::AMQP_CONFIRM_UNKNOWN) `= true`, which
/// also marks its `messaging.client.sent.messages` and `messaging.client.operation.duration`
/// points, so that they are not counted as successes.
///
/// ```no_run
/// # async fn run(channel: otel_amqp::InstrumentedChannel) -> lapin::Result<()> {
/// use lapin::{BasicProperties, options::*};
///
/// channel
///     .get_ref()
///     .confirm_select(ConfirmSelectOptions::default())
///     .await?;
/// let confirm = channel
///     .basic_publish(
///         "".into(),
///         "jobs".into(),
///         BasicPublishOptions::default(),
///         b"job",
///         BasicProperties::default(),
///     )
///     .await?;
/// // The publish span is still open: it ends with the broker's answer.
/// let confirmation = confirm.await?;
/// assert!(confirmation.is_ack());
/// # Ok(()) }
/// ```
pub struct InstrumentedPublisherConfirm {
    inner: PublisherConfirm,
    pending: Option<PendingPublish>,
}

impl std::fmt::Debug for InstrumentedPublisherConfirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedPublisherConfirm")
            .field("inner", &self.inner)
            .field("span_open", &self.pending.is_some())
            .finish()
    }
}

impl InstrumentedPublisherConfirm {
    pub(crate) fn new(inner: PublisherConfirm, pending: Option<PendingPublish>) -> Self {
        Self { inner, pending }
    }

    /// Unwraps lapin's confirm; the publish span ends now, without the broker's answer: it and
    /// its metric points carry [`AMQP_CONFIRM_UNKNOWN`](crate::AMQP_CONFIRM_UNKNOWN) `= true`
    /// instead of an outcome.
    ///
    /// ```no_run
    /// # async fn run(channel: otel_amqp::InstrumentedChannel) -> lapin::Result<()> {
    /// use lapin::{BasicProperties, options::*};
    ///
    /// for job in [b"a", b"b", b"c"] {
    ///     let confirm = channel
    ///         .basic_publish(
    ///             "".into(),
    ///             "jobs".into(),
    ///             BasicPublishOptions::default(),
    ///             job,
    ///             BasicProperties::default(),
    ///         )
    ///         .await?;
    ///     drop(confirm.into_inner()); // the span ends now; the answer is collected below
    /// }
    /// let returned = channel.get_ref().wait_for_confirms().await?;
    /// assert!(returned.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn into_inner(mut self) -> PublisherConfirm {
        if let Some(mut pending) = self.pending.take() {
            pending.finish_unknown();
        }
        self.inner
    }
}

impl Future for InstrumentedPublisherConfirm {
    type Output = lapin::Result<Confirmation>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = match Pin::new(&mut this.inner).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result,
        };
        if let Some(mut pending) = this.pending.take() {
            let outcome: Option<(Cow<'static, str>, String)> = match &result {
                Ok(Confirmation::Ack(None) | Confirmation::NotRequested) => None,
                Ok(Confirmation::Ack(Some(returned))) => {
                    let error_type = AMQPErrorKind::from_id(returned.reply_code)
                        .map_or("returned", |kind| amqp_error_type(&kind));
                    Some((
                        error_type.into(),
                        format!(
                            "message returned by the broker: {} {}",
                            returned.reply_code, returned.reply_text
                        ),
                    ))
                }
                Ok(Confirmation::Nack(_)) => Some((
                    "nack".into(),
                    "the broker did not accept the message (publisher confirm nack)".to_owned(),
                )),
                Err(error) => Some((error_type(error).into(), error.to_string())),
            };
            let error_type = outcome.map(|(error_type, message)| {
                pending.record_error(error_type.clone(), message);
                error_type
            });
            pending.finish(error_type);
        }
        Poll::Ready(result)
    }
}

/// The publish span of a message whose outcome is not known yet, with what ending it records.
pub(crate) struct PendingPublish {
    operation: Option<Operation>,
    target: Arc<PublishTarget>,
    shared: Arc<Shared>,
    /// lapin has not answered the publish yet: dropped now, it was cancelled (the message
    /// may or may not have left).
    sending: bool,
}

impl PendingPublish {
    /// A publish handed to lapin, not answered yet (see [`PendingPublish::sent`]).
    pub(crate) fn sending(
        operation: Operation,
        target: Arc<PublishTarget>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            operation: Some(operation),
            target,
            shared,
            sending: true,
        }
    }

    /// lapin answered the publish.
    pub(crate) fn sent(&mut self) {
        self.sending = false;
    }

    /// Sets attributes on the span.
    pub(crate) fn set_attributes(&self, attributes: Vec<KeyValue>) {
        if let Some(operation) = &self.operation {
            opentelemetry::trace::TraceContextExt::span(operation.context())
                .set_attributes(attributes);
        }
    }

    pub(crate) fn record_error(&mut self, error_type: Cow<'static, str>, message: String) {
        if let Some(operation) = self.operation.as_mut() {
            operation.record_error(error_type, message);
        }
    }

    /// Ends the span, records the operation duration and counts the sent message.
    pub(crate) fn finish(mut self, error_type: Option<Cow<'static, str>>) {
        self.finish_inner(error_type);
    }

    /// Ends the span of a publish whose outcome will not be known here (the confirm was
    /// dropped or unwrapped): neither a success nor an error, marked
    /// [`AMQP_CONFIRM_UNKNOWN`] on the span and on the metric points.
    fn finish_unknown(&mut self) {
        let Some(mut operation) = self.operation.take() else {
            return;
        };
        operation.set_attribute(KeyValue::new(AMQP_CONFIRM_UNKNOWN, true));
        self.target.unknown_sent.add(1);
        operation.end_with_bound(&self.target.unknown_duration);
    }

    fn finish_inner(&mut self, error_type: Option<Cow<'static, str>>) {
        let Some(operation) = self.operation.take() else {
            return;
        };
        if error_type.is_none() {
            self.target.sent.add(1);
            operation.end_with_bound(&self.target.duration);
        } else {
            let attributes = with_error_type(&self.target.metric_attributes, error_type);
            self.shared.sent_messages.add(1, &attributes);
            record::end_with_duration(operation, &self.shared.operation_duration, &attributes);
        }
    }
}

impl Drop for PendingPublish {
    /// Only reached with the span still open when the publish is dropped before lapin answered
    /// it (cancelled), or the confirm before it resolves (unknown).
    fn drop(&mut self) {
        if self.sending {
            self.record_error(
                Cow::Borrowed(CANCELLED),
                "the publish was dropped before it completed".to_owned(),
            );
            self.finish_inner(Some(Cow::Borrowed(CANCELLED)));
        } else {
            self.finish_unknown();
        }
    }
}

/// `error.type` of a publish dropped before lapin answered it.
const CANCELLED: &str = "cancelled";
