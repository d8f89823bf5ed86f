//! Helpers shared by the integration tests: a name server on `127.0.0.1:0` with its files in
//! a temporary directory, a client, and builders for the requests brokers and admins send.
#![cfg(test)]
#![allow(dead_code, reason = "each test file uses a different subset of these helpers")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ferromq_message::hash::rocketmq_crc32;
use ferromq_namesrv::NamesrvConfig;
use ferromq_remoting::bodies::{
    DataVersion, JsonBody, RegisterBrokerBody, TopicConfig, TopicConfigSerializeWrapper,
    TopicRouteData,
};
use ferromq_remoting::headers::{GetRouteInfoRequestHeader, RegisterBrokerRequestHeader};
use ferromq_remoting::transport::RemotingClient;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const CLUSTER: &str = "DefaultCluster";
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A running name server.
pub struct Namesrv {
    pub addr: String,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Namesrv {
    pub fn kv_path(&self) -> PathBuf {
        self.dir.path().join("kvConfig.json")
    }

    /// Stops it and waits until it has returned.
    pub async fn stop(mut self) -> tempfile::TempDir {
        // A send error only means the server already returned; `done` tells how.
        if let Some(stop) = self.stop.take()
            && stop.send(()).is_err()
        {
            eprintln!("name server had stopped before it was asked to");
        }
        tokio::time::timeout(Duration::from_secs(20), &mut self.done)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        self.dir
    }
}

/// The config tests start from: files in `dir`, everything else default.
pub fn test_config(dir: &std::path::Path) -> NamesrvConfig {
    NamesrvConfig {
        kv_config_path: dir.join("kvConfig.json"),
        config_store_path: dir.join("namesrv.properties"),
        ..NamesrvConfig::default()
    }
}

/// Starts a name server with files in a fresh temporary directory.
pub async fn start() -> Namesrv {
    start_with(|_| {}).await
}

/// Starts a name server after `adjust` has changed the test config.
pub async fn start_with(adjust: impl FnOnce(&mut NamesrvConfig)) -> Namesrv {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    adjust(&mut config);
    start_in(dir, config).await
}

/// Starts a name server with `config`, owning `dir`.
pub async fn start_in(dir: tempfile::TempDir, config: NamesrvConfig) -> Namesrv {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(ferromq_namesrv::run(listener, config, async {
        drop(stopped.await);
    }));
    Namesrv { addr, dir, stop: Some(stop), done }
}

/// Sends `request` and returns the response.
pub async fn call(
    client: &RemotingClient,
    addr: &str,
    request: RemotingCommand,
) -> RemotingCommand {
    let response = client.invoke(addr, request, TIMEOUT).await.unwrap();
    assert!(response.is_response());
    response
}

pub fn topic(name: &str, queues: i32) -> TopicConfig {
    TopicConfig {
        topic_name: name.to_owned(),
        read_queue_nums: queues,
        write_queue_nums: queues,
        ..TopicConfig::default()
    }
}

/// One broker instance as it registers.
#[derive(Clone, Debug)]
pub struct Broker {
    pub cluster: String,
    pub name: String,
    pub id: i64,
    pub addr: String,
    pub ha_addr: String,
    pub topics: Vec<TopicConfig>,
    pub data_version: DataVersion,
    pub heartbeat_timeout_ms: Option<i64>,
}

impl Broker {
    pub fn new(name: &str, id: i64, addr: &str, topics: &[TopicConfig]) -> Self {
        Self {
            cluster: CLUSTER.to_owned(),
            name: name.to_owned(),
            id,
            addr: addr.to_owned(),
            ha_addr: addr.replace(":10911", ":10912"),
            topics: topics.to_vec(),
            data_version: DataVersion {
                counter: 1,
                state_version: 0,
                timestamp: 1_700_000_000_000,
            },
            heartbeat_timeout_ms: None,
        }
    }

    pub fn body(&self) -> RegisterBrokerBody {
        RegisterBrokerBody {
            topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
                topic_config_table: self
                    .topics
                    .iter()
                    .map(|topic| (topic.topic_name.clone(), topic.clone()))
                    .collect::<BTreeMap<_, _>>(),
                data_version: self.data_version,
                ..TopicConfigSerializeWrapper::default()
            },
            filter_server_list: Vec::new(),
        }
    }

    pub fn header(&self, body: &[u8], compressed: bool) -> RegisterBrokerRequestHeader {
        RegisterBrokerRequestHeader {
            broker_name: self.name.clone(),
            broker_addr: self.addr.clone(),
            cluster_name: self.cluster.clone(),
            ha_server_addr: self.ha_addr.clone(),
            broker_id: self.id,
            heartbeat_timeout_millis: self.heartbeat_timeout_ms,
            enable_acting_master: Some(false),
            compressed: Some(compressed),
            body_crc32: Some(rocketmq_crc32(body)),
        }
    }

    /// REGISTER_BROKER as a Java 5.x broker sends it (uncompressed, with the body CRC).
    pub fn register_request(&self) -> RemotingCommand {
        let body = self.body().encode();
        RemotingCommand::request(RequestCode::REGISTER_BROKER.code())
            .with_header(&self.header(&body, false))
            .with_body(body)
    }

    /// Registers and asserts SUCCESS.
    pub async fn register(&self, client: &RemotingClient, namesrv: &str) -> RemotingCommand {
        let response = call(client, namesrv, self.register_request()).await;
        assert_eq!(response.code, ResponseCode::SUCCESS.code(), "{:?}", response.remark);
        response
    }
}

/// GET_ROUTEINFO_BY_TOPIC with the given request version.
pub fn route_request(topic: &str, version: i32) -> RemotingCommand {
    let header =
        GetRouteInfoRequestHeader { topic: topic.to_owned(), accept_standard_json_only: None };
    let mut request =
        RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC.code()).with_header(&header);
    request.version = version;
    request
}

/// The route of `topic`, or `None` on TOPIC_NOT_EXIST.
pub async fn route(client: &RemotingClient, namesrv: &str, topic: &str) -> Option<TopicRouteData> {
    let response = call(client, namesrv, route_request(topic, 479)).await;
    if response.code == ResponseCode::TOPIC_NOT_EXIST.code() {
        return None;
    }
    assert_eq!(response.code, ResponseCode::SUCCESS.code(), "{:?}", response.remark);
    Some(TopicRouteData::decode(&response.body).unwrap())
}

/// Polls `route` until `done` holds for its result, for up to 5 s.
pub async fn wait_for_route(
    client: &RemotingClient,
    namesrv: &str,
    topic: &str,
    done: impl Fn(&Option<TopicRouteData>) -> bool,
) -> Option<TopicRouteData> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let current = route(client, namesrv, topic).await;
        if done(&current) || tokio::time::Instant::now() > deadline {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}
