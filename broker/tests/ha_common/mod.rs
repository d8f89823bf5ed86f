//! Shared by the `ha_*` tests: an in-process name server, brokers on loopback with a temp
//! store that restart in-process when HA asks (as `main.rs` does), and raw requests.
#![allow(dead_code, reason = "each test file uses a different part of the harness")]

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ferromq_broker::{Broker, BrokerConfig};
use ferromq_message::message::MessageExt;
use ferromq_message::record::decode_messages;
use ferromq_remoting::headers::{PullMessageRequestHeader, SendMessageRequestHeaderV2};
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

pub const TIMEOUT: Duration = Duration::from_secs(10);
pub const SEGMENT: i64 = 1 << 20;

/// A name server on `127.0.0.1:0`.
pub struct Namesrv {
    pub addr: String,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// Logs to the test's output (shown for failing tests), level from `RUST_LOG` or `warn`.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

impl Namesrv {
    pub async fn start() -> Self {
        init_logs();
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let config = ferromq_namesrv::NamesrvConfig {
            kv_config_path: dir.path().join("kvConfig.json"),
            config_store_path: dir.path().join("namesrv.properties"),
            ..Default::default()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            ferromq_namesrv::run(listener, config, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { addr, stop: Some(stop), done, _dir: dir }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.done.await;
    }
}

/// A broker config for the HA tests: 1 MiB CommitLog segments, quick HA timers.
pub fn config(dir: &Path, namesrv: &str, role: &str, id: i64) -> BrokerConfig {
    let mut config = BrokerConfig::with_store_dir(dir);
    config.apply("namesrvAddr", namesrv).unwrap();
    config.apply("brokerName", "broker-ha").unwrap();
    config.apply("brokerRole", role).unwrap();
    config.apply("brokerId", &id.to_string()).unwrap();
    config.apply("mappedFileSizeCommitLog", &SEGMENT.to_string()).unwrap();
    config.apply("mappedFileSizeConsumeQueue", "60000").unwrap();
    config.apply("haSendHeartbeatInterval", "200").unwrap();
    config.apply("haHousekeepingInterval", "3000").unwrap();
    config.apply("slaveTimeout", "2000").unwrap();
    config.store.prefault_segments = false;
    config
}

/// A free loopback port (bound and released: good enough for a test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A broker run in-process like `main.rs` runs one: opened again when it asks to (a slave's
/// cut, or new settings from UPDATE_BROKER_CONFIG).
pub struct RunningBroker {
    pub addr: String,
    pub ha_addr: String,
    current: watch::Receiver<Weak<Broker>>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<usize>,
}

impl RunningBroker {
    /// Starts a broker with `config` on fresh loopback ports.
    pub async fn start(config: BrokerConfig) -> Self {
        Self::start_on(config, free_port(), free_port()).await
    }

    /// Starts a broker on the given ports (a restart keeps a broker's addresses).
    pub async fn start_on(mut config: BrokerConfig, port: u16, ha_port: u16) -> Self {
        config.listen_port = port;
        config.ha_listen_port = ha_port;
        let addr = format!("127.0.0.1:{port}");
        let ha_addr = format!("127.0.0.1:{ha_port}");
        let (current_tx, current) = watch::channel(Weak::new());
        let (stop, mut stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            let mut opened = 0;
            loop {
                let broker = Broker::open(config.clone()).unwrap();
                opened += 1;
                config = broker.config.clone();
                if broker.config.is_master() {
                    // tokio's bind sets SO_REUSEADDR: a restart rebinds despite TIME_WAIT.
                    let ha = TcpListener::bind(("127.0.0.1", ha_port)).await.unwrap();
                    broker.ha.use_listener(ha.into_std().unwrap());
                }
                let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
                let restart = broker.ha.restart_handle();
                current_tx.send_replace(Arc::downgrade(&broker));
                let (stop_run, run_stopped) = oneshot::channel::<()>();
                let run = tokio::spawn(ferromq_broker::run(broker, listener, async {
                    let _ = run_stopped.await;
                }));
                tokio::pin!(run);
                let user_stop = tokio::select! {
                    result = &mut run => {
                        result.unwrap().unwrap();
                        false
                    }
                    _ = &mut stopped => true,
                };
                if user_stop {
                    let _ = stop_run.send(());
                    run.await.unwrap().unwrap();
                    return opened;
                }
                // Reopened as `main` does: with the settings an UPDATE_BROKER_CONFIG gave,
                // on the same ports.
                config = restart.next_config(&config).expect("run ended by itself");
            }
        });
        let running = Self { addr, ha_addr, current, stop: Some(stop), done };
        running.wait_open().await;
        running
    }

    async fn wait_open(&self) {
        let mut current = self.current.clone();
        let _ = tokio::time::timeout(TIMEOUT, current.wait_for(|b| b.upgrade().is_some())).await;
    }

    /// The broker now running (do not keep it across an await that may restart it).
    pub fn broker(&self) -> Arc<Broker> {
        self.current.borrow().upgrade().expect("the broker is running")
    }

    /// How many times it was opened so far is only known at stop; this waits until a
    /// broker other than `old` runs.
    pub async fn wait_restarted(&self, old: &Weak<Broker>) {
        let mut current = self.current.clone();
        let restarted = tokio::time::timeout(
            Duration::from_secs(30),
            current.wait_for(|b| !b.ptr_eq(old) && b.upgrade().is_some()),
        )
        .await;
        assert!(restarted.is_ok(), "the broker did not restart");
    }

    /// The broker now running, if it is not between two runs.
    pub fn try_broker(&self) -> Option<Arc<Broker>> {
        self.current.borrow().upgrade()
    }

    pub fn weak(&self) -> Weak<Broker> {
        self.current.borrow().clone()
    }

    /// Stops it cleanly; returns how many times it was opened.
    pub async fn stop(mut self) -> usize {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let opened = self.done.await.unwrap();
        // Let the last Arc<Broker> go (the store closes with it).
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while self.current.borrow().upgrade().is_some() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        opened
    }
}

pub fn send_request(topic: &str, queue_id: i32, body: &[u8], properties: &str) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2 {
        a: "PID_ha".into(),
        b: topic.into(),
        c: "TBW102".into(),
        d: 4,
        e: queue_id,
        f: 0,
        g: 1_700_000_000_000,
        h: 0,
        i: Some(format!("TAGS\u{1}t\u{2}KEYS\u{1}{}\u{2}{properties}", key_of(body))),
        j: Some(0),
        k: Some(false),
        l: None,
        m: None,
        n: None,
    };
    RemotingCommand::request(RequestCode::SEND_MESSAGE_V2.code())
        .with_header(&header)
        .with_body(body.to_vec())
}

/// A message's key: its body up to the first `.` (the padding of [`send_many`]).
pub fn key_of(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split('.').next().unwrap_or_default().to_owned()
}

pub fn pull_request(group: &str, topic: &str, queue_id: i32, offset: i64) -> RemotingCommand {
    let header = PullMessageRequestHeader {
        consumer_group: group.into(),
        topic: topic.into(),
        queue_id,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag: 0x4,
        commit_offset: 0,
        suspend_timeout_millis: 0,
        subscription: Some("*".into()),
        sub_version: 0,
        expression_type: Some("TAG".into()),
        max_msg_bytes: None,
        request_source: None,
        proxy_froward_client_id: None,
        broker_name: None,
    };
    RemotingCommand::request(RequestCode::PULL_MESSAGE.code()).with_header(&header)
}

pub async fn invoke(
    client: &RemotingClient,
    addr: &str,
    request: RemotingCommand,
) -> RemotingCommand {
    client.invoke(addr, request, TIMEOUT).await.unwrap()
}

/// Sends `count` messages `"{prefix}-{i}"` over 4 queues; every one must succeed.
pub async fn send_many(
    client: &RemotingClient,
    addr: &str,
    topic: &str,
    prefix: &str,
    count: usize,
    size: usize,
) {
    for i in 0..count {
        let mut body = format!("{prefix}-{i}").into_bytes();
        body.resize(size.max(body.len()), b'.');
        let response = invoke(client, addr, send_request(topic, (i % 4) as i32, &body, "")).await;
        assert_eq!(response.code, 0, "send {prefix}-{i}: {:?}", response.remark);
    }
}

/// Every message of `topic` queue `queue_id` from `from` on, pulled from `addr`.
pub async fn pull_all(
    client: &RemotingClient,
    addr: &str,
    group: &str,
    topic: &str,
    queue_id: i32,
    from: i64,
) -> Vec<MessageExt> {
    let mut all = Vec::new();
    let mut offset = from;
    loop {
        let response = invoke(client, addr, pull_request(group, topic, queue_id, offset)).await;
        if response.code != 0 {
            if all.is_empty() {
                eprintln!(
                    "pull {topic}/{queue_id}@{offset} from {addr}: {} {:?}",
                    response.code, response.remark
                );
            }
            return all;
        }
        let found = decode_messages(&response.body, true).unwrap();
        offset = response.ext_field_as::<i64>("nextBeginOffset").unwrap();
        all.extend(found);
    }
}

/// Polls `done` every 20 ms until it holds or `limit` passes.
pub async fn wait_until<F: Future<Output = bool>>(
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> F,
) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the slave's CommitLog ends where the master's does.
pub async fn wait_caught_up(master: &RunningBroker, slave: &RunningBroker) {
    wait_until(Duration::from_secs(20), "the slave caught up", || async {
        let (Some(master), Some(slave)) = (master.try_broker(), slave.try_broker()) else {
            return false; // restarting
        };
        let end = master.store.max_phy_offset();
        end > 0 && slave.store.max_phy_offset() == end
    })
    .await;
}

/// The CommitLog bytes `[from, to)` of a running broker's store.
pub fn commit_log_bytes(broker: &Broker, from: i64, to: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < to {
        let data = broker.store.commit_log_data(offset).unwrap().expect("data below the end");
        let take = data.len().min(usize::try_from(to - offset).unwrap());
        out.extend_from_slice(&data[..take]);
        offset += i64::try_from(take).unwrap();
    }
    out
}

/// The names of a stopped store's CommitLog segments, sorted.
pub fn segment_names(store_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store_dir.join("commitlog"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}
