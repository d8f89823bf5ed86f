//! UPDATE_BROKER_CONFIG over TCP: a bad update (unknown role value, unknown key, a SLAVE
//! without an id, a black-listed key) is refused with a remark naming the problem and changes
//! nothing — not the running settings, not the config file, no reopening; a good one is
//! answered, written into the `-c` file (comments and other lines kept), and applied by
//! reopening the broker in-process; one that changes nothing does not reopen it.
#![cfg(test)]

mod ha_common;

use std::collections::BTreeMap;
use std::time::Duration;

use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};
use ha_common::*;

const FILE: &str = "# broker-ha, from a file\nbrokerName=broker-ha\nfileReservedTime=72\n";

async fn update(client: &RemotingClient, addr: &str, body: &str) -> RemotingCommand {
    let request = RemotingCommand::request(RequestCode::UPDATE_BROKER_CONFIG.code())
        .with_body(body.as_bytes().to_vec());
    invoke(client, addr, request).await
}

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

/// A master started from a `broker.conf` file (as `ferromq-broker -c` would be).
async fn start_from_file(
    dir: &std::path::Path,
    namesrv: &str,
) -> (RunningBroker, std::path::PathBuf) {
    let path = dir.join("broker.conf");
    std::fs::write(&path, FILE).unwrap();
    let mut settings = config(&dir.join("store"), namesrv, "ASYNC_MASTER", 0);
    settings.load_file(&path).unwrap();
    (RunningBroker::start(settings).await, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_update_is_refused_and_changes_nothing() {
    let namesrv = Namesrv::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = RemotingClient::default();
    let (broker, path) = start_from_file(dir.path(), &namesrv.addr).await;
    let before = broker_config(&client, &broker.addr).await;
    let running = broker.weak();

    let refusals = [
        ("brokerRole=MASTER\nbrokerId=0\n", ResponseCode::SYSTEM_ERROR, "`brokerRole`"),
        ("fileReservedTime=48\nbrokerRole=PRIMARY\n", ResponseCode::SYSTEM_ERROR, "`brokerRole`"),
        ("fileReservedTime=48\nnoSuchKey=1\n", ResponseCode::SYSTEM_ERROR, "`noSuchKey`"),
        ("fileReservedTime=many\n", ResponseCode::SYSTEM_ERROR, "`fileReservedTime`"),
        ("brokerRole=SLAVE\n", ResponseCode::SYSTEM_ERROR, "`brokerId`"),
        ("brokerId=3\n", ResponseCode::SYSTEM_ERROR, "`brokerId`"),
        ("brokerConfigPath=/tmp/x\n", ResponseCode::NO_PERMISSION, "black list"),
        ("fileReservedTime=48\nconfigBlackList=\n", ResponseCode::NO_PERMISSION, "black list"),
    ];
    for (body, code, named) in refusals {
        let response = update(&client, &broker.addr, body).await;
        let remark = response.remark.clone().unwrap_or_default();
        assert_eq!(response.code, code.code(), "{body:?}: {remark}");
        assert!(remark.contains(named), "{body:?}: {remark}");
        if code == ResponseCode::SYSTEM_ERROR {
            assert!(remark.ends_with("nothing was changed"), "{remark}");
        }
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(broker.weak().ptr_eq(&running), "the broker did not reopen");
    assert_eq!(broker_config(&client, &broker.addr).await, before);
    assert_eq!(before["fileReservedTime"], "72");
    assert_eq!(before["brokerRole"], "ASYNC_MASTER");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), FILE);
    send_many(&client, &broker.addr, "Update", "still", 4, 100).await;
    assert_eq!(broker.stop().await, 1);
    namesrv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_update_is_persisted_and_applied_by_reopening() {
    let namesrv = Namesrv::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = RemotingClient::default();
    let (broker, path) = start_from_file(dir.path(), &namesrv.addr).await;
    send_many(&client, &broker.addr, "Update", "before", 8, 100).await;

    // Empty: nothing to do.
    assert_eq!(update(&client, &broker.addr, "").await.code, 0);
    let first = broker.weak();
    let response =
        update(&client, &broker.addr, "fileReservedTime = 48\nslaveReadEnable=true\n").await;
    assert_eq!(response.code, 0, "{:?}", response.remark);
    broker.wait_restarted(&first).await;
    let now = broker_config(&client, &broker.addr).await;
    assert_eq!((now["fileReservedTime"].as_str(), now["slaveReadEnable"].as_str()), ("48", "true"));
    assert_eq!(broker.broker().config.store.file_reserved_time_hours, 48);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "# broker-ha, from a file\nbrokerName=broker-ha\nfileReservedTime=48\nslaveReadEnable=true\n"
    );

    // Same values again: SUCCESS, no reopening.
    let second = broker.weak();
    assert_eq!(update(&client, &broker.addr, "fileReservedTime=48\n").await.code, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(broker.weak().ptr_eq(&second), "a no-op update does not reopen the broker");

    // The reopened broker serves what the first one stored.
    let messages = pull_all(&client, &broker.addr, "Check", "Update", 0, 0).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(broker.stop().await, 2);
    namesrv.stop().await;
}
