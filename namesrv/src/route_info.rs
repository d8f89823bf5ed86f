//! `RouteInfoManager`: the name server's whole routing state and every operation on it,
//! pure and synchronous (spec §11).
//!
//! Nothing here touches a socket or a clock: operations that depend on time take `now_ms`
//! (milliseconds on any monotonic scale, the same for every call), and a broker's connection
//! is only an id. The processor keeps the manager behind a `parking_lot::RwLock`.
//!
//! State (spec §11.1):
//! - `topic_queue_table`: topic → broker name → [`QueueData`];
//! - `broker_addr_table`: broker name → [`BrokerData`] (cluster, id → address; id 0 = master);
//! - `cluster_addr_table`: cluster → broker names;
//! - `broker_live_table`: (cluster, address) → last heartbeat, timeout, DataVersion,
//!   connection, HA address;
//! - `filter_server_table`: (cluster, address) → filter servers;
//! - `topic_queue_mapping_info_table`: topic → broker name → static-topic mapping (opaque).
//!
//! Where Java leaves debris behind (an empty `BrokerData` after a refused registration, a
//! liveness entry whose broker has no address any more) this manager does not.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ferromq_remoting::bodies::{
    BrokerData, BrokerMemberGroup, ClusterInfo, DataVersion, QueueData, TopicConfig,
    TopicConfigSerializeWrapper, TopicList, TopicRouteData,
};
use ferromq_remoting::json::{Object, Value};

/// Broker id of a group's master (`MixAll.MASTER_ID`).
pub(crate) const MASTER_ID: i64 = 0;
/// Heartbeat timeout of a broker that does not send one, ms (Java's
/// `DEFAULT_BROKER_CHANNEL_EXPIRED_TIME`).
pub(crate) const DEFAULT_HEARTBEAT_TIMEOUT_MS: i64 = 120_000;
/// `PermName.PERM_WRITE`.
const PERM_WRITE: i32 = 0x2;
/// `PermName.PERM_READ`.
const PERM_READ: i32 = 0x4;
/// `TopicSysFlag.FLAG_UNIT`.
const TOPIC_SYS_FLAG_UNIT: i32 = 0x1;
/// `TopicSysFlag.FLAG_UNIT_SUB`.
const TOPIC_SYS_FLAG_UNIT_SUB: i32 = 0x2;
/// Routes of these topics are never rewritten for acting masters
/// (`TopicValidator.SYNC_BROKER_MEMBER_GROUP_PREFIX`).
const SYNC_BROKER_MEMBER_GROUP_PREFIX: &str = "rmq_sys_SYNC_BROKER_MEMBER_";

/// A broker instance as the liveness table knows it: its cluster and `ip:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct BrokerAddrInfo {
    pub(crate) cluster_name: String,
    pub(crate) broker_addr: String,
}

impl BrokerAddrInfo {
    pub(crate) fn new(cluster_name: &str, broker_addr: &str) -> Self {
        Self { cluster_name: cluster_name.to_owned(), broker_addr: broker_addr.to_owned() }
    }
}

/// Liveness of one broker instance.
#[derive(Debug, Clone)]
struct BrokerLiveInfo {
    last_update_ms: i64,
    heartbeat_timeout_ms: i64,
    data_version: DataVersion,
    connection_id: Option<u64>,
    ha_server_addr: String,
}

/// Everything one REGISTER_BROKER carries.
#[derive(Debug, Clone, Default)]
pub(crate) struct BrokerRegistration {
    pub(crate) cluster_name: String,
    pub(crate) broker_addr: String,
    pub(crate) broker_name: String,
    pub(crate) broker_id: i64,
    pub(crate) ha_server_addr: String,
    /// extField `__ZONE_NAME`.
    pub(crate) zone_name: Option<String>,
    /// `None`: the default 120 s.
    pub(crate) heartbeat_timeout_ms: Option<i64>,
    /// `None` marks a broker older than 5.0 (it never sends the field).
    pub(crate) enable_acting_master: Option<bool>,
    pub(crate) topic_config_wrapper: TopicConfigSerializeWrapper,
    /// `None` leaves the broker's filter servers as they are (old-version bodies).
    pub(crate) filter_server_list: Option<Vec<String>>,
    /// The connection it came in on; closing it unregisters the broker.
    pub(crate) connection_id: Option<u64>,
}

