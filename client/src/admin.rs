//! The admin client (Java `DefaultMQAdminExt` essentials, client.md §9, broker.md §13):
//! topics (create, update, delete, list, route, stats), clusters, broker settings (and the
//! manual master switch built on them), subscription groups, offsets, consumer connections
//! and lag, and message queries by key and id.
//!
//! ```no_run
//! use ferromq_client::{Admin, ClientConfig};
//! use ferromq_client::admin::TopicTarget;
//!
//! # async fn demo() -> ferromq_client::Result<()> {
//! let admin = Admin::new(ClientConfig::with_namesrv("127.0.0.1:9876"))?;
//! let config = ferromq_client::admin::topic_config("TopicTest", 8, 8);
//! admin.create_topic(&TopicTarget::Cluster("DefaultCluster".into()), &config).await?;
//! println!("{:?}", admin.topic_route("TopicTest").await?);
//! admin.shutdown();
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ferromq_message::record::{DecodeOptions, decode_messages_shared};
use ferromq_message::{MessageExt, msg_id};
pub use ferromq_remoting::bodies::{
    ClusterInfo, ConsumeStats, OffsetWrapper, SubscriptionGroupConfig, TopicConfig, TopicRouteData,
};
use ferromq_remoting::bodies::{
    JsonBody, KvTable, MessageQueue, SubscriptionData, SubscriptionGroupWrapper, TopicList,
};
use ferromq_remoting::headers::{
    CreateTopicRequestHeader, DeleteTopicFromNamesrvRequestHeader, DeleteTopicRequestHeader,
    QueryMessageRequestHeader, ViewMessageRequestHeader,
};
use ferromq_remoting::json::{self, Value};
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

use crate::broker_calls;
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::instance::ClientInstance;
use crate::route::{MASTER_ID, perm};

/// Default admin timeout (Java `DefaultMQAdminExt`: 5 s).
pub const DEFAULT_ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a topic or group change goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicTarget {
    /// Every master of the cluster (`mqadmin … -c`).
    Cluster(String),
    /// One broker address (`mqadmin … -b`).
    Broker(String),
}

/// A topic's configuration for [`Admin::create_topic`]: `read`/`write` queues, perm 6
/// (read and write), `SINGLE_TAG`.
pub fn topic_config(topic: &str, read_queue_nums: i32, write_queue_nums: i32) -> TopicConfig {
    TopicConfig {
        topic_name: topic.to_owned(),
        read_queue_nums,
        write_queue_nums,
        perm: perm::READ | perm::WRITE,
        topic_filter_type: "SINGLE_TAG".to_owned(),
        topic_sys_flag: 0,
        order: false,
        attributes: None,
    }
}

/// Offsets of one queue from GET_TOPIC_STATS_INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicOffset {
    /// First available offset.
    pub min_offset: i64,
    /// One past the last message.
    pub max_offset: i64,
    /// Store time of the last message, ms (0 when empty).
    pub last_update_timestamp: i64,
}

/// One client connection of a group (GET_CONSUMER_CONNECTION_LIST).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientConnection {
    /// Client id.
    pub client_id: String,
    /// Remote address as the broker sees it.
    pub client_addr: String,
    /// Client language.
    pub language: String,
    /// Client version ordinal.
    pub version: i64,
}

/// A consumer group's connections and subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerConnection {
    /// Connected clients.
    pub connections: Vec<ClientConnection>,
    /// `CONSUME_PASSIVELY` (push) or `CONSUME_ACTIVELY` (pull).
    pub consume_type: String,
    /// `CLUSTERING` or `BROADCASTING`.
    pub message_model: String,
    /// The group's `consumeFromWhere`.
    pub consume_from_where: String,
    /// Subscriptions by topic.
    pub subscriptions: BTreeMap<String, SubscriptionData>,
}

/// A merged GET_CONSUME_STATS answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupProgress {
    /// Per-queue broker and consumer offsets.
    pub stats: ConsumeStats,
}

impl GroupProgress {
    /// Total lag: Σ (broker offset − consumer offset) over the queues (Java
    /// `computeTotalDiff`).
    pub fn total_lag(&self) -> i64 {
        self.stats
            .offset_table
            .values()
            .map(|offsets| offsets.broker_offset - offsets.consumer_offset)
            .sum()
    }
}

/// What [`Admin::switch_master`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterSwitch {
    /// The broker group (`brokerName`).
    pub broker_name: String,
    /// The role the new master took: the old master's, `ASYNC_MASTER` or `SYNC_MASTER`.
    pub role: String,
    /// The `brokerId` the old master took: the new master's former id.
    pub old_master_id: i64,
    /// The old master's CommitLog end (bytes) just before it was demoted.
    pub old_master_offset: i64,
    /// The new master's CommitLog end (bytes) just before the switch. Under ASYNC_MASTER,
    /// bytes between this and `old_master_offset` are cut from the old master when it
    /// rejoins (if nothing was written meanwhile, the two are equal).
    pub new_master_offset: i64,
}

