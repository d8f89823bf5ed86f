//! The push consumer against an in-process cluster: rebalance as members join and leave
//! (each message consumed once), broadcasting, retry through `%RETRY%` to the DLQ, orderly
//! consumption, offsets resumed after a restart, tag filtering and where new groups start.
#![cfg(test)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{Cluster, wait_until};
use ferromq_client::consumer::{
    ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumeOrderlyStatus, MessageModel, PushConsumer,
    PushConsumerConfig, dlq_topic,
};
use ferromq_client::{Message, MessageExt, MessageListener, Producer, ProducerConfig};
use parking_lot::Mutex;

/// Bodies received, with how many times each arrived, per consumer.
#[derive(Default, Clone)]
struct Received(Arc<Mutex<Vec<(String, MessageExt)>>>);

impl Received {
    fn listener(&self, who: &str) -> MessageListener {
        let (seen, who) = (self.0.clone(), who.to_owned());
        MessageListener::concurrently(move |messages: &[MessageExt], _: &mut _| {
            let mut seen = seen.lock();
            for message in messages {
                seen.push((who.clone(), message.clone()));
            }
            ConsumeConcurrentlyStatus::ConsumeSuccess
        })
    }

    fn len(&self) -> usize {
        self.0.lock().len()
    }

    fn bodies(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (_, message) in self.0.lock().iter() {
            *counts.entry(body(message)).or_insert(0) += 1;
        }
        counts
    }

    fn count_by(&self, who: &str) -> usize {
        self.0.lock().iter().filter(|(w, _)| w == who).count()
    }
}

/// One delivery: body, reconsume times, topic seen by the listener, msgId.
type Attempt = (String, i32, String, String);

fn body(message: &MessageExt) -> String {
    String::from_utf8(message.message.body.to_vec()).unwrap()
}

async fn producer(cluster: &Cluster, group: &str) -> Producer {
    let producer =
        Producer::new(ProducerConfig { client: cluster.client(), ..ProducerConfig::new(group) })
            .unwrap();
    producer.start().await.unwrap();
    producer
}

async fn send_range(producer: &Producer, topic: &str, prefix: &str, range: std::ops::Range<u32>) {
    for i in range {
        producer.send(Message::new(topic, format!("{prefix}-{i}"))).await.unwrap();
    }
}

fn consumer_config(cluster: &Cluster, group: &str) -> PushConsumerConfig {
    PushConsumerConfig {
        client: cluster.client(),
        consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
        consume_thread_count: 4,
        ..PushConsumerConfig::new(group)
    }
}

async fn push_consumer(
    config: PushConsumerConfig,
    listener: MessageListener,
    topic: &str,
    expression: &str,
) -> PushConsumer {
    let consumer = PushConsumer::new(config, listener).unwrap();
    consumer.subscribe(topic, expression).unwrap();
    consumer.start().await.unwrap();
    consumer
}

async fn wait_no_lag(cluster: &Cluster, group: &str) {
    let admin = cluster.admin();
    wait_until(Duration::from_secs(10), "committed offsets", || {
        let admin = admin.clone();
        async move { admin.consume_stats(group, None).await.is_ok_and(|p| p.total_lag() == 0) }
    })
    .await;
    admin.shutdown();
}

