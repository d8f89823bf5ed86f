//! The producer (Java `DefaultMQProducer`, client.md §3): sync, async and oneway sends,
//! batches, explicit queues and selectors (hash of a sharding key for ordered messages).
//!
//! ```no_run
//! use ferromq_client::{Message, Producer, ProducerConfig};
//!
//! # async fn demo() -> ferromq_client::Result<()> {
//! let mut config = ProducerConfig::new("example_producer_group");
//! config.client.namesrv_addr = vec!["127.0.0.1:9876".into()];
//! let producer = Producer::new(config)?;
//! producer.start().await?;
//! let mut message = Message::new("TopicTest", "hello");
//! message.set_tags("TagA");
//! let result = producer.send(message).await?;
//! println!("{} stored at {:?} offset {}", result.msg_id, result.message_queue, result.queue_offset);
//! producer.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod fault;
pub(crate) mod send;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use ferromq_message::Message;
use ferromq_message::validate;
use ferromq_remoting::bodies::MessageQueue;

use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::instance::ClientInstance;
use send::Sender;

/// The topic whose route new topics are sent through, so the broker creates them.
pub const DEFAULT_CREATE_TOPIC_KEY: &str = "TBW102";

/// Producer settings with the Java defaults (client.md §3.1).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `producerGroup` (required): `[%|a-zA-Z0-9_-]`, at most 255 characters, not
    /// `DEFAULT_PRODUCER`.
    pub group: String,
    /// Shared client settings (name servers, intervals).
    pub client: ClientConfig,
    /// `createTopicKey`: template topic for auto-creation. Default `TBW102`.
    pub create_topic_key: String,
    /// `defaultTopicQueueNums`: queues of auto-created topics. Default 4; at least 1.
    pub default_topic_queue_nums: i32,
    /// `sendMsgTimeout`: budget of one send, retries included. Default 3 s.
    pub send_msg_timeout: Duration,
    /// `compressMsgBodyOverHowmuch`: bodies of at least this many bytes are zlib-compressed.
    /// Default 4096.
    pub compress_msg_body_over_bytes: usize,
    /// `compressLevel`: zlib level 0..=9. Default 5.
    pub compress_level: u32,
    /// `retryTimesWhenSendFailed`: extra sync attempts. Default 2 (3 attempts).
    pub retry_times_when_send_failed: u32,
    /// `retryTimesWhenSendAsyncFailed`: extra async attempts when no response came.
    /// Default 2.
    pub retry_times_when_send_async_failed: u32,
    /// `retryAnotherBrokerWhenNotStoreOK`: retry when a sync send's status is not
    /// `SEND_OK`. Default false.
    pub retry_another_broker_when_not_store_ok: bool,
    /// `maxMessageSize`: largest body (or encoded batch), bytes. Default 4 MiB; 1..=64 MiB.
    pub max_message_size_bytes: usize,
    /// `sendLatencyFaultEnable`: avoid brokers that were slow or failed recently
    /// (client.md §3.5, 5.x tables). Default false, as in Java.
    pub send_latency_fault_enable: bool,
}

impl ProducerConfig {
    /// Defaults for `group`.
    pub fn new(group: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            client: ClientConfig::default(),
            create_topic_key: DEFAULT_CREATE_TOPIC_KEY.to_owned(),
            default_topic_queue_nums: 4,
            send_msg_timeout: Duration::from_secs(3),
            compress_msg_body_over_bytes: 4096,
            compress_level: 5,
            retry_times_when_send_failed: 2,
            retry_times_when_send_async_failed: 2,
            retry_another_broker_when_not_store_ok: false,
            max_message_size_bytes: 4 * 1024 * 1024,
            send_latency_fault_enable: false,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        check_group_name("group", &self.group)?;
        if self.group == "DEFAULT_PRODUCER" {
            return Err(Error::InvalidConfig {
                field: "group",
                value: self.group.clone(),
                expected: "a group other than the reserved DEFAULT_PRODUCER",
            });
        }
        self.client.validate()?;
        if self.default_topic_queue_nums < 1 {
            return Err(invalid("default_topic_queue_nums", self.default_topic_queue_nums, "≥ 1"));
        }
        if self.compress_level > 9 {
            return Err(invalid("compress_level", self.compress_level, "0..=9"));
        }
        if !(1..=64 * 1024 * 1024).contains(&self.max_message_size_bytes) {
            return Err(invalid(
                "max_message_size_bytes",
                self.max_message_size_bytes,
                "1..=67108864",
            ));
        }
        if self.send_msg_timeout.is_zero() {
            return Err(invalid("send_msg_timeout", "0", "more than 0"));
        }
        Ok(())
    }
}

