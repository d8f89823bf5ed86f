//! Registration with every configured name server (broker.md §11): at start, every
//! `registerNameServerPeriod`, and soon after a topic is created or changed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ferromq_message::hash::rocketmq_crc32;
use ferromq_remoting::bodies::{JsonBody, KvTable, RegisterBrokerBody};
use ferromq_remoting::headers::{
    RegisterBrokerRequestHeader, RegisterBrokerResponseHeader, UnregisterBrokerRequestHeader,
};
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

use crate::broker::Broker;
use crate::metadata::perm;

/// Registers with every name server in parallel; returns how many accepted.
pub async fn register_all(broker: &Arc<Broker>) -> usize {
    let config = &broker.config;
    if config.namesrv_addr.is_empty() {
        return 0;
    }
    let mut wrapper = broker.topics.wrapper();
    let full = perm::READ | perm::WRITE;
    if config.broker_permission & full != full {
        for topic in wrapper.topic_config_table.values_mut() {
            topic.perm &= config.broker_permission;
        }
    }
    let body = RegisterBrokerBody {
        topic_config_serialize_wrapper: wrapper,
        filter_server_list: Vec::new(),
    }
    .encode();
    let header = RegisterBrokerRequestHeader {
        broker_name: config.broker_name.clone(),
        broker_addr: config.broker_addr().to_string(),
        cluster_name: config.broker_cluster_name.clone(),
        ha_server_addr: config.ha_server_addr().to_string(),
        broker_id: config.broker_id,
        heartbeat_timeout_millis: None,
        enable_acting_master: None,
        compressed: Some(false),
        body_crc32: Some(rocketmq_crc32(&body)),
    };
    let timeout = config.register_broker_timeout;
    let mut tasks = Vec::new();
    for addr in &config.namesrv_addr {
        let request = RemotingCommand::request(RequestCode::REGISTER_BROKER.code())
            .with_header(&header)
            .with_body(body.clone());
        let broker = broker.clone();
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            match broker.outbound.invoke(&addr, request, timeout).await {
                Ok(response) if response.code == ResponseCode::SUCCESS.code() => {
                    apply_order_topics(&broker, &response.body);
                    // A slave learns its master here (broker.md §11, crate::ha).
                    let result = response.decode_header::<RegisterBrokerResponseHeader>();
                    if let Ok(result) = result {
                        broker.ha.on_register_result(result.master_addr, result.ha_server_addr);
                    }
                    true
                }
                Ok(response) => {
                    tracing::warn!(namesrv = %addr, code = response.code, remark = ?response.remark, "registration refused");
                    false
                }
                Err(error) => {
                    tracing::warn!(namesrv = %addr, %error, "registration failed");
                    false
                }
            }
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        if matches!(task.await, Ok(true)) {
            accepted += 1;
        }
    }
    accepted
}

/// The name server's ORDER_TOPIC_CONFIG KV table sets the order flag of topics (§2.8).
fn apply_order_topics(broker: &Broker, body: &[u8]) {
    if body.is_empty() {
        return;
    }
    if let Ok(table) = KvTable::decode(body)
        && !table.table.is_empty()
    {
        let topics: BTreeSet<String> = table.table.keys().cloned().collect();
        broker.topics.set_order_topics(&topics);
    }
}

/// Runs forever: registers now, then every period or when asked.
pub async fn registration_loop(broker: Arc<Broker>) {
    loop {
        register_all(&broker).await;
        let mut period = broker.config.register_name_server_period;
        if broker.ha.wants_master() {
            period = period.min(crate::ha::MASTER_DISCOVERY_PERIOD);
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = broker.register_soon.notified() => {
                // Coalesce a burst of topic creations into one registration.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// UNREGISTER_BROKER to each name server in turn, 3 s each, failures ignored.
pub async fn unregister_all(broker: &Broker) {
    let config = &broker.config;
    let header = UnregisterBrokerRequestHeader {
        broker_name: config.broker_name.clone(),
        broker_addr: config.broker_addr().to_string(),
        cluster_name: config.broker_cluster_name.clone(),
        broker_id: config.broker_id,
    };
    for addr in &config.namesrv_addr {
        let request =
            RemotingCommand::request(RequestCode::UNREGISTER_BROKER.code()).with_header(&header);
        if let Err(error) = broker.outbound.invoke(addr, request, Duration::from_secs(3)).await {
            tracing::debug!(namesrv = %addr, %error, "unregister failed");
        }
    }
}
