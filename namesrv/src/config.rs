//! `NamesrvConfig`: the name server's settings under RocketMQ's `namesrv.properties` keys.
//!
//! Java reads one properties file into three objects (`NamesrvConfig`, `NettyServerConfig`,
//! `NettyClientConfig`) and ignores what does not fit. Here every key is one of three kinds:
//! - **interpreted**: a field of [`NamesrvConfig`], parsed strictly (a bad value is an error
//!   naming the key);
//! - **accepted**: a Java tuning key with no meaning here (thread pools, Netty buffers); kept
//!   in [`NamesrvConfig::extra_properties`] so GET_NAMESRV_CONFIG echoes it, otherwise unused;
//! - **unknown**: logged as a warning and kept in `extra_properties` too, as Java keeps it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::properties;

/// Java tuning keys that are accepted and kept but mean nothing to this name server.
const ACCEPTED_JAVA_KEYS: &[&str] = &[
    "clientRequestThreadPoolNums",
    "defaultThreadPoolNums",
    "clientRequestThreadPoolQueueCapacity",
    "defaultThreadPoolQueueCapacity",
    "unRegisterBrokerQueueCapacity",
    "serverWorkerThreads",
    "serverCallbackExecutorThreads",
    "serverSelectorThreads",
    "serverOnewaySemaphoreValue",
    "serverAsyncSemaphoreValue",
    "serverSocketSndBufSize",
    "serverSocketRcvBufSize",
    "writeBufferHighWaterMark",
    "writeBufferLowWaterMark",
    "serverSocketBacklog",
    "serverNettyWorkerGroupEnable",
    "serverPooledByteBufAllocatorEnable",
    "enableShutdownGracefully",
    "shutdownWaitTimeSeconds",
    "useEpollNativeSelector",
    "useTLS",
    "clientWorkerThreads",
    "clientCallbackExecutorThreads",
    "clientOnewaySemaphoreValue",
    "clientAsyncSemaphoreValue",
    "connectTimeoutMillis",
    "channelNotActiveInterval",
    "clientChannelMaxIdleTimeSeconds",
    "clientSocketSndBufSize",
    "clientSocketRcvBufSize",
    "clientPooledByteBufAllocatorEnable",
    "clientCloseSocketIfTimeout",
];