pub(crate) fn check_group_name(field: &'static str, group: &str) -> Result<()> {
    validate::check_group(group, validate::CLIENT_GROUP_MAX_LEN).map_err(|_| Error::InvalidConfig {
        field,
        value: group.to_owned(),
        expected: "1..=255 characters of [%|a-zA-Z0-9_-]",
    })
}

pub(crate) fn invalid(field: &'static str, value: impl ToString, expected: &'static str) -> Error {
    Error::InvalidConfig { field, value: value.to_string(), expected }
}

/// How the broker stored a message (client.md §3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendStatus {
    /// Stored (and flushed or replicated as the broker is configured).
    SendOk,
    /// Stored, but the synchronous flush timed out.
    FlushDiskTimeout,
    /// Stored, but the slave did not confirm in time.
    FlushSlaveTimeout,
    /// Stored, but no slave is available for a sync master.
    SlaveNotAvailable,
}

/// The outcome of a successful send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    /// How it was stored.
    pub status: SendStatus,
    /// The message's UNIQ_KEY (what Java calls `msgId`); for a batch, every message's
    /// UNIQ_KEY joined by `,`.
    pub msg_id: String,
    /// The broker's offset message id (store host + commit-log offset).
    pub offset_msg_id: String,
    /// The queue the message went to.
    pub message_queue: MessageQueue,
    /// Its queue offset (a batch's first message's).
    pub queue_offset: i64,
    /// The broker's transaction id, if any.
    pub transaction_id: Option<String>,
    /// The broker's region (`MSG_REGION`), `DefaultRegion` by default.
    pub region_id: String,
    /// Whether the broker has tracing on (`TRACE_ON`).
    pub trace_on: bool,
}

/// The Java `SelectMessageQueueByHash` index for a sharding key: its `String.hashCode`
/// remainder by `queue_count`, made non-negative. Every producer that sees the same queue
/// list sends a key to the same queue, which keeps its messages in order.
pub fn hash_queue_index(sharding_key: &str, queue_count: usize) -> usize {
    if queue_count == 0 {
        return 0;
    }
    let count = i32::try_from(queue_count).unwrap_or(i32::MAX);
    let value = ferromq_message::hash::java_string_hash(sharding_key) % count;
    value.unsigned_abs() as usize
}

const CREATED: u8 = 0;
const RUNNING: u8 = 1;
const SHUT_DOWN: u8 = 2;

/// A producer. Cheap to clone; clones share connections and state.
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<ProducerInner>,
}

#[derive(Debug)]
struct ProducerInner {
    sender: Sender,
    state: AtomicU8,
}

impl Producer {
    /// A producer for `config`, not yet started.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the configuration is invalid.
    pub fn new(mut config: ProducerConfig) -> Result<Self> {
        config.validate()?;
        config.client.change_instance_name_to_pid();
        let instance = ClientInstance::new(config.client.clone());
        let sender = Sender::new(instance, config);
        Ok(Self { inner: Arc::new(ProducerInner { sender, state: AtomicU8::new(CREATED) }) })
    }

    /// Starts timers (route refresh, heartbeats); must run inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::NotRunning`] when the producer was shut down.
    pub async fn start(&self) -> Result<()> {
        match self.inner.state.compare_exchange(
            CREATED,
            RUNNING,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {}
            Err(RUNNING) => return Ok(()),
            Err(_) => return Err(Error::NotRunning("the producer was shut down")),
        }
        let sender = &self.inner.sender;
        sender.instance.register_producer(&sender.config.group);
        sender.instance.add_topic(&sender.config.create_topic_key);
        sender.instance.start();
        sender.instance.send_heartbeat_to_all().await;
        Ok(())
    }

    /// Unregisters the group from every broker and closes connections. Idempotent.
    pub async fn shutdown(&self) {
        if self.inner.state.swap(SHUT_DOWN, Ordering::AcqRel) != RUNNING {
            return;
        }
        let sender = &self.inner.sender;
        sender.instance.unregister(Some(&sender.config.group), None).await;
        sender.instance.shutdown();
    }

    /// The producer's client id (`ip@instance`).
    pub fn client_id(&self) -> &str {
        &self.inner.sender.instance.client_id
    }

