//! REGISTER_BROKER body (spec §9.5) in both forms, and its parts: `DataVersion`,
//! `TopicConfig`, `TopicConfigSerializeWrapper`.
//!
//! The uncompressed form is fastjson JSON. The compressed form (`RegisterBrokerBody.encode(true)`
//! in Java, header `compressed=true`) is one zlib stream whose inflated bytes are:
//!
//! ```text
//! i32 len, DataVersion JSON
//! i32 topic count, then per topic: i32 len, TopicConfig text "name read write perm filterType [attributesJSON]"
//! i32 len, filterServerList JSON array
//! [broker version >= V5_0_0] i32 count, then per entry: i32 len, TopicQueueMappingInfo JSON
//! ```
//!
//! All integers big-endian. The text form of a topic carries neither `topicSysFlag` nor
//! `order`; a compressed registration loses them, as in Java.

use std::collections::BTreeMap;

use super::{Bean, JsonBody, Props, key_string, strings_value};
use crate::error::{Error, Result};
use crate::json::{self, JsonStyle, Object, Value};

/// Largest inflated compressed REGISTER_BROKER body accepted: 64 MiB, room for several
/// hundred thousand topics. A bigger stream is refused rather than inflated without bound.
pub const MAX_INFLATED_REGISTER_BODY_BYTES: usize = 64 << 20;

/// `MQVersion.Version.V3_0_11` ordinal: brokers older than this send a bare
/// `TopicConfigSerializeWrapper` instead of a `RegisterBrokerBody`.
pub const VERSION_V3_0_11: i32 = 37;

/// `MQVersion.Version.V5_0_0` ordinal: from this version on, the compressed body ends with the
/// static-topic mapping entries.
pub const VERSION_V5_0_0: i32 = 413;

/// Java's `Deflater.BEST_COMPRESSION`, the level brokers deflate registrations with.
const BEST_COMPRESSION: u32 = 9;

/// Separator of the fields of a topic's text form.
const TOPIC_TEXT_SEPARATOR: char = ' ';

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

impl TopicConfig {
    /// Java `TopicConfig.encode()`: `name read write perm filterType attributes`, one space
    /// between fields; the attributes JSON is empty when `None` (Java's null).
    pub fn encode_text(&self) -> String {
        let attributes = match &self.attributes {
            Some(attributes) => {
                let mut object = Object::new();
                for (key, value) in attributes {
                    object.insert(key.clone(), Value::string(value.clone()));
                }
                String::from_utf8_lossy(&json::to_vec(&Value::Object(object), JsonStyle::Fastjson))
                    .into_owned()
            }
            None => String::new(),
        };
        format!(
            "{} {} {} {} {} {attributes}",
            self.topic_name,
            self.read_queue_nums,
            self.write_queue_nums,
            self.perm,
            self.topic_filter_type
        )
    }

    /// Java `TopicConfig.decode(String)`: at least five space-separated fields; a sixth that
    /// is not a JSON string map is ignored, as Java ignores it. `topicSysFlag` and `order`
    /// take their defaults (the text form does not carry them).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] naming the field when there are fewer than five fields, a
    /// number does not parse, or the filter type is neither `SINGLE_TAG` nor `MULTI_TAG`.
    pub fn decode_text(text: &str) -> Result<Self> {
        // Java's String.split drops trailing empty strings.
        let mut parts: Vec<&str> = text.split(TOPIC_TEXT_SEPARATOR).collect();
        while parts.last().is_some_and(|part| part.is_empty()) {
            parts.pop();
        }
        let [name, read, write, perm, filter, rest @ ..] = parts.as_slice() else {
            return Err(Error::invalid_field(
                "TopicConfig",
                text,
                "at least 5 space-separated fields",
            ));
        };
        let int = |field: &str, raw: &str| {
            raw.parse::<i32>().map_err(|_| Error::invalid_field(field, raw, "a 32-bit integer"))
        };
        if *filter != "SINGLE_TAG" && *filter != "MULTI_TAG" {
            return Err(Error::invalid_field(
                "TopicConfig.topicFilterType",
                filter,
                "SINGLE_TAG or MULTI_TAG",
            ));
        }
        let attributes = rest.first().and_then(|raw| decode_string_map(raw.as_bytes()));
        Ok(Self {
            topic_name: (*name).to_owned(),
            read_queue_nums: int("TopicConfig.readQueueNums", read)?,
            write_queue_nums: int("TopicConfig.writeQueueNums", write)?,
            perm: int("TopicConfig.perm", perm)?,
            topic_filter_type: (*filter).to_owned(),
            attributes,
            ..Self::default()
        })
    }
}

