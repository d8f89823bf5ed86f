//! `BrokerConfig`: the broker's settings under RocketMQ's `broker.conf` keys
//! (`shared/spec/broker.md` §1), loaded from a Java properties file.
//!
//! Unlike Java, which silently keeps the default when a value does not parse, a bad value
//! is a start-up error naming the key, and an unknown key is logged as a warning.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferromq_store::{FlushMode, StoreConfig};

/// A configuration problem, found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value does not parse or is out of range.
    #[error("broker config key `{key}`: {value:?} is not valid: expected {expected}")]
    BadValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store rejects the resulting settings.
    #[error("store settings: {0}")]
    Store(#[from] ferromq_store::Error),
}

/// `brokerRole`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BrokerRole {
    /// `ASYNC_MASTER`: replies after the local put.
    #[default]
    AsyncMaster,
    /// `SYNC_MASTER`: waits for a slave's acknowledgement.
    SyncMaster,
    /// `SLAVE`: refuses writes, replicates from the master.
    Slave,
}

impl BrokerRole {
    /// The `broker.conf` spelling.
    pub fn name(self) -> &'static str {
        match self {
            BrokerRole::AsyncMaster => "ASYNC_MASTER",
            BrokerRole::SyncMaster => "SYNC_MASTER",
            BrokerRole::Slave => "SLAVE",
        }
    }
}

/// Everything a broker is told, with RocketMQ's defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BrokerConfig {
    /// `brokerClusterName` (`DefaultCluster`).
    pub broker_cluster_name: String,
    /// `brokerName` (the host name in Java; `broker-a` here when unknown).
    pub broker_name: String,
    /// `brokerId`: 0 master, ≥ 1 slave.
    pub broker_id: i64,
    /// `brokerIP1`: the address clients are given and the store host of records.
    pub broker_ip1: IpAddr,
    /// `brokerIP2`: the address published for HA.
    pub broker_ip2: IpAddr,
    /// `namesrvAddr`: `;`-separated `host:port` list; empty = no registration.
    pub namesrv_addr: Vec<String>,
    /// `listenPort` (10911).
    pub listen_port: u16,
    /// `haListenPort` (`listenPort + 1` when 0).
    pub ha_listen_port: u16,
    /// `brokerRole`.
    pub broker_role: BrokerRole,
    /// `brokerPermission` (6 = read + write).
    pub broker_permission: i32,
    /// `defaultTopicQueueNums` (8): TBW102's queue count.
    pub default_topic_queue_nums: i32,
    /// `autoCreateTopicEnable` (true).
    pub auto_create_topic_enable: bool,
    /// `clusterTopicEnable` (true).
    pub cluster_topic_enable: bool,
    /// `brokerTopicEnable` (true).
    pub broker_topic_enable: bool,
    /// `autoCreateSubscriptionGroup` (true).
    pub auto_create_subscription_group: bool,
    /// `regionId` (`DefaultRegion`), echoed in send responses.
    pub region_id: String,
    /// `traceOn` (true), echoed in send responses.
    pub trace_on: bool,
    /// `longPollingEnable` (true).
    pub long_polling_enable: bool,
    /// `shortPollingTimeMills` (1000 ms).
    pub short_polling_time: Duration,
    /// `notifyConsumerIdsChangedEnable` (true).
    pub notify_consumer_ids_changed_enable: bool,
    /// `flushConsumerOffsetInterval` (5000 ms).
    pub flush_consumer_offset_interval: Duration,
    /// `registerNameServerPeriod` (30000 ms, clamped to 10–60 s).
    pub register_name_server_period: Duration,
    /// `registerBrokerTimeoutMills` (24000 ms).
    pub register_broker_timeout: Duration,
    /// `channelExpiredTimeout` (120000 ms): clients silent this long are dropped.
    pub channel_expired_timeout: Duration,
    /// `slaveReadEnable` (false).
    pub slave_read_enable: bool,
    /// `sendThreadPoolQueueCapacity` (10000): puts waiting for the store beyond this are
    /// answered `SYSTEM_BUSY`.
    pub send_thread_pool_queue_capacity: usize,
    /// `maxReconsumeTimes` default of groups is in the group config; this is the
    /// `defaultQueryMaxNum` (32) used by unique-key queries.
    pub default_query_max_num: i32,
    /// `haMasterAddress`: the master's HA address for a slave (`host:port`); used only when
    /// at least 6 characters long, otherwise learnt from the name server (broker.md §11).
    pub ha_master_address: Option<String>,
    /// `haSendHeartbeatInterval` (5000 ms): idle slave offset report and idle master frame;
    /// also the slave's wait before reconnecting.
    pub ha_send_heartbeat_interval: Duration,
    /// `haHousekeepingInterval` (20000 ms): an HA connection silent this long is closed.
    pub ha_housekeeping_interval: Duration,
    /// `haTransferBatchSize` (32768 B, 1..=64 MiB): largest body of one master → slave frame.
    pub ha_transfer_batch_size: usize,
    /// `haSlaveFallbehindMax` (256 MiB): a SYNC_MASTER answers SLAVE_NOT_AVAILABLE when its
    /// best slave is this many bytes behind.
    pub ha_slave_fallbehind_max: u64,
    /// `slaveTimeout` (3000 ms): how long a SYNC_MASTER put waits for a slave.
    pub slave_timeout: Duration,
    /// The store's settings (`storePathRootDir`, `flushDiskType`, `fileReservedTime`, …).
    pub store: StoreConfig,
    /// The `broker.conf` file [`BrokerConfig::load_file`] read (Java's `brokerConfigPath`),
    /// if any: UPDATE_BROKER_CONFIG writes the keys it changes back into it.
    pub config_file: Option<PathBuf>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        Self::with_store_dir(home.join("store"))
    }
}

