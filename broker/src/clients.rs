//! Producers and consumers known from heartbeats (broker.md §7) and queue locks for orderly
//! consumption (§10). Entries are keyed by connection, as in Java.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ferromq_remoting::LanguageCode;
use ferromq_remoting::bodies::{
    ConsumeFromWhere, ConsumeType, ConsumerData, MessageModel, MessageQueue, SubscriptionData,
};
use ferromq_remoting::transport::Connection;
use parking_lot::Mutex;

/// One client connection of a group.
#[derive(Debug, Clone)]
pub struct ClientChannel {
    /// The connection.
    pub connection: Connection,
    /// `clientID` from the heartbeat.
    pub client_id: String,
    /// The client's language.
    pub language: LanguageCode,
    /// The client's `MQVersion` ordinal.
    pub version: i32,
    /// Last heartbeat.
    pub last_update: Instant,
}

/// A consumer group as the broker sees it.
#[derive(Debug, Clone)]
pub struct ConsumerGroupInfo {
    /// Members by connection id.
    pub channels: BTreeMap<u64, ClientChannel>,
    /// Topic → subscription (last writer wins across members).
    pub subscriptions: BTreeMap<String, SubscriptionData>,
    /// Latest heartbeat's consume type.
    pub consume_type: ConsumeType,
    /// Latest heartbeat's message model.
    pub message_model: MessageModel,
    /// Latest heartbeat's start policy.
    pub consume_from_where: ConsumeFromWhere,
}

/// Producer and consumer tables.
#[derive(Debug, Default)]
pub struct ClientManager {
    consumers: Mutex<HashMap<String, ConsumerGroupInfo>>,
    producers: Mutex<HashMap<String, BTreeMap<u64, ClientChannel>>>,
}

impl ClientManager {
    /// Registers or refreshes a consumer (broker.md §7.2 steps 4–5). Returns whether the
    /// membership or the subscription set changed.
    pub fn register_consumer(&self, channel: ClientChannel, data: &ConsumerData) -> bool {
        let mut consumers = self.consumers.lock();
        let group = consumers.entry(data.group_name.clone()).or_insert_with(|| ConsumerGroupInfo {
            channels: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            consume_type: data.consume_type,
            message_model: data.message_model,
            consume_from_where: data.consume_from_where,
        });
        group.consume_type = data.consume_type;
        group.message_model = data.message_model;
        group.consume_from_where = data.consume_from_where;
        let id = channel.connection.id();
        let mut changed = false;
        match group.channels.get_mut(&id) {
            Some(existing) => {
                existing.client_id = channel.client_id;
                existing.last_update = channel.last_update;
                existing.version = channel.version;
            }
            None => {
                group.channels.insert(id, channel);
                changed = true;
            }
        }
        for subscription in &data.subscription_data_set {
            match group.subscriptions.get(&subscription.topic) {
                None => {
                    group.subscriptions.insert(subscription.topic.clone(), subscription.clone());
                    changed = true;
                }
                Some(old) if old.sub_version < subscription.sub_version => {
                    group.subscriptions.insert(subscription.topic.clone(), subscription.clone());
                }
                Some(_) => {}
            }
        }
        let before = group.subscriptions.len();
        group.subscriptions.retain(|topic, _| {
            data.subscription_data_set.iter().any(|subscription| &subscription.topic == topic)
        });
        changed || group.subscriptions.len() != before
    }

    /// Registers or refreshes a producer.
    pub fn register_producer(&self, group: &str, channel: ClientChannel) {
        self.producers
            .lock()
            .entry(group.to_owned())
            .or_default()
            .insert(channel.connection.id(), channel);
    }

    /// Removes `connection` from a consumer group; returns whether it was a member.
    pub fn unregister_consumer(&self, group: &str, connection: &Connection) -> bool {
        let mut consumers = self.consumers.lock();
        let Some(info) = consumers.get_mut(group) else { return false };
        let removed = info.channels.remove(&connection.id()).is_some();
        if info.channels.is_empty() {
            consumers.remove(group);
        }
        removed
    }

    /// Removes `connection` from a producer group.
    pub fn unregister_producer(&self, group: &str, connection: &Connection) {
        let mut producers = self.producers.lock();
        if let Some(channels) = producers.get_mut(group) {
            channels.remove(&connection.id());
            if channels.is_empty() {
                producers.remove(group);
            }
        }
    }

    /// Removes a closed connection everywhere; returns the consumer groups that lost it.
    pub fn connection_closed(&self, connection: &Connection) -> Vec<String> {
        let id = connection.id();
        let mut lost = Vec::new();
        let mut consumers = self.consumers.lock();
        consumers.retain(|group, info| {
            if info.channels.remove(&id).is_some() {
                lost.push(group.clone());
            }
            !info.channels.is_empty()
        });
        drop(consumers);
        self.producers.lock().retain(|_, channels| {
            channels.remove(&id);
            !channels.is_empty()
        });
        lost
    }

    /// Drops channels silent for longer than `timeout` and closes their connections (no
    /// notification, broker.md §7.3). Returns how many were dropped.
    pub fn scan_expired(&self, now: Instant, timeout: Duration) -> usize {
        let mut expired = Vec::new();
        let is_live =
            |channel: &ClientChannel| now.saturating_duration_since(channel.last_update) <= timeout;
        self.consumers.lock().retain(|_, info| {
            info.channels.retain(|_, channel| {
                let live = is_live(channel);
                if !live {
                    expired.push(channel.connection.clone());
                }
                live
            });
            !info.channels.is_empty()
        });
        self.producers.lock().retain(|_, channels| {
            channels.retain(|_, channel| {
                let live = is_live(channel);
                if !live {
                    expired.push(channel.connection.clone());
                }
                live
            });
            !channels.is_empty()
        });
        for connection in &expired {
            tracing::info!(peer = %connection.peer_addr(), "client channel expired; closing");
            connection.close();
        }
        expired.len()
    }

