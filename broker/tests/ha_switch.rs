//! Manual master switch by restarting with changed config (the documented procedure): the
//! slave restarts as the master (`brokerRole=ASYNC_MASTER`, `brokerId=0`), the old master
//! restarts as a slave (`brokerRole=SLAVE`, `brokerId=1`). The old master holds records the
//! new one never got; as a slave it finds where the two CommitLogs part, restarts itself
//! to cut its own there, and follows the new master until both are byte-identical.
#![cfg(test)]

mod ha_common;

use std::collections::BTreeSet;
use std::time::Duration;

use ferromq_remoting::transport::RemotingClient;
use ha_common::*;

/// Bodies (up to the padding) of every message of `topic` that `addr` serves.
async fn bodies(client: &RemotingClient, addr: &str, topic: &str) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for queue_id in 0..4 {
        for message in pull_all(client, addr, "Check", topic, queue_id, 0).await {
            all.insert(key_of(&message.message.body));
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_roles_and_the_old_master_cuts_what_the_new_one_lacks() {
    let namesrv = Namesrv::start().await;
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let client = RemotingClient::default();
    let a_master = config(a_dir.path(), &namesrv.addr, "ASYNC_MASTER", 0);
    let b_slave = config(b_dir.path(), &namesrv.addr, "SLAVE", 1);
    let (a_port, a_ha, b_port, b_ha) = (free_port(), free_port(), free_port(), free_port());

    // A is master, B its slave: 200 messages replicated.
    let a = RunningBroker::start_on(a_master.clone(), a_port, a_ha).await;
    let b = RunningBroker::start_on(b_slave.clone(), b_port, b_ha).await;
    send_many(&client, &a.addr, "Switch", "common", 200, 300).await;
    wait_caught_up(&a, &b).await;
    let common_end = a.broker().store.max_phy_offset();
    ferromq_broker::ha::sync_metadata(&b.broker(), &a.addr).await;
    // B goes down; A takes 60 more (larger) messages B never sees, then A goes down too.
    b.stop().await;
    send_many(&client, &a.addr, "Switch", "lost", 60, 900).await;
    let a_end = a.broker().store.max_phy_offset();
    a.stop().await;

    // Switch: B restarts as the master and takes 40 messages of its own.
    let mut b_master = b_slave.clone();
    b_master.apply("brokerRole", "ASYNC_MASTER").unwrap();
    b_master.apply("brokerId", "0").unwrap();
    let b = RunningBroker::start_on(b_master, b_port, b_ha).await;
    send_many(&client, &b.addr, "Switch", "new", 40, 200).await;
    let b_end = b.broker().store.max_phy_offset();
    assert!(a_end > b_end && b_end > common_end, "A is ahead and diverged: {a_end} {b_end}");

    // A rejoins as a slave: it must cut at `common_end` (restarting once) and follow B.
    let mut a_slave = a_master.clone();
    a_slave.apply("brokerRole", "SLAVE").unwrap();
    a_slave.apply("brokerId", "1").unwrap();
    let a = RunningBroker::start_on(a_slave, a_port, a_ha).await;
    wait_caught_up(&b, &a).await;
    send_many(&client, &b.addr, "Switch", "after", 20, 200).await;
    wait_caught_up(&b, &a).await;
    let end = b.broker().store.max_phy_offset();
    assert!(commit_log_bytes(&a.broker(), 0, end) == commit_log_bytes(&b.broker(), 0, end));

    // A serves exactly B's messages: the common ones, B's own; none of the lost ones.
    ferromq_broker::ha::sync_metadata(&a.broker(), &b.addr).await;
    let on_a = bodies(&client, &a.addr, "Switch").await;
    let on_b = bodies(&client, &b.addr, "Switch").await;
    assert_eq!(on_a, on_b);
    assert_eq!(on_a.len(), 260);
    assert!(on_a.iter().all(|body| !body.starts_with("lost")));
    wait_until(Duration::from_secs(10), "A indexed B's last message", || async {
        let found = a.broker().store.query_by_key("Switch", "after-19", 4, 0, i64::MAX).unwrap();
        !found.messages.is_empty()
    })
    .await;
    let found = a.broker().store.query_by_key("Switch", "lost-5", 4, 0, i64::MAX).unwrap();
    assert!(found.messages.is_empty(), "the index forgot the cut records");

    let a_opened = a.stop().await;
    b.stop().await;
    namesrv.stop().await;
    assert_eq!(a_opened, 2, "A restarted once, to cut its CommitLog");
    assert!(!a_dir.path().join("config").join("haTruncateOffset").exists());
    let names = segment_names(b_dir.path());
    assert_eq!(names, segment_names(a_dir.path()));
    for name in &names {
        let read = |dir: &std::path::Path| std::fs::read(dir.join("commitlog").join(name)).unwrap();
        assert!(read(a_dir.path()) == read(b_dir.path()), "segment {name} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slave_ahead_of_its_master_cuts_to_the_masters_end() {
    let namesrv = Namesrv::start().await;
    let m_dir = tempfile::tempdir().unwrap();
    let s_dir = tempfile::tempdir().unwrap();
    let client = RemotingClient::default();
    let (m_port, m_ha) = (free_port(), free_port());
    let master_config = config(m_dir.path(), &namesrv.addr, "ASYNC_MASTER", 0);
    let master = RunningBroker::start_on(master_config.clone(), m_port, m_ha).await;
    let slave = RunningBroker::start(config(s_dir.path(), &namesrv.addr, "SLAVE", 1)).await;
    send_many(&client, &master.addr, "Ahead", "kept", 100, 500).await;
    wait_caught_up(&master, &slave).await;
    let kept_end = master.broker().store.max_phy_offset();
    send_many(&client, &master.addr, "Ahead", "gone", 100, 500).await;
    wait_caught_up(&master, &slave).await;
    // The master loses its last 100 messages (say, a disk restored from an older copy).
    master.stop().await;
    {
        let store =
            ferromq_store::MessageStore::open_truncated(master_config.store.clone(), kept_end)
                .unwrap();
        assert_eq!(store.max_phy_offset(), kept_end);
        store.close().unwrap();
    }
    let old = slave.weak();
    let master = RunningBroker::start_on(master_config, m_port, m_ha).await;
    // The slave is told it is ahead, restarts, cuts, and follows again.
    slave.wait_restarted(&old).await;
    wait_until(Duration::from_secs(20), "the slave cut its tail", || async {
        slave.try_broker().is_some_and(|slave| slave.store.max_phy_offset() == kept_end)
    })
    .await;
    send_many(&client, &master.addr, "Ahead", "more", 10, 500).await;
    wait_caught_up(&master, &slave).await;
    let end = master.broker().store.max_phy_offset();
    assert!(
        commit_log_bytes(&slave.broker(), 0, end) == commit_log_bytes(&master.broker(), 0, end)
    );
    assert_eq!(slave.stop().await, 2);
    master.stop().await;
    namesrv.stop().await;
}