/// The admin client. Registers no groups; talks to name servers and brokers directly.
#[derive(Debug, Clone)]
pub struct Admin {
    instance: Arc<ClientInstance>,
    timeout: Duration,
}

impl Admin {
    /// An admin client over `client`'s name servers, with the 5 s default timeout.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`].
    pub fn new(client: ClientConfig) -> Result<Self> {
        client.validate()?;
        Ok(Self { instance: ClientInstance::new(client), timeout: DEFAULT_ADMIN_TIMEOUT })
    }

    /// Sets the timeout of each request.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Closes connections.
    pub fn shutdown(&self) {
        self.instance.shutdown();
    }

    async fn namesrv_ok(&self, request: RemotingCommand) -> Result<RemotingCommand> {
        let (addr, response) = self.instance.invoke_namesrv(request, self.timeout).await?;
        if response.code == ResponseCode::SUCCESS.code() {
            Ok(response)
        } else {
            Err(Error::broker(&addr, response.code, response.remark))
        }
    }

    // ----- clusters -----

    /// GET_BROKER_CLUSTER_INFO.
    ///
    /// # Errors
    ///
    /// Name-server errors, or a body that does not decode.
    pub async fn cluster_info(&self) -> Result<ClusterInfo> {
        let request = self.instance.request(RequestCode::GET_BROKER_CLUSTER_INFO);
        let response = self.namesrv_ok(request).await?;
        ClusterInfo::decode(&response.body).map_err(|error| Error::decode("ClusterInfo", error))
    }

    /// GET_BROKER_RUNTIME_INFO of one broker: its statistics table.
    ///
    /// # Errors
    ///
    /// Broker errors, or a body that does not decode.
    pub async fn broker_runtime_info(&self, addr: &str) -> Result<BTreeMap<String, String>> {
        let request = self.instance.request(RequestCode::GET_BROKER_RUNTIME_INFO);
        let response = self.instance.invoke_ok(addr, request, self.timeout).await?;
        KvTable::decode(&response.body)
            .map(|table| table.table)
            .map_err(|error| Error::decode("KVTable", error))
    }

    // ----- broker settings -----

    /// GET_BROKER_CONFIG of one broker: its settings, `key → value` (Java
    /// `getBrokerConfig`).
    ///
    /// # Errors
    ///
    /// Broker errors, or a body that is not UTF-8.
    pub async fn broker_config(&self, addr: &str) -> Result<BTreeMap<String, String>> {
        let request = self.instance.request(RequestCode::GET_BROKER_CONFIG);
        let response = self.instance.invoke_ok(addr, request, self.timeout).await?;
        let text = std::str::from_utf8(&response.body).map_err(|_| {
            Error::NotFound(format!("{addr} sent a broker config that is not UTF-8"))
        })?;
        Ok(parse_config_lines(text))
    }

    /// UPDATE_BROKER_CONFIG (Java `updateBrokerConfig`): sets `properties` on one broker.
    /// A ferromq broker checks every key and value first (all or nothing), writes them into
    /// its config file, answers, and then reopens itself in-process with them — as a master
    /// or a slave when `brokerRole`/`brokerId` change, which must then change together
    /// (a SLAVE needs `brokerId` ≥ 1, a master has 0). It is back within about a second;
    /// calls to it meanwhile fail to connect.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a key or value that cannot be sent as a properties
    /// line; the broker's refusal ([`Error::Broker`]: SYSTEM_ERROR naming the key,
    /// NO_PERMISSION for a black-listed one).
    pub async fn update_broker_config(
        &self,
        addr: &str,
        properties: &[(&str, &str)],
    ) -> Result<()> {
        let body = properties_text(properties)?;
        let request = self.instance.request(RequestCode::UPDATE_BROKER_CONFIG).with_body(body);
        self.instance.invoke_ok(addr, request, self.timeout).await?;
        Ok(())
    }