/// The name server's configuration, with RocketMQ's defaults (`NamesrvConfig` and the
/// name-server parts of `NettyServerConfig`). Each field names its properties key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamesrvConfig {
    /// `listenPort`: TCP port. Default 9876. The binary binds it; [`crate::run`] takes an
    /// already bound listener.
    pub listen_port: u16,
    /// `bindAddress`: address the binary binds. Default `0.0.0.0`.
    pub bind_address: String,
    /// `rocketmqHome`: informational only. Default the `ROCKETMQ_HOME` environment variable.
    pub rocketmq_home: Option<String>,
    /// `kvConfigPath`: the KV config file. Default `$HOME/namesrv/kvConfig.json`.
    pub kv_config_path: PathBuf,
    /// `configStorePath`: where UPDATE_NAMESRV_CONFIG persists the configuration. Default
    /// `$HOME/namesrv/namesrv.properties`; the file given with `-c` when loaded from one.
    pub config_store_path: PathBuf,
    /// `productEnvName`: informational only. Default `center`.
    pub product_env_name: String,
    /// `clusterTest`: Java's cluster-test route forwarding; must stay false (not supported).
    pub cluster_test: bool,
    /// `orderMessageEnable`: fill `orderTopicConf` of routes from the `ORDER_TOPIC_CONFIG`
    /// KV namespace. Default false.
    pub order_message_enable: bool,
    /// `returnOrderTopicConfigToBroker`: answer REGISTER_BROKER with the `ORDER_TOPIC_CONFIG`
    /// KV namespace. Default true.
    pub return_order_topic_config_to_broker: bool,
    /// `scanNotActiveBrokerInterval`: period of the scan that drops silent brokers, ms.
    /// Default 10,000; allowed 10..=3,600,000. (Java 5.x uses 5,000, 4.9 used 10,000.)
    pub scan_not_active_broker_interval_ms: u64,
    /// `supportActingMaster`: present a group's lowest-id slave as master in routes when the
    /// master is gone and the group's queues are read-only. Default false.
    pub support_acting_master: bool,
    /// `enableAllTopicList`: serve GET_ALL_TOPIC_LIST_FROM_NAMESERVER. Default true.
    pub enable_all_topic_list: bool,
    /// `enableTopicList`: serve GET_TOPICS_BY_CLUSTER and the unit topic lists. Default true.
    pub enable_topic_list: bool,
    /// `notifyMinBrokerIdChanged`: Java tells brokers when their group's lowest id changes.
    /// Accepted; this name server never sends that notification.
    pub notify_min_broker_id_changed: bool,
    /// `enableControllerInNamesrv`: the embedded DLedger controller; must stay false (not
    /// supported).
    pub enable_controller_in_namesrv: bool,
    /// `needWaitForService`: answer GET_ROUTEINFO_BY_TOPIC with SYSTEM_ERROR for the first
    /// `waitSecondsForService` seconds, so brokers can register first. Default false.
    pub need_wait_for_service: bool,
    /// `waitSecondsForService`: see `needWaitForService`, s. Default 45; at most 86,400.
    pub wait_seconds_for_service: u32,
    /// `deleteTopicWithBrokerRegistration`: a master's registration removes its topics that
    /// the registration no longer lists. Default false.
    pub delete_topic_with_broker_registration: bool,
    /// `configBlackList`: `;`-separated keys UPDATE_NAMESRV_CONFIG may not change (on top of
    /// `configBlackList`, `configStorePath`, `kvConfigPath` and `rocketmqHome`). Default
    /// `configBlackList;configStorePath;kvConfigPath`.
    pub config_black_list: String,
    /// `serverChannelMaxIdleTimeSeconds`: a connection idle this long is closed (and a broker
    /// on it dropped), s. Default 120; allowed 1..=86,400.
    pub server_channel_max_idle_time_seconds: u32,
    /// Keys that are not interpreted: Java tuning keys and unknown keys, kept as given.
    pub extra_properties: BTreeMap<String, String>,
}

impl Default for NamesrvConfig {
    fn default() -> Self {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        Self {
            listen_port: 9876,
            bind_address: "0.0.0.0".to_owned(),
            rocketmq_home: std::env::var("ROCKETMQ_HOME").ok(),
            kv_config_path: home.join("namesrv").join("kvConfig.json"),
            config_store_path: home.join("namesrv").join("namesrv.properties"),
            product_env_name: "center".to_owned(),
            cluster_test: false,
            order_message_enable: false,
            return_order_topic_config_to_broker: true,
            scan_not_active_broker_interval_ms: 10_000,
            support_acting_master: false,
            enable_all_topic_list: true,
            enable_topic_list: true,
            notify_min_broker_id_changed: false,
            enable_controller_in_namesrv: false,
            need_wait_for_service: false,
            wait_seconds_for_service: 45,
            delete_topic_with_broker_registration: false,
            config_black_list: "configBlackList;configStorePath;kvConfigPath".to_owned(),
            server_channel_max_idle_time_seconds: 120,
            extra_properties: BTreeMap::new(),
        }
    }
}

/// What [`NamesrvConfig::set`] did with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// A field of the config.
    Interpreted,
    /// A Java tuning key, kept in `extra_properties`.
    Accepted,
    /// Not a name-server key; kept in `extra_properties`.
    Unknown,
}

/// A config field type: parsed strictly from, and written back to, properties text.
trait PropertyValue: Sized {
    const EXPECTED: &'static str;
    fn parse_property(raw: &str) -> Option<Self>;
    fn format_property(&self) -> Option<String>;
}