    /// A consumer group's info.
    pub fn consumer_group(&self, group: &str) -> Option<ConsumerGroupInfo> {
        self.consumers.lock().get(group).cloned()
    }

    /// What a pull without the SUBSCRIPTION flag checks: the group's message model and its
    /// subscription of `topic` (`None` inside when it has none); `None` for an unknown group.
    /// Copies that one subscription only, not the group's member table.
    pub fn pull_subscription(
        &self,
        group: &str,
        topic: &str,
    ) -> Option<(MessageModel, Option<SubscriptionData>)> {
        let consumers = self.consumers.lock();
        let info = consumers.get(group)?;
        Some((info.message_model, info.subscriptions.get(topic).cloned()))
    }

    /// Client ids of a group's members.
    pub fn consumer_ids(&self, group: &str) -> Vec<String> {
        self.consumers.lock().get(group).map_or_else(Vec::new, |info| {
            info.channels.values().map(|channel| channel.client_id.clone()).collect()
        })
    }

    /// Connections of a group's members.
    pub fn consumer_connections(&self, group: &str) -> Vec<Connection> {
        self.consumers.lock().get(group).map_or_else(Vec::new, |info| {
            info.channels.values().map(|channel| channel.connection.clone()).collect()
        })
    }

    /// A producer group's channels.
    pub fn producer_channels(&self, group: &str) -> Vec<ClientChannel> {
        self.producers.lock().get(group).map_or_else(Vec::new, |c| c.values().cloned().collect())
    }

    /// Consumer groups whose subscriptions include `topic`.
    pub fn groups_subscribing(&self, topic: &str) -> Vec<String> {
        self.consumers
            .lock()
            .iter()
            .filter(|(_, info)| info.subscriptions.contains_key(topic))
            .map(|(group, _)| group.clone())
            .collect()
    }

    /// The channel of a consumer `client_id` in `group`.
    pub fn find_consumer_channel(&self, group: &str, client_id: &str) -> Option<ClientChannel> {
        self.consumers
            .lock()
            .get(group)?
            .channels
            .values()
            .find(|channel| channel.client_id == client_id)
            .cloned()
    }

    /// Every consumer group name.
    pub fn consumer_groups(&self) -> Vec<String> {
        self.consumers.lock().keys().cloned().collect()
    }
}

/// A queue's lock: owner client id and last refresh.
type QueueLocks = HashMap<MessageQueue, (String, Instant)>;

/// `RebalanceLockManager`: group → queue → (client id, last refresh).
#[derive(Debug, Default)]
pub struct LockManager {
    table: Mutex<HashMap<String, QueueLocks>>,
}

/// How long a queue lock lives without refresh (`lockMaxLiveTime`).
pub const LOCK_MAX_LIVE: Duration = Duration::from_secs(60);

impl LockManager {
    /// Locks what can be locked for `client_id`; returns the queues it now holds.
    pub fn lock(
        &self,
        group: &str,
        client_id: &str,
        queues: &[MessageQueue],
        now: Instant,
    ) -> Vec<MessageQueue> {
        let mut table = self.table.lock();
        let locks = table.entry(group.to_owned()).or_default();
        let mut granted = Vec::new();
        for queue in queues {
            let take = match locks.get(queue) {
                None => true,
                Some((owner, _)) if owner == client_id => true,
                Some((_, refreshed)) => now.saturating_duration_since(*refreshed) > LOCK_MAX_LIVE,
            };
            if take {
                locks.insert(queue.clone(), (client_id.to_owned(), now));
                granted.push(queue.clone());
            }
        }
        granted
    }

    /// Releases the queues `client_id` holds among `queues`.
    pub fn unlock(&self, group: &str, client_id: &str, queues: &[MessageQueue]) {
        let mut table = self.table.lock();
        if let Some(locks) = table.get_mut(group) {
            for queue in queues {
                if locks.get(queue).is_some_and(|(owner, _)| owner == client_id) {
                    locks.remove(queue);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(queue_id: i32) -> MessageQueue {
        MessageQueue { topic: "T".into(), broker_name: "b".into(), queue_id }
    }

    #[test]
    fn locks_are_exclusive_until_they_expire() {
        let locks = LockManager::default();
        let start = Instant::now();
        assert_eq!(locks.lock("g", "c1", &[mq(0), mq(1)], start).len(), 2);
        assert_eq!(locks.lock("g", "c2", &[mq(1), mq(2)], start), vec![mq(2)]);
        assert_eq!(locks.lock("g", "c1", &[mq(1)], start), vec![mq(1)], "owner refreshes");
        let later = start + LOCK_MAX_LIVE + Duration::from_secs(1);
        assert_eq!(locks.lock("g", "c2", &[mq(1)], later), vec![mq(1)], "expired is taken over");
        locks.unlock("g", "c1", &[mq(0), mq(1)]);
        assert_eq!(locks.lock("g", "c3", &[mq(0)], later), vec![mq(0)], "released");
        assert!(locks.lock("g", "c3", &[mq(1)], later).is_empty(), "c2 still holds 1");
    }
}
