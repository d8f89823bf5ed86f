//! `ClientInstance` (Java `MQClientInstance`): one client id's connections, route cache,
//! broker address table, heartbeats and timers (client.md §2).
//!
//! Every producer, consumer and admin client owns one instance. The instance refreshes the
//! routes of the topics its owner uses every `poll_name_server_interval`, drops brokers no
//! route mentions and heartbeats the rest every `heartbeat_broker_interval`, and serves the
//! requests brokers push (NOTIFY_CONSUMER_IDS_CHANGED wakes the rebalance).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ferromq_remoting::bodies::{
    ConsumerData, HeartbeatData, JsonBody, MessageQueue, ProducerData, TopicRouteData,
};
use ferromq_remoting::headers::{GetRouteInfoRequestHeader, UnregisterClientRequestHeader};
use ferromq_remoting::transport::{
    Connection, Handler, RemotingClient, Reply, TransportConfig, TransportError,
};
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{CLIENT_VERSION, ClientConfig};
use crate::error::{Error, Result};
use crate::route::{self, MASTER_ID, TopicPublishInfo};

/// The producer group every Java client instance registers for its internal producer; it
/// appears in heartbeats, so brokers list every client under it (client.md §2.2).
pub const CLIENT_INNER_PRODUCER_GROUP: &str = "CLIENT_INNER_PRODUCER";

/// A consumer registered with an instance: what heartbeats say about it and which topics'
/// routes it needs.
pub(crate) trait MemberConsumer: Send + Sync {
    /// The consumer's heartbeat entry.
    fn consumer_data(&self) -> ConsumerData;
    /// Topics whose routes the consumer needs refreshed.
    fn topics(&self) -> Vec<String>;
}

/// A topic's cached route with its derived publish and subscribe views.
#[derive(Debug)]
pub(crate) struct CachedRoute {
    pub(crate) route: TopicRouteData,
    pub(crate) publish: Arc<TopicPublishInfo>,
    pub(crate) subscribe: BTreeSet<MessageQueue>,
}

/// Requests pushed by brokers, served on every connection of the instance.
#[derive(Debug, Clone)]
pub(crate) struct PushHandler {
    rebalance: Arc<watch::Sender<u64>>,
}

impl Handler for PushHandler {
    async fn handle(&self, _connection: Connection, request: RemotingCommand) -> Option<Reply> {
        match RequestCode(request.code) {
            RequestCode::NOTIFY_CONSUMER_IDS_CHANGED => {
                tracing::debug!(group = ?request.ext_field("consumerGroup"), "consumer ids changed");
                self.rebalance.send_modify(|epoch| *epoch = epoch.wrapping_add(1));
                None
            }
            _ if request.is_oneway() => None,
            _ => Some(Reply::code_not_supported(&request)),
        }
    }
}