impl BrokerConfig {
    /// Defaults with the store under `dir`.
    pub fn with_store_dir(dir: impl Into<PathBuf>) -> Self {
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut config = Self {
            broker_cluster_name: "DefaultCluster".to_owned(),
            broker_name: "broker-a".to_owned(),
            broker_id: 0,
            broker_ip1: localhost,
            broker_ip2: localhost,
            namesrv_addr: namesrv_from_env(),
            listen_port: 10911,
            ha_listen_port: 0,
            broker_role: BrokerRole::AsyncMaster,
            broker_permission: 6,
            default_topic_queue_nums: 8,
            auto_create_topic_enable: true,
            cluster_topic_enable: true,
            broker_topic_enable: true,
            auto_create_subscription_group: true,
            region_id: "DefaultRegion".to_owned(),
            trace_on: true,
            long_polling_enable: true,
            short_polling_time: Duration::from_millis(1000),
            notify_consumer_ids_changed_enable: true,
            flush_consumer_offset_interval: Duration::from_millis(5000),
            register_name_server_period: Duration::from_millis(30_000),
            register_broker_timeout: Duration::from_millis(24_000),
            channel_expired_timeout: Duration::from_millis(120_000),
            slave_read_enable: false,
            send_thread_pool_queue_capacity: 10_000,
            default_query_max_num: 32,
            ha_master_address: None,
            ha_send_heartbeat_interval: Duration::from_millis(5000),
            ha_housekeeping_interval: Duration::from_millis(20_000),
            ha_transfer_batch_size: 32 * 1024,
            ha_slave_fallbehind_max: 256 << 20,
            slave_timeout: Duration::from_millis(3000),
            store: StoreConfig::new(dir),
            config_file: None,
        };
        config.sync_store_host();
        config
    }

    /// `brokerIP1:listenPort`: what clients dial and what records carry as store host.
    pub fn broker_addr(&self) -> SocketAddr {
        SocketAddr::new(self.broker_ip1, self.listen_port)
    }

    /// `brokerIP2:haListenPort`.
    pub fn ha_server_addr(&self) -> SocketAddr {
        let port = if self.ha_listen_port == 0 {
            self.listen_port.saturating_add(1)
        } else {
            self.ha_listen_port
        };
        SocketAddr::new(self.broker_ip2, port)
    }

    /// The store's config directory, `<storePathRootDir>/config`.
    pub fn config_dir(&self) -> PathBuf {
        self.store.store_path_root_dir.join("config")
    }

    /// Whether the broker takes writes (role is not SLAVE).
    pub fn is_master(&self) -> bool {
        self.broker_role != BrokerRole::Slave
    }

