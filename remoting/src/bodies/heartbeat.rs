//! HEART_BEAT body (spec §9.4): `HeartbeatData`, `ProducerData`, `ConsumerData`,
//! `SubscriptionData` and their enums.
//!
//! Clients differ (see `shared/wire-samples`): C++ writes enums as ordinals, omits
//! `classFilterMode`/`tagsSet`/`codeSet`/`expressionType`/`unitMode` and sends `subVersion`
//! as a string; ali-ons omits `expressionType`. A subscription without `expressionType`
//! is `TAG`.

use super::{Bean, JsonBody, Props, java_enum, strings_value};
use crate::error::Result;
use crate::json::Value;

java_enum! {
    /// `ConsumeType`.
    ConsumeType {
        /// Pull consumer.
        ConsumeActively = "CONSUME_ACTIVELY",
        /// Push consumer.
        ConsumePassively = "CONSUME_PASSIVELY",
        /// [5.x] POP consumer.
        ConsumePop = "CONSUME_POP",
    }
}

java_enum! {
    /// `MessageModel`.
    MessageModel {
        Broadcasting = "BROADCASTING",
        Clustering = "CLUSTERING",
    }
}

java_enum! {
    /// `ConsumeFromWhere`, ordinals in Java declaration order (legacy values included).
    ConsumeFromWhere {
        ConsumeFromLastOffset = "CONSUME_FROM_LAST_OFFSET",
        ConsumeFromLastOffsetAndFromMinWhenBootFirst = "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
        ConsumeFromMinOffset = "CONSUME_FROM_MIN_OFFSET",
        ConsumeFromMaxOffset = "CONSUME_FROM_MAX_OFFSET",
        ConsumeFromFirstOffset = "CONSUME_FROM_FIRST_OFFSET",
        ConsumeFromTimestamp = "CONSUME_FROM_TIMESTAMP",
    }
}

/// The tag expression type every client assumes when `expressionType` is absent.
pub const EXPRESSION_TYPE_TAG: &str = "TAG";

/// One topic subscription of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscriptionData {
    /// Legacy class filter mode.
    pub class_filter_mode: bool,
    /// Subscribed topic.
    pub topic: String,
    /// Expression, e.g. `*` or `a || b`.
    pub sub_string: String,
    /// Tags of a TAG expression.
    pub tags_set: Vec<String>,
    /// Java `String.hashCode` of each tag.
    pub code_set: Vec<i32>,
    /// Subscription version (ms timestamp).
    pub sub_version: i64,
    /// `TAG` or `SQL92`.
    pub expression_type: String,
}

/// A producer group the client belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerData {
    /// Producer group name.
    pub group_name: String,
}

/// A consumer group the client belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerData {
    /// Consumer group name.
    pub group_name: String,
    /// Pull, push or pop.
    pub consume_type: ConsumeType,
    /// Clustering or broadcasting.
    pub message_model: MessageModel,
    /// Where a new group starts.
    pub consume_from_where: ConsumeFromWhere,
    /// Subscriptions.
    pub subscription_data_set: Vec<SubscriptionData>,
    /// Unit mode.
    pub unit_mode: bool,
}

/// HEART_BEAT request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatData {
    /// Client id, e.g. `ip@instanceName`.
    pub client_id: String,
    /// Producer groups.
    pub producer_data_set: Vec<ProducerData>,
    /// Consumer groups.
    pub consumer_data_set: Vec<ConsumerData>,
    /// [5.x] 0 = v1 heartbeat.
    pub heartbeat_fingerprint: i32,
    /// [5.x] subscriptions omitted (v2 heartbeat, unchanged).
    pub without_sub: bool,
}

impl JsonBody for SubscriptionData {
    fn to_json(&self) -> Value {
        Bean::new()
            .put("classFilterMode", Value::Bool(self.class_filter_mode))
            .put(
                "codeSet",
                Value::Array(self.code_set.iter().map(|code| Value::int(*code)).collect()),
            )
            .put("expressionType", Value::string(self.expression_type.clone()))
            .put("subString", Value::string(self.sub_string.clone()))
            .put("subVersion", Value::int(self.sub_version))
            .put("tagsSet", strings_value(&self.tags_set))
            .put("topic", Value::string(self.topic.clone()))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "SubscriptionData")?;
        let code_path = props.path("codeSet");
        let code_set = props
            .array("codeSet")?
            .iter()
            .map(|item| {
                item.to_i64_lenient()
                    .and_then(|code| i32::try_from(code).ok())
                    .ok_or_else(|| super::wrong_shape(&code_path, item, "a 32-bit integer"))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            class_filter_mode: props.bool_or("classFilterMode", false)?,
            topic: props.string("topic")?,
            sub_string: props.string("subString")?,
            tags_set: props.strings("tagsSet")?,
            code_set,
            sub_version: props.i64_or("subVersion", 0)?,
            expression_type: props
                .string_opt("expressionType")?
                .unwrap_or_else(|| EXPRESSION_TYPE_TAG.to_owned()),
        })
    }
}

impl JsonBody for ProducerData {
    fn to_json(&self) -> Value {
        Bean::new().put("groupName", Value::string(self.group_name.clone())).build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "ProducerData")?;
        Ok(Self { group_name: props.string("groupName")? })
    }
}

