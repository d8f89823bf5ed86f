//! [`run`]: wires the state, the expiry scan and the transport together.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferromq_remoting::transport::{TransportConfig, serve};
use tokio::net::TcpListener;

use crate::config::NamesrvConfig;
use crate::kv_config::KvConfigManager;
use crate::processor::NamesrvProcessor;

/// Serves the name server protocol on `listener` until `shutdown` resolves, then stops
/// accepting, lets in-flight requests finish (up to 10 s) and returns.
///
/// Loads the KV config from `config.kv_config_path` first (a missing file is empty), and
/// scans for silent brokers every `config.scan_not_active_broker_interval_ms`. The
/// listener's own address is used as is: `config.listen_port` and `bind_address` only
/// matter to whoever bound it.
///
/// # Errors
///
/// `InvalidData` when the config does not validate or the KV file is malformed, or the I/O
/// error of reading the KV file. Once serving, nothing fails: bad requests are answered and
/// bad connections closed.
pub async fn run(
    listener: TcpListener,
    config: NamesrvConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    config.validate()?;
    let kv = KvConfigManager::load(&config.kv_config_path)?;
    let transport = TransportConfig {
        idle_timeout: Duration::from_secs(u64::from(config.server_channel_max_idle_time_seconds)),
        ..TransportConfig::default()
    };
    let addr = listener.local_addr()?;
    let processor = Arc::new(NamesrvProcessor::new(config, kv));
    let scan = tokio::spawn(scan_loop(processor.clone()));
    tracing::info!(%addr, "name server started");
    let report = serve(listener, processor, transport, shutdown).await;
    scan.abort();
    tracing::info!(%addr, accepted = report.accepted, refused = report.refused, "name server stopped");
    Ok(())
}

/// Drops brokers silent for longer than their heartbeat timeout, forever. The interval is
/// read each round, so UPDATE_NAMESRV_CONFIG changes it.
async fn scan_loop(processor: Arc<NamesrvProcessor>) {
    loop {
        let interval_ms = processor.config.read().scan_not_active_broker_interval_ms;
        tokio::time::sleep(Duration::from_millis(interval_ms)).await;
        let expired = processor.scan_not_active_brokers();
        if !expired.is_empty() {
            tracing::info!(count = expired.len(), "expired brokers removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route_info::{BrokerAddrInfo, BrokerRegistration};
    use ferromq_remoting::bodies::{TopicConfig, TopicConfigSerializeWrapper};

    fn registration(name: &str, timeout_ms: Option<i64>) -> BrokerRegistration {
        let topics = ["T", "TBW102"]
            .map(|topic| TopicConfig { topic_name: topic.into(), ..TopicConfig::default() });
        BrokerRegistration {
            cluster_name: "C".into(),
            broker_addr: format!("{name}:10911"),
            broker_name: name.into(),
            heartbeat_timeout_ms: timeout_ms,
            topic_config_wrapper: TopicConfigSerializeWrapper {
                topic_config_table: topics.into_iter().map(|t| (t.topic_name.clone(), t)).collect(),
                ..TopicConfigSerializeWrapper::default()
            },
            ..BrokerRegistration::default()
        }
    }

    /// The scan runs on tokio's clock: with time paused, advancing it past a broker's
    /// timeout (plus one scan interval) removes the broker, and not a moment earlier.
    #[tokio::test(start_paused = true)]
    async fn scan_loop_expires_brokers_on_the_runtime_clock() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KvConfigManager::load(&dir.path().join("kvConfig.json")).unwrap();
        let processor = Arc::new(NamesrvProcessor::new(NamesrvConfig::default(), kv));
        let now = processor.now_ms();
        processor.routes.write().register_broker(registration("default", None), false, now);
        processor.routes.write().register_broker(registration("short", Some(30_000)), false, now);
        let scan = tokio::spawn(scan_loop(processor.clone()));
        let live = |name: &str| {
            processor
                .routes
                .read()
                .broker_data_version(&BrokerAddrInfo::new("C", &format!("{name}:10911")))
                .is_some()
        };

        // Scans run every 10 s; "short" (30 s) goes at the 40 s scan, "default" (120 s) at 130 s.
        tokio::time::sleep(Duration::from_millis(39_000)).await;
        assert!(live("short") && live("default"));
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        assert!(!live("short"));
        assert!(live("default"));
        tokio::time::sleep(Duration::from_millis(80_000)).await;
        assert!(
            live("default"),
            "the 120 s scan saw it silent for exactly 120 s, which is not longer"
        );
        tokio::time::sleep(Duration::from_millis(10_000)).await;
        assert!(!live("default"));
        assert!(processor.routes.read().pickup_topic_route("T", false).is_none());
        scan.abort();
    }
}
