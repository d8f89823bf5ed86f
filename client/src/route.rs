//! Routes as a client sees them (client.md §2.5): the publish queue list a producer
//! round-robins over, the subscribe queue set a consumer rebalances, and the TBW102
//! fallback for topics that do not exist yet (§3.3).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};

use ferromq_remoting::bodies::{MessageQueue, QueueData, TopicRouteData};

/// Topic permission bits (`PermName`).
pub mod perm {
    /// Readable.
    pub const READ: i32 = 0x4;
    /// Writable.
    pub const WRITE: i32 = 0x2;
    /// Template for auto-created topics.
    pub const INHERIT: i32 = 0x1;
}

/// The id of a broker group's master.
pub const MASTER_ID: i64 = 0;

/// A producer's view of a topic: its writable queues, in route order.
#[derive(Debug)]
pub struct TopicPublishInfo {
    /// True when the route came from `orderTopicConf`.
    pub order_topic: bool,
    /// Writable queues of brokers with a master, sorted by broker name then queue id (or in
    /// `orderTopicConf` order).
    pub queues: Vec<MessageQueue>,
    /// Round-robin position. Java keeps one per thread; one shared counter spreads sends as
    /// evenly.
    counter: AtomicU32,
}

impl TopicPublishInfo {
    /// Builds the publish info of `topic` from its route (Java
    /// `topicRouteData2TopicPublishInfo`).
    pub fn from_route(topic: &str, route: &TopicRouteData) -> Self {
        let counter = AtomicU32::new(crate::util::random_u64() as u32);
        if let Some(conf) = route.order_topic_conf.as_deref().filter(|conf| !conf.is_empty()) {
            let mut queues = Vec::new();
            for entry in conf.split(';') {
                let Some((broker, count)) = entry.split_once(':') else { continue };
                let count: i32 = count.trim().parse().unwrap_or(0);
                for queue_id in 0..count {
                    queues.push(queue(topic, broker, queue_id));
                }
            }
            return Self { order_topic: true, queues, counter };
        }
        let mut queue_datas: Vec<&QueueData> = route.queue_datas.iter().collect();
        queue_datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        let mut queues = Vec::new();
        for data in queue_datas {
            if data.perm & perm::WRITE == 0 {
                continue;
            }
            let has_master = route.broker_datas.iter().any(|broker| {
                broker.broker_name == data.broker_name
                    && broker.broker_addrs.contains_key(&MASTER_ID)
            });
            if !has_master {
                continue;
            }
            for queue_id in 0..data.write_queue_nums {
                queues.push(queue(topic, &data.broker_name, queue_id));
            }
        }
        Self { order_topic: false, queues, counter }
    }

    /// True when there is at least one queue to send to.
    pub fn ok(&self) -> bool {
        !self.queues.is_empty()
    }

    /// The next queue in round-robin order.
    pub fn next_queue(&self) -> Option<&MessageQueue> {
        if self.queues.is_empty() {
            return None;
        }
        let position = self.counter.fetch_add(1, Ordering::Relaxed).wrapping_add(1) & 0x7FFF_FFFF;
        self.queues.get(position as usize % self.queues.len())
    }

    /// Java `selectOneMessageQueue(lastBrokerName)` without fault tolerance: on a retry, the
    /// next queue on a broker other than `last_broker`, else the next queue anyway.
    pub fn select_queue(&self, last_broker: Option<&str>) -> Option<&MessageQueue> {
        let Some(last) = last_broker else { return self.next_queue() };
        for _ in 0..self.queues.len() {
            let candidate = self.next_queue()?;
            if candidate.broker_name != last {
                return Some(candidate);
            }
        }
        self.next_queue()
    }

    /// The number of writable queues on `broker_name`.
    pub fn write_queue_count(&self, broker_name: &str) -> usize {
        self.queues.iter().filter(|queue| queue.broker_name == broker_name).count()
    }
}

/// A consumer's view of a topic: every readable queue (Java
/// `topicRouteData2TopicSubscribeInfo`), whether or not its broker has a master.
pub fn subscribe_queues(topic: &str, route: &TopicRouteData) -> BTreeSet<MessageQueue> {
    let mut queues = BTreeSet::new();
    for data in &route.queue_datas {
        if data.perm & perm::READ == 0 {
            continue;
        }
        for queue_id in 0..data.read_queue_nums {
            queues.insert(queue(topic, &data.broker_name, queue_id));
        }
    }
    queues
}

/// The route of a topic that does not exist yet, built from the template topic's (TBW102)
/// route: every queue count becomes `min(default_queue_nums, readQueueNums)` (client.md
/// §3.3 — Java bases it on the template's read count).
pub fn fallback_route(template: &TopicRouteData, default_queue_nums: i32) -> TopicRouteData {
    let mut route = template.clone();
    for data in &mut route.queue_datas {
        let count = default_queue_nums.min(data.read_queue_nums);
        data.read_queue_nums = count;
        data.write_queue_nums = count;
    }
    route
}

