//! Route bodies (spec §9.2, §9.3): `TopicRouteData`, `QueueData`, `BrokerData`, `ClusterInfo`.
//!
//! `BrokerData.brokerAddrs` is a `HashMap<Long, String>`: fastjson's default style writes its
//! keys unquoted (`{0:"host:port"}`); the name server's standard style quotes them.

use std::collections::{BTreeMap, BTreeSet};

use super::{Bean, JsonBody, Props, key_string, string_value, strings_value, wrong_shape};
use crate::error::Result;
use crate::json::{Object, Value};

/// One broker group's queues for a topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueData {
    /// Broker group name.
    pub broker_name: String,
    /// Readable queue count.
    pub read_queue_nums: i32,
    /// Writable queue count.
    pub write_queue_nums: i32,
    /// Permission bits (2 write, 4 read, 1 inherit).
    pub perm: i32,
    /// Topic sysFlag.
    pub topic_sys_flag: i32,
}

/// One broker group: its cluster and the address of each member (id 0 = master).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrokerData {
    /// Cluster name.
    pub cluster: String,
    /// Broker group name.
    pub broker_name: String,
    /// Broker id → `ip:port`.
    pub broker_addrs: BTreeMap<i64, String>,
    /// [5.x] zone; omitted when `None`.
    pub zone_name: Option<String>,
    /// [5.x]
    pub enable_acting_master: bool,
}

/// GET_ROUTEINFO_BY_TOPIC response body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopicRouteData {
    /// `brokerA:4;brokerB:4`, only for configured order topics.
    pub order_topic_conf: Option<String>,
    /// Queues per broker group.
    pub queue_datas: Vec<QueueData>,
    /// Broker groups holding the topic.
    pub broker_datas: Vec<BrokerData>,
    /// Broker address → filter server addresses (normally empty).
    pub filter_server_table: BTreeMap<String, Vec<String>>,
    /// [5.x] static-topic mapping, passed through untouched.
    pub topic_queue_mapping_by_broker: Option<Value>,
}

/// GET_BROKER_CLUSTER_INFO response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterInfo {
    /// Broker name → broker data.
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    /// Cluster name → broker names.
    pub cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
}

impl JsonBody for QueueData {
    fn to_json(&self) -> Value {
        Bean::new()
            .put("brokerName", Value::string(self.broker_name.clone()))
            .put("perm", Value::int(self.perm))
            .put("readQueueNums", Value::int(self.read_queue_nums))
            .put("topicSysFlag", Value::int(self.topic_sys_flag))
            .put("writeQueueNums", Value::int(self.write_queue_nums))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "QueueData")?;
        Ok(Self {
            broker_name: props.string("brokerName")?,
            read_queue_nums: props.i32_or("readQueueNums", 0)?,
            write_queue_nums: props.i32_or("writeQueueNums", 0)?,
            perm: props.i32_or("perm", 0)?,
            topic_sys_flag: props.i32_or("topicSysFlag", 0)?,
        })
    }
}

impl JsonBody for BrokerData {
    fn to_json(&self) -> Value {
        let mut addrs = Object::new();
        for (id, addr) in &self.broker_addrs {
            addrs.insert_key(Value::int(*id), Value::string(addr.clone()));
        }
        Bean::new()
            .put("brokerAddrs", Value::Object(addrs))
            .put("brokerName", Value::string(self.broker_name.clone()))
            .put("cluster", Value::string(self.cluster.clone()))
            .put("enableActingMaster", Value::Bool(self.enable_acting_master))
            .put_opt("zoneName", self.zone_name.clone().map(Value::String))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "BrokerData")?;
        let path = props.path("brokerAddrs");
        let mut broker_addrs = BTreeMap::new();
        if let Some(addrs) = props.object_opt("brokerAddrs")? {
            for (key, addr) in addrs.iter() {
                let id = key
                    .to_i64_lenient()
                    .ok_or_else(|| wrong_shape(&path, key, "a numeric broker id"))?;
                broker_addrs.insert(id, string_value(addr, &path)?);
            }
        }
        Ok(Self {
            cluster: props.string("cluster")?,
            broker_name: props.string("brokerName")?,
            broker_addrs,
            zone_name: props.string_opt("zoneName")?,
            enable_acting_master: props.bool_or("enableActingMaster", false)?,
        })
    }
}

