//! Manual master switch by admin command: UPDATE_BROKER_CONFIG over TCP turns the slave into
//! the master of its group and the old master into a slave, each broker reopening itself
//! in-process on the same ports (the test never stops or starts one to switch it).
//!
//! - Promote first (the order of the issue): the old master still takes writes between the
//!   two commands; those records never reach the new master, so the old one cuts them when
//!   it rejoins as a slave, and follows until both CommitLogs are byte-identical.
//! - Demote first under SYNC_MASTER (the order `ferromq broker switch-master` uses): every
//!   acknowledged message is on the new master, and nothing is cut.
#![cfg(test)]

mod ha_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ferromq_remoting::bodies::{JsonBody, TopicRouteData};
use ferromq_remoting::headers::GetRouteInfoRequestHeader;
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};
use ha_common::*;

/// UPDATE_BROKER_CONFIG with a properties body, as Java's `updateBrokerConfig` sends it.
async fn update_config(client: &RemotingClient, addr: &str, pairs: &[(&str, &str)]) -> i32 {
    let body: String = pairs.iter().map(|(key, value)| format!("{key}={value}\n")).collect();
    let request = RemotingCommand::request(RequestCode::UPDATE_BROKER_CONFIG.code())
        .with_body(body.into_bytes());
    let response = invoke(client, addr, request).await;
    assert_eq!(response.code, 0, "update {pairs:?} on {addr}: {:?}", response.remark);
    response.code
}

/// GET_BROKER_CONFIG as a map.
async fn broker_config(client: &RemotingClient, addr: &str) -> BTreeMap<String, String> {
    let request = RemotingCommand::request(RequestCode::GET_BROKER_CONFIG.code());
    let response = invoke(client, addr, request).await;
    assert_eq!(response.code, 0);
    String::from_utf8(response.body.to_vec())
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// The name server's addresses of group `broker-ha` for `topic`, by broker id.
async fn group_addrs(client: &RemotingClient, namesrv: &str, topic: &str) -> BTreeMap<i64, String> {
    let header =
        GetRouteInfoRequestHeader { topic: topic.to_owned(), accept_standard_json_only: None };
    let request =
        RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC.code()).with_header(&header);
    let response = invoke(client, namesrv, request).await;
    if response.code != 0 {
        return BTreeMap::new();
    }
    let route = TopicRouteData::decode(&response.body).unwrap();
    route
        .broker_datas
        .into_iter()
        .find(|data| data.broker_name == "broker-ha")
        .map(|data| data.broker_addrs)
        .unwrap_or_default()
}

async fn wait_route(client: &RemotingClient, namesrv: &str, master: &str, slave: &str) {
    let expected = BTreeMap::from([(0, master.to_owned()), (1, slave.to_owned())]);
    wait_until(Duration::from_secs(20), "the route shows the new roles", || async {
        group_addrs(client, namesrv, "Switch").await == expected
    })
    .await;
}

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

fn expected_bodies(batches: &[(&str, usize)]) -> BTreeSet<String> {
    batches
        .iter()
        .flat_map(|(prefix, count)| (0..*count).map(move |i| format!("{prefix}-{i}")))
        .collect()
}

/// Waits until `broker` runs in `role` (it reopens after the update's reply).
async fn wait_role(broker: &RunningBroker, role: &str) {
    wait_until(Duration::from_secs(20), &format!("{} runs as {role}", broker.addr), || async {
        broker.try_broker().is_some_and(|b| b.config.broker_role.name() == role)
    })
    .await;
}

