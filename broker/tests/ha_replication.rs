//! A master and a slave on loopback: the slave starts from nothing (at the master's last
//! CommitLog segment, as RocketMQ does), catches up, resumes after being stopped and after
//! its master restarts, and ends byte-identical, with its own ConsumeQueues and IndexFile
//! serving the same messages. It copies the master's metadata, refuses writes and serves
//! reads the way a RocketMQ slave does.
#![cfg(test)]

mod ha_common;

use std::time::Duration;

use ferromq_broker::ha::sync_metadata;
use ferromq_remoting::headers::{
    QueryConsumerOffsetRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};
use ha_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slave_catches_up_from_scratch_and_after_disconnects() {
    let namesrv = Namesrv::start().await;
    let master_dir = tempfile::tempdir().unwrap();
    let slave_dir = tempfile::tempdir().unwrap();
    let client = RemotingClient::default();
    let master =
        RunningBroker::start(config(master_dir.path(), &namesrv.addr, "ASYNC_MASTER", 0)).await;
    // Over three segments before the slave exists.
    send_many(&client, &master.addr, "Orders", "a", 3500, 1000).await;
    let end = master.broker().store.max_phy_offset();
    assert!(end > 3 * SEGMENT, "end={end}");
    let start = end - end % SEGMENT;

    let slave_config = config(slave_dir.path(), &namesrv.addr, "SLAVE", 1);
    let slave = RunningBroker::start(slave_config.clone()).await;
    wait_caught_up(&master, &slave).await;
    let (slave_broker, master_broker) = (slave.broker(), master.broker());
    assert_eq!(
        slave_broker.store.min_phy_offset(),
        start,
        "a new slave starts at the last segment"
    );
    assert_eq!(slave_broker.ha.master_addr().as_deref(), Some(master.addr.as_str()));
    assert_eq!(slave_broker.ha.master_ha_addr().as_deref(), Some(master.ha_addr.as_str()));
    assert_eq!(master_broker.ha.slaves().len(), 1);
    assert!(
        commit_log_bytes(&slave_broker, start, end) == commit_log_bytes(&master_broker, start, end)
    );
    drop((slave_broker, master_broker));

    // Stopped, it resumes from its own end.
    let slave_port = slave.addr.rsplit_once(':').unwrap().1.parse().unwrap();
    slave.stop().await;
    send_many(&client, &master.addr, "Orders", "b", 300, 700).await;
    let slave = RunningBroker::start_on(slave_config.clone(), slave_port, free_port()).await;
    wait_caught_up(&master, &slave).await;

    // Its master restarts (the connection drops); it reconnects and catches up again.
    let (master_port, master_ha_port) = ports(&master);
    master.stop().await;
    let master = RunningBroker::start_on(
        config(master_dir.path(), &namesrv.addr, "ASYNC_MASTER", 0),
        master_port,
        master_ha_port,
    )
    .await;
    send_many(&client, &master.addr, "Orders", "c", 300, 1500).await;
    wait_caught_up(&master, &slave).await;
    let end = master.broker().store.max_phy_offset();

    // Same messages through the slave's own ConsumeQueues and IndexFile.
    let group = "G-slave";
    for queue_id in 0..4 {
        // The slave's queues start where its CommitLog does (below that, a slave sends
        // consumers back to the master rather than move their offsets).
        let min = slave.broker().store.min_offset_in_queue("Orders", queue_id);
        assert!(min > 0);
        let below = invoke(&client, &slave.addr, pull_request(group, "Orders", queue_id, 0)).await;
        assert_eq!(below.code, ResponseCode::PULL_RETRY_IMMEDIATELY.code());
        let from_slave = pull_all(&client, &slave.addr, group, "Orders", queue_id, min).await;
        let from_master = pull_all(&client, &master.addr, group, "Orders", queue_id, min).await;
        assert!(!from_slave.is_empty());
        assert_eq!(from_slave.len(), from_master.len(), "queue {queue_id}");
        for (s, m) in from_slave.iter().zip(&from_master) {
            assert_eq!(
                (s.queue_offset, s.commit_log_offset),
                (m.queue_offset, m.commit_log_offset)
            );
            assert_eq!(s.message.body, m.message.body);
        }
    }
    let key = "c-299";
    wait_until(Duration::from_secs(10), "the slave indexed the last key", || async {
        let found = slave.broker().store.query_by_key("Orders", key, 4, 0, i64::MAX).unwrap();
        !found.messages.is_empty()
    })
    .await;
    assert!(
        commit_log_bytes(&slave.broker(), start, end)
            == commit_log_bytes(&master.broker(), start, end)
    );
    let slave_opened = slave.stop().await;
    master.stop().await;
    namesrv.stop().await;
    assert_eq!(slave_opened, 1, "no restart: nothing to cut");

    // The files themselves: same segment names from `start`, same bytes.
    let master_names = segment_names(master_dir.path());
    let slave_names = segment_names(slave_dir.path());
    assert!(slave_names.iter().all(|name| master_names.contains(name)), "{slave_names:?}");
    for name in &slave_names {
        let read = |dir: &std::path::Path| std::fs::read(dir.join("commitlog").join(name)).unwrap();
        assert!(read(master_dir.path()) == read(slave_dir.path()), "segment {name} differs");
    }
}

