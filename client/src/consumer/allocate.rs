//! Queue allocation strategies (client.md §5.3): which of a topic's queues a client of a
//! clustering group takes, given every queue and every client id, both sorted.

use std::collections::BTreeMap;

use ferromq_remoting::bodies::MessageQueue;

use crate::route::queue_to_string;

/// How a clustering group splits a topic's queues among its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllocateStrategy {
    /// `AllocateMessageQueueAveragely` (default): contiguous runs, the first `n mod c`
    /// clients get one more.
    #[default]
    Averagely,
    /// `AllocateMessageQueueAveragelyByCircle`: client `i` takes every `c`-th queue from `i`.
    AveragelyByCircle,
    /// `AllocateMessageQueueConsistentHash` with this many virtual nodes per client
    /// (Java default 10).
    ConsistentHash {
        /// Virtual nodes per client on the ring.
        virtual_nodes: usize,
    },
}

impl AllocateStrategy {
    /// The Java strategy name (`getName()`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Averagely => "AVG",
            Self::AveragelyByCircle => "AVG_BY_CIRCLE",
            Self::ConsistentHash { .. } => "CONSISTENT_HASH",
        }
    }

    /// The queues of `all_queues` that `client_id` takes. Inputs must be sorted (queues by
    /// topic, broker name, queue id; client ids as strings). A client missing from
    /// `client_ids` (the broker asked has not seen its heartbeat yet) gets nothing.
    pub fn allocate(
        self,
        client_id: &str,
        all_queues: &[MessageQueue],
        client_ids: &[String],
    ) -> Vec<MessageQueue> {
        let Some(index) = client_ids.iter().position(|id| id == client_id) else {
            return Vec::new();
        };
        if all_queues.is_empty() {
            return Vec::new();
        }
        match self {
            Self::Averagely => averagely(index, all_queues, client_ids.len()),
            Self::AveragelyByCircle => all_queues
                .iter()
                .enumerate()
                .filter(|(k, _)| k % client_ids.len() == index)
                .map(|(_, queue)| queue.clone())
                .collect(),
            Self::ConsistentHash { virtual_nodes } => {
                consistent_hash(client_id, all_queues, client_ids, virtual_nodes.max(1))
            }
        }
    }
}

fn averagely(index: usize, all_queues: &[MessageQueue], client_count: usize) -> Vec<MessageQueue> {
    let queue_count = all_queues.len();
    let remainder = queue_count % client_count;
    let average_size = if queue_count <= client_count {
        1
    } else if remainder > 0 && index < remainder {
        queue_count / client_count + 1
    } else {
        queue_count / client_count
    };
    let start = if remainder > 0 && index < remainder {
        index * average_size
    } else {
        index * average_size + remainder
    };
    if start >= queue_count {
        return Vec::new();
    }
    let range = average_size.min(queue_count - start);
    all_queues[start..start + range].to_vec()
}

fn consistent_hash(
    client_id: &str,
    all_queues: &[MessageQueue],
    client_ids: &[String],
    virtual_nodes: usize,
) -> Vec<MessageQueue> {
    let mut ring: BTreeMap<u32, &str> = BTreeMap::new();
    for id in client_ids {
        for replica in 0..virtual_nodes {
            ring.insert(md5_hash(&format!("{id}-{replica}")), id);
        }
    }
    all_queues
        .iter()
        .filter(|queue| {
            let hash = md5_hash(&queue_to_string(queue));
            let owner = ring.range(hash..).next().or_else(|| ring.iter().next()).map(|(_, id)| *id);
            owner == Some(client_id)
        })
        .cloned()
        .collect()
}