/// What a registering broker learns about its master (only a slave, only while the master is
/// registered and live).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RegisterResult {
    pub(crate) ha_server_addr: Option<String>,
    pub(crate) master_addr: Option<String>,
}

/// The outcome of [`RouteInfoManager::register_broker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegisterOutcome {
    /// Registered, or ignored because another address holds the id with a newer state
    /// version (Java answers both with SUCCESS).
    Registered(RegisterResult),
    /// A single-topic registration of a broker id not registered yet: the broker must
    /// register its full topic table first (SYSTEM_ERROR `register broker failed`).
    Rejected,
}

/// What joining its group means for a registering instance.
#[derive(Debug, Clone, Copy)]
struct Membership {
    /// First registration of the group or of this id: every topic is applied.
    register_first: bool,
    /// A master, or (5.x acting master) the lowest-id slave: its topics update the queues.
    updates_queues: bool,
    /// An acting master's queues are registered read-only.
    wipe_write_perm: bool,
}

/// One broker instance to unregister (UNREGISTER_BROKER's header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerIdentity {
    pub(crate) cluster_name: String,
    pub(crate) broker_addr: String,
    pub(crate) broker_name: String,
    pub(crate) broker_id: i64,
}

/// A broker dropped by [`RouteInfoManager::scan_not_active_brokers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpiredBroker {
    pub(crate) addr_info: BrokerAddrInfo,
    /// Its connection, which the caller closes (Java closes the channel too).
    pub(crate) connection_id: Option<u64>,
}

/// The routing state. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct RouteInfoManager {
    topic_queue_table: BTreeMap<String, BTreeMap<String, QueueData>>,
    broker_addr_table: BTreeMap<String, BrokerData>,
    cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
    broker_live_table: HashMap<BrokerAddrInfo, BrokerLiveInfo>,
    filter_server_table: HashMap<BrokerAddrInfo, Vec<String>>,
    topic_queue_mapping_info_table: BTreeMap<String, BTreeMap<String, Value>>,
}

impl RouteInfoManager {
    /// Registers (or re-registers) one broker instance (spec §11.2, Java
    /// `RouteInfoManager.registerBroker`).
    pub(crate) fn register_broker(
        &mut self,
        registration: BrokerRegistration,
        delete_topic_with_broker_registration: bool,
        now_ms: i64,
    ) -> RegisterOutcome {
        let addr_info = BrokerAddrInfo::new(&registration.cluster_name, &registration.broker_addr);
        let id_known = self
            .broker_addr_table
            .get(&registration.broker_name)
            .is_some_and(|data| data.broker_addrs.contains_key(&registration.broker_id));
        // Java checks this after creating the BrokerData; checking first leaves none behind.
        if !id_known && registration.topic_config_wrapper.topic_config_table.len() == 1 {
            tracing::warn!(
                broker_name = registration.broker_name,
                broker_id = registration.broker_id,
                broker_addr = registration.broker_addr,
                "single-topic registration before a full one; refused"
            );
            return RegisterOutcome::Rejected;
        }
        let Some(membership) = self.join_broker_group(&registration, &addr_info) else {
            return RegisterOutcome::Registered(RegisterResult::default());
        };
        if membership.updates_queues {
            self.apply_topic_configs(
                &addr_info,
                &registration.broker_name,
                &registration.topic_config_wrapper,
                membership.register_first,
                membership.wipe_write_perm,
                delete_topic_with_broker_registration,
            );
        }
        let result = self.master_of(&addr_info, &registration.broker_name, registration.broker_id);
        self.record_liveness(registration, addr_info, now_ms);
        RegisterOutcome::Registered(result)
    }

