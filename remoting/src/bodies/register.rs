//! REGISTER_BROKER body, uncompressed form (spec §9.5), and its parts: `DataVersion`,
//! `TopicConfig`, `TopicConfigSerializeWrapper`. (The deflated form is not decoded here.)

use std::collections::BTreeMap;

use super::{Bean, JsonBody, Props, key_string, strings_value};
use crate::error::Result;
use crate::json::{Object, Value};

/// Version of a broker's metadata (spec §9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataVersion {
    /// Change counter.
    pub counter: i64,
    /// [5.x]
    pub state_version: i64,
    /// Time of the last change, ms.
    pub timestamp: i64,
}

/// A topic's configuration as brokers persist and register it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// Topic name.
    pub topic_name: String,
    /// Readable queue count (Java default 16).
    pub read_queue_nums: i32,
    /// Writable queue count (Java default 16).
    pub write_queue_nums: i32,
    /// Permission bits (Java default 6 = read + write).
    pub perm: i32,
    /// `SINGLE_TAG` (default) or `MULTI_TAG`.
    pub topic_filter_type: String,
    /// Topic sysFlag.
    pub topic_sys_flag: i32,
    /// Order topic.
    pub order: bool,
    /// [5.x] attributes, e.g. `message.type`; omitted when `None`.
    pub attributes: Option<BTreeMap<String, String>>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            topic_name: String::new(),
            read_queue_nums: 16,
            write_queue_nums: 16,
            perm: 6,
            topic_filter_type: "SINGLE_TAG".to_owned(),
            topic_sys_flag: 0,
            order: false,
            attributes: None,
        }
    }
}

/// Topic configs plus their data version (also the GET_ALL_TOPIC_CONFIG body).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopicConfigSerializeWrapper {
    /// Topic name → config.
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    /// Version of the table.
    pub data_version: DataVersion,
    /// [5.x]
    pub mapping_data_version: Option<DataVersion>,
    /// [5.x] static topics, passed through untouched.
    pub topic_queue_mapping_detail_map: Option<Value>,
    /// [5.x] static topics, passed through untouched.
    pub topic_queue_mapping_info_map: Option<Value>,
}

/// REGISTER_BROKER request body (uncompressed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegisterBrokerBody {
    /// The broker's topics.
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
    /// Filter server addresses.
    pub filter_server_list: Vec<String>,
}

impl JsonBody for DataVersion {
    fn to_json(&self) -> Value {
        Bean::new()
            .put("counter", Value::int(self.counter))
            .put("stateVersion", Value::int(self.state_version))
            .put("timestamp", Value::int(self.timestamp))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "DataVersion")?;
        Ok(Self {
            counter: props.i64_or("counter", 0)?,
            state_version: props.i64_or("stateVersion", 0)?,
            timestamp: props.i64_or("timestamp", 0)?,
        })
    }
}

impl JsonBody for TopicConfig {
    fn to_json(&self) -> Value {
        let attributes = self.attributes.as_ref().map(|attributes| {
            let mut object = Object::new();
            for (key, value) in attributes {
                object.insert(key.clone(), Value::string(value.clone()));
            }
            Value::Object(object)
        });
        Bean::new()
            .put_opt("attributes", attributes)
            .put("order", Value::Bool(self.order))
            .put("perm", Value::int(self.perm))
            .put("readQueueNums", Value::int(self.read_queue_nums))
            .put("topicFilterType", Value::string(self.topic_filter_type.clone()))
            .put("topicName", Value::string(self.topic_name.clone()))
            .put("topicSysFlag", Value::int(self.topic_sys_flag))
            .put("writeQueueNums", Value::int(self.write_queue_nums))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "TopicConfig")?;
        let defaults = Self::default();
        let attributes = match props.object_opt("attributes")? {
            None => None,
            Some(object) => {
                let path = props.path("attributes");
                let mut map = BTreeMap::new();
                for (key, value) in object.iter() {
                    map.insert(key_string(key, &path)?, super::string_value(value, &path)?);
                }
                Some(map)
            }
        };
        Ok(Self {
            topic_name: props.string("topicName")?,
            read_queue_nums: props.i32_or("readQueueNums", defaults.read_queue_nums)?,
            write_queue_nums: props.i32_or("writeQueueNums", defaults.write_queue_nums)?,
            perm: props.i32_or("perm", defaults.perm)?,
            topic_filter_type: props
                .string_opt("topicFilterType")?
                .unwrap_or(defaults.topic_filter_type),
            topic_sys_flag: props.i32_or("topicSysFlag", 0)?,
            order: props.bool_or("order", false)?,
            attributes,
        })
    }
}

