//! `SubscriptionGroupConfig` and `SubscriptionGroupWrapper` (`subscriptionGroup.json`,
//! GET_ALL_SUBSCRIPTIONGROUP_CONFIG, UPDATE_AND_CREATE_SUBSCRIPTIONGROUP; broker.md §6).

use std::collections::BTreeMap;

use super::{Bean, DataVersion, JsonBody, Props, key_string};
use crate::error::Result;
use crate::json::{Object, Value};

/// A consumer group's broker-side settings, with Java's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionGroupConfig {
    /// `groupName`.
    pub group_name: String,
    /// `consumeEnable` (true).
    pub consume_enable: bool,
    /// `consumeFromMinEnable` (true).
    pub consume_from_min_enable: bool,
    /// `consumeBroadcastEnable` (true).
    pub consume_broadcast_enable: bool,
    /// `consumeMessageOrderly` (false) [5.x].
    pub consume_message_orderly: bool,
    /// `retryQueueNums` (1).
    pub retry_queue_nums: i32,
    /// `retryMaxTimes` (16).
    pub retry_max_times: i32,
    /// `brokerId` (0).
    pub broker_id: i64,
    /// `whichBrokerWhenConsumeSlowly` (1).
    pub which_broker_when_consume_slowly: i64,
    /// `notifyConsumerIdsChangedEnable` (true).
    pub notify_consumer_ids_changed_enable: bool,
    /// `groupSysFlag` (0) [5.x].
    pub group_sys_flag: i32,
    /// `consumeTimeoutMinute` (15) [5.x].
    pub consume_timeout_minute: i32,
    /// Properties this crate does not model, kept as read (`groupRetryPolicy`, …).
    pub extra: BTreeMap<String, Value>,
}

impl SubscriptionGroupConfig {
    /// A group with Java's defaults.
    pub fn new(group_name: impl Into<String>) -> Self {
        Self {
            group_name: group_name.into(),
            consume_enable: true,
            consume_from_min_enable: true,
            consume_broadcast_enable: true,
            consume_message_orderly: false,
            retry_queue_nums: 1,
            retry_max_times: 16,
            broker_id: 0,
            which_broker_when_consume_slowly: 1,
            notify_consumer_ids_changed_enable: true,
            group_sys_flag: 0,
            consume_timeout_minute: 15,
            extra: BTreeMap::new(),
        }
    }
}

const KNOWN: &[&str] = &[
    "groupName",
    "consumeEnable",
    "consumeFromMinEnable",
    "consumeBroadcastEnable",
    "consumeMessageOrderly",
    "retryQueueNums",
    "retryMaxTimes",
    "brokerId",
    "whichBrokerWhenConsumeSlowly",
    "notifyConsumerIdsChangedEnable",
    "groupSysFlag",
    "consumeTimeoutMinute",
];