    /// Adds the instance to its cluster and broker group. `None` when another address holds
    /// its id with a newer state version: the registration is then ignored.
    fn join_broker_group(
        &mut self,
        registration: &BrokerRegistration,
        addr_info: &BrokerAddrInfo,
    ) -> Option<Membership> {
        let BrokerRegistration { cluster_name, broker_addr, broker_name, broker_id, .. } =
            registration;
        let broker_id = *broker_id;
        self.cluster_addr_table
            .entry(cluster_name.clone())
            .or_default()
            .insert(broker_name.clone());
        let new_group = !self.broker_addr_table.contains_key(broker_name);
        let broker_data =
            self.broker_addr_table.entry(broker_name.clone()).or_insert_with(|| BrokerData {
                cluster: cluster_name.clone(),
                broker_name: broker_name.clone(),
                ..BrokerData::default()
            });
        broker_data.enable_acting_master = registration.enable_acting_master.unwrap_or(false);
        broker_data.zone_name.clone_from(&registration.zone_name);
        // One address holds one id: a slave turned master first drops its old id.
        broker_data.broker_addrs.retain(|id, addr| *id == broker_id || addr != broker_addr);

        if let Some(old_addr) = broker_data.broker_addrs.get(&broker_id)
            && old_addr != broker_addr
            && let Some(old_live) =
                self.broker_live_table.get(&BrokerAddrInfo::new(cluster_name, old_addr))
            && old_live.data_version.state_version
                > registration.topic_config_wrapper.data_version.state_version
        {
            tracing::warn!(
                cluster_name,
                broker_name,
                broker_id,
                old_addr,
                broker_addr,
                "registration conflicts with a newer broker holding the same id; ignored"
            );
            self.broker_live_table.remove(addr_info);
            return None;
        }

        let old_addr = broker_data.broker_addrs.insert(broker_id, broker_addr.clone());
        let is_master = broker_id == MASTER_ID;
        let min_id = broker_data.broker_addrs.keys().next().copied();
        let is_prime_slave =
            registration.enable_acting_master.is_some() && !is_master && min_id == Some(broker_id);
        Some(Membership {
            register_first: new_group || old_addr.is_none_or(|addr| addr.is_empty()),
            updates_queues: is_master || is_prime_slave,
            wipe_write_perm: is_prime_slave && broker_data.enable_acting_master,
        })
    }

    /// Records the instance's heartbeat, DataVersion, connection and filter servers.
    fn record_liveness(
        &mut self,
        registration: BrokerRegistration,
        addr_info: BrokerAddrInfo,
        now_ms: i64,
    ) {
        match registration.filter_server_list {
            Some(list) if list.is_empty() => drop(self.filter_server_table.remove(&addr_info)),
            Some(list) => drop(self.filter_server_table.insert(addr_info.clone(), list)),
            None => {}
        }
        let live = BrokerLiveInfo {
            last_update_ms: now_ms,
            heartbeat_timeout_ms: registration
                .heartbeat_timeout_ms
                .unwrap_or(DEFAULT_HEARTBEAT_TIMEOUT_MS),
            data_version: registration.topic_config_wrapper.data_version,
            connection_id: registration.connection_id,
            ha_server_addr: registration.ha_server_addr,
        };
        if self.broker_live_table.insert(addr_info, live).is_none() {
            tracing::info!(
                cluster_name = registration.cluster_name,
                broker_name = registration.broker_name,
                broker_id = registration.broker_id,
                broker_addr = registration.broker_addr,
                "new broker registered"
            );
        }
    }

    /// Upserts the queue data of a master's (or prime slave's) topics.
    fn apply_topic_configs(
        &mut self,
        addr_info: &BrokerAddrInfo,
        broker_name: &str,
        wrapper: &TopicConfigSerializeWrapper,
        register_first: bool,
        wipe_write_perm: bool,
        delete_missing_topics: bool,
    ) {
        let mappings = mapping_infos(wrapper);
        if delete_missing_topics && mappings.is_empty() {
            let stale: Vec<String> = self
                .topic_queue_table
                .iter()
                .filter(|(topic, queues)| {
                    queues.contains_key(broker_name)
                        && !wrapper.topic_config_table.contains_key(*topic)
                })
                .map(|(topic, _)| topic.clone())
                .collect();
            for topic in stale {
                self.remove_queue_data(&topic, broker_name);
                tracing::info!(
                    topic,
                    broker_name,
                    "topic no longer registered by its broker; removed"
                );
            }
        }
        let version_changed =
            self.is_broker_topic_config_changed(addr_info, Some(&wrapper.data_version));
        for config in wrapper.topic_config_table.values() {
            let topic_lacks_broker = self
                .topic_queue_table
                .get(&config.topic_name)
                .is_none_or(|queues| !queues.contains_key(broker_name));
            if register_first || version_changed || topic_lacks_broker {
                let mut queue_data = queue_data_of(broker_name, config);
                if wipe_write_perm {
                    queue_data.perm &= !PERM_WRITE;
                }
                self.topic_queue_table
                    .entry(config.topic_name.clone())
                    .or_default()
                    .insert(broker_name.to_owned(), queue_data);
            }
        }
        if version_changed || register_first {
            for (topic, info) in mappings {
                let bname = info
                    .as_object()
                    .and_then(|object| object.get("bname"))
                    .and_then(Value::as_str)
                    .unwrap_or(broker_name)
                    .to_owned();
                self.topic_queue_mapping_info_table.entry(topic).or_default().insert(bname, info);
            }
        }
    }