fn ports(broker: &RunningBroker) -> (u16, u16) {
    let port = |addr: &str| addr.rsplit_once(':').unwrap().1.parse().unwrap();
    (port(&broker.addr), port(&broker.ha_addr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slave_syncs_metadata_refuses_writes_and_serves_reads() {
    let namesrv = Namesrv::start().await;
    let master_dir = tempfile::tempdir().unwrap();
    let slave_dir = tempfile::tempdir().unwrap();
    let client = RemotingClient::default();
    let mut master_config = config(master_dir.path(), &namesrv.addr, "ASYNC_MASTER", 0);
    master_config.apply("slaveReadEnable", "true").unwrap();
    // 1% of a pretend 1 MB of RAM: every pull of older data suggests the slave.
    master_config.apply("accessMessageInMemoryMaxRatio", "1").unwrap();
    master_config.store.physical_memory_bytes = Some(1_000_000);
    let master = RunningBroker::start(master_config).await;
    let slave = RunningBroker::start(config(slave_dir.path(), &namesrv.addr, "SLAVE", 1)).await;
    send_many(&client, &master.addr, "Books", "m", 100, 200).await;
    let update = UpdateConsumerOffsetRequestHeader {
        consumer_group: "Readers".into(),
        topic: "Books".into(),
        queue_id: 2,
        commit_offset: 17,
        broker_name: None,
    };
    let response =
        invoke(&client, &master.addr, RemotingCommand::request(15).with_header(&update)).await;
    assert_eq!(response.code, 0);
    // A pull creates the group on the master.
    assert_eq!(invoke(&client, &master.addr, pull_request("Readers", "Books", 0, 0)).await.code, 0);
    wait_caught_up(&master, &slave).await;

    // Metadata: one explicit round (the periodic one runs every 10 s).
    let report = sync_metadata(&slave.broker(), &master.addr).await;
    assert!(report.offsets >= 1, "{report:?}");
    let slave_broker = slave.broker();
    assert_eq!(slave_broker.topics.get("Books"), master.broker().topics.get("Books"));
    assert!(slave_broker.groups.get("Readers").is_some());
    drop(slave_broker);
    let query = QueryConsumerOffsetRequestHeader {
        consumer_group: "Readers".into(),
        topic: "Books".into(),
        queue_id: 2,
        set_zero_if_not_found: None,
        broker_name: None,
    };
    let response =
        invoke(&client, &slave.addr, RemotingCommand::request(14).with_header(&query)).await;
    assert_eq!((response.code, response.ext_field("offset")), (0, Some("17")));
    assert_eq!(sync_metadata(&slave.broker(), &master.addr).await.topics_changed, 0, "unchanged");

    // Writes are refused as by a 4.9 slave, and nothing is stored.
    let before = slave.broker().store.max_phy_offset();
    let response = invoke(&client, &slave.addr, send_request("Books", 0, b"no", "")).await;
    assert_eq!(response.code, ResponseCode::SERVICE_NOT_AVAILABLE.code(), "{:?}", response.remark);
    let response = invoke(&client, &slave.addr, send_request("NewTopic", 0, b"no", "")).await;
    assert_eq!(response.code, ResponseCode::SERVICE_NOT_AVAILABLE.code());
    assert!(slave.broker().topics.get("NewTopic").is_none(), "no auto-creation on a slave");
    assert_eq!(slave.broker().store.max_phy_offset(), before);

    // Reads: the slave serves pulls; the master suggests the slave for old data.
    let pulled = invoke(&client, &slave.addr, pull_request("Readers", "Books", 1, 0)).await;
    assert_eq!(pulled.code, 0, "{:?}", pulled.remark);
    assert_eq!(pulled.ext_field_as::<i64>("suggestWhichBrokerId"), Some(0));
    let pulled = invoke(&client, &master.addr, pull_request("Readers", "Books", 1, 0)).await;
    assert_eq!(pulled.code, 0);
    assert_eq!(
        pulled.ext_field_as::<i64>("suggestWhichBrokerId"),
        Some(1),
        "slave reads suggested"
    );
    // A slave never moves an offset it may just not have yet.
    let ahead = invoke(&client, &slave.addr, pull_request("Readers", "Books", 1, 500)).await;
    assert_eq!(ahead.code, ResponseCode::PULL_RETRY_IMMEDIATELY.code());
    assert_eq!(ahead.ext_field_as::<i64>("nextBeginOffset"), Some(500));
    assert_eq!(ahead.ext_field_as::<i64>("suggestWhichBrokerId"), Some(0));
    let ahead = invoke(&client, &master.addr, pull_request("Readers", "Books", 1, 500)).await;
    assert_eq!(ahead.code, ResponseCode::PULL_OFFSET_MOVED.code());
    // A pull held on the slave is answered when the record arrives from the master.
    let max = slave.broker().store.max_offset_in_queue("Books", 3).unwrap();
    let mut held = pull_request("Readers", "Books", 3, max);
    held.set_ext_field("sysFlag", "6");
    held.set_ext_field("suspendTimeoutMillis", "8000");
    let started = std::time::Instant::now();
    let held = {
        let addr = slave.addr.clone();
        tokio::spawn(async move { invoke(&RemotingClient::default(), &addr, held).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "held on the slave");
    let response = invoke(&client, &master.addr, send_request("Books", 3, b"wake-up", "")).await;
    assert_eq!(response.code, 0);
    let woken = held.await.unwrap();
    assert_eq!(woken.code, 0, "{:?}", woken.remark);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "woken by replication: {:?}",
        started.elapsed()
    );
    // Queries by key on the slave's own index.
    let mut query = RemotingCommand::request(RequestCode::QUERY_MESSAGE.code());
    for (key, value) in [
        ("topic", "Books"),
        ("key", "m-42"),
        ("maxNum", "4"),
        ("beginTimestamp", "0"),
        ("endTimestamp", "9223372036854775807"),
    ] {
        query.set_ext_field(key, value);
    }
    wait_until(Duration::from_secs(10), "the slave answers the key query", || {
        let query = query.clone();
        let (client, addr) = (&client, &slave.addr);
        async move { invoke(client, addr, query).await.code == 0 }
    })
    .await;
    slave.stop().await;
    master.stop().await;
    namesrv.stop().await;
}
