//! The master switch through the admin API and the `ferromq` CLI: a master and its slave
//! in-process, run the way `ferromq-broker` runs them (opened again when they ask to);
//! `ferromq broker update-config` with a bad value fails and changes nothing;
//! `ferromq broker switch-master` makes the slave the master and the master its slave; the
//! route follows, and a producer started before the switch keeps sending, now to the new
//! master.
#![cfg(test)]

mod common;

use std::process::Command;
use std::sync::{Arc, Weak};
use std::time::Duration;

use common::{Namesrv, fast_client, wait_until};
use ferromq_broker::{Broker, BrokerConfig};
use ferromq_client::admin::{TopicTarget, topic_config};
use ferromq_client::{Admin, Message, Producer, ProducerConfig};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// A broker run like `ferromq-broker` runs one: reopened with the settings it asks for.
struct Node {
    addr: String,
    current: watch::Receiver<Weak<Broker>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<usize>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(namesrv: &str, role: &str, id: i64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = BrokerConfig::with_store_dir(dir.path());
        for (key, value) in [
            ("namesrvAddr", namesrv),
            ("brokerName", "broker-x"),
            ("brokerIP1", "127.0.0.1"),
            ("brokerIP2", "127.0.0.1"),
            ("listenPort", &port.to_string()),
            ("haListenPort", &free_port().to_string()),
            ("brokerRole", role),
            ("brokerId", &id.to_string()),
            ("mappedFileSizeCommitLog", "1048576"),
            ("mappedFileSizeConsumeQueue", "60000"),
            ("haSendHeartbeatInterval", "200"),
        ] {
            assert!(config.apply(key, value).unwrap(), "{key}");
        }
        config.store.prefault_segments = false;
        let (current_tx, current) = watch::channel(Weak::new());
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut opened = 0;
            loop {
                let broker = Broker::open(config.clone()).unwrap();
                opened += 1;
                config = broker.config.clone();
                let restart = broker.ha.restart_handle();
                let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
                current_tx.send_replace(Arc::downgrade(&broker));
                let (stop_run, run_stopped) = oneshot::channel::<()>();
                let run = tokio::spawn(ferromq_broker::run(broker, listener, async {
                    let _ = run_stopped.await;
                }));
                tokio::pin!(run);
                tokio::select! {
                    result = &mut run => result.unwrap().unwrap(),
                    _ = &mut stopped => {
                        let _ = stop_run.send(());
                        run.await.unwrap().unwrap();
                        return opened;
                    }
                }
                config = restart.next_config(&config).expect("run ended by itself");
            }
        });
        let node =
            Self { addr: format!("127.0.0.1:{port}"), current, stop: Some(stop), task, _dir: dir };
        let mut current = node.current.clone();
        let _ = current.wait_for(|broker| broker.upgrade().is_some()).await;
        node
    }

    fn broker(&self) -> Option<Arc<Broker>> {
        self.current.borrow().upgrade()
    }

    async fn stop(mut self) -> usize {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs the `ferromq` binary: stdout on success, stdout and stderr on failure.
async fn ferromq(namesrv: &str, args: &[&str]) -> Result<String, String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferromq"));
    command.arg("-n").arg(namesrv).args(args);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    if output.status.success() { Ok(stdout) } else { Err(format!("{stdout}\n{stderr}")) }
}

async fn commit_log_end(admin: &Admin, addr: &str) -> i64 {
    let info = admin.broker_runtime_info(addr).await.unwrap_or_default();
    info.get("commitLogMaxOffset").and_then(|end| end.parse().ok()).unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_master_by_cli_and_the_producer_follows() {
    common::init_logs();
    let mut namesrv = Namesrv::start().await;
    let a = Node::start(&namesrv.addr, "ASYNC_MASTER", 0).await;
    let b = Node::start(&namesrv.addr, "SLAVE", 1).await;
    let admin = Admin::new(fast_client(&namesrv.addr)).unwrap();
    admin
        .create_topic(&TopicTarget::Broker(a.addr.clone()), &topic_config("Switched", 2, 2))
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "the topic's route", || async {
        admin
            .topic_route("Switched")
            .await
            .is_ok_and(|route| route.queue_datas.iter().any(|queues| queues.write_queue_nums == 2))
    })
    .await;
    let producer = Producer::new(ProducerConfig {
        client: fast_client(&namesrv.addr),
        ..ProducerConfig::new("PG_switch")
    })
    .unwrap();
    producer.start().await.unwrap();
    for i in 0..10 {
        producer.send(Message::new("Switched", format!("before-{i}"))).await.unwrap();
    }
    wait_until(Duration::from_secs(20), "the slave caught up", || async {
        let end = commit_log_end(&admin, &a.addr).await;
        end > 0 && commit_log_end(&admin, &b.addr).await == end
    })
    .await;
    // What the slave's 10 s metadata sync does: B knows the topic as a master must.
    ferromq_broker::ha::sync_metadata(&b.broker().unwrap(), &a.addr).await;

    // A bad value: refused, nothing changes.
    let refused = ferromq(
        &namesrv.addr,
        &["broker", "update-config", "-b", &a.addr, "-k", "brokerRole", "-v", "MASTER"],
    )
    .await;
    let failure = refused.expect_err("an unknown role is refused");
    assert!(failure.contains("brokerRole") && failure.contains("nothing was changed"), "{failure}");
    let config = admin.broker_config(&a.addr).await.unwrap();
    assert_eq!(config["brokerRole"], "ASYNC_MASTER");

    let switched = ferromq(
        &namesrv.addr,
        &["broker", "switch-master", "--new-master", &b.addr, "--old-master", &a.addr],
    )
    .await;
    let switched = switched.unwrap();
    assert!(switched.contains("is now ASYNC_MASTER"), "{switched}");
    wait_until(Duration::from_secs(20), "the route shows the new roles", || async {
        admin.cluster_info().await.is_ok_and(|info| {
            info.broker_addr_table.get("broker-x").is_some_and(|data| {
                data.broker_addrs.get(&0) == Some(&b.addr)
                    && data.broker_addrs.get(&1) == Some(&a.addr)
            })
        })
    })
    .await;
    let shown = ferromq(&namesrv.addr, &["broker", "config", "-b", &b.addr]).await.unwrap();
    assert!(
        shown.lines().any(|line| line.contains("brokerRole") && line.contains("ASYNC_MASTER")),
        "{shown}"
    );

    // The producer re-routes to the new master (a send may hit the old one first and be
    // retried).
    for i in 0..10 {
        let message = Message::new("Switched", format!("after-{i}"));
        let mut sent = producer.send(message.clone()).await;
        for _ in 0..20 {
            if sent.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            sent = producer.send(message.clone()).await;
        }
        sent.unwrap();
    }
    let stats = admin.topic_stats("Switched").await.unwrap();
    assert_eq!(stats.values().map(|offsets| offsets.max_offset).sum::<i64>(), 20);
    wait_until(Duration::from_secs(20), "the old master follows", || async {
        let end = commit_log_end(&admin, &b.addr).await;
        commit_log_end(&admin, &a.addr).await == end
    })
    .await;

    producer.shutdown().await;
    admin.shutdown();
    assert_eq!(a.stop().await, 2, "A reopened once, as a slave");
    assert_eq!(b.stop().await, 2, "B reopened once, as the master");
    namesrv.stop().await;
}