    /// The master's addresses for a registering slave, if the master is registered and live.
    fn master_of(
        &self,
        addr_info: &BrokerAddrInfo,
        broker_name: &str,
        broker_id: i64,
    ) -> RegisterResult {
        let cluster_name = &addr_info.cluster_name;
        if broker_id == MASTER_ID {
            return RegisterResult::default();
        }
        let master_addr = self
            .broker_addr_table
            .get(broker_name)
            .and_then(|data| data.broker_addrs.get(&MASTER_ID));
        let Some(master_addr) = master_addr else { return RegisterResult::default() };
        match self.broker_live_table.get(&BrokerAddrInfo::new(cluster_name, master_addr)) {
            Some(live) => RegisterResult {
                ha_server_addr: Some(live.ha_server_addr.clone()),
                master_addr: Some(master_addr.clone()),
            },
            None => RegisterResult::default(),
        }
    }

    /// Removes broker instances (spec §11.4): their liveness and filter servers, their
    /// addresses (any id), a broker name left without addresses (with its queues, and its
    /// cluster when that empties), and topics left without queues.
    pub(crate) fn unregister_brokers(&mut self, requests: &[BrokerIdentity]) {
        let mut removed_names = BTreeSet::new();
        let mut reduced_names = BTreeSet::new();
        for request in requests {
            let addr_info = BrokerAddrInfo::new(&request.cluster_name, &request.broker_addr);
            let was_live = self.broker_live_table.remove(&addr_info).is_some();
            self.filter_server_table.remove(&addr_info);
            let mut name_emptied = false;
            if let Some(data) = self.broker_addr_table.get_mut(&request.broker_name) {
                data.broker_addrs.retain(|_, addr| *addr != request.broker_addr);
                if data.broker_addrs.is_empty() {
                    self.broker_addr_table.remove(&request.broker_name);
                    name_emptied = true;
                }
            }
            tracing::info!(
                cluster = request.cluster_name,
                broker_name = request.broker_name,
                broker_id = request.broker_id,
                broker_addr = request.broker_addr,
                was_live,
                name_emptied,
                "broker unregistered"
            );
            if name_emptied {
                if let Some(names) = self.cluster_addr_table.get_mut(&request.cluster_name) {
                    names.remove(&request.broker_name);
                    if names.is_empty() {
                        self.cluster_addr_table.remove(&request.cluster_name);
                    }
                }
                removed_names.insert(request.broker_name.clone());
            } else {
                reduced_names.insert(request.broker_name.clone());
            }
        }
        self.clean_topics(&removed_names, &reduced_names);
    }

    fn clean_topics(&mut self, removed: &BTreeSet<String>, reduced: &BTreeSet<String>) {
        // Acting-master groups that just lost their master become read-only.
        let wipe: BTreeSet<&String> = reduced
            .iter()
            .filter(|name| {
                self.broker_addr_table.get(*name).is_some_and(|data| {
                    data.enable_acting_master && !data.broker_addrs.contains_key(&MASTER_ID)
                })
            })
            .collect();
        self.topic_queue_table.retain(|_, queues| {
            queues.retain(|name, _| !removed.contains(name));
            for name in &wipe {
                if let Some(queue) = queues.get_mut(*name) {
                    queue.perm &= !PERM_WRITE;
                }
            }
            !queues.is_empty()
        });
    }

    /// Drops every broker whose last heartbeat is older than its timeout, as of `now_ms`.
    pub(crate) fn scan_not_active_brokers(&mut self, now_ms: i64) -> Vec<ExpiredBroker> {
        let mut expired: Vec<ExpiredBroker> = self
            .broker_live_table
            .iter()
            .filter(|(_, live)| {
                live.last_update_ms.saturating_add(live.heartbeat_timeout_ms) < now_ms
            })
            .map(|(addr_info, live)| ExpiredBroker {
                addr_info: addr_info.clone(),
                connection_id: live.connection_id,
            })
            .collect();
        expired.sort_by(|a, b| a.addr_info.cmp(&b.addr_info));
        for broker in &expired {
            tracing::warn!(
                cluster = broker.addr_info.cluster_name,
                broker_addr = broker.addr_info.broker_addr,
                "broker silent longer than its heartbeat timeout; removed"
            );
            self.remove_by_addr(&broker.addr_info);
        }
        expired
    }