impl PropertyValue for bool {
    const EXPECTED: &'static str = "true or false";
    fn parse_property(raw: &str) -> Option<Self> {
        match raw.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
    fn format_property(&self) -> Option<String> {
        Some(self.to_string())
    }
}

macro_rules! integer_property {
    ($($ty:ty),*) => {$(
        impl PropertyValue for $ty {
            const EXPECTED: &'static str = concat!("an integer that fits ", stringify!($ty));
            fn parse_property(raw: &str) -> Option<Self> {
                raw.parse().ok()
            }
            fn format_property(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}
integer_property!(u16, u32, u64);

impl PropertyValue for String {
    const EXPECTED: &'static str = "a string";
    fn parse_property(raw: &str) -> Option<Self> {
        Some(raw.to_owned())
    }
    fn format_property(&self) -> Option<String> {
        Some(self.clone())
    }
}

impl PropertyValue for Option<String> {
    const EXPECTED: &'static str = "a string";
    fn parse_property(raw: &str) -> Option<Self> {
        Some(Some(raw.to_owned()))
    }
    fn format_property(&self) -> Option<String> {
        self.clone()
    }
}

impl PropertyValue for PathBuf {
    const EXPECTED: &'static str = "a non-empty path";
    fn parse_property(raw: &str) -> Option<Self> {
        (!raw.is_empty()).then(|| PathBuf::from(raw))
    }
    fn format_property(&self) -> Option<String> {
        Some(self.display().to_string())
    }
}

/// Generates `set_interpreted` and `interpreted_properties` from one key table.
macro_rules! config_keys {
    ($($field:ident = $key:literal,)*) => {
        impl NamesrvConfig {
            /// Sets an interpreted key; `Ok(false)` when `key` is not one.
            fn set_interpreted(&mut self, key: &str, raw: &str) -> Result<bool> {
                match key {
                    $($key => {
                        self.$field = PropertyValue::parse_property(raw).ok_or_else(|| {
                            Error::invalid_config(key, raw, expected_of(&self.$field))
                        })?;
                        Ok(true)
                    })*
                    _ => Ok(false),
                }
            }

            /// Every interpreted key with its current value (unset optional ones omitted).
            fn interpreted_properties(&self) -> BTreeMap<String, String> {
                let mut entries = BTreeMap::new();
                $(if let Some(value) = self.$field.format_property() {
                    entries.insert($key.to_owned(), value);
                })*
                entries
            }
        }
    };
}

fn expected_of<T: PropertyValue>(_field: &T) -> &'static str {
    T::EXPECTED
}

config_keys! {
    listen_port = "listenPort",
    bind_address = "bindAddress",
    rocketmq_home = "rocketmqHome",
    kv_config_path = "kvConfigPath",
    config_store_path = "configStorePath",
    product_env_name = "productEnvName",
    cluster_test = "clusterTest",
    order_message_enable = "orderMessageEnable",
    return_order_topic_config_to_broker = "returnOrderTopicConfigToBroker",
    scan_not_active_broker_interval_ms = "scanNotActiveBrokerInterval",
    support_acting_master = "supportActingMaster",
    enable_all_topic_list = "enableAllTopicList",
    enable_topic_list = "enableTopicList",
    notify_min_broker_id_changed = "notifyMinBrokerIdChanged",
    enable_controller_in_namesrv = "enableControllerInNamesrv",
    need_wait_for_service = "needWaitForService",
    wait_seconds_for_service = "waitSecondsForService",
    delete_topic_with_broker_registration = "deleteTopicWithBrokerRegistration",
    config_black_list = "configBlackList",
    server_channel_max_idle_time_seconds = "serverChannelMaxIdleTimeSeconds",
}

impl NamesrvConfig {
    /// Defaults overlaid with the `.properties` file at `path`, validated. As in Java,
    /// `configStorePath` becomes `path`, so UPDATE_NAMESRV_CONFIG rewrites that file. Unknown
    /// keys are logged as warnings and kept.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read; [`Error::InvalidConfig`] naming the key
    /// for a value that does not parse or is out of range.
    pub fn from_properties_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::Io { path: path.to_owned(), source })?;
        let mut config = Self::default();
        for key in config.apply_properties(&text)? {
            tracing::warn!(key, file = %path.display(), "unknown name server config key; ignored");
        }
        config.config_store_path = path.to_owned();
        config.validate()?;
        Ok(config)
    }

    /// Applies every entry of properties `text` (later entries win) and returns the unknown
    /// keys. Nothing is changed when an entry is invalid. The result is not validated; call
    /// [`NamesrvConfig::validate`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first key whose value does not parse.
    pub fn apply_properties(&mut self, text: &str) -> Result<Vec<String>> {
        let mut updated = self.clone();
        let mut unknown = Vec::new();
        for (key, value) in properties::parse(text) {
            if updated.set(&key, &value)? == KeyKind::Unknown {
                unknown.push(key);
            }
        }
        *self = updated;
        Ok(unknown)
    }

    /// Applies an UPDATE_NAMESRV_CONFIG: like Java's `Configuration.update`, only keys the
    /// config already has change (others are ignored and returned); nothing changes unless
    /// every value parses and the result validates.
    pub(crate) fn update(&mut self, entries: &[(String, String)]) -> Result<Vec<String>> {
        let mut updated = self.clone();
        let known = self.to_properties();
        let mut ignored = Vec::new();
        for (key, value) in entries {
            if known.contains_key(key) || ACCEPTED_JAVA_KEYS.contains(&key.as_str()) {
                updated.set(key, value)?;
            } else {
                ignored.push(key.clone());
            }
        }
        updated.validate()?;
        *self = updated;
        Ok(ignored)
    }

    /// Sets one key. Values are trimmed first (Java trims string values; numbers and
    /// booleans must then be exact).
    pub(crate) fn set(&mut self, key: &str, raw: &str) -> Result<KeyKind> {
        let raw = raw.trim();
        if self.set_interpreted(key, raw)? {
            return Ok(KeyKind::Interpreted);
        }
        self.extra_properties.insert(key.to_owned(), raw.to_owned());
        if ACCEPTED_JAVA_KEYS.contains(&key) { Ok(KeyKind::Accepted) } else { Ok(KeyKind::Unknown) }
    }

    /// Checks ranges and unsupported features.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the key and the allowed values.
    pub fn validate(&self) -> Result<()> {
        let interval = self.scan_not_active_broker_interval_ms;
        if !(10..=3_600_000).contains(&interval) {
            return Err(Error::invalid_config(
                "scanNotActiveBrokerInterval",
                &interval.to_string(),
                "10..=3600000 ms",
            ));
        }
        if self.wait_seconds_for_service > 86_400 {
            return Err(Error::invalid_config(
                "waitSecondsForService",
                &self.wait_seconds_for_service.to_string(),
                "0..=86400 s",
            ));
        }
        let idle = self.server_channel_max_idle_time_seconds;
        if !(1..=86_400).contains(&idle) {
            return Err(Error::invalid_config(
                "serverChannelMaxIdleTimeSeconds",
                &idle.to_string(),
                "1..=86400 s",
            ));
        }
        if self.cluster_test {
            return Err(Error::invalid_config("clusterTest", "true", "false (not supported)"));
        }
        if self.enable_controller_in_namesrv {
            return Err(Error::invalid_config(
                "enableControllerInNamesrv",
                "true",
                "false (the embedded controller is not supported)",
            ));
        }
        Ok(())
    }

    /// Every key and value, sorted, as GET_NAMESRV_CONFIG reports them: the interpreted keys
    /// plus `extra_properties`.
    pub fn to_properties(&self) -> BTreeMap<String, String> {
        let mut entries = self.extra_properties.clone();
        entries.extend(self.interpreted_properties());
        entries
    }

    /// [`NamesrvConfig::to_properties`] as properties text.
    pub fn to_properties_text(&self) -> String {
        properties::format(&self.to_properties())
    }

    /// Keys UPDATE_NAMESRV_CONFIG refuses to change.
    pub(crate) fn black_list(&self) -> Vec<String> {
        let mut keys: Vec<String> =
            ["configBlackList", "configStorePath", "kvConfigPath", "rocketmqHome"]
                .into_iter()
                .map(str::to_owned)
                .collect();
        keys.extend(
            self.config_black_list
                .split(';')
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(str::to_owned),
        );
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_rocketmqs() {
        let config = NamesrvConfig::default();
        assert_eq!(config.listen_port, 9876);
        assert!(config.kv_config_path.ends_with("namesrv/kvConfig.json"));
        assert!(config.return_order_topic_config_to_broker);
        assert!(!config.order_message_enable);
        assert_eq!(config.scan_not_active_broker_interval_ms, 10_000);
        config.validate().unwrap();
    }

    #[test]
    fn properties_overlay_defaults_and_report_unknown_keys() {
        let mut config = NamesrvConfig::default();
        let unknown = config
            .apply_properties(
                "listenPort=9877\nkvConfigPath = /data/kv.json \norderMessageEnable=TRUE\n\
                 serverWorkerThreads=16\nnoSuchKey=1\nscanNotActiveBrokerInterval=5000\n",
            )
            .unwrap();
        assert_eq!(unknown, vec!["noSuchKey".to_owned()]);
        assert_eq!(config.listen_port, 9877);
        assert_eq!(config.kv_config_path, PathBuf::from("/data/kv.json"));
        assert!(config.order_message_enable);
        assert_eq!(config.scan_not_active_broker_interval_ms, 5000);
        assert_eq!(
            config.extra_properties.get("serverWorkerThreads").map(String::as_str),
            Some("16")
        );
        let text = config.to_properties_text();
        assert!(text.contains("listenPort=9877\n"), "{text}");
        assert!(text.contains("noSuchKey=1\n"), "{text}");
    }

    #[test]
    fn bad_values_are_errors_naming_the_key_and_change_nothing() {
        let mut config = NamesrvConfig::default();
        let err = config.apply_properties("listenPort=9877\norderMessageEnable=yes\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid config: orderMessageEnable is \"yes\", expected true or false"
        );
        assert_eq!(config.listen_port, 9876, "a failed update changes nothing");
        let err = config.apply_properties("listenPort=70000").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid config: listenPort is \"70000\", expected an integer that fits u16"
        );
        config.apply_properties("scanNotActiveBrokerInterval=1").unwrap();
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("scanNotActiveBrokerInterval"), "{err}");
    }

    #[test]
    fn unsupported_features_are_refused() {
        let config = NamesrvConfig { enable_controller_in_namesrv: true, ..Default::default() };
        assert!(config.validate().unwrap_err().to_string().contains("enableControllerInNamesrv"));
    }

    #[test]
    fn loads_a_file_and_remembers_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("namesrv.properties");
        std::fs::write(&path, "listenPort=10000\n# comment\nwaitSecondsForService=3\n").unwrap();
        let config = NamesrvConfig::from_properties_file(&path).unwrap();
        assert_eq!(config.listen_port, 10000);
        assert_eq!(config.wait_seconds_for_service, 3);
        assert_eq!(config.config_store_path, path);
        let missing = NamesrvConfig::from_properties_file(&dir.path().join("absent")).unwrap_err();
        assert!(missing.to_string().contains("absent"), "{missing}");
    }

    #[test]
    fn black_list_includes_the_fixed_keys() {
        let config = NamesrvConfig { config_black_list: "a; b;".into(), ..Default::default() };
        let keys = config.black_list();
        for key in ["configBlackList", "configStorePath", "kvConfigPath", "rocketmqHome", "a", "b"]
        {
            assert!(keys.iter().any(|k| k == key), "{key}");
        }
    }
}