impl JsonBody for ConsumerData {
    fn to_json(&self) -> Value {
        let subscriptions = self.subscription_data_set.iter().map(JsonBody::to_json).collect();
        Bean::new()
            .put("consumeFromWhere", self.consume_from_where.to_json())
            .put("consumeType", self.consume_type.to_json())
            .put("groupName", Value::string(self.group_name.clone()))
            .put("messageModel", self.message_model.to_json())
            .put("subscriptionDataSet", Value::Array(subscriptions))
            .put("unitMode", Value::Bool(self.unit_mode))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "ConsumerData")?;
        let enum_value = |name: &str| props.get(name).unwrap_or(&Value::Null);
        Ok(Self {
            group_name: props.string("groupName")?,
            consume_type: ConsumeType::from_json(
                enum_value("consumeType"),
                &props.path("consumeType"),
            )?,
            message_model: MessageModel::from_json(
                enum_value("messageModel"),
                &props.path("messageModel"),
            )?,
            consume_from_where: ConsumeFromWhere::from_json(
                enum_value("consumeFromWhere"),
                &props.path("consumeFromWhere"),
            )?,
            subscription_data_set: props
                .array("subscriptionDataSet")?
                .iter()
                .map(SubscriptionData::from_json)
                .collect::<Result<_>>()?,
            unit_mode: props.bool_or("unitMode", false)?,
        })
    }
}

impl JsonBody for HeartbeatData {
    fn to_json(&self) -> Value {
        Bean::new()
            .put("clientID", Value::string(self.client_id.clone()))
            .put(
                "consumerDataSet",
                Value::Array(self.consumer_data_set.iter().map(JsonBody::to_json).collect()),
            )
            .put("heartbeatFingerprint", Value::int(self.heartbeat_fingerprint))
            .put(
                "producerDataSet",
                Value::Array(self.producer_data_set.iter().map(JsonBody::to_json).collect()),
            )
            .put("withoutSub", Value::Bool(self.without_sub))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "HeartbeatData")?;
        Ok(Self {
            client_id: props.string("clientID")?,
            producer_data_set: props
                .array("producerDataSet")?
                .iter()
                .map(ProducerData::from_json)
                .collect::<Result<_>>()?,
            consumer_data_set: props
                .array("consumerDataSet")?
                .iter()
                .map(ConsumerData::from_json)
                .collect::<Result<_>>()?,
            heartbeat_fingerprint: props.i32_or("heartbeatFingerprint", 0)?,
            without_sub: props.bool_or("withoutSub", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpp_style_enums_as_ordinals_and_string_sub_version() {
        let body = br#"{"clientID":"c","consumerDataSet":[{"consumeFromWhere":0,"consumeType":1,
            "groupName":"G","messageModel":1,"subscriptionDataSet":[{"subString":"*",
            "subVersion":"1795316055755","topic":"T"}]}]}"#;
        let heartbeat = HeartbeatData::decode(body).unwrap();
        let consumer = &heartbeat.consumer_data_set[0];
        assert_eq!(consumer.consume_type, ConsumeType::ConsumePassively);
        assert_eq!(consumer.message_model, MessageModel::Clustering);
        assert_eq!(consumer.consume_from_where, ConsumeFromWhere::ConsumeFromLastOffset);
        let subscription = &consumer.subscription_data_set[0];
        assert_eq!(subscription.sub_version, 1_795_316_055_755);
        assert_eq!(subscription.expression_type, "TAG");
        assert!(heartbeat.producer_data_set.is_empty());
    }

    #[test]
    fn golden_heartbeat_encoding() {
        let heartbeat = HeartbeatData {
            client_id: "127.0.0.1@1".into(),
            producer_data_set: vec![ProducerData { group_name: "P".into() }],
            consumer_data_set: vec![ConsumerData {
                group_name: "G".into(),
                consume_type: ConsumeType::ConsumePassively,
                message_model: MessageModel::Clustering,
                consume_from_where: ConsumeFromWhere::ConsumeFromFirstOffset,
                subscription_data_set: vec![SubscriptionData {
                    topic: "T".into(),
                    sub_string: "*".into(),
                    sub_version: 5,
                    expression_type: "TAG".into(),
                    ..SubscriptionData::default()
                }],
                unit_mode: false,
            }],
            heartbeat_fingerprint: 0,
            without_sub: false,
        };
        let text = String::from_utf8(heartbeat.encode()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"clientID":"127.0.0.1@1","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","#,
                r#""consumeType":"CONSUME_PASSIVELY","groupName":"G","messageModel":"CLUSTERING","#,
                r#""subscriptionDataSet":[{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","#,
                r#""subString":"*","subVersion":5,"tagsSet":[],"topic":"T"}],"unitMode":false}],"#,
                r#""heartbeatFingerprint":0,"producerDataSet":[{"groupName":"P"}],"withoutSub":false}"#
            )
        );
        assert_eq!(HeartbeatData::decode(text.as_bytes()).unwrap(), heartbeat);
    }

    #[test]
    fn unknown_enum_is_an_error_naming_the_field() {
        let err =
            ConsumerData::decode(br#"{"consumeType":"X","messageModel":1,"consumeFromWhere":0}"#)
                .unwrap_err();
        assert!(err.to_string().contains("ConsumerData.consumeType"), "{err}");
    }
}
