//! Send throughput of a master with a slave attached, async replication (ASYNC_MASTER)
//! against sync replication (SYNC_MASTER), in the same run, on loopback.
//!
//! ```text
//! cargo run --release -p ferromq-broker --example bench_ha -- [producers] [seconds] [size]
//! ```
//! Starts an in-process name server and, for each role, a master and a slave (async flush,
//! stores in temp dirs under `RMQ_BENCH_DIR` or /tmp), then runs `producers` concurrent
//! producers (raw SEND_MESSAGE_V2, one request in flight each, over 4 connections) for
//! `seconds`. Prints msgs/s per role and the sync/async ratio, and checks the slave caught
//! up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferromq_broker::{Broker, BrokerConfig};
use ferromq_remoting::headers::SendMessageRequestHeaderV2;
use ferromq_remoting::transport::{RemotingClient, TransportConfig};
use ferromq_remoting::{RemotingCommand, RequestCode};
use tokio::net::TcpListener;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn request(topic: &str, queue_id: i32, body: &bytes::Bytes) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2 {
        a: "PID_bench".into(),
        b: topic.into(),
        c: "TBW102".into(),
        d: 8,
        e: queue_id,
        f: 0,
        g: 1_700_000_000_000,
        h: 0,
        i: Some("TAGS\u{1}bench\u{2}UNIQ_KEY\u{1}0A000001000000000000000000000000\u{2}".into()),
        j: Some(0),
        k: Some(false),
        l: None,
        m: None,
        n: None,
    };
    RemotingCommand::request(RequestCode::SEND_MESSAGE_V2.code())
        .with_header(&header)
        .with_body(body.clone())
}

/// Starts a broker on loopback; returns its address and the broker.
async fn start_broker(
    dir: &std::path::Path,
    namesrv: &str,
    group: &str,
    role: &str,
    id: i64,
) -> Result<(String, Arc<Broker>), Error> {
    let mut config = BrokerConfig::with_store_dir(dir);
    config.apply("namesrvAddr", namesrv)?;
    config.apply("brokerName", group)?;
    config.apply("brokerRole", role)?;
    config.apply("brokerId", &id.to_string())?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let ha = std::net::TcpListener::bind("127.0.0.1:0")?;
    config.listen_port = listener.local_addr()?.port();
    config.ha_listen_port = ha.local_addr()?.port();
    let broker = Broker::open(config)?;
    broker.ha.use_listener(ha);
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(ferromq_broker::run(broker.clone(), listener, std::future::pending()));
    Ok((addr, broker))
}

/// Runs `producers` producers against `addr` for `seconds`; returns msgs/s and failures.
async fn load(
    addr: &str,
    producers: usize,
    seconds: u64,
    size: usize,
) -> Result<(f64, u64), Error> {
    let body = bytes::Bytes::from(vec![b'x'; size]);
    let topic = "BenchHa".to_owned();
    let clients: Vec<Arc<RemotingClient>> = (0..4)
        .map(|_| {
            Arc::new(RemotingClient::new(
                ferromq_remoting::transport::NotSupported,
                TransportConfig::default(),
            ))
        })
        .collect();
    // Create the topic and warm up.
    for i in 0..2000 {
        clients[0].invoke(addr, request(&topic, i % 8, &body), Duration::from_secs(5)).await?;
    }
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for p in 0..producers {
        let client = clients[p % clients.len()].clone();
        let (addr, topic, body) = (addr.to_owned(), topic.clone(), body.clone());
        let (sent, failed, stop) = (sent.clone(), failed.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = p as i32;
            while !stop.load(Ordering::Relaxed) {
                match client
                    .invoke(&addr, request(&topic, n % 8, &body), Duration::from_secs(5))
                    .await
                {
                    Ok(response) if response.code == 0 => sent.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
                n = n.wrapping_add(1);
            }
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    for task in tasks {
        let _ = task.await;
    }
    let total = sent.load(Ordering::Relaxed);
    Ok((total as f64 / elapsed.as_secs_f64(), failed.load(Ordering::Relaxed)))
}

async fn run() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let producers: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(64);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let size: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let base =
        std::env::var_os("RMQ_BENCH_DIR").map_or_else(|| "/tmp".into(), std::path::PathBuf::from);
    let namesrv_dir = tempfile::tempdir_in(&base)?;
    let namesrv_listener = TcpListener::bind("127.0.0.1:0").await?;
    let namesrv = namesrv_listener.local_addr()?.to_string();
    let namesrv_config = ferromq_namesrv::NamesrvConfig {
        kv_config_path: namesrv_dir.path().join("kvConfig.json"),
        config_store_path: namesrv_dir.path().join("namesrv.properties"),
        ..Default::default()
    };
    tokio::spawn(ferromq_namesrv::run(namesrv_listener, namesrv_config, std::future::pending()));
    let mut results = Vec::new();
    for role in ["ASYNC_MASTER", "SYNC_MASTER"] {
        let master_dir = tempfile::tempdir_in(&base)?;
        let slave_dir = tempfile::tempdir_in(&base)?;
        let group = format!("bench-{role}");
        let (master_addr, master) =
            start_broker(master_dir.path(), &namesrv, &group, role, 0).await?;
        let (_, slave) = start_broker(slave_dir.path(), &namesrv, &group, "SLAVE", 1).await?;
        let connected = Instant::now();
        while master.ha.slaves().is_empty() {
            if connected.elapsed() > Duration::from_secs(30) {
                return Err("the slave did not connect".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (rate, failed) = load(&master_addr, producers, seconds, size).await?;
        let caught_up = Instant::now();
        while slave.store.max_phy_offset() < master.store.max_phy_offset() {
            if caught_up.elapsed() > Duration::from_secs(60) {
                return Err("the slave did not catch up".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!(
            "{role} + 1 slave, {producers} producers, {size} B: {rate:.0} msgs/s ({:.1} MB/s), {failed} failed; slave caught up {:?} after the load",
            rate * size as f64 / 1e6,
            caught_up.elapsed()
        );
        results.push(rate);
    }
    println!("sync / async replication throughput: {:.0}%", 100.0 * results[1] / results[0]);
    Ok(())
}

fn main() -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(run());
    // The brokers are never stopped: do not wait for their slave sessions.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}
