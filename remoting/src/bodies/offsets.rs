//! Offset tables with fastjson's non-string map keys (spec §9.7):
//! `ConsumerOffsetSerializeWrapper` (`{"topic@group":{0:42}}`, integer keys unquoted) and
//! `ConsumeStats` (`{"offsetTable":{{"brokerName":..,"queueId":0,"topic":..}:{..}}}`,
//! `MessageQueue` objects as keys).

use std::collections::BTreeMap;

use super::{Bean, JsonBody, Props, key_string, wrong_shape};
use super::{DataVersion, MessageQueue};
use crate::error::Result;
use crate::json::{Number, Object, Value};

/// GET_ALL_CONSUMER_OFFSET body: `topic@group` → queue id → committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerOffsetSerializeWrapper {
    /// Version of the table.
    pub data_version: DataVersion,
    /// `topic@group` → (queue id → offset).
    pub offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// Offsets of one queue in GET_CONSUME_STATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OffsetWrapper {
    /// Queue max offset on the broker.
    pub broker_offset: i64,
    /// Committed consumer offset.
    pub consumer_offset: i64,
    /// [5.x] in-memory pull offset; omitted when `None`.
    pub pull_offset: Option<i64>,
    /// Store time of the last consumed message, ms.
    pub last_timestamp: i64,
}

/// GET_CONSUME_STATS response body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumeStats {
    /// Per-queue offsets, keyed by queue (written as object keys).
    pub offset_table: BTreeMap<MessageQueue, OffsetWrapper>,
    /// Consume rate, messages per second.
    pub consume_tps: f64,
}

impl JsonBody for ConsumerOffsetSerializeWrapper {
    fn to_json(&self) -> Value {
        let mut table = Object::new();
        for (key, queues) in &self.offset_table {
            let mut offsets = Object::new();
            for (queue_id, offset) in queues {
                offsets.insert_key(Value::int(*queue_id), Value::int(*offset));
            }
            table.insert(key.clone(), Value::Object(offsets));
        }
        Bean::new()
            .put("dataVersion", self.data_version.to_json())
            .put("offsetTable", Value::Object(table))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "ConsumerOffsetSerializeWrapper")?;
        let path = props.path("offsetTable");
        let mut offset_table = BTreeMap::new();
        if let Some(table) = props.object_opt("offsetTable")? {
            for (key, queues) in table.iter() {
                let queues =
                    queues.as_object().ok_or_else(|| wrong_shape(&path, queues, "an object"))?;
                let mut offsets = BTreeMap::new();
                for (queue_id, offset) in queues.iter() {
                    let queue_id = queue_id
                        .to_i64_lenient()
                        .and_then(|id| i32::try_from(id).ok())
                        .ok_or_else(|| wrong_shape(&path, queue_id, "a queue id"))?;
                    let offset = offset
                        .to_i64_lenient()
                        .ok_or_else(|| wrong_shape(&path, offset, "an offset"))?;
                    offsets.insert(queue_id, offset);
                }
                offset_table.insert(key_string(key, &path)?, offsets);
            }
        }
        Ok(Self {
            data_version: props
                .get("dataVersion")
                .map(DataVersion::from_json)
                .transpose()?
                .unwrap_or_default(),
            offset_table,
        })
    }
}

impl JsonBody for OffsetWrapper {
    fn to_json(&self) -> Value {
        Bean::new()
            .put("brokerOffset", Value::int(self.broker_offset))
            .put("consumerOffset", Value::int(self.consumer_offset))
            .put("lastTimestamp", Value::int(self.last_timestamp))
            .put_opt("pullOffset", self.pull_offset.map(Value::int))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "OffsetWrapper")?;
        Ok(Self {
            broker_offset: props.i64_or("brokerOffset", 0)?,
            consumer_offset: props.i64_or("consumerOffset", 0)?,
            pull_offset: props
                .get("pullOffset")
                .map(|_| props.i64_or("pullOffset", 0))
                .transpose()?,
            last_timestamp: props.i64_or("lastTimestamp", 0)?,
        })
    }
}