fn owned(consumer: &PushConsumer, topic: &str) -> usize {
    consumer.assigned_queues().iter().filter(|q| q.topic == topic).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clustering_rebalances_on_join_and_leave_and_consumes_each_message_once() {
    let cluster = Cluster::start(1).await;
    cluster.create_topic("RebalanceTopic", 8).await;
    let producer = producer(&cluster, "PG_rebalance").await;
    let received = Received::default();
    let a = push_consumer(
        consumer_config(&cluster, "CG_rebalance"),
        received.listener("a"),
        "RebalanceTopic",
        "*",
    )
    .await;
    wait_until(Duration::from_secs(10), "a owns every queue", || async {
        owned(&a, "RebalanceTopic") == 8
    })
    .await;
    send_range(&producer, "RebalanceTopic", "one", 0..40).await;
    wait_until(Duration::from_secs(10), "phase one consumed", || async { received.len() >= 40 })
        .await;
    // Members joining and leaving only hand queues over cleanly once commits caught up
    // (RocketMQ is at-least-once across rebalances): wait for a zero lag.
    wait_no_lag(&cluster, "CG_rebalance").await;

    let b = push_consumer(
        consumer_config(&cluster, "CG_rebalance"),
        received.listener("b"),
        "RebalanceTopic",
        "*",
    )
    .await;
    wait_until(Duration::from_secs(10), "queues split 4/4", || async {
        owned(&a, "RebalanceTopic") == 4 && owned(&b, "RebalanceTopic") == 4
    })
    .await;
    send_range(&producer, "RebalanceTopic", "two", 0..80).await;
    wait_until(Duration::from_secs(10), "phase two consumed", || async { received.len() >= 120 })
        .await;
    assert!(received.count_by("b") > 0, "the new member consumes its share");
    wait_no_lag(&cluster, "CG_rebalance").await;

    b.shutdown().await;
    wait_until(Duration::from_secs(10), "a owns every queue again", || async {
        owned(&a, "RebalanceTopic") == 8
    })
    .await;
    send_range(&producer, "RebalanceTopic", "three", 0..40).await;
    wait_until(Duration::from_secs(10), "phase three consumed", || async { received.len() >= 160 })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bodies = received.bodies();
    assert_eq!(bodies.len(), 160);
    assert!(bodies.values().all(|count| *count == 1), "duplicates: {bodies:?}");
    a.shutdown().await;
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasting_delivers_every_message_to_every_member() {
    let cluster = Cluster::start(1).await;
    cluster.create_topic("BroadcastTopic", 4).await;
    let dir = tempfile::tempdir().unwrap();
    let received = Received::default();
    let mut members = Vec::new();
    for name in ["m1", "m2"] {
        let mut config = consumer_config(&cluster, "CG_broadcast");
        config.message_model = MessageModel::Broadcasting;
        config.client.instance_name = name.into();
        config.offset_store_dir = dir.path().to_owned();
        members.push(push_consumer(config, received.listener(name), "BroadcastTopic", "*").await);
    }
    for member in &members {
        wait_until(Duration::from_secs(10), "all queues", || async {
            owned(member, "BroadcastTopic") == 4
        })
        .await;
    }
    let producer = producer(&cluster, "PG_broadcast").await;
    send_range(&producer, "BroadcastTopic", "b", 0..30).await;
    wait_until(Duration::from_secs(10), "both got all", || async { received.len() == 60 }).await;
    assert_eq!((received.count_by("m1"), received.count_by("m2")), (30, 30));
    assert!(received.bodies().values().all(|count| *count == 2));
    for member in &members {
        member.shutdown().await;
    }
    let offsets = dir.path().join(members[0].client_id()).join("CG_broadcast").join("offsets.json");
    let text = std::fs::read_to_string(&offsets).unwrap();
    assert!(
        text.starts_with(
            r#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"BroadcastTopic"}:"#
        ),
        "{text}"
    );
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_messages_are_retried_then_sent_to_the_dlq() {
    let cluster = Cluster::start(1).await;
    cluster.create_topic("RetryTopic", 2).await;
    let attempts: Arc<Mutex<Vec<Attempt>>> = Arc::default();
    let seen = attempts.clone();
    let listener = MessageListener::concurrently(move |messages: &[MessageExt], _: &mut _| {
        for message in messages {
            seen.lock().push((
                body(message),
                message.reconsume_times,
                message.topic().to_owned(),
                message.client_msg_id().to_owned(),
            ));
        }
        ConsumeConcurrentlyStatus::ReconsumeLater
    });
    let config =
        PushConsumerConfig { max_reconsume_times: 2, ..consumer_config(&cluster, "CG_retry") };
    let consumer = push_consumer(config, listener, "RetryTopic", "*").await;
    let producer = producer(&cluster, "PG_retry").await;
    let sent = producer.send(Message::new("RetryTopic", "poison")).await.unwrap();
    wait_until(Duration::from_secs(20), "three deliveries", || async {
        attempts.lock().len() >= 3
    })
    .await;
    let attempts = attempts.lock().clone();
    assert_eq!(attempts.iter().map(|a| a.1).collect::<Vec<_>>(), [0, 1, 2]);
    for (body, _, topic, msg_id) in &attempts {
        assert_eq!(body, "poison");
        assert_eq!(topic, "RetryTopic", "retried messages show the original topic");
        assert_eq!(msg_id, &sent.msg_id, "the msgId survives retries");
    }
    let admin = cluster.admin();
    let dlq = dlq_topic("CG_retry");
    wait_until(Duration::from_secs(10), "message in the DLQ", || {
        let (admin, dlq) = (admin.clone(), dlq.clone());
        async move {
            admin
                .topic_stats(&dlq)
                .await
                .is_ok_and(|stats| stats.values().map(|o| o.max_offset).sum::<i64>() == 1)
        }
    })
    .await;
    admin.shutdown();
    consumer.shutdown().await;
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orderly_consumption_keeps_each_queue_in_order() {
    let cluster = Cluster::start(1).await;
    cluster.create_topic("OrderTopic", 4).await;
    let producer = producer(&cluster, "PG_order").await;
    for i in 0..25 {
        for key in ["k0", "k1", "k2", "k3", "k4", "k5"] {
            producer
                .send_orderly(Message::new("OrderTopic", format!("{key}:{i}")), key)
                .await
                .unwrap();
        }
    }
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let failed_once = Arc::new(Mutex::new(false));
    let (log, fail) = (seen.clone(), failed_once.clone());
    let listener = MessageListener::orderly(move |messages: &[MessageExt], _: &mut _| {
        let text = body(&messages[0]);
        let mut fail = fail.lock();
        if text == "k1:10" && !*fail {
            *fail = true;
            return ConsumeOrderlyStatus::SuspendCurrentQueueAMoment;
        }
        log.lock().extend(messages.iter().map(body));
        ConsumeOrderlyStatus::Success
    });
    let mut config = consumer_config(&cluster, "CG_order");
    config.suspend_current_queue_time = Duration::from_millis(50);
    let consumer = push_consumer(config, listener, "OrderTopic", "*").await;
    wait_until(Duration::from_secs(15), "all ordered messages", || async {
        seen.lock().len() >= 150
    })
    .await;
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 150, "no duplicates");
    for key in ["k0", "k1", "k2", "k3", "k4", "k5"] {
        let order: Vec<u32> = seen
            .iter()
            .filter_map(|text| text.strip_prefix(&format!("{key}:")))
            .map(|i| i.parse().unwrap())
            .collect();
        assert_eq!(order, (0..25).collect::<Vec<_>>(), "order of {key}");
    }
    assert!(*failed_once.lock());
    consumer.shutdown().await;
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_resume_after_restart_and_tags_filter() {
    let cluster = Cluster::start(1).await;
    cluster.create_topic("ResumeTopic", 2).await;
    let producer = producer(&cluster, "PG_resume").await;
    let received = Received::default();
    let first = push_consumer(
        consumer_config(&cluster, "CG_resume"),
        received.listener("first"),
        "ResumeTopic",
        "TagA || TagB",
    )
    .await;
    for (i, tag) in ["TagA", "TagB", "TagC"].iter().cycle().take(30).enumerate() {
        let mut message = Message::new("ResumeTopic", format!("one-{i}-{tag}"));
        message.set_tags(*tag);
        producer.send(message).await.unwrap();
    }
    wait_until(Duration::from_secs(10), "tagged messages", || async { received.len() == 20 }).await;
    first.shutdown().await;
    assert!(received.bodies().keys().all(|b| !b.ends_with("TagC")));

    for i in 0..10 {
        let mut message = Message::new("ResumeTopic", format!("two-{i}"));
        message.set_tags("TagA");
        producer.send(message).await.unwrap();
    }
    let again = Received::default();
    let second = push_consumer(
        consumer_config(&cluster, "CG_resume"),
        again.listener("second"),
        "ResumeTopic",
        "TagA || TagB",
    )
    .await;
    wait_until(Duration::from_secs(10), "only the new messages", || async { again.len() >= 10 })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bodies = again.bodies();
    assert_eq!(bodies.len(), 10, "resumed from the committed offsets: {bodies:?}");
    assert!(bodies.keys().all(|b| b.starts_with("two-")));
    second.shutdown().await;
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_groups_start_where_consume_from_where_says() {
    let cluster = Cluster::start(1).await;
    cluster.create_topic("StartTopic", 1).await;
    let producer = producer(&cluster, "PG_start").await;
    send_range(&producer, "StartTopic", "old", 0..10).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let between = timestamp_now();
    let between_ms = i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis(),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send_range(&producer, "StartTopic", "new", 0..5).await;

    // A first-offset group gets everything. So does a last-offset (or timestamp) group: the
    // broker answers offset 0 for a new group while message 0 is in memory (broker.md §9.2),
    // exactly as Java clients experience it.
    let first = Received::default();
    let c1 = push_consumer(
        consumer_config(&cluster, "CG_first"),
        first.listener("first"),
        "StartTopic",
        "*",
    )
    .await;
    let last = Received::default();
    let mut config = consumer_config(&cluster, "CG_time");
    config.consume_from_where = ConsumeFromWhere::ConsumeFromTimestamp;
    config.consume_timestamp = between;
    let c2 = push_consumer(config, last.listener("time"), "StartTopic", "*").await;
    wait_until(Duration::from_secs(10), "first offset group", || async { first.len() == 15 }).await;
    wait_until(Duration::from_secs(10), "timestamp group", || async { last.len() == 15 }).await;

    // Starting at a time: reset the offline group's offsets by timestamp.
    let admin = cluster.admin();
    let queue = admin.topic_queues("StartTopic").await.unwrap().into_iter().next().unwrap();
    assert_eq!(admin.search_offset(&queue, between_ms).await.unwrap(), 10);
    let reset =
        admin.reset_offset_by_timestamp("CG_reset", "StartTopic", between_ms).await.unwrap();
    assert_eq!(reset.values().copied().collect::<Vec<_>>(), [10]);
    let by_time = Received::default();
    let c3 = push_consumer(
        consumer_config(&cluster, "CG_reset"),
        by_time.listener("reset"),
        "StartTopic",
        "*",
    )
    .await;
    wait_until(Duration::from_secs(10), "reset group", || async { by_time.len() == 5 }).await;
    assert!(by_time.bodies().keys().all(|b| b.starts_with("new-")));
    admin.shutdown();
    for consumer in [c1, c2, c3] {
        consumer.shutdown().await;
    }
    producer.shutdown().await;
}

/// Now as `yyyyMMddHHmmss` in UTC.
fn timestamp_now() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let days = i64::try_from(secs / 86_400).unwrap();
    let (year, month, day) = ferromq_message::msg_id::civil_from_days(days);
    let rest = secs % 86_400;
    format!("{year:04}{month:02}{day:02}{:02}{:02}{:02}", rest / 3600, rest / 60 % 60, rest % 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orderly_members_hand_queues_over_through_broker_locks() {
    let cluster = Cluster::start(1).await;
    cluster.create_topic("OrderShareTopic", 4).await;
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let orderly = |who: &'static str| {
        let log = seen.clone();
        MessageListener::orderly(move |messages: &[MessageExt], _: &mut _| {
            log.lock().extend(messages.iter().map(|m| (who.to_owned(), body(m))));
            ConsumeOrderlyStatus::Success
        })
    };
    let a = push_consumer(
        consumer_config(&cluster, "CG_order_share"),
        orderly("a"),
        "OrderShareTopic",
        "*",
    )
    .await;
    wait_until(Duration::from_secs(10), "a owns all", || async {
        owned(&a, "OrderShareTopic") == 4
    })
    .await;
    let b = push_consumer(
        consumer_config(&cluster, "CG_order_share"),
        orderly("b"),
        "OrderShareTopic",
        "*",
    )
    .await;
    // b can only take a queue once a released and unlocked it.
    wait_until(Duration::from_secs(15), "split 2/2", || async {
        owned(&a, "OrderShareTopic") == 2 && owned(&b, "OrderShareTopic") == 2
    })
    .await;
    let producer = producer(&cluster, "PG_order_share").await;
    for i in 0..20 {
        for key in ["x", "y", "z", "w"] {
            producer
                .send_orderly(Message::new("OrderShareTopic", format!("{key}:{i}")), key)
                .await
                .unwrap();
        }
    }
    wait_until(Duration::from_secs(10), "all consumed", || async { seen.lock().len() >= 80 }).await;
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 80);
    for key in ["x", "y", "z", "w"] {
        let mine: Vec<&(String, String)> =
            seen.iter().filter(|(_, b)| b.starts_with(&format!("{key}:"))).collect();
        let owners: std::collections::BTreeSet<&String> = mine.iter().map(|(who, _)| who).collect();
        assert_eq!(owners.len(), 1, "one member consumes key {key}");
        let order: Vec<u32> = mine.iter().map(|(_, b)| b[2..].parse().unwrap()).collect();
        assert_eq!(order, (0..20).collect::<Vec<_>>());
    }
    assert!(seen.iter().any(|(who, _)| who == "a") && seen.iter().any(|(who, _)| who == "b"));
    a.shutdown().await;
    b.shutdown().await;
    producer.shutdown().await;
}
