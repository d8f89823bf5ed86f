//! The broker's persisted metadata: topics (broker.md §2), subscription groups (§6) and
//! consumer offsets (§9), each a table behind a lock, persisted as RocketMQ's JSON files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ferromq_message::validate::{DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX};
use ferromq_remoting::bodies::{
    ConsumerOffsetSerializeWrapper, DataVersion, JsonBody, SubscriptionGroupConfig,
    SubscriptionGroupWrapper, TopicConfig, TopicConfigSerializeWrapper,
};
use parking_lot::{Mutex, RwLock};

use crate::config::BrokerConfig;
use crate::persist;

/// Permission bits (`PermName`).
pub mod perm {
    /// May serve as an auto-create template.
    pub const INHERIT: i32 = 1;
    /// Writable.
    pub const WRITE: i32 = 2;
    /// Readable.
    pub const READ: i32 = 4;

    /// Whether `perm` has the READ bit.
    pub fn is_readable(perm: i32) -> bool {
        perm & READ != 0
    }

    /// Whether `perm` has the WRITE bit.
    pub fn is_writeable(perm: i32) -> bool {
        perm & WRITE != 0
    }
}

/// The auto-create template topic.
pub const AUTO_CREATE_TOPIC: &str = "TBW102";
/// Delayed messages wait here.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// Topics no producer may send to (broker.md §2.3).
pub const SEND_FORBIDDEN_TOPICS: &[&str] = &[
    SCHEDULE_TOPIC,
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "SELF_TEST_TOPIC",
    "OFFSET_MOVED_EVENT",
];
const STATIC_SYSTEM_TOPICS: &[&str] = &[
    AUTO_CREATE_TOPIC,
    SCHEDULE_TOPIC,
    "BenchmarkTest",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRACE_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "SELF_TEST_TOPIC",
    "OFFSET_MOVED_EVENT",
];

/// `%RETRY%<group>`.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
}

