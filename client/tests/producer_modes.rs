//! Every producer mode against an in-process name server and broker: sync, async, callback,
//! oneway, batch, explicit queue, sharding-key selector; TBW102 auto-creation; compression;
//! user properties, keys and tags; clear errors.
#![cfg(test)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Cluster, wait_until};
use ferromq_client::consumer::{ConsumeFromWhere, LitePullConsumer, LitePullConsumerConfig};
use ferromq_client::producer::hash_queue_index;
use ferromq_client::{Error, Message, MessageExt, Producer, ProducerConfig, SendStatus};

async fn producer(cluster: &Cluster, group: &str) -> Producer {
    let config = ProducerConfig { client: cluster.client(), ..ProducerConfig::new(group) };
    let producer = Producer::new(config).unwrap();
    producer.start().await.unwrap();
    producer
}

/// Reads every message of `topic` from the start, until `expected` arrived.
async fn read_all(cluster: &Cluster, topic: &str, expected: usize) -> Vec<MessageExt> {
    let config = LitePullConsumerConfig {
        client: cluster.client(),
        consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
        auto_commit: false,
        ..LitePullConsumerConfig::new(format!("reader_{topic}"))
    };
    let consumer = LitePullConsumer::new(config).unwrap();
    let queues = consumer.fetch_message_queues(topic).await.unwrap();
    consumer.assign(queues).unwrap();
    consumer.start().await.unwrap();
    let mut messages = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while messages.len() < expected && tokio::time::Instant::now() < deadline {
        messages.extend(consumer.poll(Duration::from_millis(500)).await);
    }
    consumer.shutdown().await;
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_send_mode_stores_its_messages() {
    let cluster = Cluster::start(1).await;
    cluster.create_topic("ModesTopic", 4).await;
    let producer = producer(&cluster, "PG_modes").await;

    let mut message = Message::new("ModesTopic", "sync");
    message.set_tags("TagA");
    message.set_keys(["k-sync", "second-key"]);
    message.put_property("color", "blue");
    let sync = producer.send(message).await.unwrap();
    assert_eq!(sync.status, SendStatus::SendOk);
    assert_eq!(sync.msg_id.len(), 32, "msg id is the UNIQ_KEY");
    assert_eq!(sync.offset_msg_id.len(), 32);
    assert_eq!(sync.message_queue.broker_name, "broker-a");
    assert_eq!(sync.region_id, "DefaultRegion");

    let async_result = producer.send_async(Message::new("ModesTopic", "async")).await.unwrap();
    assert_eq!(async_result.status, SendStatus::SendOk);
    let (tx, rx) = tokio::sync::oneshot::channel();
    producer.send_with_callback(Message::new("ModesTopic", "callback"), move |result| {
        let _ = tx.send(result);
    });
    assert!(rx.await.unwrap().is_ok());
    producer.send_oneway(Message::new("ModesTopic", "oneway")).await.unwrap();

    let batch: Vec<Message> =
        (0..10).map(|i| Message::new("ModesTopic", format!("batch-{i}"))).collect();
    let batch_result = producer.send_batch(batch).await.unwrap();
    assert_eq!(batch_result.msg_id.split(',').count(), 10);

    let queues = producer.publish_queues("ModesTopic").await.unwrap();
    assert_eq!(queues.len(), 4);
    let chosen =
        producer.send_to_queue(Message::new("ModesTopic", "queue-2"), &queues[2]).await.unwrap();
    assert_eq!(chosen.message_queue, queues[2]);
    for key in ["order-1", "order-2"] {
        let result = producer.send_orderly(Message::new("ModesTopic", key), key).await.unwrap();
        assert_eq!(result.message_queue, queues[hash_queue_index(key, queues.len())]);
    }
    let mut delayed = Message::new("ModesTopic", "delayed");
    delayed.set_delay_level(1);
    producer.send(delayed).await.unwrap();

    let messages = read_all(&cluster, "ModesTopic", 18).await;
    let bodies: BTreeMap<String, &MessageExt> =
        messages.iter().map(|m| (String::from_utf8(m.message.body.to_vec()).unwrap(), m)).collect();
    assert_eq!(bodies.len(), 18, "every message once: {:?}", bodies.keys());
    let sync_message = bodies["sync"];
    assert_eq!(sync_message.message.tags(), Some("TagA"));
    assert_eq!(sync_message.message.property("color"), Some("blue"));
    assert_eq!(sync_message.message.key_list().collect::<Vec<_>>(), ["k-sync", "second-key"]);
    assert_eq!(sync_message.client_msg_id(), sync.msg_id);
    assert_eq!(bodies["queue-2"].queue_id, queues[2].queue_id);
    assert!(bodies["delayed"].store_timestamp >= sync_message.store_timestamp);
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topic_is_created_through_tbw102_and_large_bodies_are_compressed() {
    let cluster = Cluster::start(1).await;
    let producer = producer(&cluster, "PG_auto").await;
    let result = producer.send(Message::new("AutoCreated", "first")).await.unwrap();
    assert_eq!(result.status, SendStatus::SendOk);
    let admin = cluster.admin();
    wait_until(Duration::from_secs(10), "auto-created route", || {
        let admin = admin.clone();
        async move {
            admin.topic_route("AutoCreated").await.is_ok_and(|route| {
                route.queue_datas.len() == 1 && route.queue_datas[0].write_queue_nums == 4
            })
        }
    })
    .await;

    let body: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let large = producer.send(Message::new("AutoCreated", body.clone())).await.unwrap();
    let stored = admin.view_message(&large.offset_msg_id).await.unwrap();
    assert_eq!(stored.sysflag & 0x701, 0x301, "zlib compressed flag and type");
    assert_eq!(stored.message.body.as_ref(), body.as_slice(), "decompressed on read");
    admin.shutdown();
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_clear() {
    let cluster = Cluster::start(1).await;
    let producer = producer(&cluster, "PG_errors").await;
    let too_large = producer.send(Message::new("T", vec![0u8; 4 * 1024 * 1024 + 1])).await;
    assert!(matches!(too_large, Err(Error::MessageTooLarge { .. })), "{too_large:?}");
    let empty = producer.send(Message::new("T", Vec::new())).await;
    assert!(matches!(empty, Err(Error::InvalidArgument(_))));
    producer.shutdown().await;
    let after = producer.send(Message::new("T", "x")).await;
    assert!(matches!(after, Err(Error::NotRunning(_))));

    // No template topic: no route at all.
    let config = ProducerConfig {
        client: cluster.client(),
        create_topic_key: "NoSuchTemplate".into(),
        ..ProducerConfig::new("PG_noroute")
    };
    let no_route = Producer::new(config).unwrap();
    no_route.start().await.unwrap();
    let error = no_route.send(Message::new("NeverCreated", "x")).await.unwrap_err();
    assert!(matches!(error, Error::NoRoute { .. }), "{error}");
    assert_eq!(error.to_string(), "no route info of this topic: NeverCreated");
    no_route.shutdown().await;

    // No name server configured.
    let mut client = cluster.client();
    client.namesrv_addr.clear();
    let lonely =
        Producer::new(ProducerConfig { client, ..ProducerConfig::new("PG_lonely") }).unwrap();
    lonely.start().await.unwrap();
    let error = lonely.send(Message::new("T", "x")).await.unwrap_err();
    assert!(matches!(error, Error::NoNameServer), "{error}");
    lonely.shutdown().await;

    // A dead name server: the send fails within its timeout with a transport error.
    let mut client = cluster.client();
    client.namesrv_addr = vec!["127.0.0.1:1".into()];
    let dead = Producer::new(ProducerConfig {
        client,
        send_msg_timeout: Duration::from_millis(500),
        ..ProducerConfig::new("PG_dead")
    })
    .unwrap();
    dead.start().await.unwrap();
    let error = dead.send(Message::new("T", "x")).await.unwrap_err();
    assert!(matches!(error, Error::NoRoute { .. } | Error::Transport(_)), "{error}");
    dead.shutdown().await;
}
