//! Small list and table bodies (spec §9.7): `GetConsumerListByGroupResponseBody`,
//! `TopicList`, `KVTable`, `GroupList`.

use std::collections::BTreeMap;

use super::{Bean, JsonBody, Props, key_string, string_value, strings_value};
use crate::error::Result;
use crate::json::{Object, Value};

/// GET_CONSUMER_LIST_BY_GROUP response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerListByGroupResponseBody {
    /// Client ids of the group's consumers.
    pub consumer_id_list: Vec<String>,
}

/// A topic list (GET_ALL_TOPIC_LIST_FROM_NAMESERVER, GET_TOPICS_BY_CLUSTER, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicList {
    /// Topic names.
    pub topic_list: Vec<String>,
    /// Set by some system-topic lists; omitted when `None`.
    pub broker_addr: Option<String>,
}

/// `KVTable`: a string map (REGISTER_BROKER result, GET_KVLIST_BY_NAMESPACE, runtime info).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KvTable {
    /// Entries.
    pub table: BTreeMap<String, String>,
}

/// A consumer group list (QUERY_TOPIC_CONSUME_BY_WHO).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupList {
    /// Group names.
    pub group_list: Vec<String>,
}

impl JsonBody for ConsumerListByGroupResponseBody {
    fn to_json(&self) -> Value {
        Bean::new().put("consumerIdList", strings_value(&self.consumer_id_list)).build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "GetConsumerListByGroupResponseBody")?;
        Ok(Self { consumer_id_list: props.strings("consumerIdList")? })
    }
}

impl JsonBody for TopicList {
    fn to_json(&self) -> Value {
        Bean::new()
            .put_opt("brokerAddr", self.broker_addr.clone().map(Value::String))
            .put("topicList", strings_value(&self.topic_list))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "TopicList")?;
        Ok(Self {
            topic_list: props.strings("topicList")?,
            broker_addr: props.string_opt("brokerAddr")?,
        })
    }
}

impl JsonBody for KvTable {
    fn to_json(&self) -> Value {
        let mut table = Object::new();
        for (key, value) in &self.table {
            table.insert(key.clone(), Value::string(value.clone()));
        }
        Bean::new().put("table", Value::Object(table)).build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "KVTable")?;
        let mut table = BTreeMap::new();
        if let Some(object) = props.object_opt("table")? {
            let path = props.path("table");
            for (key, value) in object.iter() {
                if *value != Value::Null {
                    table.insert(key_string(key, &path)?, string_value(value, &path)?);
                }
            }
        }
        Ok(Self { table })
    }
}

impl JsonBody for GroupList {
    fn to_json(&self) -> Value {
        Bean::new().put("groupList", strings_value(&self.group_list)).build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "GroupList")?;
        Ok(Self { group_list: props.strings("groupList")? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_small_bodies() {
        let consumers = ConsumerListByGroupResponseBody {
            consumer_id_list: vec!["127.0.0.1@a".into(), "127.0.0.1@b".into()],
        };
        assert_eq!(consumers.encode(), br#"{"consumerIdList":["127.0.0.1@a","127.0.0.1@b"]}"#);
        let topics = TopicList { topic_list: vec!["A".into()], broker_addr: None };
        assert_eq!(topics.encode(), br#"{"topicList":["A"]}"#);
        let table = KvTable { table: BTreeMap::from([("T".to_owned(), "broker-a:4".to_owned())]) };
        assert_eq!(table.encode(), br#"{"table":{"T":"broker-a:4"}}"#);
        assert_eq!(KvTable::decode(&table.encode()).unwrap(), table);
        let groups = GroupList { group_list: vec!["G".into()] };
        assert_eq!(GroupList::decode(&groups.encode()).unwrap(), groups);
    }
}