    /// Keeps the store's record host equal to `brokerIP1:listenPort`.
    pub fn sync_store_host(&mut self) {
        self.store.store_host = self.broker_addr();
    }

    /// Reads a `broker.conf` file and applies every key (see [`BrokerConfig::apply`]); the
    /// file becomes [`BrokerConfig::config_file`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`], or the first bad value.
    pub fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let bytes = std::fs::read(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        for (key, value) in parse_properties(&bytes) {
            if !self.apply(&key, &value)? {
                tracing::warn!(%key, file = %path.display(), "unknown broker config key ignored");
            }
        }
        // Absolute, so that a rewrite finds it whatever the working directory is by then.
        self.config_file = Some(std::path::absolute(path).unwrap_or_else(|_| path.to_owned()));
        Ok(())
    }

    /// Every key [`BrokerConfig::apply`] knows with its current value, in the order `apply`
    /// lists them: what GET_BROKER_CONFIG reports. Applying any of these pairs changes
    /// nothing. Durations are in milliseconds; an unset `haMasterAddress` is left out (Java
    /// omits null fields).
    pub fn to_properties(&self) -> Vec<(&'static str, String)> {
        let store = &self.store;
        let ms = |duration: Duration| duration.as_millis().to_string();
        let flush = match store.flush_disk_type {
            FlushMode::Async => "ASYNC_FLUSH",
            FlushMode::Sync => "SYNC_FLUSH",
        };
        let mut entries = vec![
            ("brokerClusterName", self.broker_cluster_name.clone()),
            ("brokerName", self.broker_name.clone()),
            ("brokerId", self.broker_id.to_string()),
            ("brokerIP1", self.broker_ip1.to_string()),
            ("brokerIP2", self.broker_ip2.to_string()),
            ("namesrvAddr", self.namesrv_addr.join(";")),
            ("listenPort", self.listen_port.to_string()),
            ("haListenPort", self.ha_listen_port.to_string()),
            ("brokerRole", self.broker_role.name().to_owned()),
            ("flushDiskType", flush.to_owned()),
            ("brokerPermission", self.broker_permission.to_string()),
            ("defaultTopicQueueNums", self.default_topic_queue_nums.to_string()),
            ("autoCreateTopicEnable", self.auto_create_topic_enable.to_string()),
            ("clusterTopicEnable", self.cluster_topic_enable.to_string()),
            ("brokerTopicEnable", self.broker_topic_enable.to_string()),
            ("autoCreateSubscriptionGroup", self.auto_create_subscription_group.to_string()),
            ("regionId", self.region_id.clone()),
            ("traceOn", self.trace_on.to_string()),
            ("longPollingEnable", self.long_polling_enable.to_string()),
            ("shortPollingTimeMills", ms(self.short_polling_time)),
            ("notifyConsumerIdsChangedEnable", self.notify_consumer_ids_changed_enable.to_string()),
            ("flushConsumerOffsetInterval", ms(self.flush_consumer_offset_interval)),
            ("registerNameServerPeriod", ms(self.register_name_server_period)),
            ("registerBrokerTimeoutMills", ms(self.register_broker_timeout)),
            ("channelExpiredTimeout", ms(self.channel_expired_timeout)),
            ("slaveReadEnable", self.slave_read_enable.to_string()),
            ("sendThreadPoolQueueCapacity", self.send_thread_pool_queue_capacity.to_string()),
            ("defaultQueryMaxNum", self.default_query_max_num.to_string()),
        ];
        if let Some(addr) = &self.ha_master_address {
            entries.push(("haMasterAddress", addr.clone()));
        }
        entries.extend([
            ("haSendHeartbeatInterval", ms(self.ha_send_heartbeat_interval)),
            ("haHousekeepingInterval", ms(self.ha_housekeeping_interval)),
            ("haTransferBatchSize", self.ha_transfer_batch_size.to_string()),
            ("haSlaveFallbehindMax", self.ha_slave_fallbehind_max.to_string()),
            ("slaveTimeout", ms(self.slave_timeout)),
            ("storePathRootDir", store.store_path_root_dir.display().to_string()),
            ("mappedFileSizeCommitLog", store.mapped_file_size_commit_log.to_string()),
            ("mappedFileSizeConsumeQueue", store.mapped_file_size_consume_queue.to_string()),
            ("flushIntervalCommitLog", store.flush_interval_commit_log_ms.to_string()),
            ("syncFlushTimeout", store.sync_flush_timeout_ms.to_string()),
            ("maxMessageSize", store.max_message_size.to_string()),
            ("fileReservedTime", store.file_reserved_time_hours.to_string()),
            ("deleteWhen", store.delete_when.clone()),
            ("diskMaxUsedSpaceRatio", store.disk_max_used_space_ratio.to_string()),
            ("messageDelayLevel", store.message_delay_level.clone()),
            ("messageIndexEnable", store.message_index_enable.to_string()),
            ("maxHashSlotNum", store.max_hash_slot_num.to_string()),
            ("maxIndexNum", store.max_index_num.to_string()),
            ("checkCRCOnRecover", store.check_crc_on_recover.to_string()),
            ("enabledAppendPropCRC", store.enabled_append_prop_crc.to_string()),
            ("accessMessageInMemoryMaxRatio", store.access_message_in_memory_max_ratio.to_string()),
        ]);
        entries
    }