/// `%DLQ%<group>`.
pub fn dlq_topic(group: &str) -> String {
    format!("{DLQ_GROUP_TOPIC_PREFIX}{group}")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn bump(version: &mut DataVersion) {
    version.counter += 1;
    version.timestamp = now_ms();
}

fn topic_config(name: &str, queues: i32, perm: i32) -> TopicConfig {
    TopicConfig {
        topic_name: name.to_owned(),
        read_queue_nums: queues,
        write_queue_nums: queues,
        perm,
        topic_filter_type: "SINGLE_TAG".to_owned(),
        topic_sys_flag: 0,
        order: false,
        attributes: None,
    }
}

/// Error loading a metadata file at start-up.
#[derive(Debug, thiserror::Error)]
#[error("cannot load broker metadata: {0}")]
pub struct LoadError(pub String);

/// `TopicConfigManager`: the topic table and its DataVersion, persisted to `topics.json`.
#[derive(Debug)]
pub struct TopicManager {
    table: RwLock<TopicConfigSerializeWrapper>,
    system: BTreeSet<String>,
    path: PathBuf,
    auto_create_topic_enable: bool,
}

impl TopicManager {
    /// The built-in topics (broker.md §2.3) overlaid by `topics.json`.
    ///
    /// # Errors
    ///
    /// A `topics.json` that exists but neither it nor its backup parses.
    pub fn load(config: &BrokerConfig) -> Result<Self, LoadError> {
        let mut table = TopicConfigSerializeWrapper::default();
        let mut system: BTreeSet<String> =
            STATIC_SYSTEM_TOPICS.iter().map(|t| (*t).to_owned()).collect();
        let mut builtin = |config: TopicConfig| {
            system.insert(config.topic_name.clone());
            table.topic_config_table.insert(config.topic_name.clone(), config);
        };
        builtin(topic_config("SELF_TEST_TOPIC", 1, 6));
        if config.auto_create_topic_enable {
            builtin(topic_config(AUTO_CREATE_TOPIC, config.default_topic_queue_nums, 7));
        }
        builtin(topic_config("BenchmarkTest", 1024, 6));
        let cluster_perm = if config.cluster_topic_enable { 7 } else { 1 };
        builtin(topic_config(&config.broker_cluster_name, 16, cluster_perm));
        let broker_perm = if config.broker_topic_enable { 7 } else { 1 };
        builtin(topic_config(&config.broker_name, 1, broker_perm));
        builtin(topic_config("OFFSET_MOVED_EVENT", 1, 6));
        builtin(topic_config(SCHEDULE_TOPIC, 18, 6));
        builtin(topic_config(&format!("{}_REPLY_TOPIC", config.broker_cluster_name), 1, 6));
        let path = config.config_dir().join("topics.json");
        if let Some(stored) =
            persist::load(&path, TopicConfigSerializeWrapper::decode).map_err(LoadError)?
        {
            table.data_version = stored.data_version;
            table.topic_config_table.extend(stored.topic_config_table);
        }
        Ok(Self {
            table: RwLock::new(table),
            system,
            path,
            auto_create_topic_enable: config.auto_create_topic_enable,
        })
    }

    /// One topic's config.
    pub fn get(&self, topic: &str) -> Option<TopicConfig> {
        self.table.read().topic_config_table.get(topic).cloned()
    }

    /// Whether `topic` is a system topic (built-in, or `rmq_sys_` prefixed).
    pub fn is_system(&self, topic: &str) -> bool {
        self.system.contains(topic) || topic.starts_with("rmq_sys_")
    }

    /// The whole table, as registered with name servers and served to slaves.
    pub fn wrapper(&self) -> TopicConfigSerializeWrapper {
        self.table.read().clone()
    }

    /// The table's DataVersion.
    pub fn data_version(&self) -> DataVersion {
        self.table.read().data_version
    }

    /// Every topic name.
    pub fn names(&self) -> Vec<String> {
        self.table.read().topic_config_table.keys().cloned().collect()
    }

    /// `createTopicInSendMessageMethod` (broker.md §2.4): `Some((config, created))`, or
    /// `None` when the template is missing or cannot be inherited from.
    pub fn create_in_send(
        &self,
        topic: &str,
        template: &str,
        requested_queues: i32,
        topic_sys_flag: i32,
    ) -> Option<(TopicConfig, bool)> {
        let mut table = self.table.write();
        if let Some(existing) = table.topic_config_table.get(topic) {
            return Some((existing.clone(), false));
        }
        let template = table.topic_config_table.get(template)?;
        let mut template_perm = template.perm;
        if template.topic_name == AUTO_CREATE_TOPIC && !self.auto_create_topic_enable {
            template_perm = 6;
        }
        if template_perm & perm::INHERIT == 0 {
            return None;
        }
        let queues = requested_queues.min(template.write_queue_nums).max(0);
        let mut config = topic_config(topic, queues, template_perm & !perm::INHERIT);
        config.topic_filter_type = template.topic_filter_type.clone();
        config.topic_sys_flag = topic_sys_flag;
        table.topic_config_table.insert(topic.to_owned(), config.clone());
        bump(&mut table.data_version);
        self.persist_locked(&table);
        Some((config, true))
    }

    /// `createTopicInSendMessageBackMethod` (broker.md §2.5): the topic, created with the
    /// given queues and perm if missing; the bool says whether it was created.
    pub fn create_if_missing(&self, topic: &str, queues: i32, perm: i32) -> (TopicConfig, bool) {
        if let Some(existing) = self.get(topic) {
            return (existing, false);
        }
        let mut table = self.table.write();
        if let Some(existing) = table.topic_config_table.get(topic) {
            return (existing.clone(), false);
        }
        let config = topic_config(topic, queues, perm);
        table.topic_config_table.insert(topic.to_owned(), config.clone());
        bump(&mut table.data_version);
        self.persist_locked(&table);
        (config, true)
    }

    /// Creates or replaces a topic (UPDATE_AND_CREATE_TOPIC); false when nothing changed.
    pub fn update(&self, config: TopicConfig) -> bool {
        let mut table = self.table.write();
        if table.topic_config_table.get(&config.topic_name) == Some(&config) {
            return false;
        }
        table.topic_config_table.insert(config.topic_name.clone(), config);
        bump(&mut table.data_version);
        self.persist_locked(&table);
        true
    }

    /// Removes a topic; false when it did not exist.
    pub fn delete(&self, topic: &str) -> bool {
        let mut table = self.table.write();
        if table.topic_config_table.remove(topic).is_none() {
            return false;
        }
        bump(&mut table.data_version);
        self.persist_locked(&table);
        true
    }

    /// Sets the order flag of the listed topics (and clears it elsewhere), from the name
    /// server's ORDER_TOPIC_CONFIG (broker.md §2.8, 4.9 rule).
    pub fn set_order_topics(&self, order_topics: &BTreeSet<String>) {
        let mut table = self.table.write();
        let mut changed = false;
        for (name, config) in &mut table.topic_config_table {
            let order = order_topics.contains(name);
            if config.order != order {
                config.order = order;
                changed = true;
            }
        }
        if changed {
            bump(&mut table.data_version);
            self.persist_locked(&table);
        }
    }

    fn persist_locked(&self, table: &TopicConfigSerializeWrapper) {
        if let Err(error) = persist::write_atomic(&self.path, &table.encode()) {
            tracing::error!(file = %self.path.display(), %error, "cannot persist topics");
        }
    }
}

/// `SubscriptionGroupManager`: group configs, auto-created on first use when allowed.
#[derive(Debug)]
pub struct GroupManager {
    table: RwLock<SubscriptionGroupWrapper>,
    path: PathBuf,
    auto_create: bool,
}

const BUILTIN_GROUPS: &[&str] = &[
    "TOOLS_CONSUMER",
    "FILTERSRV_CONSUMER",
    "SELF_TEST_C_GROUP",
    "CID_ONS-HTTP-PROXY",
    "CID_ONSAPI_PULL",
    "CID_ONSAPI_PERMISSION",
    "CID_ONSAPI_OWNER",
];

impl GroupManager {
    /// Built-in groups overlaid by `subscriptionGroup.json`.
    ///
    /// # Errors
    ///
    /// A file that exists but neither it nor its backup parses.
    pub fn load(config: &BrokerConfig) -> Result<Self, LoadError> {
        let mut table = SubscriptionGroupWrapper::default();
        for name in BUILTIN_GROUPS {
            table
                .subscription_group_table
                .insert((*name).to_owned(), SubscriptionGroupConfig::new(*name));
        }
        let path = config.config_dir().join("subscriptionGroup.json");
        if let Some(stored) =
            persist::load(&path, SubscriptionGroupWrapper::decode).map_err(LoadError)?
        {
            table.data_version = stored.data_version;
            table.subscription_group_table.extend(stored.subscription_group_table);
        }
        Ok(Self {
            table: RwLock::new(table),
            path,
            auto_create: config.auto_create_subscription_group,
        })
    }

    /// `findSubscriptionGroupConfig`: the group, created with defaults when missing and
    /// auto-creation is on (or the name starts with `CID_RMQ_SYS_`).
    pub fn find_or_create(&self, group: &str) -> Option<SubscriptionGroupConfig> {
        if let Some(found) = self.table.read().subscription_group_table.get(group) {
            return Some(found.clone());
        }
        let allowed = self.auto_create || group.starts_with("CID_RMQ_SYS_");
        if !allowed
            || ferromq_message::validate::check_group(
                group,
                ferromq_message::validate::GROUP_MAX_LEN,
            )
            .is_err()
        {
            return None;
        }
        let mut table = self.table.write();
        let config = table
            .subscription_group_table
            .entry(group.to_owned())
            .or_insert_with(|| SubscriptionGroupConfig::new(group))
            .clone();
        bump(&mut table.data_version);
        self.persist_locked(&table);
        Some(config)
    }

    /// The group if it exists (no auto-creation).
    pub fn get(&self, group: &str) -> Option<SubscriptionGroupConfig> {
        self.table.read().subscription_group_table.get(group).cloned()
    }

    /// Creates or replaces a group.
    pub fn update(&self, config: SubscriptionGroupConfig) {
        let mut table = self.table.write();
        table.subscription_group_table.insert(config.group_name.clone(), config);
        bump(&mut table.data_version);
        self.persist_locked(&table);
    }

    /// Removes a group.
    pub fn delete(&self, group: &str) {
        let mut table = self.table.write();
        if table.subscription_group_table.remove(group).is_some() {
            bump(&mut table.data_version);
            self.persist_locked(&table);
        }
    }

    /// The whole table.
    pub fn wrapper(&self) -> SubscriptionGroupWrapper {
        self.table.read().clone()
    }

    fn persist_locked(&self, table: &SubscriptionGroupWrapper) {
        if let Err(error) = persist::write_atomic(&self.path, &table.encode()) {
            tracing::error!(file = %self.path.display(), %error, "cannot persist subscription groups");
        }
    }
}

/// `ConsumerOffsetManager`: `topic@group` → queue → next offset to consume; persisted
/// periodically and at shutdown.
#[derive(Debug)]
pub struct OffsetManager {
    table: Mutex<BTreeMap<String, BTreeMap<i32, i64>>>,
    path: PathBuf,
}

impl OffsetManager {
    /// Loads `consumerOffset.json`.
    ///
    /// # Errors
    ///
    /// A file that exists but neither it nor its backup parses.
    pub fn load(config: &BrokerConfig) -> Result<Self, LoadError> {
        let path = config.config_dir().join("consumerOffset.json");
        let table = persist::load(&path, ConsumerOffsetSerializeWrapper::decode)
            .map_err(LoadError)?
            .map(|wrapper| wrapper.offset_table)
            .unwrap_or_default();
        Ok(Self { table: Mutex::new(table), path })
    }

    fn key(topic: &str, group: &str) -> String {
        format!("{topic}@{group}")
    }

    /// Stores a committed offset.
    pub fn commit(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        self.table.lock().entry(Self::key(topic, group)).or_default().insert(queue_id, offset);
    }

    /// The committed offset, if any.
    pub fn query(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.table.lock().get(&Self::key(topic, group))?.get(&queue_id).copied()
    }

    /// Every topic the group has offsets for.
    pub fn topics_of_group(&self, group: &str) -> BTreeSet<String> {
        self.table
            .lock()
            .keys()
            .filter_map(|key| key.rsplit_once('@'))
            .filter(|(_, g)| *g == group)
            .map(|(topic, _)| topic.to_owned())
            .collect()
    }

    /// Every group with offsets for `topic`.
    pub fn groups_of_topic(&self, topic: &str) -> BTreeSet<String> {
        self.table
            .lock()
            .keys()
            .filter_map(|key| key.rsplit_once('@'))
            .filter(|(t, _)| *t == topic)
            .map(|(_, group)| group.to_owned())
            .collect()
    }

    /// Drops every offset of `group`.
    pub fn remove_group(&self, group: &str) {
        self.table.lock().retain(|key, _| key.rsplit_once('@').is_none_or(|(_, g)| g != group));
    }

    /// Drops every offset of `topic`.
    pub fn remove_topic(&self, topic: &str) {
        self.table.lock().retain(|key, _| key.rsplit_once('@').is_none_or(|(t, _)| t != topic));
    }

    /// The whole table.
    pub fn wrapper(&self) -> ConsumerOffsetSerializeWrapper {
        ConsumerOffsetSerializeWrapper {
            data_version: DataVersion::default(),
            offset_table: self.table.lock().clone(),
        }
    }

    /// Writes `consumerOffset.json`.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn persist(&self) -> std::io::Result<()> {
        let bytes = self.wrapper().encode();
        persist::write_atomic(&self.path, &bytes)
    }
}