impl RegisterBrokerBody {
    /// The compressed form Java writes with `encode(true)` (5.x layout: the static-topic
    /// mapping count is always written, 0 when there is none).
    pub fn encode_compressed(&self) -> Vec<u8> {
        let wrapper = &self.topic_config_serialize_wrapper;
        let mut plain = Vec::new();
        put_chunk(&mut plain, &wrapper.data_version.encode());
        put_count(&mut plain, wrapper.topic_config_table.len());
        for config in wrapper.topic_config_table.values() {
            put_chunk(&mut plain, config.encode_text().as_bytes());
        }
        let filters = strings_value(&self.filter_server_list);
        put_chunk(&mut plain, &json::to_vec(&filters, JsonStyle::Fastjson));
        let mappings = match &wrapper.topic_queue_mapping_info_map {
            Some(Value::Object(map)) => map.iter().map(|(_, info)| info).collect(),
            _ => Vec::new(),
        };
        put_count(&mut plain, mappings.len());
        for info in mappings {
            put_chunk(&mut plain, &json::to_vec(info, JsonStyle::Fastjson));
        }
        ferromq_message::zlib::deflate(&plain, BEST_COMPRESSION)
    }

    /// Decodes the compressed form (Java `RegisterBrokerBody.decode(data, true, version)`).
    /// `broker_version` is the request's `version`: from [`VERSION_V5_0_0`] on, the mapping
    /// entries are read (an older 5.x-less stream that simply ends there is accepted too).
    /// Bytes after the fields Java reads are ignored, as Java ignores them.
    ///
    /// # Errors
    ///
    /// [`Error::Decompress`] for a corrupt stream or one inflating past
    /// [`MAX_INFLATED_REGISTER_BODY_BYTES`]; [`Error::Truncated`] / [`Error::NegativeLength`]
    /// for a length that does not fit; [`Error::Json`] / [`Error::InvalidField`] for a part
    /// that does not parse.
    pub fn decode_compressed(data: &[u8], broker_version: i32) -> Result<Self> {
        let plain = ferromq_message::zlib::inflate(data, MAX_INFLATED_REGISTER_BODY_BYTES)
            .map_err(|error| Error::Decompress {
                what: "compressed RegisterBrokerBody",
                reason: error.to_string(),
            })?;
        let mut reader = ChunkReader { bytes: &plain, pos: 0 };
        let data_version = DataVersion::decode(reader.chunk("dataVersion")?)?;
        let topic_count = reader.count("topic count")?;
        let mut topic_config_table = BTreeMap::new();
        for _ in 0..topic_count {
            let text = reader.chunk("topicConfig")?;
            let text = std::str::from_utf8(text)
                .map_err(|_| Error::Utf8 { what: "topicConfig", offset: reader.pos })?;
            let config = TopicConfig::decode_text(text)?;
            topic_config_table.insert(config.topic_name.clone(), config);
        }
        // Java logs a filter list that does not parse and goes on with an empty one.
        let filter_server_list = json::parse(reader.chunk("filterServerList")?)
            .ok()
            .and_then(|value| {
                let items = value.as_array()?;
                Some(items.iter().filter_map(|item| item.as_str().map(str::to_owned)).collect())
            })
            .unwrap_or_default();
        let topic_queue_mapping_info_map = if broker_version >= VERSION_V5_0_0 {
            Some(Value::Object(reader.mapping_infos()?))
        } else {
            None
        };
        Ok(Self {
            topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
                topic_config_table,
                data_version,
                topic_queue_mapping_info_map,
                ..TopicConfigSerializeWrapper::default()
            },
            filter_server_list,
        })
    }
}