/// One client id's shared machinery.
pub(crate) struct ClientInstance {
    pub(crate) config: ClientConfig,
    pub(crate) client_id: String,
    remoting: Arc<RemotingClient<PushHandler>>,
    namesrv: NameServers,
    routes: RwLock<HashMap<String, Arc<CachedRoute>>>,
    /// Broker name → broker id → address.
    broker_addrs: RwLock<HashMap<String, BTreeMap<i64, String>>>,
    /// Topics whose routes are refreshed periodically.
    topics: Mutex<BTreeSet<String>>,
    producer_groups: Mutex<BTreeSet<String>>,
    consumers: Mutex<Vec<Weak<dyn MemberConsumer>>>,
    rebalance: Arc<watch::Sender<u64>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    heartbeat_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ClientInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientInstance").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

impl ClientInstance {
    /// A new, not yet started instance.
    pub(crate) fn new(config: ClientConfig) -> Arc<Self> {
        let (rebalance, _) = watch::channel(0_u64);
        let rebalance = Arc::new(rebalance);
        let transport = TransportConfig {
            connect_timeout: config.connect_timeout,
            ..TransportConfig::default()
        };
        let remoting =
            Arc::new(RemotingClient::new(PushHandler { rebalance: rebalance.clone() }, transport));
        let (stop, _) = watch::channel(false);
        Arc::new(Self {
            client_id: config.client_id(),
            namesrv: NameServers::new(config.namesrv_addr.clone()),
            config,
            remoting,
            routes: RwLock::new(HashMap::new()),
            broker_addrs: RwLock::new(HashMap::new()),
            topics: Mutex::new(BTreeSet::new()),
            producer_groups: Mutex::new(BTreeSet::new()),
            consumers: Mutex::new(Vec::new()),
            rebalance,
            stop,
            tasks: Mutex::new(Vec::new()),
            heartbeat_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Starts the route-refresh and heartbeat timers (client.md §2.4).
    pub(crate) fn start(self: &Arc<Self>) {
        let refresh = self.config.poll_name_server_interval;
        let heartbeat = self.config.heartbeat_broker_interval;
        let routes =
            self.spawn_periodic(Duration::from_millis(10), refresh, |instance| async move {
                instance.refresh_all_routes().await;
            });
        let beats = self.spawn_periodic(
            Duration::from_secs(1).min(heartbeat),
            heartbeat,
            |instance| async move {
                instance.clean_offline_brokers();
                instance.send_heartbeat_to_all().await;
            },
        );
        self.tasks.lock().extend([routes, beats]);
    }

    /// Runs `work` after `first`, then every `period`, until the instance stops. The task
    /// holds only a weak reference, so a dropped instance ends it.
    pub(crate) fn spawn_periodic<F, Fut>(
        self: &Arc<Self>,
        first: Duration,
        period: Duration,
        work: F,
    ) -> JoinHandle<()>
    where
        F: Fn(Arc<Self>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let weak = Arc::downgrade(self);
        let mut stop = self.stop.subscribe();
        tokio::spawn(async move {
            let mut delay = first;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|stop| *stop) => return,
                }
                let Some(instance) = weak.upgrade() else { return };
                work(instance).await;
                delay = period;
            }
        })
    }

    /// Keeps `task` to abort at shutdown.
    pub(crate) fn keep_task(&self, task: JoinHandle<()>) {
        self.tasks.lock().push(task);
    }

    /// A receiver of rebalance wake-ups (NOTIFY_CONSUMER_IDS_CHANGED).
    pub(crate) fn rebalance_signal(&self) -> watch::Receiver<u64> {
        self.rebalance.subscribe()
    }

    /// Wakes every rebalance loop of this instance.
    pub(crate) fn wake_rebalance(&self) {
        self.rebalance.send_modify(|epoch| *epoch = epoch.wrapping_add(1));
    }

    /// Stops timers and closes every connection.
    pub(crate) fn shutdown(&self) {
        self.stop.send_replace(true);
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
        self.remoting.close_all();
    }

    // ----- registration -----

    pub(crate) fn register_producer(&self, group: &str) {
        self.producer_groups.lock().insert(group.to_owned());
    }

    pub(crate) fn register_consumer(&self, consumer: Weak<dyn MemberConsumer>) {
        self.consumers.lock().push(consumer);
    }

    /// Adds `topic` to the periodically refreshed set.
    pub(crate) fn add_topic(&self, topic: &str) {
        let mut topics = self.topics.lock();
        if !topics.contains(topic) {
            topics.insert(topic.to_owned());
        }
    }

    fn live_consumers(&self) -> Vec<Arc<dyn MemberConsumer>> {
        let mut consumers = self.consumers.lock();
        consumers.retain(|consumer| consumer.strong_count() > 0);
        consumers.iter().filter_map(Weak::upgrade).collect()
    }

    // ----- requests -----

    /// A request with this client's version and header serialization.
    pub(crate) fn request(&self, code: RequestCode) -> RemotingCommand {
        let mut request = RemotingCommand::request(code.code());
        request.version = CLIENT_VERSION;
        request.serialize_type = self.config.serialize_type;
        request
    }

    /// Sends `request` to `addr` and waits up to `timeout` for the response (Java
    /// `invokeSync`). A timeout closes the connection, as Java's `closeSocketIfTimeout`
    /// does, so a peer that vanished without closing is re-dialled next time.
    pub(crate) async fn invoke(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        match self.remoting.invoke(addr, request, timeout).await {
            Ok(response) => Ok(response),
            Err(error) => {
                if matches!(error, TransportError::Timeout { .. }) {
                    tracing::debug!(%addr, "request timed out; closing the connection");
                    self.remoting.close(addr);
                }
                Err(error.into())
            }
        }
    }

