//! SYNC_MASTER acknowledges a send only once a slave has it: SUCCESS with a slave caught
//! up, SLAVE_NOT_AVAILABLE with none connected, FLUSH_SLAVE_TIMEOUT when the slave does not
//! confirm within `slaveTimeout` — never a false SUCCESS. The master side is also driven by
//! a hand-written slave speaking the raw HA bytes of remoting.md §13.
#![cfg(test)]

mod ha_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ferromq_broker::ha::protocol::{HEADER_SIZE, encode_report};
use ferromq_message::msg_id::decode_offset_msg_id;
use ferromq_remoting::ResponseCode;
use ferromq_remoting::transport::RemotingClient;
use ha_common::*;

/// The CommitLog end of the record a send response names.
fn record_end(master: &RunningBroker, response: &ferromq_remoting::RemotingCommand) -> i64 {
    let (_, phy_offset) = decode_offset_msg_id(response.ext_field("msgId").unwrap()).unwrap();
    let record = master.broker().store.message_by_phy_offset(phy_offset).unwrap().unwrap();
    phy_offset + i64::try_from(record.len()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_master_succeeds_only_for_what_a_slave_has() {
    let namesrv = Namesrv::start().await;
    let master_dir = tempfile::tempdir().unwrap();
    let slave_dir = tempfile::tempdir().unwrap();
    let client = RemotingClient::default();
    let mut master_config = config(master_dir.path(), &namesrv.addr, "SYNC_MASTER", 0);
    master_config.apply("slaveTimeout", "1000").unwrap();
    let master = RunningBroker::start(master_config).await;
    let slave_config = config(slave_dir.path(), &namesrv.addr, "SLAVE", 1);
    let slave = RunningBroker::start(slave_config.clone()).await;
    wait_until(Duration::from_secs(10), "the slave connected", || async {
        master.broker().ha.slaves().iter().any(|s| s.ack_offset >= 0)
    })
    .await;

    for i in 0..50 {
        let body = format!("sync-{i}");
        let response =
            invoke(&client, &master.addr, send_request("Sync", i % 4, body.as_bytes(), "")).await;
        assert_eq!(response.code, 0, "{:?}", response.remark);
        let end = record_end(&master, &response);
        let on_slave = slave.broker().store.max_phy_offset();
        assert!(on_slave >= end, "SUCCESS before the slave had it: slave {on_slave} < {end}");
    }

    // No slave: SLAVE_NOT_AVAILABLE at once; the message is stored on the master all the same.
    slave.stop().await;
    wait_until(Duration::from_secs(10), "the master saw the slave go", || async {
        master.broker().ha.slaves().is_empty()
    })
    .await;
    let started = Instant::now();
    let response = invoke(&client, &master.addr, send_request("Sync", 0, b"alone", "")).await;
    assert_eq!(response.code, ResponseCode::SLAVE_NOT_AVAILABLE.code(), "{:?}", response.remark);
    assert!(started.elapsed() < Duration::from_millis(900), "answered without waiting");
    let stored_at = response.ext_field_as::<i64>("queueOffset").unwrap();
    let stored = pull_all(&client, &master.addr, "G", "Sync", 0, stored_at).await;
    assert_eq!(&stored[0].message.body[..], b"alone");
    // `WAIT=false` does not wait for anybody.
    let response =
        invoke(&client, &master.addr, send_request("Sync", 0, b"nowait", "WAIT\u{1}false\u{2}"))
            .await;
    assert_eq!(response.code, 0, "{:?}", response.remark);

    // The slave comes back, catches up, and sends succeed again.
    let slave = RunningBroker::start(slave_config).await;
    wait_caught_up(&master, &slave).await;
    let response = invoke(&client, &master.addr, send_request("Sync", 1, b"again", "")).await;
    assert_eq!(response.code, 0, "{:?}", response.remark);
    assert!(slave.broker().store.max_phy_offset() >= record_end(&master, &response));
    slave.stop().await;
    master.stop().await;
    namesrv.stop().await;
}

/// Reads one transfer frame (header and body) from a raw HA connection.
fn read_frame(socket: &mut TcpStream) -> (i64, Vec<u8>) {
    let mut header = [0u8; HEADER_SIZE];
    socket.read_exact(&mut header).unwrap();
    let offset = i64::from_be_bytes(header[..8].try_into().unwrap());
    let size = i32::from_be_bytes(header[8..].try_into().unwrap());
    let mut body = vec![0u8; usize::try_from(size).unwrap()];
    socket.read_exact(&mut body).unwrap();
    (offset, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_slave_sees_exact_frames_and_a_silent_one_means_flush_slave_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut master_config = config(dir.path(), "127.0.0.1:1", "SYNC_MASTER", 0);
    master_config.namesrv_addr.clear();
    master_config.apply("slaveTimeout", "500").unwrap();
    master_config.apply("haTransferBatchSize", "1000").unwrap();
    master_config.apply("haSendHeartbeatInterval", "300").unwrap();
    let master = RunningBroker::start(master_config).await;
    let client = RemotingClient::default();
    for i in 0..20 {
        let response = invoke(
            &client,
            &master.addr,
            send_request("Raw", 0, format!("raw-{i}").as_bytes(), "WAIT\u{1}false\u{2}"),
        )
        .await;
        assert_eq!(response.code, 0);
    }
    let end = master.broker().store.max_phy_offset();
    let expected = commit_log_bytes(&master.broker(), 0, end);

    // An empty slave reports 0 and gets the master's last segment (here from 0), in frames
    // of at most haTransferBatchSize bytes that cut records anywhere.
    let mut slave = TcpStream::connect(&master.ha_addr).unwrap();
    slave.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    slave.write_all(&encode_report(0)).unwrap();
    let mut received = Vec::new();
    while i64::try_from(received.len()).unwrap() < end {
        let (offset, body) = read_frame(&mut slave);
        assert_eq!(offset, i64::try_from(received.len()).unwrap(), "frames are contiguous");
        assert!(body.len() <= 1000, "batch size honoured: {}", body.len());
        received.extend(body);
    }
    assert!(received == expected, "the frames carry the CommitLog byte for byte");
    // Acknowledge everything, then go silent.
    slave.write_all(&encode_report(end)).unwrap();
    wait_until(Duration::from_secs(5), "the ack arrived", || async {
        master.broker().ha.slaves().iter().any(|s| s.ack_offset == end)
    })
    .await;
    let started = Instant::now();
    let response = invoke(&client, &master.addr, send_request("Raw", 0, b"unconfirmed", "")).await;
    assert_eq!(response.code, ResponseCode::FLUSH_SLAVE_TIMEOUT.code(), "{:?}", response.remark);
    assert!(started.elapsed() >= Duration::from_millis(450), "waited slaveTimeout");
    // It was streamed all the same; confirming it makes the next send succeed.
    let new_end = master.broker().store.max_phy_offset();
    let mut got = 0;
    while end + got < new_end {
        let (offset, body) = read_frame(&mut slave);
        assert_eq!(offset, end + got);
        got += i64::try_from(body.len()).unwrap();
    }
    let confirmer = std::thread::spawn(move || {
        slave.write_all(&encode_report(new_end)).unwrap();
        // Heartbeats (the next offset, no body) may come first while the master is idle.
        let (offset, body) = loop {
            let (offset, body) = read_frame(&mut slave);
            if !body.is_empty() {
                break (offset, body);
            }
            assert_eq!(offset, new_end, "a heartbeat carries the next offset");
        };
        assert_eq!(offset, new_end);
        let confirmed = offset + i64::try_from(body.len()).unwrap();
        slave.write_all(&encode_report(confirmed)).unwrap();
        let (offset, body) = read_frame(&mut slave);
        assert!(body.is_empty(), "idle again: a heartbeat");
        assert_eq!(offset, confirmed);
        confirmed
    });
    let response = invoke(&client, &master.addr, send_request("Raw", 0, b"confirmed", "")).await;
    assert_eq!(response.code, 0, "{:?}", response.remark);
    let heartbeat_at =
        tokio::task::spawn_blocking(move || confirmer.join().unwrap()).await.unwrap();
    assert_eq!(heartbeat_at, master.broker().store.max_phy_offset());

    // Bad input closes that one connection.
    let mut bad = TcpStream::connect(&master.ha_addr).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    bad.write_all(&encode_report(-5)).unwrap();
    let mut byte = [0u8; 1];
    assert!(matches!(bad.read(&mut byte), Ok(0) | Err(_)), "closed after a negative offset");
    // A slave ahead of its master is told the master's end in a heartbeat.
    let max = master.broker().store.max_phy_offset();
    let mut ahead = TcpStream::connect(&master.ha_addr).unwrap();
    ahead.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    ahead.write_all(&encode_report(max + 4096)).unwrap();
    assert_eq!(read_frame(&mut ahead), (max, Vec::new()));
    // Its reports never count as acknowledgements.
    assert!(master.broker().ha.slaves().iter().all(|s| s.ack_offset <= max));
    drop((bad, ahead));
    master.stop().await;
}
