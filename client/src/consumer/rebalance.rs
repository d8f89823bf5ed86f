//! What the push and lite pull consumers' rebalances share (client.md §5): the queues this
//! client takes of a topic, and where a newly taken queue starts (§5.5).

use std::collections::BTreeSet;

use ferromq_remoting::bodies::{ConsumeFromWhere, MessageModel, MessageQueue};

use super::AllocateStrategy;
use super::offset_store::{OFFSET_READ_ERROR, OffsetStore, ReadOffsetType};
use crate::broker_calls;
use crate::instance::ClientInstance;

/// Pulls that have not run for this long make the rebalance recreate the queue (Java
/// `pullMaxIdleTime`, 120 s).
pub(crate) const PULL_MAX_IDLE_MS: i64 = 120_000;

/// The queues of `topic` this client takes (client.md §5.2): every readable queue when
/// broadcasting; its share by `strategy` when clustering. `None` skips the topic this round
/// (no route, or no consumer list).
pub(crate) async fn allocate_topic(
    instance: &ClientInstance,
    group: &str,
    model: MessageModel,
    strategy: AllocateStrategy,
    topic: &str,
) -> Option<BTreeSet<MessageQueue>> {
    let queues = instance.subscribe_queues(topic).await?;
    if model == MessageModel::Broadcasting {
        return Some(queues);
    }
    let mut client_ids = broker_calls::consumer_ids(instance, group, topic).await?;
    if queues.is_empty() || client_ids.is_empty() {
        return None;
    }
    client_ids.sort();
    client_ids.dedup();
    let all: Vec<MessageQueue> = queues.into_iter().collect();
    if !client_ids.contains(&instance.client_id) {
        tracing::debug!(group, topic, "this client is not in the group's id list yet");
    }
    Some(strategy.allocate(&instance.client_id, &all, &client_ids).into_iter().collect())
}

/// Where a queue without a committed offset starts (client.md §5.5); `None` skips the
/// queue this round.
pub(crate) async fn compute_pull_from_where(
    instance: &ClientInstance,
    offsets: &OffsetStore,
    from: ConsumeFromWhere,
    timestamp_ms: i64,
    queue: &MessageQueue,
    read: ReadOffsetType,
) -> Option<i64> {
    let last = offsets.read(queue, read).await;
    if last >= 0 {
        return Some(last);
    }
    if last == OFFSET_READ_ERROR {
        return None;
    }
    let retry = queue.topic.starts_with(ferromq_message::validate::RETRY_GROUP_TOPIC_PREFIX);
    let found = match from {
        ConsumeFromWhere::ConsumeFromFirstOffset => return Some(0),
        ConsumeFromWhere::ConsumeFromTimestamp if retry => {
            broker_calls::max_offset(instance, queue).await
        }
        ConsumeFromWhere::ConsumeFromTimestamp => {
            broker_calls::search_offset(instance, queue, timestamp_ms).await
        }
        _ if retry => return Some(0),
        _ => broker_calls::max_offset(instance, queue).await,
    };
    match found {
        Ok(offset) => Some(offset),
        Err(error) => {
            tracing::debug!(?queue, %error, "cannot compute where to start");
            None
        }
    }
}