impl JsonBody for TopicConfigSerializeWrapper {
    fn to_json(&self) -> Value {
        let mut table = Object::new();
        for (name, config) in &self.topic_config_table {
            table.insert(name.clone(), config.to_json());
        }
        Bean::new()
            .put("dataVersion", self.data_version.to_json())
            .put_opt(
                "mappingDataVersion",
                self.mapping_data_version.map(|version| version.to_json()),
            )
            .put("topicConfigTable", Value::Object(table))
            .put_opt("topicQueueMappingDetailMap", self.topic_queue_mapping_detail_map.clone())
            .put_opt("topicQueueMappingInfoMap", self.topic_queue_mapping_info_map.clone())
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "TopicConfigSerializeWrapper")?;
        let mut topic_config_table = BTreeMap::new();
        if let Some(table) = props.object_opt("topicConfigTable")? {
            let path = props.path("topicConfigTable");
            for (key, config) in table.iter() {
                topic_config_table.insert(key_string(key, &path)?, TopicConfig::from_json(config)?);
            }
        }
        Ok(Self {
            topic_config_table,
            data_version: props
                .get("dataVersion")
                .map(DataVersion::from_json)
                .transpose()?
                .unwrap_or_default(),
            mapping_data_version: props
                .get("mappingDataVersion")
                .map(DataVersion::from_json)
                .transpose()?,
            topic_queue_mapping_detail_map: props.get("topicQueueMappingDetailMap").cloned(),
            topic_queue_mapping_info_map: props.get("topicQueueMappingInfoMap").cloned(),
        })
    }
}

impl JsonBody for RegisterBrokerBody {
    fn to_json(&self) -> Value {
        Bean::new()
            .put("filterServerList", strings_value(&self.filter_server_list))
            .put("topicConfigSerializeWrapper", self.topic_config_serialize_wrapper.to_json())
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "RegisterBrokerBody")?;
        Ok(Self {
            topic_config_serialize_wrapper: props
                .get("topicConfigSerializeWrapper")
                .map(TopicConfigSerializeWrapper::from_json)
                .transpose()?
                .unwrap_or_default(),
            filter_server_list: props.strings("filterServerList")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_register_broker_body() {
        let body = RegisterBrokerBody {
            topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
                topic_config_table: BTreeMap::from([(
                    "T".to_owned(),
                    TopicConfig {
                        topic_name: "T".into(),
                        read_queue_nums: 4,
                        write_queue_nums: 4,
                        ..TopicConfig::default()
                    },
                )]),
                data_version: DataVersion {
                    counter: 3,
                    state_version: 0,
                    timestamp: 1_700_000_000_000,
                },
                ..TopicConfigSerializeWrapper::default()
            },
            filter_server_list: vec![],
        };
        let text = String::from_utf8(body.encode()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":3,"#,
                r#""stateVersion":0,"timestamp":1700000000000},"topicConfigTable":{"T":{"order":false,"#,
                r#""perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"T","#,
                r#""topicSysFlag":0,"writeQueueNums":4}}}}"#
            )
        );
        assert_eq!(RegisterBrokerBody::decode(text.as_bytes()).unwrap(), body);
    }

    #[test]
    fn missing_topic_config_properties_take_java_defaults() {
        let config =
            TopicConfig::decode(br#"{"topicName":"T","attributes":{"message.type":"NORMAL"}}"#)
                .unwrap();
        assert_eq!(config.read_queue_nums, 16);
        assert_eq!(config.perm, 6);
        assert_eq!(config.topic_filter_type, "SINGLE_TAG");
        assert_eq!(
            config.attributes.unwrap().get("message.type").map(String::as_str),
            Some("NORMAL")
        );
    }
}