/// `ScheduleMessageService`'s offsets: delay level → next schedule-queue offset to deliver,
/// persisted to `delayOffset.json` as `{"offsetTable":{1:12,...}}`.
#[derive(Debug)]
pub struct DelayOffsets {
    table: Mutex<BTreeMap<i32, i64>>,
    path: PathBuf,
}

impl DelayOffsets {
    /// Loads `delayOffset.json`.
    ///
    /// # Errors
    ///
    /// A file that exists but neither it nor its backup parses.
    pub fn load(config: &BrokerConfig) -> Result<Self, LoadError> {
        let path = config.config_dir().join("delayOffset.json");
        let table =
            persist::load(&path, parse_delay_offsets).map_err(LoadError)?.unwrap_or_default();
        Ok(Self { table: Mutex::new(table), path })
    }

    /// The next offset of `level`'s queue (0 if never delivered).
    pub fn get(&self, level: i32) -> i64 {
        self.table.lock().get(&level).copied().unwrap_or(0)
    }

    /// Records progress of `level`.
    pub fn set(&self, level: i32, offset: i64) {
        self.table.lock().insert(level, offset);
    }

    /// The file's text.
    pub fn encode(&self) -> Vec<u8> {
        let table = self.table.lock();
        let entries: Vec<String> =
            table.iter().map(|(level, offset)| format!("{level}:{offset}")).collect();
        format!("{{\"offsetTable\":{{{}}}}}", entries.join(",")).into_bytes()
    }