    /// Applies one `key=value`; `Ok(false)` for a key this broker does not know.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BadValue`] naming the key.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let store = &mut self.store;
        match key {
            "brokerClusterName" => self.broker_cluster_name = value.to_owned(),
            "brokerName" => self.broker_name = value.to_owned(),
            "brokerId" => self.broker_id = parse(key, value, "an integer")?,
            "brokerIP1" => self.broker_ip1 = parse(key, value, "an IP address")?,
            "brokerIP2" => self.broker_ip2 = parse(key, value, "an IP address")?,
            "namesrvAddr" => self.namesrv_addr = parse_namesrv_addr(key, value)?,
            "listenPort" => self.listen_port = parse(key, value, "a port number")?,
            "haListenPort" => self.ha_listen_port = parse(key, value, "a port number")?,
            "brokerRole" => {
                self.broker_role = match value.trim() {
                    "ASYNC_MASTER" => BrokerRole::AsyncMaster,
                    "SYNC_MASTER" => BrokerRole::SyncMaster,
                    "SLAVE" => BrokerRole::Slave,
                    _ => return Err(bad(key, value, "ASYNC_MASTER, SYNC_MASTER or SLAVE")),
                }
            }
            "flushDiskType" => {
                store.flush_disk_type = match value.trim() {
                    "ASYNC_FLUSH" => FlushMode::Async,
                    "SYNC_FLUSH" => FlushMode::Sync,
                    _ => return Err(bad(key, value, "ASYNC_FLUSH or SYNC_FLUSH")),
                }
            }
            "brokerPermission" => {
                let perm: i32 = parse(key, value, "a permission 0..=7")?;
                if !(0..=7).contains(&perm) {
                    return Err(bad(key, value, "a permission 0..=7"));
                }
                self.broker_permission = perm;
            }
            "defaultTopicQueueNums" => {
                self.default_topic_queue_nums = parse(key, value, "a positive integer")?;
            }
            "autoCreateTopicEnable" => self.auto_create_topic_enable = parse_bool(key, value)?,
            "clusterTopicEnable" => self.cluster_topic_enable = parse_bool(key, value)?,
            "brokerTopicEnable" => self.broker_topic_enable = parse_bool(key, value)?,
            "autoCreateSubscriptionGroup" => {
                self.auto_create_subscription_group = parse_bool(key, value)?;
            }
            "regionId" => self.region_id = value.to_owned(),
            "traceOn" => self.trace_on = parse_bool(key, value)?,
            "longPollingEnable" => self.long_polling_enable = parse_bool(key, value)?,
            "shortPollingTimeMills" => self.short_polling_time = parse_ms(key, value)?,
            "notifyConsumerIdsChangedEnable" => {
                self.notify_consumer_ids_changed_enable = parse_bool(key, value)?;
            }
            "flushConsumerOffsetInterval" => {
                self.flush_consumer_offset_interval = parse_ms(key, value)?;
            }
            "registerNameServerPeriod" => {
                let period = parse_ms(key, value)?;
                self.register_name_server_period =
                    period.clamp(Duration::from_secs(10), Duration::from_secs(60));
            }
            "registerBrokerTimeoutMills" => self.register_broker_timeout = parse_ms(key, value)?,
            "channelExpiredTimeout" => self.channel_expired_timeout = parse_ms(key, value)?,
            "slaveReadEnable" => self.slave_read_enable = parse_bool(key, value)?,
            "sendThreadPoolQueueCapacity" => {
                self.send_thread_pool_queue_capacity = parse(key, value, "a positive integer")?;
            }
            "defaultQueryMaxNum" => {
                self.default_query_max_num = parse(key, value, "a positive integer")?;
            }
            // MessageStoreConfig keys of HA (broker.md §12.5).
            "haMasterAddress" => {
                let addr = value.trim();
                self.ha_master_address = (addr.len() >= 6).then(|| addr.to_owned());
            }
            "haSendHeartbeatInterval" => self.ha_send_heartbeat_interval = parse_ms(key, value)?,
            "haHousekeepingInterval" => self.ha_housekeeping_interval = parse_ms(key, value)?,
            "haTransferBatchSize" => {
                let size: usize = parse(key, value, "a size in bytes 1..=67108864")?;
                if !(1..=64 << 20).contains(&size) {
                    return Err(bad(key, value, "a size in bytes 1..=67108864"));
                }
                self.ha_transfer_batch_size = size;
            }
            "haSlaveFallbehindMax" => {
                self.ha_slave_fallbehind_max = parse(key, value, "a size in bytes")?;
            }
            "slaveTimeout" => self.slave_timeout = parse_ms(key, value)?,
            // MessageStoreConfig keys.
            "storePathRootDir" => store.store_path_root_dir = PathBuf::from(value.trim()),
            "mappedFileSizeCommitLog" => {
                store.mapped_file_size_commit_log = parse(key, value, "a size in bytes")?;
            }
            "mappedFileSizeConsumeQueue" => {
                store.mapped_file_size_consume_queue = parse(key, value, "a size in bytes")?;
            }
            "flushIntervalCommitLog" => {
                store.flush_interval_commit_log_ms = parse(key, value, "milliseconds")?;
            }
            "syncFlushTimeout" => store.sync_flush_timeout_ms = parse(key, value, "milliseconds")?,
            "maxMessageSize" => store.max_message_size = parse(key, value, "a size in bytes")?,
            "fileReservedTime" => store.file_reserved_time_hours = parse(key, value, "hours")?,
            "deleteWhen" => store.delete_when = value.trim().to_owned(),
            "diskMaxUsedSpaceRatio" => {
                store.disk_max_used_space_ratio = parse(key, value, "a percentage")?;
            }
            "messageDelayLevel" => store.message_delay_level = value.trim().to_owned(),
            "messageIndexEnable" => store.message_index_enable = parse_bool(key, value)?,
            "maxHashSlotNum" => store.max_hash_slot_num = parse(key, value, "an integer")?,
            "maxIndexNum" => store.max_index_num = parse(key, value, "an integer")?,
            "checkCRCOnRecover" => store.check_crc_on_recover = parse_bool(key, value)?,
            "enabledAppendPropCRC" => store.enabled_append_prop_crc = parse_bool(key, value)?,
            "accessMessageInMemoryMaxRatio" => {
                store.access_message_in_memory_max_ratio = parse(key, value, "a percentage")?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Role rules of `BrokerStartup` (broker.md §1.2 rule 6) and derived settings.
    ///
    /// # Errors
    ///
    /// A slave with `brokerId ≤ 0`, or store settings the store rejects.
    pub fn finish(&mut self) -> Result<(), ConfigError> {
        match self.broker_role {
            BrokerRole::AsyncMaster | BrokerRole::SyncMaster => self.broker_id = 0,
            BrokerRole::Slave if self.broker_id <= 0 => {
                return Err(bad("brokerId", &self.broker_id.to_string(), "≥ 1 for a SLAVE"));
            }
            BrokerRole::Slave => {}
        }
        for (key, interval) in [
            ("haSendHeartbeatInterval", self.ha_send_heartbeat_interval),
            ("haHousekeepingInterval", self.ha_housekeeping_interval),
        ] {
            if interval.is_zero() {
                return Err(bad(key, "0", "a positive number of milliseconds"));
            }
        }
        if self.default_topic_queue_nums <= 0 {
            let value = self.default_topic_queue_nums.to_string();
            return Err(bad("defaultTopicQueueNums", &value, "a positive integer"));
        }
        self.sync_store_host();
        self.store.validate()?;
        Ok(())
    }
}

fn namesrv_from_env() -> Vec<String> {
    std::env::var("NAMESRV_ADDR").map(|list| split_namesrv_addr(&list)).unwrap_or_default()
}

fn split_namesrv_addr(list: &str) -> Vec<String> {
    list.split(';').map(str::trim).filter(|addr| !addr.is_empty()).map(str::to_owned).collect()
}

fn parse_namesrv_addr(key: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    let addrs = split_namesrv_addr(value);
    for addr in &addrs {
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(bad(key, value, "a `;`-separated list of host:port"));
        }
    }
    Ok(addrs)
}

fn bad(key: &str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::BadValue { key: key.to_owned(), value: value.to_owned(), expected }
}

fn parse<T: std::str::FromStr>(
    key: &str,
    value: &str,
    expected: &'static str,
) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| bad(key, value, expected))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(key, value, "true or false")),
    }
}

