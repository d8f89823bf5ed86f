//! A slave copies its master's metadata (Java's `SlaveSynchronize`, remoting.md §12,
//! broker.md §12.4): topics, consumer offsets, delay offsets and subscription groups, every
//! 10 s and as soon as a master is known, so that consumers (and a promoted slave) find
//! them there.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ferromq_remoting::bodies::{
    ConsumerOffsetSerializeWrapper, DataVersion, JsonBody, SubscriptionGroupWrapper,
    TopicConfigSerializeWrapper,
};
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};
use parking_lot::Mutex;

use crate::broker::Broker;

/// Java 4.9's period.
pub(crate) const SYNC_PERIOD: Duration = Duration::from_secs(10);
const SYNC_TIMEOUT: Duration = Duration::from_secs(3);

/// The master DataVersions last adopted, so unchanged tables are not rewritten.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    topics: Mutex<Option<DataVersion>>,
    groups: Mutex<Option<DataVersion>>,
}

/// What one round copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Topics created, changed or removed.
    pub topics_changed: usize,
    /// Consumer offsets copied.
    pub offsets: usize,
    /// Delay levels copied.
    pub delay_levels: usize,
    /// Groups created, changed or removed.
    pub groups_changed: usize,
}

/// One round of metadata sync from the master at `master_addr`. Each step's failure is
/// logged and the next step still runs, as in Java.
pub async fn sync_metadata(broker: &Arc<Broker>, master_addr: &str) -> SyncReport {
    let mut report = SyncReport::default();
    if master_addr == broker.config.broker_addr().to_string() {
        return report;
    }
    match fetch(broker, master_addr, RequestCode::GET_ALL_TOPIC_CONFIG).await {
        Ok(body) => match TopicConfigSerializeWrapper::decode(&body) {
            Ok(wrapper) => report.topics_changed = adopt_topics(broker, wrapper),
            Err(error) => tracing::warn!(%error, "master's topic table does not decode"),
        },
        Err(error) => tracing::warn!(%error, "cannot fetch the master's topics"),
    }
    match fetch(broker, master_addr, RequestCode::GET_ALL_CONSUMER_OFFSET).await {
        Ok(body) => match ConsumerOffsetSerializeWrapper::decode(&body) {
            Ok(wrapper) => report.offsets = adopt_offsets(broker, &wrapper),
            Err(error) => tracing::warn!(%error, "master's consumer offsets do not decode"),
        },
        Err(error) => tracing::warn!(%error, "cannot fetch the master's consumer offsets"),
    }
    match fetch(broker, master_addr, RequestCode::GET_ALL_DELAY_OFFSET).await {
        Ok(body) => match crate::metadata::parse_delay_offsets(&body) {
            Ok(levels) => {
                report.delay_levels = levels.len();
                for (level, offset) in levels {
                    broker.delay_offsets.set(level, offset);
                }
            }
            Err(error) => tracing::warn!(%error, "master's delay offsets do not parse"),
        },
        Err(error) => tracing::warn!(%error, "cannot fetch the master's delay offsets"),
    }
    match fetch(broker, master_addr, RequestCode::GET_ALL_SUBSCRIPTIONGROUP_CONFIG).await {
        Ok(body) => match SubscriptionGroupWrapper::decode(&body) {
            Ok(wrapper) => report.groups_changed = adopt_groups(broker, wrapper),
            Err(error) => tracing::warn!(%error, "master's subscription groups do not decode"),
        },
        Err(error) => tracing::warn!(%error, "cannot fetch the master's subscription groups"),
    }
    if report.offsets > 0 || report.delay_levels > 0 {
        broker.persist_offsets().await;
    }
    report
}

async fn fetch(
    broker: &Broker,
    master_addr: &str,
    code: RequestCode,
) -> Result<bytes::Bytes, String> {
    let request = RemotingCommand::request(code.code());
    let response = broker
        .outbound
        .invoke(master_addr, request, SYNC_TIMEOUT)
        .await
        .map_err(|error| format!("{code:?} to {master_addr}: {error}"))?;
    if response.code != ResponseCode::SUCCESS.code() {
        return Err(format!(
            "{code:?} to {master_addr}: code {} {:?}",
            response.code, response.remark
        ));
    }
    Ok(response.body)
}

/// Replaces the topic table with the master's when its DataVersion moved.
fn adopt_topics(broker: &Broker, wrapper: TopicConfigSerializeWrapper) -> usize {
    {
        let mut seen = broker.ha.sync.topics.lock();
        if seen.as_ref() == Some(&wrapper.data_version) {
            return 0;
        }
        *seen = Some(wrapper.data_version);
    }
    let mut changed = 0;
    for config in wrapper.topic_config_table.values() {
        if broker.topics.update(config.clone()) {
            changed += 1;
        }
    }
    let keep: BTreeSet<&String> = wrapper.topic_config_table.keys().collect();
    for name in broker.topics.names() {
        if !keep.contains(&name) && broker.topics.delete(&name) {
            changed += 1;
        }
    }
    changed
}

/// Merges the master's offsets into this broker's (per queue; the master wins).
fn adopt_offsets(broker: &Broker, wrapper: &ConsumerOffsetSerializeWrapper) -> usize {
    let mut copied = 0;
    for (key, queues) in &wrapper.offset_table {
        let Some((topic, group)) = key.rsplit_once('@') else {
            continue;
        };
        for (queue_id, offset) in queues {
            broker.offsets.commit(group, topic, *queue_id, *offset);
            copied += 1;
        }
    }
    copied
}

/// Replaces the group table with the master's when its DataVersion moved.
fn adopt_groups(broker: &Broker, wrapper: SubscriptionGroupWrapper) -> usize {
    {
        let mut seen = broker.ha.sync.groups.lock();
        if seen.as_ref() == Some(&wrapper.data_version) {
            return 0;
        }
        *seen = Some(wrapper.data_version);
    }
    let mut changed = 0;
    for config in wrapper.subscription_group_table.values() {
        if broker.groups.get(&config.group_name).as_ref() != Some(config) {
            broker.groups.update(config.clone());
            changed += 1;
        }
    }
    let local = broker.groups.wrapper();
    for name in local.subscription_group_table.keys() {
        if !wrapper.subscription_group_table.contains_key(name) {
            broker.groups.delete(name);
            changed += 1;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    #[test]
    fn delay_offsets_in_both_key_styles() {
        let parse = crate::metadata::parse_delay_offsets;
        let levels: Vec<(i32, i64)> =
            parse(br#"{"offsetTable":{1:12,"3":7}}"#).unwrap().into_iter().collect();
        assert_eq!(levels, [(1, 12), (3, 7)]);
        assert!(parse(b"{}").is_err());
        assert!(parse(br#"{"offsetTable":{"x":1}}"#).is_err());
    }
}
