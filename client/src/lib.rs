//! The ferromq client: producers, push and pull consumers, an admin API and the `ferromq`
//! command-line tool, for ferromq and for any Apache RocketMQ cluster.

pub mod admin;
pub mod bench;
mod broker_calls;
pub mod config;
pub mod consumer;
pub mod error;
mod instance;
pub mod producer;
pub mod route;
mod util;

pub use admin::Admin;
pub use config::ClientConfig;
pub use consumer::{
    LitePullConsumer, LitePullConsumerConfig, MessageListener, PushConsumer, PushConsumerConfig,
};
pub use error::{Error, Result};
pub use ferromq_message::{Message, MessageExt};
pub use ferromq_remoting::bodies::MessageQueue;
pub use producer::{Producer, ProducerConfig, SendResult, SendStatus};