    /// [`ClientInstance::invoke`] without closing on timeout (Java `invokeAsync`: pulls and
    /// async sends, many of which share a connection).
    pub(crate) async fn invoke_async(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        Ok(self.remoting.invoke(addr, request, timeout).await?)
    }

    /// Sends `request` to `addr` as oneway.
    pub(crate) async fn invoke_oneway(&self, addr: &str, request: RemotingCommand) -> Result<()> {
        Ok(self.remoting.invoke_oneway(addr, request).await?)
    }

    /// Sends `request` to `addr` and checks for `SUCCESS`.
    pub(crate) async fn invoke_ok(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        let response = self.invoke(addr, request, timeout).await?;
        if response.code == ResponseCode::SUCCESS.code() {
            Ok(response)
        } else {
            Err(Error::broker(addr, response.code, response.remark))
        }
    }

    /// Sends `request` to the chosen name server, failing over to the next ones (client.md
    /// §2.3). A name server whose request timed out has its connection closed, as Java's
    /// `closeSocketIfTimeout` does.
    pub(crate) async fn invoke_namesrv(
        &self,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<(String, RemotingCommand)> {
        let candidates = self.namesrv.candidates();
        if candidates.is_empty() {
            return Err(Error::NoNameServer);
        }
        let mut last = None;
        for addr in candidates {
            match self.remoting.invoke(&addr, request.clone(), timeout).await {
                Ok(response) => {
                    self.namesrv.choose(&addr);
                    return Ok((addr, response));
                }
                Err(error) => {
                    tracing::debug!(namesrv = %addr, %error, "name server request failed");
                    if matches!(error, TransportError::Timeout { .. }) {
                        self.remoting.close(&addr);
                    }
                    self.namesrv.forget(&addr);
                    last = Some(error);
                }
            }
        }
        Err(last.map_or(Error::NoNameServer, Error::Transport))
    }

    /// Every configured name server address.
    pub(crate) fn namesrv_addrs(&self) -> &[String] {
        &self.namesrv.addrs
    }

    // ----- routes -----

    /// Asks a name server for `topic`'s route; `None` when the topic does not exist.
    pub(crate) async fn fetch_route(&self, topic: &str) -> Result<Option<TopicRouteData>> {
        let header = GetRouteInfoRequestHeader { topic: topic.to_owned(), ..Default::default() };
        let request = self.request(RequestCode::GET_ROUTEINFO_BY_TOPIC).with_header(&header);
        let (addr, response) =
            self.invoke_namesrv(request, self.config.mq_client_api_timeout).await?;
        match ResponseCode(response.code) {
            ResponseCode::SUCCESS => TopicRouteData::decode(&response.body)
                .map(Some)
                .map_err(|error| Error::decode("TopicRouteData", error)),
            ResponseCode::TOPIC_NOT_EXIST => Ok(None),
            _ => Err(Error::broker(&addr, response.code, response.remark)),
        }
    }

    /// Refreshes `topic`'s route (Java `updateTopicRouteInfoFromNameServer`); true when
    /// the cached route changed. A topic the name server does not know keeps its cached
    /// route (which may be the TBW102 fallback).
    pub(crate) async fn update_route(&self, topic: &str) -> Result<bool> {
        match self.fetch_route(topic).await? {
            Some(route) => Ok(self.install_route(topic, route)),
            None => Ok(false),
        }
    }

    /// Caches `route` for `topic` (and its brokers' addresses); true when it changed.
    pub(crate) fn install_route(&self, topic: &str, route: TopicRouteData) -> bool {
        if let Some(cached) = self.routes.read().get(topic)
            && route::same_route(&cached.route, &route)
        {
            return false;
        }
        {
            let mut addrs = self.broker_addrs.write();
            for (name, members) in route::broker_addr_entries(&route) {
                addrs.insert(name, members);
            }
        }
        let cached = CachedRoute {
            publish: Arc::new(TopicPublishInfo::from_route(topic, &route)),
            subscribe: route::subscribe_queues(topic, &route),
            route,
        };
        self.routes.write().insert(topic.to_owned(), Arc::new(cached));
        tracing::debug!(topic, "route changed");
        true
    }

    /// The cached route of `topic`.
    pub(crate) fn cached_route(&self, topic: &str) -> Option<Arc<CachedRoute>> {
        self.routes.read().get(topic).cloned()
    }

    /// Refreshes every registered topic's route; errors are logged.
    pub(crate) async fn refresh_all_routes(&self) {
        let mut topics: BTreeSet<String> = self.topics.lock().clone();
        for consumer in self.live_consumers() {
            topics.extend(consumer.topics());
        }
        for topic in topics {
            if let Err(error) = self.update_route(&topic).await {
                tracing::debug!(topic, %error, "route refresh failed; keeping the cached route");
            }
        }
    }

    /// Publish info for `topic` (client.md §3.3): cached, else refreshed, else built from
    /// the template topic's route.
    pub(crate) async fn find_publish_info(
        &self,
        topic: &str,
        template_topic: &str,
        default_queue_nums: i32,
    ) -> Result<Arc<TopicPublishInfo>> {
        self.add_topic(topic);
        if let Some(cached) = self.cached_route(topic)
            && cached.publish.ok()
        {
            return Ok(cached.publish.clone());
        }
        let refreshed = self.update_route(topic).await;
        if let Some(cached) = self.cached_route(topic)
            && cached.publish.ok()
        {
            return Ok(cached.publish.clone());
        }
        match self.fetch_route(template_topic).await {
            Ok(Some(template)) => {
                let route = route::fallback_route(&template, default_queue_nums);
                self.install_route(topic, route);
                match self.cached_route(topic) {
                    Some(cached) if cached.publish.ok() => Ok(cached.publish.clone()),
                    _ => Err(Error::NoRoute { topic: topic.to_owned() }),
                }
            }
            Ok(None) => Err(Error::NoRoute { topic: topic.to_owned() }),
            Err(Error::NoNameServer) => Err(Error::NoNameServer),
            Err(error) => {
                tracing::debug!(topic, %error, refreshed = ?refreshed.err(), "no route");
                Err(Error::NoRoute { topic: topic.to_owned() })
            }
        }
    }

    /// Subscribe queues of `topic`, refreshing the route once if none is cached.
    pub(crate) async fn subscribe_queues(&self, topic: &str) -> Option<BTreeSet<MessageQueue>> {
        if let Some(cached) = self.cached_route(topic) {
            return Some(cached.subscribe.clone());
        }
        if let Err(error) = self.update_route(topic).await {
            tracing::debug!(topic, %error, "route lookup failed");
        }
        self.cached_route(topic).map(|cached| cached.subscribe.clone())
    }

    /// The master address of `broker_name` (Java `findBrokerAddressInPublish`).
    pub(crate) fn master_addr(&self, broker_name: &str) -> Option<String> {
        self.broker_addrs.read().get(broker_name)?.get(&MASTER_ID).cloned()
    }

    /// The address of `broker_id` in `broker_name`, or a stand-in (client.md §2.5
    /// `findBrokerAddressInSubscribe`); with the chosen id.
    pub(crate) fn subscribe_addr(
        &self,
        broker_name: &str,
        broker_id: i64,
        only_this_broker: bool,
    ) -> Option<(String, i64)> {
        let addrs = self.broker_addrs.read();
        let members = addrs.get(broker_name)?;
        if let Some(addr) = members.get(&broker_id) {
            return Some((addr.clone(), broker_id));
        }
        if broker_id != MASTER_ID
            && let Some(addr) = members.get(&(broker_id + 1))
        {
            return Some((addr.clone(), broker_id + 1));
        }
        if only_this_broker {
            return None;
        }
        members.iter().next().map(|(id, addr)| (addr.clone(), *id))
    }

    /// The master address of `broker_name`, refreshing `topic`'s route once if it is
    /// unknown; else any member of the group.
    pub(crate) async fn master_addr_or_refresh(
        &self,
        broker_name: &str,
        topic: &str,
    ) -> Option<String> {
        if let Some(addr) = self.master_addr(broker_name) {
            return Some(addr);
        }
        if let Err(error) = self.update_route(topic).await {
            tracing::debug!(topic, %error, "route refresh failed");
        }
        self.master_addr(broker_name)
            .or_else(|| self.subscribe_addr(broker_name, MASTER_ID, false).map(|(addr, _)| addr))
    }

    /// A random broker of `topic`'s cached route: its master, else a random member (Java
    /// `findBrokerAddrByTopic`).
    pub(crate) fn any_broker_of_topic(&self, topic: &str) -> Option<String> {
        let cached = self.cached_route(topic)?;
        let brokers = &cached.route.broker_datas;
        let broker = brokers.get(crate::util::random_index(brokers.len()))?;
        if let Some(addr) = broker.broker_addrs.get(&MASTER_ID) {
            return Some(addr.clone());
        }
        let members: Vec<&String> = broker.broker_addrs.values().collect();
        members.get(crate::util::random_index(members.len())).map(|addr| (*addr).clone())
    }

    /// Every (broker name, id, address) in the address table.
    pub(crate) fn all_broker_addrs(&self) -> Vec<(String, i64, String)> {
        let addrs = self.broker_addrs.read();
        let mut all = Vec::new();
        for (name, members) in addrs.iter() {
            for (id, addr) in members {
                all.push((name.clone(), *id, addr.clone()));
            }
        }
        all.sort();
        all
    }

    /// Removes addresses no cached route mentions (client.md §2.5 "offline brokers").
    pub(crate) fn clean_offline_brokers(&self) {
        let mut live: BTreeSet<String> = BTreeSet::new();
        for cached in self.routes.read().values() {
            for broker in &cached.route.broker_datas {
                live.extend(broker.broker_addrs.values().cloned());
            }
        }
        let mut addrs = self.broker_addrs.write();
        for members in addrs.values_mut() {
            members.retain(|_, addr| live.contains(addr));
        }
        addrs.retain(|_, members| !members.is_empty());
    }

    // ----- heartbeats -----

    fn heartbeat_data(&self) -> HeartbeatData {
        let mut producer_data_set: Vec<ProducerData> = self
            .producer_groups
            .lock()
            .iter()
            .map(|group| ProducerData { group_name: group.clone() })
            .collect();
        let consumer_data_set: Vec<ConsumerData> =
            self.live_consumers().iter().map(|consumer| consumer.consumer_data()).collect();
        if !producer_data_set.is_empty() || !consumer_data_set.is_empty() {
            producer_data_set
                .push(ProducerData { group_name: CLIENT_INNER_PRODUCER_GROUP.to_owned() });
        }
        HeartbeatData {
            client_id: self.client_id.clone(),
            producer_data_set,
            consumer_data_set,
            heartbeat_fingerprint: 0,
            without_sub: false,
        }
    }

    /// Heartbeats every broker (client.md §2.6): all members when there are consumers, only
    /// masters otherwise. Failures are logged.
    pub(crate) async fn send_heartbeat_to_all(&self) {
        let _serialised = self.heartbeat_lock.lock().await;
        let data = self.heartbeat_data();
        if data.producer_data_set.is_empty() && data.consumer_data_set.is_empty() {
            return;
        }
        let with_slaves = !data.consumer_data_set.is_empty();
        let body = bytes::Bytes::from(data.encode());
        let timeout = self.config.mq_client_api_timeout;
        let mut beats = tokio::task::JoinSet::new();
        for (name, id, addr) in self.all_broker_addrs() {
            if id != MASTER_ID && !with_slaves {
                continue;
            }
            let request = self.request(RequestCode::HEART_BEAT).with_body(body.clone());
            let remoting = self.remoting.clone();
            beats.spawn(async move {
                match remoting.invoke(&addr, request, timeout).await {
                    Ok(response) if response.code == ResponseCode::SUCCESS.code() => {}
                    Ok(response) => tracing::warn!(
                        broker = %name, %addr, code = response.code, remark = ?response.remark,
                        "heartbeat refused"
                    ),
                    Err(error) => {
                        tracing::debug!(broker = %name, %addr, %error, "heartbeat failed");
                        if matches!(error, TransportError::Timeout { .. }) {
                            remoting.close(&addr);
                        }
                    }
                }
            });
        }
        while beats.join_next().await.is_some() {}
    }

    /// UNREGISTER_CLIENT for a producer or consumer group to every known broker (client.md
    /// §2.7); errors are ignored.
    pub(crate) async fn unregister(
        &self,
        producer_group: Option<&str>,
        consumer_group: Option<&str>,
    ) {
        let header = UnregisterClientRequestHeader {
            client_id: self.client_id.clone(),
            producer_group: producer_group.map(str::to_owned),
            consumer_group: consumer_group.map(str::to_owned),
        };
        let timeout = self.config.mq_client_api_timeout;
        let mut calls = tokio::task::JoinSet::new();
        for (_, _, addr) in self.all_broker_addrs() {
            let request = self.request(RequestCode::UNREGISTER_CLIENT).with_header(&header);
            let remoting = self.remoting.clone();
            calls.spawn(async move {
                if let Err(error) = remoting.invoke(&addr, request, timeout).await {
                    tracing::debug!(%addr, %error, "unregister failed");
                }
            });
        }
        while calls.join_next().await.is_some() {}
    }
}

/// The name server list and the one in use (client.md §2.3).
#[derive(Debug)]
struct NameServers {
    /// Shuffled once, as Java shuffles a new list.
    addrs: Vec<String>,
    chosen: Mutex<Option<String>>,
    index: AtomicUsize,
}

impl NameServers {
    fn new(mut addrs: Vec<String>) -> Self {
        crate::util::shuffle(&mut addrs);
        let start = crate::util::random_index(999);
        Self { addrs, chosen: Mutex::new(None), index: AtomicUsize::new(start) }
    }