    /// The configuration in use.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.sender.config
    }

    fn check_running(&self) -> Result<()> {
        match self.inner.state.load(Ordering::Acquire) {
            RUNNING => Ok(()),
            CREATED => Err(Error::NotRunning("the producer is not started")),
            _ => Err(Error::NotRunning("the producer was shut down")),
        }
    }

    /// Sends synchronously: up to `1 + retry_times_when_send_failed` attempts on different
    /// brokers within `send_msg_timeout`.
    ///
    /// # Errors
    ///
    /// Invalid messages ([`Error::InvalidArgument`], [`Error::MessageTooLarge`]),
    /// [`Error::NoRoute`], a broker error that is not retried ([`Error::Broker`]),
    /// [`Error::Timeout`], or [`Error::SendFailed`] after the last attempt.
    pub async fn send(&self, message: Message) -> Result<SendResult> {
        self.send_timeout(message, self.config().send_msg_timeout).await
    }

    /// [`Producer::send`] with its own total timeout.
    ///
    /// # Errors
    ///
    /// As [`Producer::send`].
    pub async fn send_timeout(&self, message: Message, timeout: Duration) -> Result<SendResult> {
        self.check_running()?;
        let out = self.inner.sender.prepare(message)?;
        self.inner.sender.send_sync(&out, timeout).await
    }

    /// Sends asynchronously: the returned future owns everything it needs (spawn it, or
    /// keep many in flight and await them later). It is retried on another broker only when
    /// no response came (Java async semantics).
    ///
    /// # Errors
    ///
    /// The future resolves to the errors of [`Producer::send`].
    pub fn send_async(
        &self,
        message: Message,
    ) -> impl Future<Output = Result<SendResult>> + Send + 'static {
        let producer = self.clone();
        async move {
            producer.check_running()?;
            let sender = &producer.inner.sender;
            let out = sender.prepare(message)?;
            sender.send_async(&out, sender.config.send_msg_timeout).await
        }
    }

    /// Sends asynchronously on a spawned task and calls `callback` with the outcome.
    pub fn send_with_callback(
        &self,
        message: Message,
        callback: impl FnOnce(Result<SendResult>) + Send + 'static,
    ) {
        let future = self.send_async(message);
        tokio::spawn(async move { callback(future.await) });
    }

    /// Sends without waiting for the broker: one attempt, no response, no retry.
    ///
    /// # Errors
    ///
    /// Invalid messages, [`Error::NoRoute`], or a connection failure.
    pub async fn send_oneway(&self, message: Message) -> Result<()> {
        self.check_running()?;
        let out = self.inner.sender.prepare(message)?;
        self.inner.sender.send_oneway(&out).await
    }

    /// Sends to `queue`, one attempt.
    ///
    /// # Errors
    ///
    /// As [`Producer::send`]; also [`Error::InvalidArgument`] when the queue belongs to
    /// another topic.
    pub async fn send_to_queue(
        &self,
        message: Message,
        queue: &MessageQueue,
    ) -> Result<SendResult> {
        self.check_running()?;
        let out = self.inner.sender.prepare(message)?;
        let timeout = self.config().send_msg_timeout;
        self.inner.sender.send_to_queue(&out, queue, false, timeout).await.and_then(expect_result)
    }

    /// Sends to the queue `selector` picks from the topic's publish queues, one attempt
    /// (Java `send(msg, selector, arg)`).
    ///
    /// # Errors
    ///
    /// As [`Producer::send_to_queue`]; [`Error::InvalidArgument`] when the selector picks
    /// nothing.
    pub async fn send_with_selector<S>(&self, message: Message, selector: S) -> Result<SendResult>
    where
        S: FnOnce(&[MessageQueue], &Message) -> Option<MessageQueue>,
    {
        self.check_running()?;
        let queues = self.inner.sender.publish_queues(&message.topic).await?;
        let queue = selector(&queues, &message)
            .ok_or_else(|| Error::InvalidArgument("select message queue return null.".into()))?;
        self.send_to_queue(message, &queue).await
    }

    /// Sends to the queue chosen by the hash of `sharding_key` (Java
    /// `SelectMessageQueueByHash` with a string argument): messages with one key keep their
    /// order.
    ///
    /// # Errors
    ///
    /// As [`Producer::send_with_selector`].
    pub async fn send_orderly(&self, message: Message, sharding_key: &str) -> Result<SendResult> {
        self.send_with_selector(message, |queues, _| {
            queues.get(hash_queue_index(sharding_key, queues.len())).cloned()
        })
        .await
    }

    /// Sends a batch synchronously (one SEND_BATCH_MESSAGE request, with retries).
    ///
    /// # Errors
    ///
    /// As [`Producer::send`]; [`Error::InvalidArgument`] for mixed topics or `WAIT` flags,
    /// delayed messages or retry topics; [`Error::MessageTooLarge`] when the encoded batch
    /// exceeds `max_message_size_bytes`.
    pub async fn send_batch(&self, messages: Vec<Message>) -> Result<SendResult> {
        self.check_running()?;
        let out = self.inner.sender.prepare_batch(messages)?;
        self.inner.sender.send_sync(&out, self.config().send_msg_timeout).await
    }

    /// Sends a batch asynchronously (see [`Producer::send_async`]).
    ///
    /// # Errors
    ///
    /// The future resolves to the errors of [`Producer::send_batch`].
    pub fn send_batch_async(
        &self,
        messages: Vec<Message>,
    ) -> impl Future<Output = Result<SendResult>> + Send + 'static {
        let producer = self.clone();
        async move {
            producer.check_running()?;
            let sender = &producer.inner.sender;
            let out = sender.prepare_batch(messages)?;
            sender.send_async(&out, sender.config.send_msg_timeout).await
        }
    }

    /// Sends a batch oneway.
    ///
    /// # Errors
    ///
    /// As [`Producer::send_oneway`] and [`Producer::send_batch`].
    pub async fn send_batch_oneway(&self, messages: Vec<Message>) -> Result<()> {
        self.check_running()?;
        let out = self.inner.sender.prepare_batch(messages)?;
        self.inner.sender.send_oneway(&out).await
    }

    /// Sends a batch to `queue`, one attempt.
    ///
    /// # Errors
    ///
    /// As [`Producer::send_batch`] and [`Producer::send_to_queue`].
    pub async fn send_batch_to_queue(
        &self,
        messages: Vec<Message>,
        queue: &MessageQueue,
    ) -> Result<SendResult> {
        self.check_running()?;
        let out = self.inner.sender.prepare_batch(messages)?;
        let timeout = self.config().send_msg_timeout;
        self.inner.sender.send_to_queue(&out, queue, false, timeout).await.and_then(expect_result)
    }

    /// The topic's publish queues (fetching its route if needed), in the order selectors
    /// see them.
    ///
    /// # Errors
    ///
    /// [`Error::NoRoute`] or [`Error::NoNameServer`].
    pub async fn publish_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        self.check_running()?;
        self.inner.sender.publish_queues(topic).await
    }

    /// What a send of `message` to `queue` would do, without sending: the master's address,
    /// the encoded request frame (opaque 0) and the message's `UNIQ_KEY`. The raw-frames
    /// bench replays such frames.
    ///
    /// # Errors
    ///
    /// As a send: invalid messages, no route, no broker address.
    pub(crate) async fn encoded_send(
        &self,
        message: Message,
        queue: &MessageQueue,
    ) -> Result<(String, bytes::BytesMut, String)> {
        self.check_running()?;
        let sender = &self.inner.sender;
        let out = sender.prepare(message)?;
        let addr = sender
            .instance
            .master_addr_or_refresh(&queue.broker_name, &out.topic)
            .await
            .ok_or_else(|| Error::BrokerNotFound { broker_name: queue.broker_name.clone() })?;
        let mut frame = bytes::BytesMut::new();
        sender
            .build_request(&out, queue)
            .encode(&mut frame)
            .map_err(|err| Error::InvalidArgument(format!("cannot encode a send: {err}")))?;
        Ok((addr, frame, out.msg_id))
    }
}