impl JsonBody for TopicRouteData {
    fn to_json(&self) -> Value {
        let mut filters = Object::new();
        for (addr, servers) in &self.filter_server_table {
            filters.insert(addr.clone(), strings_value(servers));
        }
        Bean::new()
            .put(
                "brokerDatas",
                Value::Array(self.broker_datas.iter().map(JsonBody::to_json).collect()),
            )
            .put("filterServerTable", Value::Object(filters))
            .put_opt("orderTopicConf", self.order_topic_conf.clone().map(Value::String))
            .put(
                "queueDatas",
                Value::Array(self.queue_datas.iter().map(JsonBody::to_json).collect()),
            )
            .put_opt("topicQueueMappingByBroker", self.topic_queue_mapping_by_broker.clone())
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "TopicRouteData")?;
        let mut filter_server_table = BTreeMap::new();
        if let Some(table) = props.object_opt("filterServerTable")? {
            let path = props.path("filterServerTable");
            for (key, servers) in table.iter() {
                let servers = match servers {
                    Value::Array(items) => items
                        .iter()
                        .map(|item| string_value(item, &path))
                        .collect::<Result<Vec<_>>>()?,
                    Value::Null => Vec::new(),
                    other => return Err(wrong_shape(&path, other, "an array")),
                };
                filter_server_table.insert(key_string(key, &path)?, servers);
            }
        }
        Ok(Self {
            order_topic_conf: props.string_opt("orderTopicConf")?,
            queue_datas: props
                .array("queueDatas")?
                .iter()
                .map(QueueData::from_json)
                .collect::<Result<_>>()?,
            broker_datas: props
                .array("brokerDatas")?
                .iter()
                .map(BrokerData::from_json)
                .collect::<Result<_>>()?,
            filter_server_table,
            topic_queue_mapping_by_broker: props.get("topicQueueMappingByBroker").cloned(),
        })
    }
}

impl JsonBody for ClusterInfo {
    fn to_json(&self) -> Value {
        let mut brokers = Object::new();
        for (name, data) in &self.broker_addr_table {
            brokers.insert(name.clone(), data.to_json());
        }
        let mut clusters = Object::new();
        for (name, members) in &self.cluster_addr_table {
            let members: Vec<String> = members.iter().cloned().collect();
            clusters.insert(name.clone(), strings_value(&members));
        }
        Bean::new()
            .put("brokerAddrTable", Value::Object(brokers))
            .put("clusterAddrTable", Value::Object(clusters))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "ClusterInfo")?;
        let mut info = Self::default();
        if let Some(table) = props.object_opt("brokerAddrTable")? {
            let path = props.path("brokerAddrTable");
            for (key, data) in table.iter() {
                info.broker_addr_table
                    .insert(key_string(key, &path)?, BrokerData::from_json(data)?);
            }
        }
        if let Some(table) = props.object_opt("clusterAddrTable")? {
            let path = props.path("clusterAddrTable");
            for (key, members) in table.iter() {
                let members = members
                    .as_array()
                    .ok_or_else(|| wrong_shape(&path, members, "an array"))?
                    .iter()
                    .map(|item| string_value(item, &path))
                    .collect::<Result<_>>()?;
                info.cluster_addr_table.insert(key_string(key, &path)?, members);
            }
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::JsonStyle;

    fn route() -> TopicRouteData {
        TopicRouteData {
            queue_datas: vec![QueueData {
                broker_name: "broker-a".into(),
                read_queue_nums: 4,
                write_queue_nums: 4,
                perm: 6,
                topic_sys_flag: 0,
            }],
            broker_datas: vec![BrokerData {
                cluster: "DefaultCluster".into(),
                broker_name: "broker-a".into(),
                broker_addrs: BTreeMap::from([
                    (0, "10.0.0.1:10911".into()),
                    (1, "10.0.0.2:10911".into()),
                ]),
                zone_name: None,
                enable_acting_master: false,
            }],
            ..TopicRouteData::default()
        }
    }

    #[test]
    fn golden_route_fastjson_style() {
        let text = String::from_utf8(route().encode()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"#,
                r#""brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"#,
                r#""filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"#,
                r#""readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#
            )
        );
        assert_eq!(TopicRouteData::decode(text.as_bytes()).unwrap(), route());
    }

    #[test]
    fn golden_route_standard_style() {
        let text = String::from_utf8(route().encode_with(JsonStyle::Standard)).unwrap();
        assert!(
            text.contains(r#""brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"}"#),
            "{text}"
        );
        assert_eq!(TopicRouteData::decode(text.as_bytes()).unwrap(), route());
    }

    #[test]
    fn cluster_info_round_trips_with_unquoted_keys() {
        let broker = route().broker_datas[0].clone();
        let info = ClusterInfo {
            broker_addr_table: BTreeMap::from([("broker-a".to_owned(), broker)]),
            cluster_addr_table: BTreeMap::from([(
                "DefaultCluster".to_owned(),
                BTreeSet::from(["broker-a".to_owned()]),
            )]),
        };
        let bytes = info.encode();
        assert!(String::from_utf8_lossy(&bytes).contains("{0:\"10.0.0.1:10911\""));
        assert_eq!(ClusterInfo::decode(&bytes).unwrap(), info);
    }

    #[test]
    fn bad_broker_id_is_named() {
        let err = BrokerData::decode(br#"{"brokerAddrs":{"x":"a"}}"#).unwrap_err();
        assert!(err.to_string().contains("BrokerData.brokerAddrs"), "{err}");
    }
}