fn parse_ms(key: &str, value: &str) -> Result<Duration, ConfigError> {
    parse::<u64>(key, value, "milliseconds").map(Duration::from_millis)
}

/// Parses a Java `.properties` file (`java.util.Properties.load`, ISO-8859-1 bytes) with
/// the name server's reader, the one parser of that syntax in the workspace. Later
/// duplicates win.
pub fn parse_properties(bytes: &[u8]) -> Vec<(String, String)> {
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let mut entries: Vec<(String, String)> = Vec::new();
    for (key, value) in ferromq_namesrv::properties::parse(&text) {
        match entries.iter_mut().find(|(existing, _)| *existing == key) {
            Some(entry) => entry.1 = value,
            None => entries.push((key, value)),
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_properties_syntax() {
        let text = b"# comment\n! also\nbrokerName = broker-b \nlistenPort:10921\n\
            namesrvAddr 127.0.0.1:9876;127.0.0.1:9877\nlong=a\\\n    b\nesc=\\u0041\\t\\=x\n\
            brokerName=last\n";
        let entries = parse_properties(text);
        let get = |k: &str| entries.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("brokerName"), Some("last"));
        assert_eq!(get("listenPort"), Some("10921"));
        assert_eq!(get("namesrvAddr"), Some("127.0.0.1:9876;127.0.0.1:9877"));
        assert_eq!(get("long"), Some("ab"));
        assert_eq!(get("esc"), Some("A\t=x"));
        assert_eq!(entries.len(), 5);
    }

    #[test]
    fn apply_known_keys_and_reject_bad_values() {
        let mut config = BrokerConfig::with_store_dir("/tmp/x");
        assert!(config.apply("flushDiskType", "SYNC_FLUSH").unwrap());
        assert_eq!(config.store.flush_disk_type, FlushMode::Sync);
        assert!(config.apply("listenPort", "10921").unwrap());
        assert!(!config.apply("noSuchKey", "1").unwrap());
        let error = config.apply("listenPort", "ten").unwrap_err().to_string();
        assert!(error.contains("listenPort"), "{error}");
        assert!(config.apply("brokerRole", "MASTER").is_err());
        assert!(config.apply("namesrvAddr", "localhost").is_err());
        assert!(config.apply("autoCreateTopicEnable", "yes").is_err());
        config.apply("brokerRole", "SLAVE").unwrap();
        assert!(config.finish().is_err(), "a slave needs brokerId >= 1");
        config.apply("brokerId", "1").unwrap();
        config.finish().unwrap();
        assert_eq!(config.store.store_host.port(), 10921);
        assert_eq!(config.ha_server_addr().port(), 10922);
    }

    #[test]
    fn to_properties_lists_every_key_and_applies_as_a_no_op() {
        let mut config = BrokerConfig::with_store_dir("/tmp/x");
        // A value for every key `apply` knows, none of them the default.
        let changes = [
            ("brokerClusterName", "C"),
            ("brokerName", "b"),
            ("brokerId", "2"),
            ("brokerIP1", "10.0.0.1"),
            ("brokerIP2", "10.0.0.2"),
            ("namesrvAddr", "n1:9876;n2:9876"),
            ("listenPort", "10921"),
            ("haListenPort", "10925"),
            ("brokerRole", "SLAVE"),
            ("flushDiskType", "SYNC_FLUSH"),
            ("brokerPermission", "4"),
            ("defaultTopicQueueNums", "3"),
            ("autoCreateTopicEnable", "false"),
            ("clusterTopicEnable", "false"),
            ("brokerTopicEnable", "false"),
            ("autoCreateSubscriptionGroup", "false"),
            ("regionId", "r"),
            ("traceOn", "false"),
            ("longPollingEnable", "false"),
            ("shortPollingTimeMills", "7"),
            ("notifyConsumerIdsChangedEnable", "false"),
            ("flushConsumerOffsetInterval", "8"),
            ("registerNameServerPeriod", "20000"),
            ("registerBrokerTimeoutMills", "9"),
            ("channelExpiredTimeout", "10"),
            ("slaveReadEnable", "true"),
            ("sendThreadPoolQueueCapacity", "11"),
            ("defaultQueryMaxNum", "12"),
            ("haMasterAddress", "10.0.0.9:10912"),
            ("haSendHeartbeatInterval", "13"),
            ("haHousekeepingInterval", "14"),
            ("haTransferBatchSize", "15"),
            ("haSlaveFallbehindMax", "16"),
            ("slaveTimeout", "17"),
            ("storePathRootDir", "/tmp/y"),
            ("mappedFileSizeCommitLog", "1048576"),
            ("mappedFileSizeConsumeQueue", "6000"),
            ("flushIntervalCommitLog", "18"),
            ("syncFlushTimeout", "19"),
            ("maxMessageSize", "20"),
            ("fileReservedTime", "21"),
            ("deleteWhen", "05"),
            ("diskMaxUsedSpaceRatio", "22"),
            ("messageDelayLevel", "1s 2s"),
            ("messageIndexEnable", "false"),
            ("maxHashSlotNum", "23"),
            ("maxIndexNum", "24"),
            ("checkCRCOnRecover", "false"),
            ("enabledAppendPropCRC", "true"),
            ("accessMessageInMemoryMaxRatio", "25"),
        ];
        for (key, value) in changes {
            assert!(config.apply(key, value).unwrap(), "{key} is a key");
        }
        let listed = config.to_properties();
        let keys: Vec<&str> = listed.iter().map(|(key, _)| *key).collect();
        let changed: Vec<&str> = changes.iter().map(|(key, _)| *key).collect();
        assert_eq!(keys, changed, "to_properties lists the keys of apply, in its order");
        for ((key, value), (_, expected)) in listed.iter().zip(changes) {
            assert_eq!(value, expected, "{key}");
        }
        let mut again = BrokerConfig::with_store_dir("/tmp/other");
        for (key, value) in &listed {
            again.apply(key, value).unwrap();
        }
        assert_eq!(again.to_properties(), listed);
        let defaults = BrokerConfig::with_store_dir("/tmp/x").to_properties();
        assert!(defaults.iter().all(|(key, _)| *key != "haMasterAddress"), "unset is left out");
    }

    #[test]
    fn load_file_remembers_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.conf");
        std::fs::write(&path, "brokerName=broker-x\n").unwrap();
        let mut config = BrokerConfig::with_store_dir(dir.path());
        config.load_file(&path).unwrap();
        assert_eq!(config.broker_name, "broker-x");
        assert_eq!(config.config_file.as_deref(), Some(path.as_path()));
    }

    #[test]
    fn ha_keys() {
        let mut config = BrokerConfig::with_store_dir("/tmp/x");
        config.apply("haMasterAddress", "10.0.0.1:10912").unwrap();
        assert_eq!(config.ha_master_address.as_deref(), Some("10.0.0.1:10912"));
        config.apply("haMasterAddress", "x:1").unwrap();
        assert_eq!(config.ha_master_address, None, "shorter than 6 characters is ignored");
        config.apply("slaveTimeout", "500").unwrap();
        assert_eq!(config.slave_timeout, Duration::from_millis(500));
        config.apply("haTransferBatchSize", "65536").unwrap();
        assert_eq!(config.ha_transfer_batch_size, 65536);
        assert!(config.apply("haTransferBatchSize", "0").is_err());
        config.apply("haHousekeepingInterval", "0").unwrap();
        assert!(config.finish().is_err());
    }
}