/// A JSON object of strings, or `None` if `bytes` is not one.
fn decode_string_map(bytes: &[u8]) -> Option<BTreeMap<String, String>> {
    let value = json::parse(bytes).ok()?;
    let mut map = BTreeMap::new();
    for (key, value) in value.as_object()?.iter() {
        map.insert(key.key_text()?.into_owned(), value.as_str()?.to_owned());
    }
    Some(map)
}

fn put_count(out: &mut Vec<u8>, count: usize) {
    // A table of more than i32::MAX entries cannot exist in memory; saturate rather than wrap.
    out.extend_from_slice(&i32::try_from(count).unwrap_or(i32::MAX).to_be_bytes());
}

fn put_chunk(out: &mut Vec<u8>, chunk: &[u8]) {
    put_count(out, chunk.len());
    out.extend_from_slice(chunk);
}

/// Reads the length-prefixed parts of an inflated compressed body, bounds-checked.
struct ChunkReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> ChunkReader<'a> {
    fn take(&mut self, what: &'static str, len: usize) -> Result<&'a [u8]> {
        let available = self.bytes.len() - self.pos;
        if len > available {
            return Err(Error::Truncated { what, offset: self.pos, needed: len, available });
        }
        let part = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(part)
    }

    fn count(&mut self, what: &'static str) -> Result<usize> {
        let offset = self.pos;
        let raw = self.take(what, 4)?;
        let value = i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        usize::try_from(value).map_err(|_| Error::NegativeLength {
            what,
            offset,
            length: i64::from(value),
        })
    }

    fn chunk(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let len = self.count(what)?;
        self.take(what, len)
    }

    /// The static-topic mapping entries, keyed by their `topic` as Java keys them. A stream
    /// that ends before the count (a pre-5.0 encoder) has none.
    fn mapping_infos(&mut self) -> Result<Object> {
        let mut map = Object::new();
        if self.pos == self.bytes.len() {
            return Ok(map);
        }
        let count = self.count("topic queue mapping count")?;
        for _ in 0..count {
            let info = json::parse(self.chunk("topicQueueMappingInfo")?)?;
            let topic = info
                .as_object()
                .and_then(|object| object.get("topic"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            map.insert(topic, info);
        }
        Ok(map)
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

#[cfg(test)]
mod compressed_tests {
    use super::*;

    fn chunk(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&i32::try_from(bytes.len()).unwrap().to_be_bytes());
        out.extend_from_slice(bytes);
    }

    /// The inflated bytes a Java 5.x broker writes for two topics, written out by hand from
    /// `RegisterBrokerBody.encode(true)` and `TopicConfig.encode()`.
    fn java_inflated_body() -> Vec<u8> {
        let mut plain = Vec::new();
        chunk(&mut plain, br#"{"counter":3,"stateVersion":0,"timestamp":1700000000000}"#);
        plain.extend_from_slice(&2_i32.to_be_bytes());
        chunk(&mut plain, b"%RETRY%G 1 1 6 SINGLE_TAG {}");
        chunk(&mut plain, br#"T 8 4 7 MULTI_TAG {"+message.type":"NORMAL"}"#);
        chunk(&mut plain, b"[]");
        plain.extend_from_slice(&0_i32.to_be_bytes());
        plain
    }

    fn expected_body() -> RegisterBrokerBody {
        let retry = TopicConfig {
            topic_name: "%RETRY%G".into(),
            read_queue_nums: 1,
            write_queue_nums: 1,
            attributes: Some(BTreeMap::new()),
            ..TopicConfig::default()
        };
        let topic = TopicConfig {
            topic_name: "T".into(),
            read_queue_nums: 8,
            write_queue_nums: 4,
            perm: 7,
            topic_filter_type: "MULTI_TAG".into(),
            attributes: Some(BTreeMap::from([("+message.type".into(), "NORMAL".into())])),
            ..TopicConfig::default()
        };
        RegisterBrokerBody {
            topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
                topic_config_table: BTreeMap::from([
                    (retry.topic_name.clone(), retry),
                    (topic.topic_name.clone(), topic),
                ]),
                data_version: DataVersion {
                    counter: 3,
                    state_version: 0,
                    timestamp: 1_700_000_000_000,
                },
                topic_queue_mapping_info_map: Some(Value::Object(Object::new())),
                ..TopicConfigSerializeWrapper::default()
            },
            filter_server_list: Vec::new(),
        }
    }

    #[test]
    fn decodes_the_java_compressed_layout() {
        let compressed = ferromq_message::zlib::deflate(&java_inflated_body(), 9);
        let body = RegisterBrokerBody::decode_compressed(&compressed, 479).unwrap();
        assert_eq!(body, expected_body());
    }

    #[test]
    fn encodes_the_java_compressed_layout() {
        let compressed = expected_body().encode_compressed();
        let plain = ferromq_message::zlib::inflate(&compressed, 1 << 20).unwrap();
        assert_eq!(plain, java_inflated_body());
        assert_eq!(
            RegisterBrokerBody::decode_compressed(&compressed, 479).unwrap(),
            expected_body()
        );
    }

    #[test]
    fn pre_5_0_brokers_have_no_mapping_section() {
        // A 4.9 broker (version 409) ends after the filter list; trailing bytes are ignored.
        let compressed = ferromq_message::zlib::deflate(&java_inflated_body(), 9);
        let body = RegisterBrokerBody::decode_compressed(&compressed, 409).unwrap();
        assert_eq!(body.topic_config_serialize_wrapper.topic_queue_mapping_info_map, None);
        let mut plain = java_inflated_body();
        plain.truncate(plain.len() - 4);
        let body =
            RegisterBrokerBody::decode_compressed(&ferromq_message::zlib::deflate(&plain, 9), 479)
                .unwrap();
        assert_eq!(body.topic_config_serialize_wrapper.topic_config_table.len(), 2);
    }

    #[test]
    fn mapping_entries_are_keyed_by_topic() {
        let mut plain = java_inflated_body();
        plain.truncate(plain.len() - 4);
        plain.extend_from_slice(&1_i32.to_be_bytes());
        chunk(&mut plain, br#"{"bname":"broker-a","epoch":0,"topic":"S","totalQueues":4}"#);
        let compressed = ferromq_message::zlib::deflate(&plain, 9);
        let body = RegisterBrokerBody::decode_compressed(&compressed, 479).unwrap();
        let map = body.topic_config_serialize_wrapper.topic_queue_mapping_info_map.unwrap();
        let info = map.as_object().unwrap().get("S").unwrap();
        assert_eq!(info.as_object().unwrap().get("bname").unwrap().as_str(), Some("broker-a"));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let plain = java_inflated_body();
        for len in 0..plain.len() - 4 {
            let compressed = ferromq_message::zlib::deflate(&plain[..len], 9);
            assert!(
                RegisterBrokerBody::decode_compressed(&compressed, 409).is_err(),
                "inflated prefix of {len} bytes"
            );
        }
        let compressed = ferromq_message::zlib::deflate(&plain, 9);
        for len in 0..compressed.len() {
            let err = RegisterBrokerBody::decode_compressed(&compressed[..len], 479).unwrap_err();
            assert!(matches!(err, Error::Decompress { .. }), "prefix of {len} bytes: {err}");
        }
    }

    #[test]
    fn hostile_lengths_are_errors() {
        let mut negative = Vec::new();
        negative.extend_from_slice(&(-1_i32).to_be_bytes());
        let compressed = ferromq_message::zlib::deflate(&negative, 9);
        let err = RegisterBrokerBody::decode_compressed(&compressed, 479).unwrap_err();
        assert_eq!(err.to_string(), "dataVersion at offset 0 has negative length -1");
        let mut huge = Vec::new();
        chunk(&mut huge, br#"{"counter":1}"#);
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        let compressed = ferromq_message::zlib::deflate(&huge, 9);
        let err = RegisterBrokerBody::decode_compressed(&compressed, 479).unwrap_err();
        assert!(matches!(err, Error::Truncated { what: "topicConfig", .. }), "{err}");
        let err = RegisterBrokerBody::decode_compressed(b"not zlib at all", 479).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot inflate compressed RegisterBrokerBody"),
            "{err}"
        );
    }

    #[test]
    fn topic_text_round_trip_and_java_quirks() {
        let config = TopicConfig {
            topic_name: "T".into(),
            read_queue_nums: 4,
            write_queue_nums: 2,
            topic_sys_flag: 3,
            order: true,
            ..TopicConfig::default()
        };
        // No attributes: Java's null map leaves a trailing separator.
        assert_eq!(config.encode_text(), "T 4 2 6 SINGLE_TAG ");
        let decoded = TopicConfig::decode_text(&config.encode_text()).unwrap();
        // The text form carries neither topicSysFlag nor order.
        assert_eq!(decoded, TopicConfig { topic_sys_flag: 0, order: false, ..config.clone() });
        // A 4.9 broker writes five fields without a trailing separator.
        assert_eq!(TopicConfig::decode_text("T 4 2 6 SINGLE_TAG").unwrap().read_queue_nums, 4);
        // Attributes with a space break Java's split; they are ignored, not an error.
        let spaced = TopicConfig::decode_text(r#"T 1 1 6 SINGLE_TAG {"a":"b c"}"#).unwrap();
        assert_eq!(spaced.attributes, None);
        for bad in ["T 1 1 6", "T x 1 6 SINGLE_TAG", "T 1 1 6 TAGS", "", "T 1 1 6  SINGLE_TAG"] {
            assert!(TopicConfig::decode_text(bad).is_err(), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod compressed_properties {
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    use super::*;

    fn topic_config() -> impl Strategy<Value = TopicConfig> {
        (
            "[%A-Za-z0-9_-]{1,24}",
            0..=1024_i32,
            0..=1024_i32,
            0..=7_i32,
            prop_oneof![Just("SINGLE_TAG"), Just("MULTI_TAG")],
            proptest::option::of(proptest::collection::btree_map(
                "[+a-z.]{1,12}",
                "[A-Za-z0-9_]{0,12}",
                0..3,
            )),
        )
            .prop_map(|(name, read, write, perm, filter, attributes)| TopicConfig {
                topic_name: name,
                read_queue_nums: read,
                write_queue_nums: write,
                perm,
                topic_filter_type: filter.to_owned(),
                attributes,
                ..TopicConfig::default()
            })
    }

    fn body() -> impl Strategy<Value = RegisterBrokerBody> {
        (
            proptest::collection::vec(topic_config(), 0..20),
            proptest::collection::vec("[0-9.:]{1,21}", 0..3),
            any::<(i64, i64, i64)>(),
        )
            .prop_map(|(topics, filters, (counter, state_version, timestamp))| {
                RegisterBrokerBody {
                    topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
                        topic_config_table: topics
                            .into_iter()
                            .map(|config| (config.topic_name.clone(), config))
                            .collect(),
                        data_version: DataVersion { counter, state_version, timestamp },
                        topic_queue_mapping_info_map: Some(Value::Object(Object::new())),
                        ..TopicConfigSerializeWrapper::default()
                    },
                    filter_server_list: filters,
                }
            })
    }

    /// Round trip, then every strict prefix of the stream is an error, never a panic.
    fn round_trip(body: &RegisterBrokerBody) -> Result<(), TestCaseError> {
        let compressed = body.encode_compressed();
        let decoded = RegisterBrokerBody::decode_compressed(&compressed, VERSION_V5_0_0)
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        prop_assert_eq!(&decoded, body);
        for len in (0..compressed.len()).step_by(7) {
            prop_assert!(RegisterBrokerBody::decode_compressed(&compressed[..len], 479).is_err());
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn compressed_body_round_trips(body in body()) {
            round_trip(&body)?;
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            drop(RegisterBrokerBody::decode_compressed(&bytes, 479));
            // Also as the inflated payload, behind a valid zlib stream.
            let compressed = ferromq_message::zlib::deflate(&bytes, 1);
            drop(RegisterBrokerBody::decode_compressed(&compressed, 479));
            drop(TopicConfig::decode_text(&String::from_utf8_lossy(&bytes)));
        }
    }
}