    /// The chosen address first (if any), then every other one starting after the rotating
    /// index.
    fn candidates(&self) -> Vec<String> {
        let len = self.addrs.len();
        if len == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(len);
        if let Some(chosen) = self.chosen.lock().clone() {
            out.push(chosen);
        }
        let start = self.index.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        for step in 0..len {
            let addr = &self.addrs[(start + step) % len];
            if !out.contains(addr) {
                out.push(addr.clone());
            }
        }
        out
    }

    fn choose(&self, addr: &str) {
        let mut chosen = self.chosen.lock();
        if chosen.as_deref() != Some(addr) {
            *chosen = Some(addr.to_owned());
        }
    }

    fn forget(&self, addr: &str) {
        let mut chosen = self.chosen.lock();
        if chosen.as_deref() == Some(addr) {
            *chosen = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_server_candidates_start_with_the_chosen_one() {
        let servers = NameServers::new(vec!["a:1".into(), "b:1".into(), "c:1".into()]);
        let first = servers.candidates();
        assert_eq!(first.len(), 3);
        servers.choose("b:1");
        let next = servers.candidates();
        assert_eq!(next[0], "b:1");
        assert_eq!(next.len(), 3);
        servers.forget("b:1");
        assert_eq!(servers.candidates().len(), 3);
        assert!(NameServers::new(Vec::new()).candidates().is_empty());
    }

    #[tokio::test]
    async fn subscribe_addr_follows_java_fallbacks() {
        let instance = ClientInstance::new(ClientConfig::with_namesrv("127.0.0.1:1"));
        let route = TopicRouteData {
            broker_datas: vec![ferromq_remoting::bodies::BrokerData {
                cluster: "C".into(),
                broker_name: "b".into(),
                broker_addrs: [(0, "m:1".to_owned()), (2, "s2:1".to_owned())].into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(instance.install_route("T", route.clone()));
        assert!(!instance.install_route("T", route));
        assert_eq!(instance.subscribe_addr("b", 0, true), Some(("m:1".into(), 0)));
        assert_eq!(instance.subscribe_addr("b", 1, true), Some(("s2:1".into(), 2)));
        assert_eq!(instance.subscribe_addr("b", 5, true), None);
        assert_eq!(instance.subscribe_addr("b", 5, false), Some(("m:1".into(), 0)));
        assert_eq!(instance.master_addr("b").as_deref(), Some("m:1"));
        assert_eq!(instance.any_broker_of_topic("T").as_deref(), Some("m:1"));
        instance.shutdown();
    }
}
