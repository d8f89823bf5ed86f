//! The ferromq client: a RocketMQ client for ferromq and for any Apache RocketMQ cluster —
//! producer, push consumer, lite pull consumer and admin API over the remoting protocol,
//! plus the `ferromq` command-line tool and its load generator.
//!
//! What it is: a faithful port of the Java client's behaviour (`shared/spec/client.md`):
//! route caching and name-server fail-over, TBW102 auto-creation, round-robin with
//! retries on other brokers and optional latency fault avoidance, zlib compression above
//! 4 KiB, heartbeats, rebalancing (averagely, by circle, consistent hash), long polling,
//! bounded process queues, ack by smallest in-flight offset, send-back to `%RETRY%` and the
//! DLQ, orderly consumption under broker locks, remote and local offset stores. It talks to
//! brokers as a Java 4.9.8 client would (request version 409, JSON headers by default).
//! What it is not: a gRPC (5.x proxy) client, a transactional producer (half messages can
//! be sent, but check-back requests are not answered), or a SQL92 filter (it only passes
//! expressions to the broker).
//!
//! Everything runs on the caller's tokio runtime; listeners run on the consumer's own
//! threads, so they may block.
//!
//! ```no_run
//! use ferromq_client::consumer::ConsumeConcurrentlyStatus;
//! use ferromq_client::{Message, MessageListener, Producer, ProducerConfig};
//! use ferromq_client::{PushConsumer, PushConsumerConfig};
//!
//! # async fn demo() -> ferromq_client::Result<()> {
//! let mut config = ProducerConfig::new("example_producer");
//! config.client.namesrv_addr = vec!["127.0.0.1:9876".into()];
//! let producer = Producer::new(config)?;
//! producer.start().await?;
//! let sent = producer.send(Message::new("TopicTest", "hello")).await?;
//! println!("sent {} to {:?}", sent.msg_id, sent.message_queue);
//!
//! let mut config = PushConsumerConfig::new("example_consumer");
//! config.client.namesrv_addr = vec!["127.0.0.1:9876".into()];
//! let listener = MessageListener::concurrently(|messages: &[ferromq_client::MessageExt], _: &mut _| {
//!     println!("got {} messages", messages.len());
//!     ConsumeConcurrentlyStatus::ConsumeSuccess
//! });
//! let consumer = PushConsumer::new(config, listener)?;
//! consumer.subscribe("TopicTest", "*")?;
//! consumer.start().await?;
//! # consumer.shutdown().await;
//! # producer.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Map of the crate:
//! - [`config`]: [`ClientConfig`], shared by every client kind.
//! - [`producer`]: [`Producer`] — send flows, retries, fault avoidance, batches, selectors.
//! - [`consumer`]: [`PushConsumer`], [`LitePullConsumer`], listeners, allocation strategies.
//! - [`admin`]: [`Admin`] — topics, clusters, groups, offsets, lag, message queries.
//! - [`route`]: publish and subscribe views of a topic route, TBW102 fallback.
//! - [`bench`](mod@bench): the load generator behind `ferromq bench`.
//! - [`error`]: [`Error`], one enum for the crate.
//! - private: `instance` (connections, route cache, heartbeats, timers, pushed requests),
//!   `broker_calls` (offset lookups, consumer lists, locks), `util`.

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
