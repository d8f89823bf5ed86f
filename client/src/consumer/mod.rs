//! Consumers: the push consumer ([`PushConsumer`], client.md §4–§5) and the lite pull
//! consumer ([`LitePullConsumer`], §8), with what they share: listeners and their results,
//! allocation strategies, process queues, offset stores, pulls and the rebalance.

mod allocate;
mod consume;
mod lite_pull;
mod offset_store;
mod pool;
mod process_queue;
mod pull;
mod push;
mod rebalance;
pub mod subscription;

use std::time::Duration;

pub use allocate::AllocateStrategy;
pub use ferromq_remoting::bodies::{ConsumeFromWhere, MessageModel};
pub use lite_pull::{LitePullConsumer, LitePullConsumerConfig};
pub use push::{PushConsumer, PushConsumerConfig};

pub(crate) use offset_store::{query_offset, update_offset};

use ferromq_message::MessageExt;
use ferromq_remoting::bodies::MessageQueue;

/// What a concurrent listener says about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumeConcurrentlyStatus {
    /// Done (messages up to the context's `ack_index`).
    ConsumeSuccess,
    /// Failed: send the messages back to be retried later (clustering).
    ReconsumeLater,
}

/// Context of one concurrent listener call.
#[derive(Debug, Clone)]
pub struct ConsumeConcurrentlyContext {
    /// The queue the messages came from.
    pub message_queue: MessageQueue,
    /// Delay level of the retry: 0 lets the broker choose `3 + reconsumeTimes`; below 0
    /// sends failed messages straight to the dead-letter queue.
    pub delay_level_when_next_consume: i32,
    /// On success, messages `0..=ack_index` count as consumed and the rest are sent back.
    /// Default: all.
    pub ack_index: i32,
}

/// A listener called concurrently from the consume threads.
pub trait MessageListenerConcurrently: Send + Sync + 'static {
    /// Consumes a batch (at most `consume_message_batch_max_size` messages of one queue).
    /// A panic counts as [`ConsumeConcurrentlyStatus::ReconsumeLater`].
    fn consume_message(
        &self,
        messages: &[MessageExt],
        context: &mut ConsumeConcurrentlyContext,
    ) -> ConsumeConcurrentlyStatus;
}

impl<F> MessageListenerConcurrently for F
where
    F: Fn(&[MessageExt], &mut ConsumeConcurrentlyContext) -> ConsumeConcurrentlyStatus
        + Send
        + Sync
        + 'static,
{
    fn consume_message(
        &self,
        messages: &[MessageExt],
        context: &mut ConsumeConcurrentlyContext,
    ) -> ConsumeConcurrentlyStatus {
        self(messages, context)
    }
}

/// What an orderly listener says about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumeOrderlyStatus {
    /// Done; commit.
    Success,
    /// Failed: stop this queue for a moment and consume the same messages again.
    SuspendCurrentQueueAMoment,
    /// Commit (only meaningful with `auto_commit = false`).
    Commit,
    /// Consume again (only with `auto_commit = false`).
    Rollback,
}

/// Context of one orderly listener call.
#[derive(Debug, Clone)]
pub struct ConsumeOrderlyContext {
    /// The queue the messages came from.
    pub message_queue: MessageQueue,
    /// Commit the offset after `Success` (default true).
    pub auto_commit: bool,
    /// How long to pause the queue after `SuspendCurrentQueueAMoment` (clamped 10 ms–30 s).
    pub suspend_current_queue_time: Duration,
}

/// A listener called for one queue at a time, in queue order.
pub trait MessageListenerOrderly: Send + Sync + 'static {
    /// Consumes a batch of one queue, in order. A panic counts as
    /// [`ConsumeOrderlyStatus::SuspendCurrentQueueAMoment`].
    fn consume_message(
        &self,
        messages: &[MessageExt],
        context: &mut ConsumeOrderlyContext,
    ) -> ConsumeOrderlyStatus;
}

impl<F> MessageListenerOrderly for F
where
    F: Fn(&[MessageExt], &mut ConsumeOrderlyContext) -> ConsumeOrderlyStatus
        + Send
        + Sync
        + 'static,
{
    fn consume_message(
        &self,
        messages: &[MessageExt],
        context: &mut ConsumeOrderlyContext,
    ) -> ConsumeOrderlyStatus {
        self(messages, context)
    }
}

/// A push consumer's listener: concurrent or orderly.
#[derive(Clone)]
pub enum MessageListener {
    /// Messages of any queue in parallel; failures are retried through `%RETRY%<group>`.
    Concurrently(std::sync::Arc<dyn MessageListenerConcurrently>),
    /// One queue at a time, in order, holding a broker lock on the queue (clustering).
    Orderly(std::sync::Arc<dyn MessageListenerOrderly>),
}

impl MessageListener {
    /// Wraps a concurrent listener (a closure works).
    pub fn concurrently(listener: impl MessageListenerConcurrently) -> Self {
        Self::Concurrently(std::sync::Arc::new(listener))
    }

    /// Wraps an orderly listener (a closure works).
    pub fn orderly(listener: impl MessageListenerOrderly) -> Self {
        Self::Orderly(std::sync::Arc::new(listener))
    }

    /// True for orderly listeners.
    pub fn is_orderly(&self) -> bool {
        matches!(self, Self::Orderly(_))
    }
}

impl std::fmt::Debug for MessageListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_orderly() {
            "MessageListener::Orderly"
        } else {
            "MessageListener::Concurrently"
        })
    }
}

/// The retry topic of a group.
pub fn retry_topic(group: &str) -> String {
    format!("{}{group}", ferromq_message::validate::RETRY_GROUP_TOPIC_PREFIX)
}

/// The dead-letter topic of a group.
pub fn dlq_topic(group: &str) -> String {
    format!("{}{group}", ferromq_message::validate::DLQ_GROUP_TOPIC_PREFIX)
}

/// Puts a retried message's original topic back (client.md §4.9): a message read from
/// `%RETRY%<group>` with a `RETRY_TOPIC` property gets that topic.
pub(crate) fn restore_retry_topic(group: &str, message: &mut MessageExt) {
    let retry = retry_topic(group);
    if message.message.topic == retry
        && let Some(original) = message.message.retry_topic()
    {
        message.message.topic = original.to_owned();
    }
}