fn expect_result(result: Option<SendResult>) -> Result<SendResult> {
    result.ok_or_else(|| Error::InvalidArgument("a sync send got no response".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_index_follows_java_remainder_then_abs() {
        // "a".hashCode() = 97; 97 % 4 = 1.
        assert_eq!(hash_queue_index("a", 4), 1);
        // "polygenelubricants".hashCode() = Integer.MIN_VALUE; MIN % 4 = 0.
        assert_eq!(hash_queue_index("polygenelubricants", 4), 0);
        // A negative hash: "order-7".hashCode() is negative in Java? Check the rule on any key.
        for key in ["k1", "order-7", "zzzzzzzz", ""] {
            let hash = ferromq_message::hash::java_string_hash(key);
            assert_eq!(hash_queue_index(key, 3), (hash % 3).unsigned_abs() as usize);
        }
        assert_eq!(hash_queue_index("x", 0), 0);
    }

    #[test]
    fn config_validation() {
        ProducerConfig::new("PG").validate().unwrap();
        assert!(ProducerConfig::new("DEFAULT_PRODUCER").validate().is_err());
        assert!(ProducerConfig::new("bad group").validate().is_err());
        let config = ProducerConfig { compress_level: 10, ..ProducerConfig::new("PG") };
        assert!(config.validate().unwrap_err().to_string().contains("compress_level"));
    }
}
