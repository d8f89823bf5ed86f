//! GET_BROKER_MEMBER_GROUP (901, 5.x) response body: the members of one broker group, as a
//! name server knows them.

use std::collections::BTreeMap;

use super::{Bean, JsonBody, Props, string_value, wrong_shape};
use crate::error::Result;
use crate::json::{Object, Value};

/// `BrokerMemberGroup`: a broker group's cluster, name and member addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrokerMemberGroup {
    /// Cluster name.
    pub cluster: String,
    /// Broker group name.
    pub broker_name: String,
    /// Broker id → `ip:port` (fastjson writes the ids as bare numbers).
    pub broker_addrs: BTreeMap<i64, String>,
}

/// `GetBrokerMemberGroupResponseBody`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetBrokerMemberGroupResponseBody {
    /// The group; `None` is omitted.
    pub broker_member_group: Option<BrokerMemberGroup>,
}

impl JsonBody for BrokerMemberGroup {
    fn to_json(&self) -> Value {
        let mut addrs = Object::new();
        for (id, addr) in &self.broker_addrs {
            addrs.insert_key(Value::int(*id), Value::string(addr.clone()));
        }
        Bean::new()
            .put("brokerAddrs", Value::Object(addrs))
            .put("brokerName", Value::string(self.broker_name.clone()))
            .put("cluster", Value::string(self.cluster.clone()))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "BrokerMemberGroup")?;
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
        })
    }
}

impl JsonBody for GetBrokerMemberGroupResponseBody {
    fn to_json(&self) -> Value {
        Bean::new()
            .put_opt("brokerMemberGroup", self.broker_member_group.as_ref().map(JsonBody::to_json))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "GetBrokerMemberGroupResponseBody")?;
        Ok(Self {
            broker_member_group: props
                .get("brokerMemberGroup")
                .map(BrokerMemberGroup::from_json)
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_member_group() {
        let body = GetBrokerMemberGroupResponseBody {
            broker_member_group: Some(BrokerMemberGroup {
                cluster: "DefaultCluster".into(),
                broker_name: "broker-a".into(),
                broker_addrs: BTreeMap::from([
                    (0, "10.0.0.1:10911".into()),
                    (1, "10.0.0.2:10911".into()),
                ]),
            }),
        };
        let text = String::from_utf8(body.encode()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"brokerMemberGroup":{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"#,
                r#""brokerName":"broker-a","cluster":"DefaultCluster"}}"#
            )
        );
        assert_eq!(GetBrokerMemberGroupResponseBody::decode(text.as_bytes()).unwrap(), body);
    }
}
