#![doc = include_str!("../../docs/adapters/redis.md")]

mod builder;
mod command;
mod command_names;
mod connection;
mod outcome;
mod record;
mod select;

pub use builder::{Builder, QueryTextMode, RedisInstrumentation, RedisInstrumentationBuilder};
pub use connection::InstrumentedConnection;
