//! The admin API and the `ferromq` binary against an in-process cluster: topic lifecycle,
//! cluster info, stats, group progress and connections, offsets, queries by key and id;
//! then the CLI's topic, send, query, offset and bench commands.
#![cfg(test)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{CLUSTER, Cluster, wait_until};
use ferromq_client::admin::{SubscriptionGroupConfig, TopicTarget, topic_config};
use ferromq_client::consumer::{
    ConsumeConcurrentlyStatus, ConsumeFromWhere, PushConsumer, PushConsumerConfig,
};
use ferromq_client::{Error, Message, MessageExt, MessageListener, Producer, ProducerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_topic_lifecycle_stats_progress_and_queries() {
    let cluster = Cluster::start(1).await;
    let admin = cluster.admin();
    let target = TopicTarget::Cluster(CLUSTER.into());
    let brokers = admin.create_topic(&target, &topic_config("AdminTopic", 4, 4)).await.unwrap();
    assert_eq!(brokers, [cluster.brokers[0].addr.clone()]);
    let info = admin.cluster_info().await.unwrap();
    assert_eq!(info.broker_addr_table["broker-a"].broker_addrs[&0], cluster.brokers[0].addr);
    let runtime = admin.broker_runtime_info(&cluster.brokers[0].addr).await.unwrap();
    assert!(runtime.contains_key("putTps"));
    cluster.create_topic("AdminTopic", 4).await;
    assert!(admin.topic_list().await.unwrap().contains(&"AdminTopic".to_owned()));
    // Update: more queues.
    admin.create_topic(&target, &topic_config("AdminTopic", 6, 6)).await.unwrap();
    wait_until(Duration::from_secs(10), "updated route", || {
        let admin = admin.clone();
        async move {
            admin
                .topic_route("AdminTopic")
                .await
                .is_ok_and(|r| r.queue_datas[0].write_queue_nums == 6)
        }
    })
    .await;

    let producer = Producer::new(ProducerConfig {
        client: cluster.client(),
        ..ProducerConfig::new("PG_admin")
    })
    .unwrap();
    producer.start().await.unwrap();
    let mut sent = Vec::new();
    for i in 0..12 {
        let mut message = Message::new("AdminTopic", format!("admin-{i}"));
        message.set_keys([format!("order-{}", i % 3), "all".to_owned()]);
        sent.push(producer.send(message).await.unwrap());
    }
    let stats = admin.topic_stats("AdminTopic").await.unwrap();
    assert_eq!(stats.len(), 6);
    assert_eq!(stats.values().map(|o| o.max_offset).sum::<i64>(), 12);

    // The broker indexes keys shortly after storing: wait for all four.
    wait_until(Duration::from_secs(10), "indexed keys", || {
        let admin = admin.clone();
        async move {
            admin
                .query_message_by_key("AdminTopic", "order-1", 64, 0, i64::MAX)
                .await
                .is_ok_and(|found| found.len() == 4)
        }
    })
    .await;
    let by_key =
        admin.query_message_by_key("AdminTopic", "order-1", 64, 0, i64::MAX).await.unwrap();
    assert_eq!(by_key.len(), 4);
    assert!(by_key.iter().all(|m| m.message.key_list().any(|k| k == "order-1")));
    let missing =
        admin.query_message_by_key("AdminTopic", "nope", 64, 0, i64::MAX).await.unwrap_err();
    assert!(matches!(missing, Error::NotFound(_)), "{missing}");
    let by_offset_id = admin.view_message(&sent[3].offset_msg_id).await.unwrap();
    assert_eq!(by_offset_id.message.body.as_ref(), b"admin-3");
    let by_uniq = admin.view_message_by_id("AdminTopic", &sent[5].msg_id).await.unwrap();
    assert_eq!(by_uniq.message.body.as_ref(), b"admin-5");

    admin
        .create_subscription_group(&target, &SubscriptionGroupConfig::new("CG_admin"))
        .await
        .unwrap();
    assert!(
        admin.subscription_groups(&cluster.brokers[0].addr).await.unwrap().contains_key("CG_admin")
    );
    let consumed = Arc::new(AtomicUsize::new(0));
    let counter = consumed.clone();
    let listener = MessageListener::concurrently(move |messages: &[MessageExt], _: &mut _| {
        counter.fetch_add(messages.len(), Ordering::SeqCst);
        ConsumeConcurrentlyStatus::ConsumeSuccess
    });
    let config = PushConsumerConfig {
        client: cluster.client(),
        consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
        ..PushConsumerConfig::new("CG_admin")
    };
    let consumer = PushConsumer::new(config, listener).unwrap();
    consumer.subscribe("AdminTopic", "*").unwrap();
    consumer.start().await.unwrap();
    wait_until(Duration::from_secs(10), "consumed", || async {
        consumed.load(Ordering::SeqCst) == 12
    })
    .await;
    wait_until(Duration::from_secs(10), "no lag", || {
        let admin = admin.clone();
        async move {
            admin.consume_stats("CG_admin", Some("AdminTopic")).await.is_ok_and(|p| {
                p.total_lag() == 0
                    && p.stats.offset_table.values().map(|o| o.consumer_offset).sum::<i64>() == 12
            })
        }
    })
    .await;
    let connections = admin.consumer_connections("CG_admin").await.unwrap();
    assert_eq!(connections.connections.len(), 1);
    assert_eq!(connections.connections[0].client_id, consumer.client_id());
    assert_eq!(connections.message_model, "CLUSTERING");
    assert!(connections.subscriptions.contains_key("AdminTopic"));
    consumer.shutdown().await;

    let queue = sent[0].message_queue.clone();
    assert_eq!(admin.min_offset(&queue).await.unwrap(), 0);
    let max = admin.max_offset(&queue).await.unwrap();
    assert!(max >= 1);
    assert!(admin.earliest_msg_store_time(&queue).await.unwrap() > 0);
    assert_eq!(admin.consumer_offset("CG_admin", &queue).await.unwrap(), Some(max));
    admin.update_consumer_offset("CG_admin", &queue, 0).await.unwrap();
    assert_eq!(admin.consumer_offset("CG_admin", &queue).await.unwrap(), Some(0));

    admin.delete_subscription_group(&target, "CG_admin", true).await.unwrap();
    admin.delete_topic(&target, "AdminTopic").await.unwrap();
    assert!(matches!(admin.topic_route("AdminTopic").await, Err(Error::NoRoute { .. })));
    producer.shutdown().await;
    admin.shutdown();
}

/// Runs the `ferromq` binary; returns stdout, asserting success.
fn ferromq(namesrv: &str, args: &[&str]) -> String {
    match try_ferromq(namesrv, args) {
        Ok(stdout) => stdout,
        Err(failure) => panic!("ferromq {args:?} failed:\n{failure}"),
    }
}

/// Runs the `ferromq` binary; stdout on success, stdout and stderr on failure.
fn try_ferromq(namesrv: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_ferromq"))
        .arg("-n")
        .arg(namesrv)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    if output.status.success() { Ok(stdout) } else { Err(format!("{stdout}\n{stderr}")) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_topic_send_query_offset_and_bench() {
    let cluster = Cluster::start(1).await;
    let namesrv = cluster.namesrv.addr.clone();
    let run = |args: Vec<&'static str>| {
        let namesrv = namesrv.clone();
        tokio::task::spawn_blocking(move || ferromq(&namesrv, &args))
    };
    let created =
        run(vec!["topic", "create", "-t", "CliTopic", "-r", "2", "-w", "2"]).await.unwrap();
    assert!(created.contains("CliTopic"), "{created}");
    cluster.create_topic("CliTopic", 2).await;
    let list = run(vec!["--json", "topic", "list"]).await.unwrap();
    let topics: serde_json::Value = serde_json::from_str(list.trim()).unwrap();
    assert!(topics.as_array().unwrap().iter().any(|t| t == "CliTopic"));
    let route = run(vec!["topic", "route", "-t", "CliTopic"]).await.unwrap();
    assert!(route.contains("broker-a"), "{route}");
    let clusters = run(vec!["cluster", "--runtime"]).await.unwrap();
    assert!(clusters.contains(CLUSTER), "{clusters}");

    let sent = run(vec![
        "--json", "send", "-t", "CliTopic", "--body", "hi", "-k", "cli-key", "--tags", "T1", "-c",
        "3",
    ])
    .await
    .unwrap();
    let first: serde_json::Value = serde_json::from_str(sent.lines().next().unwrap()).unwrap();
    assert_eq!(first["status"], "SendOk");
    // The broker indexes keys shortly after storing them: retry until all three show.
    let mut found = String::new();
    for _ in 0..100 {
        let namesrv = namesrv.clone();
        let args = ["--json", "query", "-t", "CliTopic", "--key", "cli-key"];
        found =
            tokio::task::spawn_blocking(move || try_ferromq(&namesrv, &args).unwrap_or_default())
                .await
                .unwrap();
        if found.lines().count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(found.lines().count(), 3, "{found}");
    let message: serde_json::Value = serde_json::from_str(found.lines().next().unwrap()).unwrap();
    assert_eq!(message["body"], "hi");
    assert_eq!(message["tags"], "T1");
    let offset_id = first["offsetMsgId"].as_str().unwrap().to_owned();
    let by_id = run(vec!["query", "--id", Box::leak(offset_id.into_boxed_str())]).await.unwrap();
    assert!(by_id.contains("body=hi"), "{by_id}");

    let consumed = run(vec![
        "--json",
        "consume",
        "-t",
        "CliTopic",
        "-g",
        "CG_cli",
        "--from-first",
        "-c",
        "3",
        "--timeout",
        "20s",
    ])
    .await
    .unwrap();
    assert_eq!(consumed.lines().count(), 3, "{consumed}");
    let offsets =
        run(vec!["--json", "offset", "get", "-g", "CG_cli", "-t", "CliTopic"]).await.unwrap();
    let offsets: serde_json::Value = serde_json::from_str(offsets.trim()).unwrap();
    assert_eq!(offsets.as_array().unwrap().len(), 2);
    run(vec!["offset", "set", "-g", "CG_cli", "-t", "CliTopic", "--offset", "0"]).await.unwrap();
    run(vec!["group", "create", "-g", "CG_cli2"]).await.unwrap();
    let groups = run(vec!["group", "list"]).await.unwrap();
    assert!(groups.contains("CG_cli2"), "{groups}");

    let bench = run(vec![
        "--json", "bench", "produce", "-t", "CliTopic", "-c", "2000", "-w", "16", "-s", "64",
    ])
    .await
    .unwrap();
    let summary: serde_json::Value = serde_json::from_str(bench.lines().last().unwrap()).unwrap();
    assert_eq!(summary["messages"], 2000);
    assert_eq!(summary["failures"], 0);
    assert!(summary["p99Ms"].as_f64().unwrap() > 0.0);
    let bench = run(vec![
        "--json", "bench", "produce", "-t", "CliTopic", "-c", "1000", "-b", "10", "--mode", "sync",
    ])
    .await
    .unwrap();
    let summary: serde_json::Value = serde_json::from_str(bench.lines().last().unwrap()).unwrap();
    assert_eq!(summary["messages"], 1000);
    // Raw frames over two connections: exactly the count, all acknowledged.
    let bench = run(vec![
        "--json",
        "--runtime-threads",
        "1",
        "bench",
        "produce",
        "-t",
        "CliTopic",
        "-c",
        "3000",
        "-w",
        "16",
        "-s",
        "64",
        "--producers",
        "2",
        "--raw-frames",
    ])
    .await
    .unwrap();
    let summary: serde_json::Value = serde_json::from_str(bench.lines().last().unwrap()).unwrap();
    assert_eq!((summary["messages"].as_u64(), summary["failures"].as_u64()), (Some(3000), Some(0)));
    let consumed = run(vec![
        "--json",
        "bench",
        "consume",
        "-t",
        "CliTopic",
        "-g",
        "CG_bench",
        "--from-first",
        "-c",
        "6003",
        "-d",
        "20s",
    ])
    .await
    .unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(consumed.lines().last().unwrap()).unwrap();
    assert_eq!(summary["messages"], 6003);
}