    /// Switches the master of a broker group by admin commands: waits (up to `catch_up`)
    /// until the slave at `new_master` has replicated what the master at `old_master` held
    /// when the call began, demotes the old master (`brokerRole=SLAVE`, the new master's
    /// `brokerId`), then promotes the slave (the old master's role, `brokerId=0`). The old
    /// master first stops taking writes, so the two never both do; it then follows the new
    /// master and cuts whatever the new one lacks (under ASYNC_MASTER, what was written after
    /// the catch-up point and not yet replicated; under SYNC_MASTER nothing that was
    /// acknowledged). Clients re-route through the name server.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the two are not master and slave of one group;
    /// [`Error::Timeout`] when the slave does not catch up in time (nothing was changed);
    /// [`Error::SwitchIncomplete`] when the old master was demoted but the promotion
    /// failed; broker and transport errors.
    pub async fn switch_master(
        &self,
        new_master: &str,
        old_master: &str,
        catch_up: Duration,
    ) -> Result<MasterSwitch> {
        let old = self.broker_config(old_master).await?;
        let new = self.broker_config(new_master).await?;
        let plan = switch_plan(&old, &new, old_master, new_master)?;
        let (old_offset, new_offset) =
            self.wait_caught_up(old_master, new_master, catch_up).await?;
        let old_id = plan.old_master_id.to_string();
        self.update_broker_config(old_master, &[("brokerRole", "SLAVE"), ("brokerId", &old_id)])
            .await?;
        let promoted = self
            .update_broker_config(new_master, &[("brokerRole", &plan.role), ("brokerId", "0")])
            .await;
        if let Err(source) = promoted {
            return Err(Error::SwitchIncomplete {
                demoted: old_master.to_owned(),
                promote: new_master.to_owned(),
                role: plan.role,
                source: Box::new(source),
            });
        }
        Ok(MasterSwitch { old_master_offset: old_offset, new_master_offset: new_offset, ..plan })
    }

