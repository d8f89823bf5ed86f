//! Send throughput and latency of a broker, with raw SEND_MESSAGE_V2 frames, and a
//! reference loopback round trip measured in the same run.
//!
//! ```text
//! cargo run --release -p ferromq-broker --example bench_send -- [addr] [producers] [seconds] [size]
//! ```
//! Without `addr` it starts a broker in-process (async flush, store in a temp dir under
//! /tmp). Prints: the loopback RTT of a raw TCP echo (p50/p99), one producer's send
//! latency (p50/p99/p999), then `producers` concurrent producers' messages per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferromq_broker::{Broker, BrokerConfig};
use ferromq_remoting::headers::SendMessageRequestHeaderV2;
use ferromq_remoting::transport::{RemotingClient, TransportConfig};
use ferromq_remoting::{RemotingCommand, RequestCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn loopback_rtt(samples: usize) -> Result<Vec<Duration>, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            let mut buf = [0u8; 256];
            while let Ok(n) = socket.read(&mut buf).await {
                if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut rtts = Vec::with_capacity(samples);
    let mut buf = [0u8; 200];
    for _ in 0..samples {
        let start = Instant::now();
        stream.write_all(&[7u8; 200]).await?;
        stream.read_exact(&mut buf).await?;
        rtts.push(start.elapsed());
    }
    rtts.sort();
    Ok(rtts)
}

async fn run() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let producers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let size: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let mut _dir = None;
    let addr = match args.first().filter(|a| *a != "-") {
        Some(addr) => addr.clone(),
        None => {
            let dir = tempfile::tempdir_in("/tmp")?;
            let mut config = BrokerConfig::with_store_dir(dir.path());
            config.namesrv_addr.clear();
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?.to_string();
            let broker = Broker::open(config)?;
            tokio::spawn(ferromq_broker::run(broker, listener, std::future::pending()));
            _dir = Some(dir);
            addr
        }
    };
    let rtt = loopback_rtt(20_000).await?;
    println!(
        "loopback RTT (raw TCP echo, 200 B): p50 {:?} p99 {:?}",
        percentile(&rtt, 0.5),
        percentile(&rtt, 0.99)
    );
    let body = bytes::Bytes::from(vec![b'x'; size]);
    let topic = format!("Bench{}", std::process::id());
    let client = Arc::new(RemotingClient::new(
        ferromq_remoting::transport::NotSupported,
        TransportConfig::default(),
    ));
    // Create the topic (auto-create from TBW102, 8 queues) and warm up.
    for i in 0..2000 {
        client.invoke(&addr, request(&topic, i % 8, &body), Duration::from_secs(5)).await?;
    }
    let mut latencies = Vec::new();
    let single_until = Instant::now() + Duration::from_secs(seconds.min(5));
    let mut i = 0;
    while Instant::now() < single_until {
        let start = Instant::now();
        let response =
            client.invoke(&addr, request(&topic, i % 8, &body), Duration::from_secs(5)).await?;
        latencies.push(start.elapsed());
        if response.code != 0 {
            return Err(format!("send failed: {:?}", response.remark).into());
        }
        i += 1;
    }
    latencies.sort();
    let p99 = percentile(&latencies, 0.99);
    println!(
        "1 producer, {size} B: {} sends, p50 {:?} p99 {:?} p999 {:?}; p99 / loopback p50 = {:.2}",
        latencies.len(),
        percentile(&latencies, 0.5),
        p99,
        percentile(&latencies, 0.999),
        p99.as_secs_f64() / percentile(&rtt, 0.5).as_secs_f64()
    );
    // Many producers: each a task with one request in flight, spread over 4 connections as
    // Java clients share one connection per broker per client instance.
    let clients: Vec<Arc<RemotingClient>> = (0..4)
        .map(|_| {
            Arc::new(RemotingClient::new(
                ferromq_remoting::transport::NotSupported,
                TransportConfig::default(),
            ))
        })
        .collect();
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for p in 0..producers {
        let client = clients[p % clients.len()].clone();
        let (addr, topic, body) = (addr.clone(), topic.clone(), body.clone());
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
    let mut last = 0;
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = sent.load(Ordering::Relaxed);
        println!("  {} msgs/s", now - last);
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    for task in tasks {
        let _ = task.await;
    }
    let total = sent.load(Ordering::Relaxed);
    println!(
        "{producers} producers, {size} B: {:.0} msgs/s ({:.1} MB/s), {} failed",
        total as f64 / elapsed.as_secs_f64(),
        total as f64 * size as f64 / elapsed.as_secs_f64() / 1e6,
        failed.load(Ordering::Relaxed)
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run())
}