/// Sends one message to `addr` and returns the response code, retrying while the broker
/// is between two runs (a slave reopens once more to cut its CommitLog).
async fn send_code(client: &RemotingClient, addr: &str, body: &str) -> i32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let request = send_request("Switch", 0, body.as_bytes(), "");
        match client.invoke(addr, request, TIMEOUT).await {
            Ok(response) => return response.code,
            Err(error) => assert!(std::time::Instant::now() < deadline, "send to {addr}: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_by_admin_then_demote_and_the_old_master_cuts_what_the_new_one_lacks() {
    let namesrv = Namesrv::start().await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let client = RemotingClient::default();
    let a = RunningBroker::start(config(a_dir.path(), &namesrv.addr, "ASYNC_MASTER", 0)).await;
    let b = RunningBroker::start(config(b_dir.path(), &namesrv.addr, "SLAVE", 1)).await;
    send_many(&client, &a.addr, "Switch", "common", 200, 300).await;
    wait_caught_up(&a, &b).await;
    let common_end = a.broker().store.max_phy_offset();
    // What the slave's 10 s metadata sync does: B knows topic Switch as a master must.
    ferromq_broker::ha::sync_metadata(&b.broker(), &a.addr).await;

    // Promote B. The reply comes before B reopens; then B takes writes.
    let b_slave = b.weak();
    update_config(&client, &b.addr, &[("brokerRole", "ASYNC_MASTER"), ("brokerId", "0")]).await;
    b.wait_restarted(&b_slave).await;
    wait_role(&b, "ASYNC_MASTER").await;
    // A is still a master until its own command: what it takes now, B never gets.
    send_many(&client, &a.addr, "Switch", "lost", 60, 900).await;
    let a_end = a.broker().store.max_phy_offset();
    send_many(&client, &b.addr, "Switch", "new", 40, 200).await;
    let b_end = b.broker().store.max_phy_offset();
    assert!(a_end > b_end && b_end > common_end, "A is ahead and diverged: {a_end} {b_end}");

    // Demote A: it reopens as a slave, finds B through the name server, reopens once more
    // to cut its CommitLog where B's parts from it, and follows B.
    update_config(&client, &a.addr, &[("brokerRole", "SLAVE"), ("brokerId", "1")]).await;
    wait_role(&a, "SLAVE").await;
    let refused = send_code(&client, &a.addr, "to-the-slave").await;
    assert_eq!(refused, ResponseCode::SERVICE_NOT_AVAILABLE.code(), "a slave refuses writes");
    wait_caught_up(&b, &a).await;
    send_many(&client, &b.addr, "Switch", "after", 20, 200).await;
    wait_caught_up(&b, &a).await;
    let end = b.broker().store.max_phy_offset();
    assert!(commit_log_bytes(&a.broker(), 0, end) == commit_log_bytes(&b.broker(), 0, end));

    wait_route(&client, &namesrv.addr, &b.addr, &a.addr).await;
    let b_config = broker_config(&client, &b.addr).await;
    assert_eq!(
        (b_config["brokerRole"].as_str(), b_config["brokerId"].as_str()),
        ("ASYNC_MASTER", "0")
    );
    let a_config = broker_config(&client, &a.addr).await;
    assert_eq!((a_config["brokerRole"].as_str(), a_config["brokerId"].as_str()), ("SLAVE", "1"));

    // B serves every message acknowledged before the switch that it had, and its own; A
    // serves exactly the same (the `lost` ones were cut).
    let on_b = bodies(&client, &b.addr, "Switch").await;
    assert_eq!(on_b, expected_bodies(&[("common", 200), ("new", 40), ("after", 20)]));
    ferromq_broker::ha::sync_metadata(&a.broker(), &b.addr).await;
    assert_eq!(bodies(&client, &a.addr, "Switch").await, on_b);

    let a_opened = a.stop().await;
    let b_opened = b.stop().await;
    namesrv.stop().await;
    assert_eq!(a_opened, 3, "A reopened as a slave, then once more to cut");
    assert_eq!(b_opened, 2, "B reopened once, as the master");
    assert!(!a_dir.path().join("config").join("haTruncateOffset").exists());
    let names = segment_names(b_dir.path());
    assert_eq!(names, segment_names(a_dir.path()));
    for name in &names {
        let read = |dir: &std::path::Path| std::fs::read(dir.join("commitlog").join(name)).unwrap();
        assert!(read(a_dir.path()) == read(b_dir.path()), "segment {name} differs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demote_then_promote_a_sync_master_loses_no_acknowledged_message() {
    let namesrv = Namesrv::start().await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let client = RemotingClient::default();
    let a = RunningBroker::start(config(a_dir.path(), &namesrv.addr, "SYNC_MASTER", 0)).await;
    let b = RunningBroker::start(config(b_dir.path(), &namesrv.addr, "SLAVE", 1)).await;
    wait_until(Duration::from_secs(20), "the slave is connected", || async {
        !a.broker().ha.slaves().is_empty()
    })
    .await;
    // Every SUCCESS of a SYNC_MASTER means the slave has the message.
    send_many(&client, &a.addr, "Switch", "acked", 100, 300).await;
    ferromq_broker::ha::sync_metadata(&b.broker(), &a.addr).await;

    // Demote first, so the two never both take writes; then promote B to A's role.
    update_config(&client, &a.addr, &[("brokerRole", "SLAVE"), ("brokerId", "1")]).await;
    wait_role(&a, "SLAVE").await;
    update_config(&client, &b.addr, &[("brokerId", "0"), ("brokerRole", "SYNC_MASTER")]).await;
    wait_role(&b, "SYNC_MASTER").await;
    assert_eq!(bodies(&client, &b.addr, "Switch").await, expected_bodies(&[("acked", 100)]));

    // A follows B; B's sync acknowledgements work again once it does.
    wait_until(Duration::from_secs(20), "A follows B", || async {
        b.try_broker().is_some_and(|b| !b.ha.slaves().is_empty())
    })
    .await;
    send_many(&client, &b.addr, "Switch", "after", 20, 300).await;
    wait_caught_up(&b, &a).await;
    let end = b.broker().store.max_phy_offset();
    assert!(commit_log_bytes(&a.broker(), 0, end) == commit_log_bytes(&b.broker(), 0, end));
    wait_route(&client, &namesrv.addr, &b.addr, &a.addr).await;
    assert_eq!(
        send_code(&client, &a.addr, "to-the-slave").await,
        ResponseCode::SERVICE_NOT_AVAILABLE.code()
    );

    assert_eq!(a.stop().await, 2, "A reopened once, as a slave, and had nothing to cut");
    assert_eq!(b.stop().await, 2);
    namesrv.stop().await;
}