impl JsonBody for ConsumeStats {
    fn to_json(&self) -> Value {
        let mut table = Object::new();
        for (queue, offsets) in &self.offset_table {
            table.insert_key(queue.to_json(), offsets.to_json());
        }
        Bean::new()
            .put("consumeTps", java_double(self.consume_tps))
            .put("offsetTable", Value::Object(table))
            .build()
    }

    fn from_json(value: &Value) -> Result<Self> {
        let props = Props::new(value, "ConsumeStats")?;
        let mut offset_table = BTreeMap::new();
        if let Some(table) = props.object_opt("offsetTable")? {
            for (key, offsets) in table.iter() {
                offset_table
                    .insert(MessageQueue::from_json(key)?, OffsetWrapper::from_json(offsets)?);
            }
        }
        let consume_tps = match props.get("consumeTps") {
            None => 0.0,
            Some(Value::Number(number)) => number.as_f64().unwrap_or(0.0),
            Some(Value::String(text)) => text.trim().parse().map_err(|_| {
                crate::Error::invalid_field(&props.path("consumeTps"), text, "a number")
            })?,
            Some(other) => return Err(wrong_shape(&props.path("consumeTps"), other, "a number")),
        };
        Ok(Self { offset_table, consume_tps })
    }
}

/// A double as fastjson (`RyuDouble`, Java `Double.toString` style) writes it: `0.0`, `1.5`,
/// `1.0E7`; NaN and infinities become `null`.
fn java_double(value: f64) -> Value {
    if !value.is_finite() {
        return Value::Null;
    }
    let magnitude = value.abs();
    let text = if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        format!("{value:?}")
    } else {
        let scientific = format!("{value:E}");
        match scientific.split_once('E') {
            Some((mantissa, exponent)) if !mantissa.contains('.') => {
                format!("{mantissa}.0E{exponent}")
            }
            _ => scientific,
        }
    };
    Value::Number(Number::from_text(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{JsonStyle, to_vec};

    #[test]
    fn golden_consumer_offsets_with_unquoted_int_keys() {
        let wrapper = ConsumerOffsetSerializeWrapper {
            data_version: DataVersion::default(),
            offset_table: BTreeMap::from([("T@G".to_owned(), BTreeMap::from([(0, 42), (1, 7)]))]),
        };
        let text = String::from_utf8(wrapper.encode()).unwrap();
        assert_eq!(
            text,
            r#"{"dataVersion":{"counter":0,"stateVersion":0,"timestamp":0},"offsetTable":{"T@G":{0:42,1:7}}}"#
        );
        assert_eq!(ConsumerOffsetSerializeWrapper::decode(text.as_bytes()).unwrap(), wrapper);
    }

    #[test]
    fn golden_consume_stats_with_object_keys() {
        let queue = MessageQueue { topic: "T".into(), broker_name: "b".into(), queue_id: 0 };
        let stats = ConsumeStats {
            offset_table: BTreeMap::from([(
                queue,
                OffsetWrapper {
                    broker_offset: 10,
                    consumer_offset: 8,
                    pull_offset: None,
                    last_timestamp: 1,
                },
            )]),
            consume_tps: 0.0,
        };
        let text = String::from_utf8(stats.encode()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"consumeTps":0.0,"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:"#,
                r#"{"brokerOffset":10,"consumerOffset":8,"lastTimestamp":1}}}"#
            )
        );
        assert_eq!(ConsumeStats::decode(text.as_bytes()).unwrap(), stats);
    }

    #[test]
    fn doubles_are_written_like_java() {
        let text =
            |value| String::from_utf8(to_vec(&java_double(value), JsonStyle::Fastjson)).unwrap();
        assert_eq!(text(0.0), "0.0");
        assert_eq!(text(1.5), "1.5");
        assert_eq!(text(12.0), "12.0");
        assert_eq!(text(1.0e7), "1.0E7");
        assert_eq!(text(f64::NAN), "null");
    }
}
