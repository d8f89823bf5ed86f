//! `ClientConfig`: what every producer, consumer and admin client shares (client.md §2.1),
//! with the Java client's defaults.

use std::time::Duration;

pub use ferromq_remoting::frame::SerializeType;

use crate::error::{Error, Result};

/// The `version` ordinal sent in every request: 4.9.8's, so brokers and name servers treat
/// this client exactly like a Java 4.9.8 client (client.md §2.9).
pub const CLIENT_VERSION: i32 = 409;

/// Instance name that is replaced by `<pid>#<n>` for producers and clustering consumers.
pub const DEFAULT_INSTANCE_NAME: &str = "DEFAULT";

/// Settings shared by every kind of client. Durations are wall-clock; each field names
/// the Java `ClientConfig` field it mirrors.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `namesrvAddr`: name servers as `host:port`. Default: the `NAMESRV_ADDR` environment
    /// variable split on `;`, else empty (then every route lookup fails with
    /// [`Error::NoNameServer`]).
    pub namesrv_addr: Vec<String>,
    /// `clientIP`: the address in the client id. Default: this host's outward address.
    pub client_ip: String,
    /// `instanceName`. Default `DEFAULT`, replaced by `<pid>#<n>` for producers and
    /// clustering consumers so each gets its own client id.
    pub instance_name: String,
    /// `unitName`: appended to the client id when set. Default none.
    pub unit_name: Option<String>,
    /// `pollNameServerInterval`: route refresh period. Default 30 s; minimum 10 ms.
    pub poll_name_server_interval: Duration,
    /// `heartbeatBrokerInterval`: heartbeat period. Default 30 s; minimum 10 ms.
    pub heartbeat_broker_interval: Duration,
    /// `persistConsumerOffsetInterval`: consumer offset commit period. Default 5 s; minimum
    /// 10 ms.
    pub persist_consumer_offset_interval: Duration,
    /// `pullTimeDelayMillsWhenException`: pause of a queue's pulls after an error. Default
    /// 1 s.
    pub pull_time_delay_when_exception: Duration,
    /// `mqClientApiTimeout`: timeout of name-server calls, heartbeats, consumer lists and
    /// unregistering. Default 3 s.
    pub mq_client_api_timeout: Duration,
    /// `rocketmq.client.rebalance.waitInterval`: rebalance period. Default 20 s; minimum
    /// 10 ms.
    pub rebalance_interval: Duration,
    /// Connect timeout of every connection. Default 3 s.
    pub connect_timeout: Duration,
    /// Header serialization of requests: JSON (Java's default) or RocketMQ's binary form
    /// (cheaper to encode; every Java broker decodes both). Default JSON.
    pub serialize_type: SerializeType,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            namesrv_addr: namesrv_from_env(),
            client_ip: crate::util::local_ip().to_string(),
            instance_name: DEFAULT_INSTANCE_NAME.to_owned(),
            unit_name: None,
            poll_name_server_interval: Duration::from_secs(30),
            heartbeat_broker_interval: Duration::from_secs(30),
            persist_consumer_offset_interval: Duration::from_secs(5),
            pull_time_delay_when_exception: Duration::from_secs(1),
            mq_client_api_timeout: Duration::from_secs(3),
            rebalance_interval: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(3),
            serialize_type: SerializeType::Json,
        }
    }
}

impl ClientConfig {
    /// Defaults with the given name servers (`;`-separated, as Java accepts them).
    pub fn with_namesrv(namesrv_addr: &str) -> Self {
        Self { namesrv_addr: split_addrs(namesrv_addr), ..Self::default() }
    }

    /// Checks every field's range.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        for addr in &self.namesrv_addr {
            if !is_host_port(addr) {
                return Err(Error::InvalidConfig {
                    field: "namesrv_addr",
                    value: addr.clone(),
                    expected: "host:port entries",
                });
            }
        }
        if self.instance_name.is_empty() {
            return Err(Error::InvalidConfig {
                field: "instance_name",
                value: String::new(),
                expected: "a non-empty name",
            });
        }
        let min = Duration::from_millis(10);
        let periods = [
            ("poll_name_server_interval", self.poll_name_server_interval),
            ("heartbeat_broker_interval", self.heartbeat_broker_interval),
            ("persist_consumer_offset_interval", self.persist_consumer_offset_interval),
            ("rebalance_interval", self.rebalance_interval),
            ("mq_client_api_timeout", self.mq_client_api_timeout),
            ("connect_timeout", self.connect_timeout),
        ];
        for (field, value) in periods {
            if value < min {
                return Err(Error::InvalidConfig {
                    field,
                    value: format!("{value:?}"),
                    expected: "at least 10 ms",
                });
            }
        }
        Ok(())
    }

    /// The client id: `clientIP@instanceName[@unitName]` (client.md §2.2).
    pub fn client_id(&self) -> String {
        let mut id = format!("{}@{}", self.client_ip, self.instance_name);
        if let Some(unit) = self.unit_name.as_deref().filter(|unit| !unit.trim().is_empty()) {
            id.push('@');
            id.push_str(unit);
        }
        id
    }

    /// Replaces the `DEFAULT` instance name by a name unique to this process and client
    /// (Java: `<pid>#<nanoTime>`; here `<pid>#<nanos>` plus a counter, so clients created in
    /// the same nanosecond still differ).
    pub(crate) fn change_instance_name_to_pid(&mut self) {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        if self.instance_name == DEFAULT_INSTANCE_NAME {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos();
            self.instance_name = format!("{}#{}{n}", std::process::id(), nanos);
        }
    }
}

/// Splits a `;`-separated address list, dropping blanks.
pub fn split_addrs(list: &str) -> Vec<String> {
    list.split(';').map(str::trim).filter(|addr| !addr.is_empty()).map(str::to_owned).collect()
}

fn namesrv_from_env() -> Vec<String> {
    std::env::var("NAMESRV_ADDR").map(|list| split_addrs(&list)).unwrap_or_default()
}

fn is_host_port(addr: &str) -> bool {
    match addr.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_and_instance_name() {
        let mut config = ClientConfig { client_ip: "10.0.0.5".into(), ..ClientConfig::default() };
        assert_eq!(config.client_id(), "10.0.0.5@DEFAULT");
        config.unit_name = Some("unit1".into());
        assert_eq!(config.client_id(), "10.0.0.5@DEFAULT@unit1");
        config.unit_name = None;
        config.change_instance_name_to_pid();
        assert!(config.instance_name.starts_with(&format!("{}#", std::process::id())));
        let mut other = ClientConfig { client_ip: "10.0.0.5".into(), ..ClientConfig::default() };
        other.change_instance_name_to_pid();
        assert_ne!(config.client_id(), other.client_id());
    }

    #[test]
    fn validate_names_the_bad_field() {
        let config = ClientConfig::with_namesrv("127.0.0.1:9876;127.0.0.2:9876");
        assert_eq!(config.namesrv_addr.len(), 2);
        config.validate().unwrap();
        let bad = ClientConfig::with_namesrv("localhost");
        assert!(bad.validate().unwrap_err().to_string().contains("namesrv_addr"));
        let bad = ClientConfig { rebalance_interval: Duration::ZERO, ..config };
        assert!(bad.validate().unwrap_err().to_string().contains("rebalance_interval"));
    }
}
