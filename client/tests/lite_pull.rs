//! The lite pull consumer against an in-process cluster: assign, poll, seek, commit and
//! resume; subscribe mode splitting queues between two members.
#![cfg(test)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Cluster, wait_until};
use ferromq_client::consumer::{ConsumeFromWhere, LitePullConsumer, LitePullConsumerConfig};
use ferromq_client::{Message, MessageExt, Producer, ProducerConfig};

fn config(cluster: &Cluster, group: &str) -> LitePullConsumerConfig {
    LitePullConsumerConfig {
        client: cluster.client(),
        consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
        ..LitePullConsumerConfig::new(group)
    }
}

async fn poll_until(consumer: &LitePullConsumer, count: usize) -> Vec<MessageExt> {
    let mut messages = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while messages.len() < count && tokio::time::Instant::now() < deadline {
        messages.extend(consumer.poll(Duration::from_millis(200)).await);
    }
    messages
}

fn bodies(messages: &[MessageExt]) -> Vec<String> {
    messages.iter().map(|m| String::from_utf8(m.message.body.to_vec()).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_poll_seek_commit_and_resume() {
    let cluster = Cluster::start(1).await;
    cluster.create_topic("LiteTopic", 2).await;
    let producer = Producer::new(ProducerConfig {
        client: cluster.client(),
        ..ProducerConfig::new("PG_lite")
    })
    .unwrap();
    producer.start().await.unwrap();
    let queues = producer.publish_queues("LiteTopic").await.unwrap();
    for i in 0..20 {
        producer
            .send_to_queue(Message::new("LiteTopic", format!("m{i}")), &queues[0])
            .await
            .unwrap();
    }

    let consumer = LitePullConsumer::new(config(&cluster, "CG_lite")).unwrap();
    assert!(consumer.subscribe("LiteTopic", "*").is_ok());
    assert!(
        consumer.assign(vec![queues[0].clone()]).is_err(),
        "subscribe and assign exclude each other"
    );
    let consumer = LitePullConsumer::new(config(&cluster, "CG_lite")).unwrap();
    consumer.assign(vec![queues[0].clone()]).unwrap();
    consumer.start().await.unwrap();
    let first = poll_until(&consumer, 20).await;
    assert_eq!(bodies(&first), (0..20).map(|i| format!("m{i}")).collect::<Vec<_>>());

    consumer.seek(&queues[0], 15).await.unwrap();
    let again = poll_until(&consumer, 5).await;
    assert_eq!(bodies(&again), (15..20).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert!(consumer.seek(&queues[0], 99).await.is_err(), "past the max offset");
    assert!(consumer.seek(&queues[1], 0).await.is_err(), "queue 1 is not assigned");
    consumer.commit_sync().await;
    assert_eq!(consumer.committed(&queues[0]).await, 20);
    consumer.shutdown().await;

    // A new consumer of the group resumes after the committed offset.
    for i in 20..25 {
        producer
            .send_to_queue(Message::new("LiteTopic", format!("m{i}")), &queues[0])
            .await
            .unwrap();
    }
    let resumed = LitePullConsumer::new(config(&cluster, "CG_lite")).unwrap();
    resumed.assign(vec![queues[0].clone()]).unwrap();
    resumed.start().await.unwrap();
    let rest = poll_until(&resumed, 5).await;
    assert_eq!(bodies(&rest), (20..25).map(|i| format!("m{i}")).collect::<Vec<_>>());
    resumed.shutdown().await;
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_mode_splits_queues_between_members() {
    let cluster = Cluster::start(1).await;
    cluster.create_topic("LiteSubTopic", 4).await;
    let a = LitePullConsumer::new(config(&cluster, "CG_lite_sub")).unwrap();
    a.subscribe("LiteSubTopic", "*").unwrap();
    a.start().await.unwrap();
    let b = LitePullConsumer::new(config(&cluster, "CG_lite_sub")).unwrap();
    b.subscribe("LiteSubTopic", "*").unwrap();
    b.start().await.unwrap();
    wait_until(Duration::from_secs(10), "queues split", || async {
        a.assignment().len() == 2 && b.assignment().len() == 2
    })
    .await;
    let producer = Producer::new(ProducerConfig {
        client: cluster.client(),
        ..ProducerConfig::new("PG_lite_sub")
    })
    .unwrap();
    producer.start().await.unwrap();
    for i in 0..40 {
        producer.send(Message::new("LiteSubTopic", format!("s{i}"))).await.unwrap();
    }
    let mut all = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while all.len() < 40 && tokio::time::Instant::now() < deadline {
        for consumer in [&a, &b] {
            all.extend(bodies(&consumer.poll(Duration::from_millis(100)).await));
        }
    }
    assert_eq!(all.len(), 40);
    for consumer in [a, b] {
        consumer.shutdown().await;
    }
    producer.shutdown().await;
}