    /// Unregisters every broker instance whose liveness entry is on `connection_id` (its
    /// connection closed); returns them.
    pub(crate) fn on_connection_closed(&mut self, connection_id: u64) -> Vec<BrokerAddrInfo> {
        let mut closed: Vec<BrokerAddrInfo> = self
            .broker_live_table
            .iter()
            .filter(|(_, live)| live.connection_id == Some(connection_id))
            .map(|(addr_info, _)| addr_info.clone())
            .collect();
        closed.sort();
        for addr_info in &closed {
            tracing::info!(
                cluster = addr_info.cluster_name,
                broker_addr = addr_info.broker_addr,
                "broker connection closed; broker removed"
            );
            self.remove_by_addr(addr_info);
        }
        closed
    }

    /// Unregisters the instance at `addr_info`, finding its name and id by address.
    fn remove_by_addr(&mut self, addr_info: &BrokerAddrInfo) {
        let identity = self.broker_addr_table.values().find_map(|data| {
            if data.cluster != addr_info.cluster_name {
                return None;
            }
            let (id, _) =
                data.broker_addrs.iter().find(|(_, addr)| **addr == addr_info.broker_addr)?;
            Some(BrokerIdentity {
                cluster_name: addr_info.cluster_name.clone(),
                broker_addr: addr_info.broker_addr.clone(),
                broker_name: data.broker_name.clone(),
                broker_id: *id,
            })
        });
        match identity {
            Some(identity) => self.unregister_brokers(&[identity]),
            // Java keeps such an entry forever; it has no routes, so just forget it.
            None => {
                self.broker_live_table.remove(addr_info);
                self.filter_server_table.remove(addr_info);
            }
        }
    }

    /// True when the name server has no DataVersion for the broker or a different one.
    pub(crate) fn is_broker_topic_config_changed(
        &self,
        addr_info: &BrokerAddrInfo,
        data_version: Option<&DataVersion>,
    ) -> bool {
        self.broker_data_version(addr_info).as_ref() != data_version || data_version.is_none()
    }

    /// The DataVersion of the broker's last registration.
    pub(crate) fn broker_data_version(&self, addr_info: &BrokerAddrInfo) -> Option<DataVersion> {
        self.broker_live_table.get(addr_info).map(|live| live.data_version)
    }

    /// Refreshes the broker's liveness; false when it is not registered.
    pub(crate) fn update_broker_timestamp(
        &mut self,
        addr_info: &BrokerAddrInfo,
        now_ms: i64,
    ) -> bool {
        match self.broker_live_table.get_mut(addr_info) {
            Some(live) => {
                live.last_update_ms = now_ms;
                true
            }
            None => false,
        }
    }

    /// A topic's route (spec §11.3), or `None` when no live broker group serves it. Queue and
    /// broker data come in broker-name order (Java's order is its HashMap's).
    pub(crate) fn pickup_topic_route(
        &self,
        topic: &str,
        support_acting_master: bool,
    ) -> Option<TopicRouteData> {
        let queues = self.topic_queue_table.get(topic)?;
        let mut route = TopicRouteData {
            queue_datas: queues.values().cloned().collect(),
            ..TopicRouteData::default()
        };
        for name in queues.keys() {
            let Some(data) = self.broker_addr_table.get(name) else { continue };
            if !self.filter_server_table.is_empty() {
                for addr in data.broker_addrs.values() {
                    let key = BrokerAddrInfo::new(&data.cluster, addr);
                    if let Some(servers) = self.filter_server_table.get(&key) {
                        route.filter_server_table.insert(addr.clone(), servers.clone());
                    }
                }
            }
            route.broker_datas.push(data.clone());
        }
        if route.broker_datas.is_empty() {
            return None;
        }
        route.topic_queue_mapping_by_broker =
            self.topic_queue_mapping_info_table.get(topic).map(|by_broker| {
                let mut object = Object::new();
                for (name, info) in by_broker {
                    object.insert(name.clone(), info.clone());
                }
                Value::Object(object)
            });
        if support_acting_master && !topic.starts_with(SYNC_BROKER_MEMBER_GROUP_PREFIX) {
            present_acting_masters(&mut route);
        }
        Some(route)
    }