    /// Waits until `slave`'s CommitLog reaches where `master`'s ended at the first look;
    /// returns the last (master, slave) ends seen.
    async fn wait_caught_up(
        &self,
        master: &str,
        slave: &str,
        limit: Duration,
    ) -> Result<(i64, i64)> {
        let started = std::time::Instant::now();
        let commit_log_end = |table: BTreeMap<String, String>| {
            table.get("commitLogMaxOffset").and_then(|value| value.parse::<i64>().ok()).unwrap_or(0)
        };
        let target = commit_log_end(self.broker_runtime_info(master).await?);
        loop {
            let slave_end = commit_log_end(self.broker_runtime_info(slave).await?);
            if slave_end >= target {
                let master_end = commit_log_end(self.broker_runtime_info(master).await?);
                return Ok((master_end, slave_end));
            }
            if started.elapsed() >= limit {
                return Err(Error::Timeout {
                    what: "the slave catching up with its master before the switch",
                    elapsed: started.elapsed(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The master addresses of `target`.
    async fn masters(&self, target: &TopicTarget) -> Result<Vec<String>> {
        match target {
            TopicTarget::Broker(addr) => Ok(vec![addr.clone()]),
            TopicTarget::Cluster(cluster) => {
                let info = self.cluster_info().await?;
                let names = info
                    .cluster_addr_table
                    .get(cluster)
                    .ok_or_else(|| Error::NotFound(format!("cluster {cluster} has no broker")))?;
                let masters: Vec<String> = names
                    .iter()
                    .filter_map(|name| {
                        info.broker_addr_table.get(name)?.broker_addrs.get(&MASTER_ID).cloned()
                    })
                    .collect();
                if masters.is_empty() {
                    return Err(Error::NotFound(format!("cluster {cluster} has no master")));
                }
                Ok(masters)
            }
        }
    }

    // ----- topics -----

    /// UPDATE_AND_CREATE_TOPIC on every master of `target`; returns the addresses updated.
    ///
    /// # Errors
    ///
    /// The first broker refusal, or cluster lookup errors.
    pub async fn create_topic(
        &self,
        target: &TopicTarget,
        config: &TopicConfig,
    ) -> Result<Vec<String>> {
        let header = CreateTopicRequestHeader {
            topic: config.topic_name.clone(),
            default_topic: crate::producer::DEFAULT_CREATE_TOPIC_KEY.to_owned(),
            read_queue_nums: config.read_queue_nums,
            write_queue_nums: config.write_queue_nums,
            perm: config.perm,
            topic_filter_type: config.topic_filter_type.clone(),
            topic_sys_flag: Some(config.topic_sys_flag),
            order: config.order,
            attributes: None,
            force: None,
        };
        let masters = self.masters(target).await?;
        for addr in &masters {
            let request =
                self.instance.request(RequestCode::UPDATE_AND_CREATE_TOPIC).with_header(&header);
            self.instance.invoke_ok(addr, request, self.timeout).await?;
        }
        Ok(masters)
    }

    /// DELETE_TOPIC_IN_BROKER on every master of `target`, then DELETE_TOPIC_IN_NAMESRV on
    /// every name server.
    ///
    /// # Errors
    ///
    /// The first refusal.
    pub async fn delete_topic(&self, target: &TopicTarget, topic: &str) -> Result<()> {
        let header = DeleteTopicRequestHeader { topic: topic.to_owned() };
        for addr in self.masters(target).await? {
            let request =
                self.instance.request(RequestCode::DELETE_TOPIC_IN_BROKER).with_header(&header);
            self.instance.invoke_ok(&addr, request, self.timeout).await?;
        }
        let cluster_name = match target {
            TopicTarget::Cluster(cluster) => Some(cluster.clone()),
            TopicTarget::Broker(_) => None,
        };
        let header = DeleteTopicFromNamesrvRequestHeader { topic: topic.to_owned(), cluster_name };
        for addr in self.instance.namesrv_addrs().to_vec() {
            let request =
                self.instance.request(RequestCode::DELETE_TOPIC_IN_NAMESRV).with_header(&header);
            self.instance.invoke_ok(&addr, request, self.timeout).await?;
        }
        Ok(())
    }

    /// GET_ALL_TOPIC_LIST_FROM_NAMESERVER, sorted.
    ///
    /// # Errors
    ///
    /// Name-server errors.
    pub async fn topic_list(&self) -> Result<Vec<String>> {
        let request = self.instance.request(RequestCode::GET_ALL_TOPIC_LIST_FROM_NAMESERVER);
        let response = self.namesrv_ok(request).await?;
        let mut topics = TopicList::decode(&response.body)
            .map_err(|error| Error::decode("TopicList", error))?
            .topic_list;
        topics.sort();
        Ok(topics)
    }

    /// GET_ROUTEINFO_BY_TOPIC.
    ///
    /// # Errors
    ///
    /// [`Error::NoRoute`] for an unknown topic.
    pub async fn topic_route(&self, topic: &str) -> Result<TopicRouteData> {
        match self.instance.fetch_route(topic).await? {
            Some(route) => {
                self.instance.install_route(topic, route.clone());
                Ok(route)
            }
            None => Err(Error::NoRoute { topic: topic.to_owned() }),
        }
    }

    /// The address to ask about a broker group: its master, else any member.
    fn select_addr(route: &TopicRouteData, broker_name: &str) -> Option<String> {
        let broker = route.broker_datas.iter().find(|b| b.broker_name == broker_name)?;
        broker.broker_addrs.get(&MASTER_ID).or_else(|| broker.broker_addrs.values().next()).cloned()
    }

    fn route_addrs(route: &TopicRouteData) -> Vec<String> {
        route.broker_datas.iter().filter_map(|b| Self::select_addr(route, &b.broker_name)).collect()
    }

    /// GET_TOPIC_STATS_INFO of every broker of the topic, merged.
    ///
    /// # Errors
    ///
    /// Route or broker errors; [`Error::NotFound`] when nothing came back.
    pub async fn topic_stats(&self, topic: &str) -> Result<BTreeMap<MessageQueue, TopicOffset>> {
        let route = self.topic_route(topic).await?;
        let mut merged = BTreeMap::new();
        for addr in Self::route_addrs(&route) {
            let mut request = self.instance.request(RequestCode::GET_TOPIC_STATS_INFO);
            request.set_ext_field("topic", topic);
            let response = self.instance.invoke_ok(&addr, request, self.timeout).await?;
            merged.extend(parse_topic_stats(&response.body)?);
        }
        if merged.is_empty() {
            return Err(Error::NotFound("Not found the topic stats info".into()));
        }
        Ok(merged)
    }

    // ----- groups -----

    /// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP on every master of `target`.
    ///
    /// # Errors
    ///
    /// The first refusal.
    pub async fn create_subscription_group(
        &self,
        target: &TopicTarget,
        config: &SubscriptionGroupConfig,
    ) -> Result<()> {
        for addr in self.masters(target).await? {
            let request = self
                .instance
                .request(RequestCode::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
                .with_body(config.encode());
            self.instance.invoke_ok(&addr, request, self.timeout).await?;
        }
        Ok(())
    }

    /// DELETE_SUBSCRIPTIONGROUP on every master of `target` (with its offsets when
    /// `remove_offsets`).
    ///
    /// # Errors
    ///
    /// The first refusal.
    pub async fn delete_subscription_group(
        &self,
        target: &TopicTarget,
        group: &str,
        remove_offsets: bool,
    ) -> Result<()> {
        for addr in self.masters(target).await? {
            let mut request = self.instance.request(RequestCode::DELETE_SUBSCRIPTIONGROUP);
            request.set_ext_field("groupName", group);
            request.set_ext_field("removeOffset", remove_offsets.to_string());
            self.instance.invoke_ok(&addr, request, self.timeout).await?;
        }
        Ok(())
    }

    /// GET_ALL_SUBSCRIPTIONGROUP_CONFIG of one broker.
    ///
    /// # Errors
    ///
    /// Broker errors, or a body that does not decode.
    pub async fn subscription_groups(
        &self,
        addr: &str,
    ) -> Result<BTreeMap<String, SubscriptionGroupConfig>> {
        let request = self.instance.request(RequestCode::GET_ALL_SUBSCRIPTIONGROUP_CONFIG);
        let response = self.instance.invoke_ok(addr, request, self.timeout).await?;
        SubscriptionGroupWrapper::decode(&response.body)
            .map(|wrapper| wrapper.subscription_group_table)
            .map_err(|error| Error::decode("SubscriptionGroupWrapper", error))
    }

    /// GET_CONSUME_STATS of every broker in the group's retry-topic route, merged (Java
    /// `examineConsumeStats`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (CONSUMER_NOT_ONLINE in Java) when no broker reports offsets.
    pub async fn consume_stats(&self, group: &str, topic: Option<&str>) -> Result<GroupProgress> {
        let route = self.topic_route(&crate::consumer::retry_topic(group)).await?;
        let mut merged = ConsumeStats::default();
        for addr in Self::route_addrs(&route) {
            let mut request = self.instance.request(RequestCode::GET_CONSUME_STATS);
            request.set_ext_field("consumerGroup", group);
            if let Some(topic) = topic {
                request.set_ext_field("topic", topic);
            }
            let response = self.instance.invoke_ok(&addr, request, self.timeout * 3).await?;
            let stats = ConsumeStats::decode(&response.body)
                .map_err(|error| Error::decode("ConsumeStats", error))?;
            merged.offset_table.extend(stats.offset_table);
            merged.consume_tps += stats.consume_tps;
        }
        if merged.offset_table.is_empty() {
            return Err(Error::NotFound(
                "Not found the consumer group consume stats, because return offset table is empty, \
                 maybe the consumer not consume any message"
                    .into(),
            ));
        }
        Ok(GroupProgress { stats: merged })
    }

    /// GET_CONSUMER_CONNECTION_LIST from one broker of the group's retry-topic route.
    ///
    /// # Errors
    ///
    /// [`Error::Broker`] with CONSUMER_NOT_ONLINE when the group has no live client.
    pub async fn consumer_connections(&self, group: &str) -> Result<ConsumerConnection> {
        let route = self.topic_route(&crate::consumer::retry_topic(group)).await?;
        let addrs = Self::route_addrs(&route);
        let addr = addrs
            .get(crate::util::random_index(addrs.len()))
            .ok_or_else(|| Error::NotFound(format!("no broker for group {group}")))?;
        let mut request = self.instance.request(RequestCode::GET_CONSUMER_CONNECTION_LIST);
        request.set_ext_field("consumerGroup", group);
        let response = self.instance.invoke_ok(addr, request, self.timeout).await?;
        parse_consumer_connection(&response.body)
    }

    // ----- offsets -----

    /// GET_MAX_OFFSET of a queue.
    ///
    /// # Errors
    ///
    /// Broker errors.
    pub async fn max_offset(&self, queue: &MessageQueue) -> Result<i64> {
        broker_calls::max_offset(&self.instance, queue).await
    }

    /// GET_MIN_OFFSET of a queue.
    ///
    /// # Errors
    ///
    /// Broker errors.
    pub async fn min_offset(&self, queue: &MessageQueue) -> Result<i64> {
        broker_calls::min_offset(&self.instance, queue).await
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP of a queue.
    ///
    /// # Errors
    ///
    /// Broker errors.
    pub async fn search_offset(&self, queue: &MessageQueue, timestamp_ms: i64) -> Result<i64> {
        broker_calls::search_offset(&self.instance, queue, timestamp_ms).await
    }

    /// GET_EARLIEST_MSG_STORETIME of a queue.
    ///
    /// # Errors
    ///
    /// Broker errors.
    pub async fn earliest_msg_store_time(&self, queue: &MessageQueue) -> Result<i64> {
        broker_calls::earliest_msg_store_time(&self.instance, queue).await
    }

    /// The group's committed offset of `queue` (`None` when it has none).
    ///
    /// # Errors
    ///
    /// Broker errors.
    pub async fn consumer_offset(&self, group: &str, queue: &MessageQueue) -> Result<Option<i64>> {
        self.ensure_route(&queue.topic).await?;
        crate::consumer::query_offset(&self.instance, group, queue).await
    }

    /// Sets the group's committed offset of `queue` (UPDATE_CONSUMER_OFFSET, checked).
    /// Running consumers of the group overwrite it with their own commits.
    ///
    /// # Errors
    ///
    /// Broker errors.
    pub async fn update_consumer_offset(
        &self,
        group: &str,
        queue: &MessageQueue,
        offset: i64,
    ) -> Result<()> {
        self.ensure_route(&queue.topic).await?;
        crate::consumer::update_offset(&self.instance, group, queue, offset, false).await
    }

    /// Resets the group's offsets of every queue of `topic` to the first message stored at
    /// or after `timestamp_ms` (Java's per-queue `resetOffsetByTimestampOld`). Use it while
    /// the group is offline. Returns the new offsets.
    ///
    /// # Errors
    ///
    /// Route or broker errors.
    pub async fn reset_offset_by_timestamp(
        &self,
        group: &str,
        topic: &str,
        timestamp_ms: i64,
    ) -> Result<BTreeMap<MessageQueue, i64>> {
        let queues = self.topic_queues(topic).await?;
        let mut reset = BTreeMap::new();
        for queue in queues {
            let offset = self.search_offset(&queue, timestamp_ms).await?;
            self.update_consumer_offset(group, &queue, offset).await?;
            reset.insert(queue, offset);
        }
        Ok(reset)
    }

    /// Every readable queue of `topic`.
    ///
    /// # Errors
    ///
    /// [`Error::NoRoute`].
    pub async fn topic_queues(&self, topic: &str) -> Result<BTreeSet<MessageQueue>> {
        let route = self.topic_route(topic).await?;
        Ok(crate::route::subscribe_queues(topic, &route))
    }

    async fn ensure_route(&self, topic: &str) -> Result<()> {
        if self.instance.cached_route(topic).is_none() {
            self.topic_route(topic).await?;
        }
        Ok(())
    }

    // ----- messages -----

    /// QUERY_MESSAGE to every broker of `topic`; keeps messages whose `KEYS` contain `key`
    /// and whose topic is `topic` (client.md §9).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when nothing matches.
    pub async fn query_message_by_key(
        &self,
        topic: &str,
        key: &str,
        max_num: i32,
        begin_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<MessageExt>> {
        let found = self.query_index(topic, key, max_num, begin_ms, end_ms, false).await?;
        let matching: Vec<MessageExt> = found
            .into_iter()
            .filter(|message| {
                message.topic() == topic && message.message.key_list().any(|k| k == key)
            })
            .collect();
        if matching.is_empty() {
            return Err(Error::NotFound("query message by key finished, but no message.".into()));
        }
        Ok(matching)
    }

    /// The message whose UNIQ_KEY (client msgId) is `uniq_key`: the earliest stored one.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no broker has it.
    pub async fn query_message_by_uniq_key(
        &self,
        topic: &str,
        uniq_key: &str,
    ) -> Result<MessageExt> {
        let found = self.query_index(topic, uniq_key, 32, 0, i64::MAX, true).await?;
        found
            .into_iter()
            .filter(|message| message.client_msg_id() == uniq_key)
            .min_by_key(|message| message.store_timestamp)
            .ok_or_else(|| Error::NotFound("query message by key finished, but no message.".into()))
    }

    async fn query_index(
        &self,
        topic: &str,
        key: &str,
        max_num: i32,
        begin_ms: i64,
        end_ms: i64,
        unique: bool,
    ) -> Result<Vec<MessageExt>> {
        let route = self.topic_route(topic).await?;
        let header = QueryMessageRequestHeader {
            topic: topic.to_owned(),
            key: key.to_owned(),
            max_num,
            begin_timestamp: begin_ms,
            end_timestamp: end_ms,
        };
        let mut queries = tokio::task::JoinSet::new();
        for addr in Self::route_addrs(&route) {
            let mut request =
                self.instance.request(RequestCode::QUERY_MESSAGE).with_header(&header);
            if unique {
                request.set_ext_field("_UNIQUE_KEY_QUERY", "true");
            }
            let instance = self.instance.clone();
            let timeout = self.timeout * 3;
            queries
                .spawn(async move { (instance.invoke_async(&addr, request, timeout).await, addr) });
        }
        let mut messages = Vec::new();
        while let Some(joined) = queries.join_next().await {
            let Ok((result, addr)) = joined else { continue };
            match result {
                Ok(response) if response.code == ResponseCode::SUCCESS.code() => {
                    messages
                        .extend(decode_messages_shared(&response.body, &DecodeOptions::default())?);
                }
                Ok(response) => tracing::debug!(%addr, code = response.code, "query found nothing"),
                Err(error) => tracing::debug!(%addr, %error, "query failed"),
            }
        }
        Ok(messages)
    }

    /// VIEW_MESSAGE_BY_ID: the message at the store position an offset message id names.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for an id that does not decode, broker errors otherwise.
    pub async fn view_message(&self, offset_msg_id: &str) -> Result<MessageExt> {
        let (addr, offset) = msg_id::decode_offset_msg_id(offset_msg_id)
            .map_err(|_| Error::NotFound(format!("{offset_msg_id} is not an offset message id")))?;
        let header = ViewMessageRequestHeader { offset, topic: None };
        let request = self.instance.request(RequestCode::VIEW_MESSAGE_BY_ID).with_header(&header);
        let response = self.instance.invoke_ok(&addr.to_string(), request, self.timeout).await?;
        decode_messages_shared(&response.body, &DecodeOptions::default())?
            .into_iter()
            .next()
            .ok_or_else(|| Error::NotFound(format!("no message at {offset_msg_id}")))
    }

    /// A message by either id: as an offset message id first, then as a UNIQ_KEY of
    /// `topic` (Java `viewMessage(topic, msgId)`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    pub async fn view_message_by_id(&self, topic: &str, id: &str) -> Result<MessageExt> {
        match self.view_message(id).await {
            Ok(message) => Ok(message),
            Err(_) => self.query_message_by_uniq_key(topic, id).await,
        }
    }
}

fn bad_body(what: &'static str) -> Error {
    Error::decode(what, ferromq_remoting::Error::Json { offset: 0, reason: "unexpected shape" })
}

/// Parses a TopicStatsTable (`{"offsetTable":{{MessageQueue}:{..}}}`).
fn parse_topic_stats(body: &[u8]) -> Result<BTreeMap<MessageQueue, TopicOffset>> {
    let value = json::parse(body).map_err(|error| Error::decode("TopicStatsTable", error))?;
    let Some(table) =
        value.as_object().and_then(|o| o.get("offsetTable")).and_then(Value::as_object)
    else {
        return Err(bad_body("TopicStatsTable"));
    };
    let mut out = BTreeMap::new();
    for (key, offsets) in table.iter() {
        let queue =
            MessageQueue::from_json(key).map_err(|error| Error::decode("MessageQueue", error))?;
        let field = |name| {
            offsets
                .as_object()
                .and_then(|o| o.get(name))
                .and_then(Value::to_i64_lenient)
                .unwrap_or(0)
        };
        out.insert(
            queue,
            TopicOffset {
                min_offset: field("minOffset"),
                max_offset: field("maxOffset"),
                last_update_timestamp: field("lastUpdateTimestamp"),
            },
        );
    }
    Ok(out)
}

/// GET_BROKER_CONFIG's body: `key=value` lines, nothing escaped (broker.md §1.6).
fn parse_config_lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), value.to_owned()))
        .collect()
}

/// An UPDATE_BROKER_CONFIG body, as Java's `MixAll.properties2String`: `key=value` lines,
/// nothing escaped, so a key must be a plain name and no value may hold a line break.
fn properties_text(properties: &[(&str, &str)]) -> Result<Vec<u8>> {
    let mut text = String::new();
    for (key, value) in properties {
        let plain_key = !key.is_empty()
            && key.chars().all(|ch| ch.is_ascii_graphic() && !"=:#!\\".contains(ch));
        if !plain_key {
            return Err(Error::InvalidArgument(format!(
                "broker config key {key:?} is not a plain name (letters, digits, no `=`, `:`, `#`, `!`, `\\`)"
            )));
        }
        if value.contains(['\n', '\r']) {
            return Err(Error::InvalidArgument(format!(
                "the value of broker config key {key} has a line break"
            )));
        }
        text.push_str(key);
        text.push('=');
        text.push_str(value);
        text.push('\n');
    }
    Ok(text.into_bytes())
}

/// Checks that `old` (at `old_addr`) is a master and `new` (at `new_addr`) a slave of the
/// same group, and plans the switch.
fn switch_plan(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    old_addr: &str,
    new_addr: &str,
) -> Result<MasterSwitch> {
    let get = |config: &BTreeMap<String, String>, key: &str| {
        config.get(key).map(|value| value.trim().to_owned()).unwrap_or_default()
    };
    let role = get(old, "brokerRole");
    if role != "ASYNC_MASTER" && role != "SYNC_MASTER" {
        return Err(Error::InvalidArgument(format!(
            "{old_addr} is not a master (brokerRole {role:?})"
        )));
    }
    let new_role = get(new, "brokerRole");
    let new_id = get(new, "brokerId").parse::<i64>().unwrap_or(0);
    if new_role != "SLAVE" || new_id < 1 {
        return Err(Error::InvalidArgument(format!(
            "{new_addr} is not a slave (brokerRole {new_role:?}, brokerId {new_id})"
        )));
    }
    let (name, new_name) = (get(old, "brokerName"), get(new, "brokerName"));
    if name != new_name {
        return Err(Error::InvalidArgument(format!(
            "{old_addr} is in group {name:?} but {new_addr} in {new_name:?}"
        )));
    }
    Ok(MasterSwitch {
        broker_name: name,
        role,
        old_master_id: new_id,
        old_master_offset: 0,
        new_master_offset: 0,
    })
}

/// Parses a ConsumerConnection body.
fn parse_consumer_connection(body: &[u8]) -> Result<ConsumerConnection> {
    let value = json::parse(body).map_err(|error| Error::decode("ConsumerConnection", error))?;
    let object = value.as_object().ok_or_else(|| bad_body("ConsumerConnection"))?;
    let text = |name| object.get(name).and_then(Value::to_field_string).unwrap_or_default();
    let mut connection = ConsumerConnection {
        consume_type: text("consumeType"),
        message_model: text("messageModel"),
        consume_from_where: text("consumeFromWhere"),
        ..ConsumerConnection::default()
    };
    for item in object.get("connectionSet").and_then(Value::as_array).unwrap_or_default() {
        let Some(item) = item.as_object() else { continue };
        let text = |name| item.get(name).and_then(Value::to_field_string).unwrap_or_default();
        connection.connections.push(ClientConnection {
            client_id: text("clientId"),
            client_addr: text("clientAddr"),
            language: text("language"),
            version: item.get("version").and_then(Value::to_i64_lenient).unwrap_or(0),
        });
    }
    if let Some(table) = object.get("subscriptionTable").and_then(Value::as_object) {
        for (topic, data) in table.iter() {
            let topic = topic.key_text().map(|t| t.into_owned()).unwrap_or_default();
            let data = SubscriptionData::from_json(data)
                .map_err(|error| Error::decode("SubscriptionData", error))?;
            connection.subscriptions.insert(topic, data);
        }
    }
    connection.connections.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_topic_stats_with_object_keys() {
        let body = br#"{"offsetTable":{{"brokerName":"b","queueId":1,"topic":"T"}:{"lastUpdateTimestamp":7,"maxOffset":10,"minOffset":2}}}"#;
        let stats = parse_topic_stats(body).unwrap();
        let offsets = stats[&crate::route::queue("T", "b", 1)];
        assert_eq!(
            offsets,
            TopicOffset { min_offset: 2, max_offset: 10, last_update_timestamp: 7 }
        );
        assert!(parse_topic_stats(b"[]").is_err());
    }

    #[test]
    fn parses_consumer_connections() {
        let body = br#"{"connectionSet":[{"clientAddr":"127.0.0.1:5","clientId":"b@2","language":"JAVA","version":409},{"clientAddr":"127.0.0.1:6","clientId":"a@1","language":"RUST","version":409}],"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","subscriptionTable":{"T":{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1,"tagsSet":[],"topic":"T"}}}"#;
        let connection = parse_consumer_connection(body).unwrap();
        assert_eq!(connection.connections.len(), 2);
        assert_eq!(connection.connections[0].client_id, "a@1");
        assert_eq!(connection.message_model, "CLUSTERING");
        assert_eq!(connection.subscriptions["T"].sub_string, "*");
    }

    #[test]
    fn broker_config_bodies_both_ways() {
        let body = properties_text(&[("brokerRole", "SLAVE"), ("brokerId", "1")]).unwrap();
        assert_eq!(body, b"brokerRole=SLAVE\nbrokerId=1\n");
        assert!(properties_text(&[("bad key", "1")]).is_err());
        assert!(properties_text(&[("a=b", "1")]).is_err());
        assert!(properties_text(&[("", "1")]).is_err());
        assert!(properties_text(&[("regionId", "two\nlines")]).is_err());
        let parsed = parse_config_lines("brokerName=b\nnamesrvAddr=h:1;h:2\nbare\n");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed["namesrvAddr"], "h:1;h:2");
    }

    #[test]
    fn switch_plan_needs_a_master_and_a_slave_of_one_group() {
        let config = |role: &str, id: &str, name: &str| {
            parse_config_lines(&format!("brokerRole={role}\nbrokerId={id}\nbrokerName={name}\n"))
        };
        let old = config("SYNC_MASTER", "0", "g");
        let plan = switch_plan(&old, &config("SLAVE", "2", "g"), "a", "b").unwrap();
        assert_eq!((plan.role.as_str(), plan.old_master_id), ("SYNC_MASTER", 2));
        assert!(
            switch_plan(&config("SLAVE", "1", "g"), &config("SLAVE", "2", "g"), "a", "b").is_err()
        );
        assert!(switch_plan(&old, &config("ASYNC_MASTER", "0", "g"), "a", "b").is_err());
        assert!(switch_plan(&old, &config("SLAVE", "1", "other"), "a", "b").is_err());
    }

    #[test]
    fn lag_is_the_sum_of_differences() {
        let mut progress = GroupProgress::default();
        for (id, broker, consumer) in [(0, 10, 4), (1, 5, 5)] {
            progress.stats.offset_table.insert(
                crate::route::queue("T", "b", id),
                ferromq_remoting::bodies::OffsetWrapper {
                    broker_offset: broker,
                    consumer_offset: consumer,
                    pull_offset: None,
                    last_timestamp: 0,
                },
            );
        }
        assert_eq!(progress.total_lag(), 6);
    }
}