    /// Writes `delayOffset.json`.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn persist(&self) -> std::io::Result<()> {
        persist::write_atomic(&self.path, &self.encode())
    }
}

/// Reads `{"offsetTable":{1:12,...}}` (integer keys, quoted or not).
pub(crate) fn parse_delay_offsets(bytes: &[u8]) -> Result<BTreeMap<i32, i64>, String> {
    let value = ferromq_remoting::json::parse(bytes).map_err(|e| e.to_string())?;
    let table = value
        .as_object()
        .and_then(|object| object.get("offsetTable"))
        .and_then(|table| table.as_object())
        .ok_or("no offsetTable object")?;
    let mut offsets = BTreeMap::new();
    for (level, offset) in table.iter() {
        let level = level.to_i64_lenient().and_then(|level| i32::try_from(level).ok());
        match (level, offset.to_i64_lenient()) {
            (Some(level), Some(offset)) => offsets.insert(level, offset),
            _ => return Err("offsetTable entries must be integers".to_owned()),
        };
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> BrokerConfig {
        BrokerConfig::with_store_dir(dir)
    }

    #[test]
    fn builtin_topics_and_auto_create() {
        let dir = tempfile::tempdir().unwrap();
        let topics = TopicManager::load(&config(dir.path())).unwrap();
        assert_eq!(topics.get(AUTO_CREATE_TOPIC).unwrap().perm, 7);
        assert!(topics.is_system("DefaultCluster"));
        assert!(topics.is_system("rmq_sys_x"));
        let (created, fresh) = topics.create_in_send("T1", AUTO_CREATE_TOPIC, 4, 0).unwrap();
        assert!(fresh);
        assert_eq!((created.read_queue_nums, created.write_queue_nums, created.perm), (4, 4, 6));
        assert!(topics.create_in_send("T2", "T1", 4, 0).is_none(), "T1 has no INHERIT");
        let version = topics.data_version();
        assert_eq!(version.counter, 1);
        // Persisted and reloaded over the built-ins.
        let again = TopicManager::load(&config(dir.path())).unwrap();
        assert_eq!(again.get("T1"), Some(created));
        assert_eq!(again.data_version(), version);
    }

    #[test]
    fn groups_and_offsets_persist() {
        let dir = tempfile::tempdir().unwrap();
        let groups = GroupManager::load(&config(dir.path())).unwrap();
        assert!(groups.find_or_create("g1").is_some());
        assert!(groups.find_or_create("bad group!").is_none());
        let offsets = OffsetManager::load(&config(dir.path())).unwrap();
        offsets.commit("g1", "T", 3, 42);
        offsets.persist().unwrap();
        let reloaded = OffsetManager::load(&config(dir.path())).unwrap();
        assert_eq!(reloaded.query("g1", "T", 3), Some(42));
        assert_eq!(reloaded.topics_of_group("g1").into_iter().collect::<Vec<_>>(), ["T"]);
        assert!(GroupManager::load(&config(dir.path())).unwrap().get("g1").is_some());
        let delay = DelayOffsets::load(&config(dir.path())).unwrap();
        delay.set(3, 7);
        delay.set(1, 2);
        delay.persist().unwrap();
        assert_eq!(String::from_utf8(delay.encode()).unwrap(), r#"{"offsetTable":{1:2,3:7}}"#);
        let reloaded = DelayOffsets::load(&config(dir.path())).unwrap();
        assert_eq!((reloaded.get(1), reloaded.get(3), reloaded.get(5)), (2, 7, 0));
    }
}