    /// GET_BROKER_CLUSTER_INFO's body.
    pub(crate) fn cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            broker_addr_table: self.broker_addr_table.clone(),
            cluster_addr_table: self.cluster_addr_table.clone(),
        }
    }

    /// The members of one broker group (GET_BROKER_MEMBER_GROUP).
    pub(crate) fn broker_member_group(
        &self,
        cluster_name: &str,
        broker_name: &str,
    ) -> BrokerMemberGroup {
        BrokerMemberGroup {
            cluster: cluster_name.to_owned(),
            broker_name: broker_name.to_owned(),
            broker_addrs: self
                .broker_addr_table
                .get(broker_name)
                .map(|data| data.broker_addrs.clone())
                .unwrap_or_default(),
        }
    }

    /// Clears the write permission of every topic on `broker_name`; returns how many.
    pub(crate) fn wipe_write_perm(&mut self, broker_name: &str) -> i32 {
        self.operate_write_perm(broker_name, |perm| perm & !PERM_WRITE)
    }

    /// Sets read and write permission on every topic of `broker_name`; returns how many.
    pub(crate) fn add_write_perm(&mut self, broker_name: &str) -> i32 {
        self.operate_write_perm(broker_name, |_| PERM_READ | PERM_WRITE)
    }

    fn operate_write_perm(&mut self, broker_name: &str, change: impl Fn(i32) -> i32) -> i32 {
        let mut count = 0_i32;
        for queues in self.topic_queue_table.values_mut() {
            if let Some(queue) = queues.get_mut(broker_name) {
                queue.perm = change(queue.perm);
                count = count.saturating_add(1);
            }
        }
        count
    }

    /// Removes a topic everywhere, or only from the broker groups of `cluster_name`.
    pub(crate) fn delete_topic(&mut self, topic: &str, cluster_name: Option<&str>) {
        let Some(cluster_name) = cluster_name else {
            self.topic_queue_table.remove(topic);
            return;
        };
        let Some(names) = self.cluster_addr_table.get(cluster_name).cloned() else { return };
        for name in names {
            self.remove_queue_data(topic, &name);
        }
    }

    fn remove_queue_data(&mut self, topic: &str, broker_name: &str) {
        if let Some(queues) = self.topic_queue_table.get_mut(topic) {
            queues.remove(broker_name);
            if queues.is_empty() {
                self.topic_queue_table.remove(topic);
            }
        }
    }

    /// Adds or replaces a topic's queue data (REGISTER_TOPIC_IN_NAMESRV). Nothing changes,
    /// and false is returned, when a queue names a broker group that is not registered.
    pub(crate) fn register_topic(&mut self, topic: &str, queue_datas: Vec<QueueData>) -> bool {
        if queue_datas.is_empty() {
            return true;
        }
        if let Some(unknown) = queue_datas
            .iter()
            .find(|queue| !self.broker_addr_table.contains_key(&queue.broker_name))
        {
            tracing::warn!(
                topic,
                broker_name = unknown.broker_name,
                "register topic names an unknown broker; ignored"
            );
            return false;
        }
        let queues = self.topic_queue_table.entry(topic.to_owned()).or_default();
        for queue in queue_datas {
            queues.insert(queue.broker_name.clone(), queue);
        }
        true
    }

    /// Every topic with queues.
    pub(crate) fn all_topics(&self) -> TopicList {
        topic_list(self.topic_queue_table.keys().cloned())
    }

    /// Topics with queues on a broker group of `cluster_name` (empty for an unknown cluster).
    pub(crate) fn topics_by_cluster(&self, cluster_name: &str) -> TopicList {
        let Some(names) = self.cluster_addr_table.get(cluster_name) else {
            return TopicList::default();
        };
        topic_list(
            self.topic_queue_table
                .iter()
                .filter(|(_, queues)| names.iter().any(|name| queues.contains_key(name)))
                .map(|(topic, _)| topic.clone()),
        )
    }

    /// GET_SYSTEM_TOPIC_LIST_FROM_NS: cluster names and broker names (each is a system topic
    /// on its brokers), and the address of some broker to ask for more.
    pub(crate) fn system_topics(&self) -> TopicList {
        let mut names = BTreeSet::new();
        for (cluster, brokers) in &self.cluster_addr_table {
            names.insert(cluster.clone());
            names.extend(brokers.iter().cloned());
        }
        let mut list = topic_list(names);
        list.broker_addr = self
            .broker_addr_table
            .values()
            .find_map(|data| data.broker_addrs.values().next().cloned());
        list
    }

    /// Topics whose (first) queue data has the unit flag.
    pub(crate) fn unit_topics(&self) -> TopicList {
        self.topics_by_sys_flag(|flag| flag & TOPIC_SYS_FLAG_UNIT != 0)
    }

    /// Topics whose (first) queue data has the unit-subscription flag.
    pub(crate) fn has_unit_sub_topics(&self) -> TopicList {
        self.topics_by_sys_flag(|flag| flag & TOPIC_SYS_FLAG_UNIT_SUB != 0)
    }

    /// Topics with the unit-subscription flag but not the unit flag.
    pub(crate) fn has_unit_sub_ununit_topics(&self) -> TopicList {
        self.topics_by_sys_flag(|flag| {
            flag & TOPIC_SYS_FLAG_UNIT == 0 && flag & TOPIC_SYS_FLAG_UNIT_SUB != 0
        })
    }

    fn topics_by_sys_flag(&self, matches: impl Fn(i32) -> bool) -> TopicList {
        topic_list(
            self.topic_queue_table
                .iter()
                .filter(|(_, queues)| {
                    queues.values().next().is_some_and(|q| matches(q.topic_sys_flag))
                })
                .map(|(topic, _)| topic.clone()),
        )
    }
}