/// True when two routes are the same after sorting their queue and broker data by broker
/// name (Java `topicRouteDataIsChange` negated).
pub fn same_route(a: &TopicRouteData, b: &TopicRouteData) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    for route in [&mut a, &mut b] {
        route.queue_datas.sort_by(|x, y| x.broker_name.cmp(&y.broker_name));
        route.broker_datas.sort_by(|x, y| x.broker_name.cmp(&y.broker_name));
    }
    a == b
}

/// The broker name → (id → address) entries of a route.
pub fn broker_addr_entries(route: &TopicRouteData) -> BTreeMap<String, BTreeMap<i64, String>> {
    route
        .broker_datas
        .iter()
        .map(|broker| (broker.broker_name.clone(), broker.broker_addrs.clone()))
        .collect()
}

/// A `MessageQueue`.
pub fn queue(topic: &str, broker_name: &str, queue_id: i32) -> MessageQueue {
    MessageQueue { topic: topic.to_owned(), broker_name: broker_name.to_owned(), queue_id }
}

/// Java's `MessageQueue.toString()`, which the consistent-hash strategy hashes.
pub fn queue_to_string(queue: &MessageQueue) -> String {
    format!(
        "MessageQueue [topic={}, brokerName={}, queueId={}]",
        queue.topic, queue.broker_name, queue.queue_id
    )
}

#[cfg(test)]
mod tests {
    use ferromq_remoting::bodies::BrokerData;

    use super::*;

    fn route() -> TopicRouteData {
        let broker = |name: &str, ids: &[i64]| BrokerData {
            cluster: "C".into(),
            broker_name: name.into(),
            broker_addrs: ids.iter().map(|id| (*id, format!("{name}:{id}"))).collect(),
            ..BrokerData::default()
        };
        let queues = |name: &str, read, write, perm| QueueData {
            broker_name: name.into(),
            read_queue_nums: read,
            write_queue_nums: write,
            perm,
            topic_sys_flag: 0,
        };
        TopicRouteData {
            queue_datas: vec![
                queues("broker-b", 2, 2, 6),
                queues("broker-a", 3, 2, 6),
                queues("broker-c", 1, 1, 4),
                queues("broker-d", 2, 2, 6),
            ],
            broker_datas: vec![
                broker("broker-b", &[0]),
                broker("broker-a", &[0, 1]),
                broker("broker-c", &[0]),
                broker("broker-d", &[1]),
            ],
            ..TopicRouteData::default()
        }
    }

    #[test]
    fn publish_queues_are_writable_queues_of_brokers_with_a_master_sorted() {
        let info = TopicPublishInfo::from_route("T", &route());
        let names: Vec<(String, i32)> =
            info.queues.iter().map(|q| (q.broker_name.clone(), q.queue_id)).collect();
        assert_eq!(
            names,
            [
                ("broker-a".to_owned(), 0),
                ("broker-a".to_owned(), 1),
                ("broker-b".to_owned(), 0),
                ("broker-b".to_owned(), 1)
            ]
        );
        assert!(!info.order_topic);
        assert_eq!(info.write_queue_count("broker-a"), 2);
    }

    #[test]
    fn subscribe_queues_are_readable_queues_regardless_of_master() {
        let queues = subscribe_queues("T", &route());
        // a: 3, b: 2, c: 1 (read-only is still readable), d: 2 (no master).
        assert_eq!(queues.len(), 8);
        assert!(queues.contains(&queue("T", "broker-d", 1)));
    }

    #[test]
    fn order_topic_conf_gives_queues_in_text_order() {
        let route =
            TopicRouteData { order_topic_conf: Some("broker-b:2;broker-a:1".into()), ..route() };
        let info = TopicPublishInfo::from_route("T", &route);
        assert!(info.order_topic);
        assert_eq!(
            info.queues,
            [queue("T", "broker-b", 0), queue("T", "broker-b", 1), queue("T", "broker-a", 0)]
        );
    }

    #[test]
    fn retries_avoid_the_last_broker() {
        let info = TopicPublishInfo::from_route("T", &route());
        for _ in 0..20 {
            let chosen = info.select_queue(Some("broker-a")).unwrap();
            assert_eq!(chosen.broker_name, "broker-b");
        }
        let mut seen = BTreeSet::new();
        for _ in 0..8 {
            seen.insert(info.select_queue(None).unwrap().clone());
        }
        assert_eq!(seen.len(), 4, "round robin visits every queue");
    }

    #[test]
    fn fallback_route_caps_queue_counts_by_the_template_read_count() {
        let template = route();
        let fallback = fallback_route(&template, 4);
        let a = fallback.queue_datas.iter().find(|q| q.broker_name == "broker-a").unwrap();
        assert_eq!((a.read_queue_nums, a.write_queue_nums), (3, 3));
        let fallback = fallback_route(&template, 1);
        assert!(fallback.queue_datas.iter().all(|q| q.write_queue_nums == 1));
    }

    #[test]
    fn same_route_ignores_order() {
        let a = route();
        let mut b = route();
        b.queue_datas.reverse();
        b.broker_datas.reverse();
        assert!(same_route(&a, &b));
        b.queue_datas[0].perm = 2;
        assert!(!same_route(&a, &b));
        assert_eq!(
            queue_to_string(&queue("T", "b", 3)),
            "MessageQueue [topic=T, brokerName=b, queueId=3]"
        );
    }
}
