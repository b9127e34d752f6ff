#![doc = include_str!("../../docs/adapters/amqp.md")]

mod attributes;
mod carrier;
mod channel;
mod consumer;
mod delivery;
mod publish;
mod record;
mod shared;

pub use attributes::{AMQP_CONFIRM_UNKNOWN, AMQP_MULTIPLE, AMQP_REDELIVERED, AMQP_REQUEUE};
pub use carrier::{AmqpHeaderExtractor, AmqpHeaderInjector, extract_context, inject_context};
pub use channel::{InstrumentedChannel, InstrumentedChannelBuilder};
pub use consumer::InstrumentedConsumer;
pub use delivery::InstrumentedDelivery;
pub use publish::InstrumentedPublisherConfirm;
pub use shared::ConsumerParent;