/// Java `MD5Hash.hash`: the first four digest bytes as an unsigned big-endian integer.
fn md5_hash(key: &str) -> u32 {
    let digest = crate::util::md5(key.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::queue;

    fn queues(n: i32) -> Vec<MessageQueue> {
        (0..n).map(|id| queue("T", "b", id)).collect()
    }

    fn clients(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    fn ids(allocated: &[MessageQueue]) -> Vec<i32> {
        allocated.iter().map(|q| q.queue_id).collect()
    }

    #[test]
    fn averagely_worked_example_1_eight_queues_three_clients() {
        let (all, cids) = (queues(8), clients(3));
        let strategy = AllocateStrategy::Averagely;
        assert_eq!(ids(&strategy.allocate("c0", &all, &cids)), [0, 1, 2]);
        assert_eq!(ids(&strategy.allocate("c1", &all, &cids)), [3, 4, 5]);
        assert_eq!(ids(&strategy.allocate("c2", &all, &cids)), [6, 7]);
    }

    #[test]
    fn averagely_worked_example_2_three_queues_five_clients() {
        let (all, cids) = (queues(3), clients(5));
        let strategy = AllocateStrategy::Averagely;
        assert_eq!(ids(&strategy.allocate("c0", &all, &cids)), [0]);
        assert_eq!(ids(&strategy.allocate("c1", &all, &cids)), [1]);
        assert_eq!(ids(&strategy.allocate("c2", &all, &cids)), [2]);
        assert!(strategy.allocate("c3", &all, &cids).is_empty());
        assert!(strategy.allocate("c4", &all, &cids).is_empty());
    }

    #[test]
    fn averagely_worked_example_3_two_brokers_two_clients() {
        let all =
            vec![queue("T", "a", 0), queue("T", "a", 1), queue("T", "b", 0), queue("T", "b", 1)];
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(sorted, all, "queues sort by topic, broker name, queue id");
        let cids = clients(2);
        let c0 = AllocateStrategy::Averagely.allocate("c0", &all, &cids);
        let c1 = AllocateStrategy::Averagely.allocate("c1", &all, &cids);
        assert!(c0.iter().all(|q| q.broker_name == "a") && c0.len() == 2);
        assert!(c1.iter().all(|q| q.broker_name == "b") && c1.len() == 2);
    }

    #[test]
    fn by_circle_example() {
        let (all, cids) = (queues(8), clients(3));
        let strategy = AllocateStrategy::AveragelyByCircle;
        assert_eq!(ids(&strategy.allocate("c0", &all, &cids)), [0, 3, 6]);
        assert_eq!(ids(&strategy.allocate("c1", &all, &cids)), [1, 4, 7]);
        assert_eq!(ids(&strategy.allocate("c2", &all, &cids)), [2, 5]);
    }

    #[test]
    fn every_strategy_partitions_the_queues() {
        for strategy in [
            AllocateStrategy::Averagely,
            AllocateStrategy::AveragelyByCircle,
            AllocateStrategy::ConsistentHash { virtual_nodes: 10 },
        ] {
            for (n, c) in [(8, 3), (3, 5), (16, 4), (1, 1), (7, 2)] {
                let (all, cids) = (queues(n), clients(c));
                let mut taken: Vec<MessageQueue> =
                    cids.iter().flat_map(|cid| strategy.allocate(cid, &all, &cids)).collect();
                taken.sort();
                assert_eq!(taken, all, "{} with {n} queues and {c} clients", strategy.name());
            }
        }
    }

    #[test]
    fn consistent_hash_uses_md5_ring_and_is_stable_when_a_client_leaves() {
        let all = queues(16);
        let three = clients(3);
        let two: Vec<String> = vec!["c0".into(), "c1".into()];
        let strategy = AllocateStrategy::ConsistentHash { virtual_nodes: 10 };
        // Queues c0 owns with three clients stay with c0 when c2 leaves: only c2's move.
        let before = strategy.allocate("c0", &all, &three);
        let after = strategy.allocate("c0", &all, &two);
        assert!(before.iter().all(|q| after.contains(q)));
        // The ring hash is MD5's first four bytes, big-endian: md5("c0-0") = 0x...
        let digest = crate::util::md5(b"c0-0");
        assert_eq!(
            md5_hash("c0-0"),
            u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
        );
    }

    #[test]
    fn unknown_client_gets_nothing() {
        let strategy = AllocateStrategy::Averagely;
        assert!(strategy.allocate("stranger", &queues(4), &clients(2)).is_empty());
        assert!(strategy.allocate("c0", &[], &clients(2)).is_empty());
    }
}
