//! An in-process cluster for the client's integration tests: name servers and brokers on
//! 127.0.0.1 ephemeral ports with temporary stores, short delay levels and fast client
//! timers.
#![allow(dead_code, reason = "each test binary uses a different part of the harness")]

use std::path::Path;
use std::time::{Duration, Instant};

use ferromq_broker::{Broker, BrokerConfig};
use ferromq_client::admin::{TopicTarget, topic_config};
use ferromq_client::{Admin, ClientConfig};
use ferromq_namesrv::NamesrvConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The cluster name brokers register under.
pub const CLUSTER: &str = "DefaultCluster";

/// A running name server.
pub struct Namesrv {
    pub addr: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Namesrv {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let config = NamesrvConfig {
            kv_config_path: dir.path().join("kvConfig.json"),
            config_store_path: dir.path().join("namesrv.properties"),
            ..NamesrvConfig::default()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            ferromq_namesrv::run(listener, config, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { addr, stop: Some(stop), task: Some(task), _dir: dir }
    }

    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

/// A running broker.
pub struct BrokerNode {
    pub addr: String,
    pub name: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    dir: tempfile::TempDir,
}

/// Broker settings for tests: small files, 1 s delay levels.
pub fn broker_config(dir: &Path, namesrv: &str, name: &str, port: u16) -> BrokerConfig {
    let mut config = BrokerConfig::with_store_dir(dir);
    config.apply("namesrvAddr", namesrv).unwrap();
    config.apply("brokerName", name).unwrap();
    config.apply("brokerIP1", "127.0.0.1").unwrap();
    config.apply("listenPort", &port.to_string()).unwrap();
    config.apply("mappedFileSizeCommitLog", &(16 * 1024 * 1024).to_string()).unwrap();
    config.apply("mappedFileSizeConsumeQueue", "60000").unwrap();
    config.apply("messageDelayLevel", &["1s"; 18].join(" ")).unwrap();
    config
}

impl BrokerNode {
    pub async fn start(namesrv: &str, name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = broker_config(dir.path(), namesrv, name, port);
        let addr = config.broker_addr().to_string();
        let broker = Broker::open(config).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            ferromq_broker::run(broker, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { addr, name: name.to_owned(), stop: Some(stop), task: Some(task), dir }
    }

    /// Stops the broker (it unregisters from the name server and closes connections).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task).await.unwrap().unwrap();
        }
    }
}

/// A name server and brokers `broker-a`, `broker-b`, ….
pub struct Cluster {
    pub namesrv: Namesrv,
    pub brokers: Vec<BrokerNode>,
}

impl Cluster {
    pub async fn start(broker_count: usize) -> Self {
        let namesrv = Namesrv::start().await;
        let mut brokers = Vec::new();
        for index in 0..broker_count {
            let name = format!("broker-{}", (b'a' + u8::try_from(index).unwrap()) as char);
            brokers.push(BrokerNode::start(&namesrv.addr, &name).await);
        }
        let cluster = Self { namesrv, brokers };
        cluster.wait_registered(broker_count).await;
        cluster
    }

    /// Client settings with fast timers.
    pub fn client(&self) -> ClientConfig {
        fast_client(&self.namesrv.addr)
    }

    pub fn admin(&self) -> Admin {
        Admin::new(self.client()).unwrap()
    }

    async fn wait_registered(&self, broker_count: usize) {
        let admin = self.admin();
        wait_until(Duration::from_secs(10), "brokers registered", || {
            let admin = admin.clone();
            async move {
                admin.cluster_info().await.is_ok_and(|info| {
                    info.cluster_addr_table
                        .get(CLUSTER)
                        .is_some_and(|names| names.len() == broker_count)
                })
            }
        })
        .await;
        admin.shutdown();
    }

    /// Creates `topic` with `queues` read and write queues on every broker and waits until
    /// the name server's route shows all of them.
    pub async fn create_topic(&self, topic: &str, queues: i32) {
        let admin = self.admin();
        admin
            .create_topic(
                &TopicTarget::Cluster(CLUSTER.into()),
                &topic_config(topic, queues, queues),
            )
            .await
            .unwrap();
        let brokers = self.brokers.iter().filter(|b| b.task.is_some()).count();
        wait_until(Duration::from_secs(10), "topic route", || {
            let admin = admin.clone();
            async move {
                admin.topic_route(topic).await.is_ok_and(|route| {
                    route.queue_datas.len() == brokers
                        && route.queue_datas.iter().all(|q| q.write_queue_nums == queues)
                })
            }
        })
        .await;
        admin.shutdown();
    }
}

/// Client settings for tests: route refresh 1 s, heartbeat 1 s, offset commits every
/// 200 ms, rebalance every 1 s.
pub fn fast_client(namesrv: &str) -> ClientConfig {
    ClientConfig {
        poll_name_server_interval: Duration::from_secs(1),
        heartbeat_broker_interval: Duration::from_secs(1),
        persist_consumer_offset_interval: Duration::from_millis(200),
        rebalance_interval: Duration::from_secs(1),
        pull_time_delay_when_exception: Duration::from_millis(200),
        ..ClientConfig::with_namesrv(namesrv)
    }
}

/// Polls `check` every 50 ms until it is true; panics after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Logs to stderr when `RUST_LOG` is set (e.g. `RUST_LOG=ferromq_client=debug`).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