fn topic_list(topics: impl IntoIterator<Item = String>) -> TopicList {
    TopicList { topic_list: topics.into_iter().collect(), broker_addr: None }
}

fn queue_data_of(broker_name: &str, config: &TopicConfig) -> QueueData {
    QueueData {
        broker_name: broker_name.to_owned(),
        read_queue_nums: config.read_queue_nums,
        write_queue_nums: config.write_queue_nums,
        perm: config.perm,
        topic_sys_flag: config.topic_sys_flag,
    }
}

/// The static-topic mapping entries of a registration: topic → info.
fn mapping_infos(wrapper: &TopicConfigSerializeWrapper) -> Vec<(String, Value)> {
    match &wrapper.topic_queue_mapping_info_map {
        Some(Value::Object(map)) => map
            .iter()
            .filter_map(|(topic, info)| Some((topic.key_text()?.into_owned(), info.clone())))
            .collect(),
        _ => Vec::new(),
    }
}

/// Keeps the broker groups of `zone_name` (case-insensitive) and the groups whose master is
/// down (consumers may still read from their slaves), with their queues and filter servers
/// (Java's `ZoneRouteRPCHook`, for clients that send `__ZONE_MODE=true`).
pub(crate) fn filter_route_by_zone(route: &mut TopicRouteData, zone_name: &str) {
    let (kept, removed): (Vec<BrokerData>, Vec<BrokerData>) =
        std::mem::take(&mut route.broker_datas).into_iter().partition(|data| {
            !data.broker_addrs.contains_key(&MASTER_ID)
                || data
                    .zone_name
                    .as_deref()
                    .is_some_and(|zone| zone.eq_ignore_ascii_case(zone_name))
        });
    route.broker_datas = kept;
    route
        .queue_datas
        .retain(|queue| !removed.iter().any(|data| data.broker_name == queue.broker_name));
    for data in &removed {
        for addr in data.broker_addrs.values() {
            route.filter_server_table.remove(addr);
        }
    }
}

/// In a group without a master whose queues are read-only and that enables acting master,
/// presents the lowest-id slave as id 0 (Java `pickupTopicRouteData`).
fn present_acting_masters(route: &mut TopicRouteData) {
    let queues = &route.queue_datas;
    for data in &mut route.broker_datas {
        if data.broker_addrs.is_empty()
            || data.broker_addrs.contains_key(&MASTER_ID)
            || !data.enable_acting_master
        {
            continue;
        }
        let read_only = queues
            .iter()
            .find(|queue| queue.broker_name == data.broker_name)
            .is_some_and(|queue| queue.perm & PERM_WRITE == 0);
        if read_only && let Some((_, addr)) = data.broker_addrs.pop_first() {
            data.broker_addrs.insert(MASTER_ID, addr);
        }
    }
}

#[cfg(test)]
mod tests;
