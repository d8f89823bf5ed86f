//! A SYNC_MASTER in a child process is killed with SIGKILL in the middle of a load from
//! eight producers; every message it acknowledged with SUCCESS is then consumed from the
//! slave: none is lost. Consumers keep reading from the slave with the master gone.
#![cfg(test)]

mod ha_common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ferromq_remoting::transport::RemotingClient;
use ha_common::*;
use parking_lot::Mutex;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_master(dir: &std::path::Path, namesrv: &str, port: u16, ha_port: u16) -> KillOnDrop {
    let conf = dir.join("broker.conf");
    let store = dir.join("store");
    let text = format!(
        "brokerClusterName=DefaultCluster\nbrokerName=broker-ha\nbrokerId=0\n\
         brokerRole=SYNC_MASTER\nlistenPort={port}\nhaListenPort={ha_port}\nnamesrvAddr={namesrv}\n\
         storePathRootDir={}\nmappedFileSizeCommitLog={SEGMENT}\nslaveTimeout=3000\n\
         haSendHeartbeatInterval=200\nhaHousekeepingInterval=3000\n",
        store.display()
    );
    std::fs::write(&conf, text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ferromq-broker"))
        .arg("-c")
        .arg(&conf)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_when_a_sync_master_is_killed() {
    let namesrv = Namesrv::start().await;
    let master_dir = tempfile::tempdir().unwrap();
    let slave_dir = tempfile::tempdir().unwrap();
    let (port, ha_port) = (free_port(), free_port());
    let master_addr = format!("127.0.0.1:{port}");
    let mut master = spawn_master(master_dir.path(), &namesrv.addr, port, ha_port);
    let client = Arc::new(RemotingClient::default());
    wait_until(Duration::from_secs(30), "the master process serves", || {
        let client = client.clone();
        let addr = master_addr.clone();
        async move {
            let request = send_request("Killed", 0, b"warm-up", "WAIT\u{1}false\u{2}");
            matches!(client.invoke(&addr, request, Duration::from_secs(1)).await, Ok(r) if r.code == 0)
        }
    })
    .await;
    let slave = RunningBroker::start(config(slave_dir.path(), &namesrv.addr, "SLAVE", 1)).await;
    wait_until(Duration::from_secs(20), "the slave follows the master", || {
        let client = client.clone();
        let addr = master_addr.clone();
        async move {
            client
                .invoke(&addr, send_request("Killed", 0, b"probe", ""), TIMEOUT)
                .await
                .unwrap()
                .code
                == 0
        }
    })
    .await;
    // The slave needs the topic to serve it (its 10 s sync may not have run yet).
    ferromq_broker::ha::sync_metadata(&slave.broker(), &master_addr).await;

    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for p in 0..8 {
        let (client, acked, stop, addr) =
            (client.clone(), acked.clone(), stop.clone(), master_addr.clone());
        producers.push(tokio::spawn(async move {
            let mut failures = 0;
            for n in 0.. {
                if stop.load(Ordering::Relaxed) || failures > 20 {
                    break;
                }
                let body = format!("p{p}-{n}");
                let request = send_request("Killed", p % 4, body.as_bytes(), "");
                match client.invoke(&addr, request, Duration::from_secs(5)).await {
                    Ok(response) if response.code == 0 => {
                        acked.lock().insert(body);
                    }
                    Ok(_) => {}
                    Err(_) => {
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = Instant::now();
    master.0.kill().unwrap();
    master.0.wait().unwrap();
    // Answers the master wrote before it died may still sit in the sockets (its connections
    // write them as soon as they are ready): let the producers read those first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let acked_before_kill = acked.lock().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for producer in producers {
        producer.await.unwrap();
    }
    let acked = acked.lock().clone();
    assert!(acked_before_kill > 100, "the load ran: {acked_before_kill} acknowledged");
    assert_eq!(acked.len(), acked_before_kill, "nothing is acknowledged by a dead master");

    // Everything acknowledged is on the slave, and consumers read it there.
    let mut consumed = BTreeSet::new();
    for queue_id in 0..4 {
        for message in pull_all(&client, &slave.addr, "AfterCrash", "Killed", queue_id, 0).await {
            consumed.insert(key_of(&message.message.body));
        }
    }
    let lost: Vec<&String> = acked.difference(&consumed).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    eprintln!(
        "acknowledged {}, on the slave {} (the rest were stored but never acknowledged); consumed {:?} after the kill",
        acked.len(),
        consumed.len(),
        killed_at.elapsed()
    );
    slave.stop().await;
    namesrv.stop().await;
}