impl JsonBody for SubscriptionGroupConfig {
    fn to_json(&self) -> Value {
        let mut bean = Bean::new()
            .put("groupName", Value::string(self.group_name.clone()))
            .put("consumeEnable", Value::Bool(self.consume_enable))
            .put("consumeFromMinEnable", Value::Bool(self.consume_from_min_enable))
            .put("consumeBroadcastEnable", Value::Bool(self.consume_broadcast_enable))
            .put("consumeMessageOrderly", Value::Bool(self.consume_message_orderly))
            .put("retryQueueNums", Value::int(self.retry_queue_nums))
            .put("retryMaxTimes", Value::int(self.retry_max_times))
            .put("brokerId", Value::int(self.broker_id))
            .put("whichBrokerWhenConsumeSlowly", Value::int(self.which_broker_when_consume_slowly))
            .put(
                "notifyConsumerIdsChangedEnable",
                Value::Bool(self.notify_consumer_ids_changed_enable),
            )
            .put("groupSysFlag", Value::int(self.group_sys_flag))
            .put("consumeTimeoutMinute", Value::int(self.consume_timeout_minute));
        for (name, value) in &self.extra {
            bean = bean.put(name, value.clone());
        }
        bean.build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "SubscriptionGroupConfig")?;
        let defaults = Self::new("");
        let mut extra = BTreeMap::new();
        if let Value::Object(object) = value {
            for (key, value) in object.iter() {
                if let Some(name) = key.as_str().filter(|name| !KNOWN.contains(name)) {
                    extra.insert(name.to_owned(), value.clone());
                }
            }
        }
        Ok(Self {
            group_name: props.string("groupName")?,
            consume_enable: props.bool_or("consumeEnable", defaults.consume_enable)?,
            consume_from_min_enable: props
                .bool_or("consumeFromMinEnable", defaults.consume_from_min_enable)?,
            consume_broadcast_enable: props
                .bool_or("consumeBroadcastEnable", defaults.consume_broadcast_enable)?,
            consume_message_orderly: props
                .bool_or("consumeMessageOrderly", defaults.consume_message_orderly)?,
            retry_queue_nums: props.i32_or("retryQueueNums", defaults.retry_queue_nums)?,
            retry_max_times: props.i32_or("retryMaxTimes", defaults.retry_max_times)?,
            broker_id: props.i64_or("brokerId", defaults.broker_id)?,
            which_broker_when_consume_slowly: props.i64_or(
                "whichBrokerWhenConsumeSlowly",
                defaults.which_broker_when_consume_slowly,
            )?,
            notify_consumer_ids_changed_enable: props.bool_or(
                "notifyConsumerIdsChangedEnable",
                defaults.notify_consumer_ids_changed_enable,
            )?,
            group_sys_flag: props.i32_or("groupSysFlag", defaults.group_sys_flag)?,
            consume_timeout_minute: props
                .i32_or("consumeTimeoutMinute", defaults.consume_timeout_minute)?,
            extra,
        })
    }
}

/// `subscriptionGroup.json` and the GET_ALL_SUBSCRIPTIONGROUP_CONFIG body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubscriptionGroupWrapper {
    /// Version of the table.
    pub data_version: DataVersion,
    /// Group name → config.
    pub subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
}

impl JsonBody for SubscriptionGroupWrapper {
    fn to_json(&self) -> Value {
        let mut table = Object::new();
        for (name, config) in &self.subscription_group_table {
            table.insert(name.clone(), config.to_json());
        }
        Bean::new()
            .put("dataVersion", self.data_version.to_json())
            .put("subscriptionGroupTable", Value::Object(table))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "SubscriptionGroupWrapper")?;
        let mut subscription_group_table = BTreeMap::new();
        if let Some(table) = props.object_opt("subscriptionGroupTable")? {
            let path = props.path("subscriptionGroupTable");
            for (key, config) in table.iter() {
                subscription_group_table
                    .insert(key_string(key, &path)?, SubscriptionGroupConfig::from_json(config)?);
            }
        }
        Ok(Self {
            data_version: props
                .get("dataVersion")
                .map(DataVersion::from_json)
                .transpose()?
                .unwrap_or_default(),
            subscription_group_table,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_unknown_properties_and_defaults_missing_ones() {
        let text = br#"{"dataVersion":{"counter":3,"timestamp":17},"subscriptionGroupTable":{"g1":{"groupName":"g1","retryMaxTimes":"5","groupRetryPolicy":{"type":"CUSTOMIZED"}}}}"#;
        let wrapper = SubscriptionGroupWrapper::decode(text).unwrap();
        let group = &wrapper.subscription_group_table["g1"];
        assert_eq!(group.retry_max_times, 5);
        assert_eq!(group.retry_queue_nums, 1);
        assert!(group.consume_enable);
        assert!(group.extra.contains_key("groupRetryPolicy"));
        assert_eq!(wrapper.data_version.counter, 3);
        let again = SubscriptionGroupWrapper::decode(&wrapper.encode()).unwrap();
        assert_eq!(again, wrapper);
        let encoded = String::from_utf8(SubscriptionGroupConfig::new("g").encode()).unwrap();
        assert_eq!(
            encoded,
            r#"{"brokerId":0,"consumeBroadcastEnable":true,"consumeEnable":true,"consumeFromMinEnable":true,"consumeMessageOrderly":false,"consumeTimeoutMinute":15,"groupName":"g","groupSysFlag":0,"notifyConsumerIdsChangedEnable":true,"retryMaxTimes":16,"retryQueueNums":1,"whichBrokerWhenConsumeSlowly":1}"#
        );
    }
}
