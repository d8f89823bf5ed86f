//! Failure handling against an in-process cluster: sends fail over when one of two brokers
//! dies (plain retries and latency fault avoidance), and producers and consumers keep
//! working on cached routes when the name server is lost; route lookups fail over between
//! two name servers.
#![cfg(test)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{BrokerNode, Cluster, Namesrv, fast_client, wait_until};
use ferromq_client::consumer::{
    ConsumeConcurrentlyStatus, ConsumeFromWhere, PushConsumer, PushConsumerConfig,
};
use ferromq_client::{Admin, Message, MessageExt, MessageListener, Producer, ProducerConfig};
use parking_lot::Mutex;

async fn producer(cluster: &Cluster, group: &str, fault_avoidance: bool) -> Producer {
    let mut client = cluster.client();
    // Keep the route with the dead broker cached: only retries can save the sends.
    client.poll_name_server_interval = Duration::from_secs(60);
    let config = ProducerConfig {
        client,
        send_latency_fault_enable: fault_avoidance,
        ..ProducerConfig::new(group)
    };
    let producer = Producer::new(config).unwrap();
    producer.start().await.unwrap();
    producer
}

async fn sends_by_broker(
    producer: &Producer,
    topic: &str,
    count: usize,
) -> BTreeMap<String, usize> {
    let mut by_broker = BTreeMap::new();
    for i in 0..count {
        let result = producer.send(Message::new(topic, format!("m{i}"))).await.unwrap();
        *by_broker.entry(result.message_queue.broker_name).or_insert(0) += 1;
    }
    by_broker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_fail_over_when_one_of_two_brokers_dies() {
    let mut cluster = Cluster::start(2).await;
    cluster.create_topic("FailoverTopic", 4).await;
    let plain = producer(&cluster, "PG_failover", false).await;
    let avoiding = producer(&cluster, "PG_failover_lft", true).await;
    let before = sends_by_broker(&plain, "FailoverTopic", 16).await;
    assert_eq!(before.len(), 2, "round robin over both brokers: {before:?}");
    sends_by_broker(&avoiding, "FailoverTopic", 4).await;

    cluster.brokers[1].stop().await;
    let after = sends_by_broker(&plain, "FailoverTopic", 20).await;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        ["broker-a"],
        "every send retried on the live broker"
    );
    let after = sends_by_broker(&avoiding, "FailoverTopic", 20).await;
    assert_eq!(after.keys().collect::<Vec<_>>(), ["broker-a"]);

    // Async sends retry on another broker when no response came.
    for i in 0..8 {
        let result =
            plain.send_async(Message::new("FailoverTopic", format!("a{i}"))).await.unwrap();
        assert_eq!(result.message_queue.broker_name, "broker-a");
    }
    plain.shutdown().await;
    avoiding.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_routes_survive_name_server_loss() {
    let mut cluster = Cluster::start(1).await;
    cluster.create_topic("CachedTopic", 2).await;
    let producer = producer(&cluster, "PG_cached", false).await;
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = received.clone();
    let listener = MessageListener::concurrently(move |messages: &[MessageExt], _: &mut _| {
        seen.lock()
            .extend(messages.iter().map(|m| String::from_utf8(m.message.body.to_vec()).unwrap()));
        ConsumeConcurrentlyStatus::ConsumeSuccess
    });
    let config = PushConsumerConfig {
        client: cluster.client(),
        consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
        ..PushConsumerConfig::new("CG_cached")
    };
    let consumer = PushConsumer::new(config, listener).unwrap();
    consumer.subscribe("CachedTopic", "*").unwrap();
    consumer.start().await.unwrap();
    sends_by_broker(&producer, "CachedTopic", 10).await;
    wait_until(Duration::from_secs(10), "first messages", || async { received.lock().len() == 10 })
        .await;

    cluster.namesrv.stop().await;
    // Route refreshes now fail (every second for the consumer); sends, pulls and commits
    // go on with the cached routes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sends_by_broker(&producer, "CachedTopic", 10).await;
    wait_until(Duration::from_secs(10), "messages after the loss", || async {
        received.lock().len() == 20
    })
    .await;
    consumer.shutdown().await;
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_lookups_fail_over_between_name_servers() {
    let mut first = Namesrv::start().await;
    let second = Namesrv::start().await;
    let both = format!("{};{}", first.addr, second.addr);
    let mut broker = BrokerNode::start(&both, "broker-a").await;
    let admin = Admin::new(fast_client(&both)).unwrap();
    wait_until(Duration::from_secs(10), "registered with both", || {
        let admin = admin.clone();
        async move { admin.cluster_info().await.is_ok_and(|info| !info.broker_addr_table.is_empty()) }
    })
    .await;
    first.stop().await;
    // Whichever name server the client picks first, lookups succeed through the other.
    for _ in 0..4 {
        let producer = Producer::new(ProducerConfig {
            client: fast_client(&both),
            ..ProducerConfig::new("PG_two_namesrv")
        })
        .unwrap();
        producer.start().await.unwrap();
        producer.send(Message::new("TwoNamesrvTopic", "x")).await.unwrap();
        producer.shutdown().await;
    }
    admin.shutdown();
    broker.stop().await;
}
