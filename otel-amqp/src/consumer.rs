//! The instrumented push consumer.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_core::Stream;
use lapin::Consumer;
use lapin::types::ShortString;

use crate::attributes::span_name;
use crate::carrier::extract_context;
use crate::delivery::{InstrumentedDelivery, ReceiveKind};
use crate::shared::Shared;

/// Span names of the operations on one queue, computed once per consumer.
#[derive(Debug)]
pub(crate) struct QueueNames {
    pub(crate) queue: String,
    pub(crate) receive: Cow<'static, str>,
    pub(crate) process: Cow<'static, str>,
    pub(crate) ack: Cow<'static, str>,
    pub(crate) nack: Cow<'static, str>,
    pub(crate) reject: Cow<'static, str>,
}

impl QueueNames {
    pub(crate) fn new(queue: &str) -> Self {
        Self {
            queue: queue.to_owned(),
            receive: span_name("receive", queue),
            process: span_name("process", queue),
            ack: span_name("ack", queue),
            nack: span_name("nack", queue),
            reject: span_name("reject", queue),
        }
    }
}

/// A [`lapin::Consumer`] whose deliveries are traced: a [`Stream`] of
/// [`InstrumentedDelivery`] (or lapin's error).
///
/// For each delivery it extracts the producer's context from the message headers (a missing or
/// malformed context is not an error: the message is then traced in a new trace, or under the
/// consumer's current span), records a CLIENT span `receive {queue}` for the hand-over of the
/// message to the application and counts it in `messaging.client.consumed.messages`, then opens
/// the CONSUMER span `process {queue}` that the delivery carries until it is settled or
/// dropped. See the crate documentation for the exact trace structure.
///
/// ```no_run
/// # async fn run(channel: otel_amqp::InstrumentedChannel) -> lapin::Result<()> {
/// use futures_util::StreamExt;
/// use lapin::{options::*, types::FieldTable};
///
/// let mut consumer = channel
///     .basic_consume(
///         "jobs".into(),
///         "worker".into(),
///         BasicConsumeOptions::default(),
///         FieldTable::default(),
///     )
///     .await?;
/// while let Some(delivery) = consumer.next().await {
///     let mut delivery = delivery?;
///     let outcome = delivery
///         .process(|message| async move {
///             // runs inside the `process jobs` span
///             std::str::from_utf8(&message.data).map(str::len)
///         })
///         .await;
///     match outcome {
///         Ok(_) => delivery.ack(BasicAckOptions::default()).await?,
///         Err(_) => {
///             delivery
///                 .nack(BasicNackOptions {
///                     requeue: true,
///                     ..Default::default()
///                 })
///                 .await?
///         }
///     };
/// }
/// # Ok(()) }
/// ```
pub struct InstrumentedConsumer {
    inner: Consumer,
    names: Arc<QueueNames>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for InstrumentedConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedConsumer")
            .field("inner", &self.inner)
            .field("queue", &self.names.queue)
            .finish_non_exhaustive()
    }
}

impl InstrumentedConsumer {
    pub(crate) fn new(inner: Consumer, shared: Arc<Shared>) -> Self {
        let names = Arc::new(QueueNames::new(inner.queue().as_str()));
        Self {
            inner,
            names,
            shared,
        }
    }

    /// The consumer tag (the one given, or the one the server generated).
    ///
    /// ```no_run
    /// # async fn run(channel: otel_amqp::InstrumentedChannel) -> lapin::Result<()> {
    /// use lapin::{options::*, types::FieldTable};
    ///
    /// // An empty tag: the broker picks one.
    /// let consumer = channel
    ///     .basic_consume(
    ///         "jobs".into(),
    ///         "".into(),
    ///         BasicConsumeOptions::default(),
    ///         FieldTable::default(),
    ///     )
    ///     .await?;
    /// println!("consuming as {}", consumer.tag());
    /// // Later: stop it.
    /// channel
    ///     .get_ref()
    ///     .basic_cancel(consumer.tag(), BasicCancelOptions::default())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn tag(&self) -> ShortString {
        self.inner.tag()
    }

    /// The name of the queue consumed.
    ///
    /// ```no_run
    /// # async fn run(channel: otel_amqp::InstrumentedChannel) -> lapin::Result<()> {
    /// use lapin::{options::*, types::FieldTable};
    ///
    /// let consumer = channel
    ///     .basic_consume(
    ///         "jobs".into(),
    ///         "worker-1".into(),
    ///         BasicConsumeOptions::default(),
    ///         FieldTable::default(),
    ///     )
    ///     .await?;
    /// assert_eq!(consumer.queue(), "jobs");
    /// # Ok(()) }
    /// ```
    pub fn queue(&self) -> &str {
        &self.names.queue
    }

    /// The wrapped consumer.
    ///
    /// ```
    /// # fn run(consumer: otel_amqp::InstrumentedConsumer) {
    /// let lapin_consumer: &lapin::Consumer = consumer.get_ref();
    /// assert_eq!(lapin_consumer.queue().as_str(), consumer.queue());
    /// # }
    /// ```
    pub fn get_ref(&self) -> &Consumer {
        &self.inner
    }

    /// The wrapped consumer, mutably. Deliveries taken from it directly are not traced.
    ///
    /// ```
    /// # fn run(mut consumer: otel_amqp::InstrumentedConsumer) {
    /// let lapin_consumer: &mut lapin::Consumer = consumer.get_mut();
    /// # let _ = lapin_consumer;
    /// # }
    /// ```
    pub fn get_mut(&mut self) -> &mut Consumer {
        &mut self.inner
    }

    /// Unwraps the consumer; its later deliveries are not traced.
    ///
    /// ```no_run
    /// # async fn run(mut consumer: otel_amqp::InstrumentedConsumer) -> lapin::Result<()> {
    /// use futures_util::StreamExt;
    /// use lapin::options::BasicAckOptions;
    ///
    /// // Stop tracing: lapin's own deliveries from here on.
    /// let mut consumer: lapin::Consumer = consumer.into_inner();
    /// while let Some(delivery) = consumer.next().await {
    ///     delivery?.ack(BasicAckOptions::default()).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn into_inner(self) -> Consumer {
        self.inner
    }
}

impl Stream for InstrumentedConsumer {
    type Item = lapin::Result<InstrumentedDelivery>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Ready(Some(Ok(delivery))) => {
                let creation = delivery
                    .properties
                    .headers()
                    .as_ref()
                    .map(extract_context)
                    .unwrap_or_default();
                Poll::Ready(Some(Ok(InstrumentedDelivery::start(
                    delivery,
                    creation,
                    ReceiveKind::Pushed,
                    this.names.clone(),
                    this.shared.clone(),
                ))))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}
