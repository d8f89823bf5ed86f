//! Typed JSON bodies (spec §5, §9), encoded as fastjson writes them and decoded leniently.
//!
//! Encoding builds a [`Value`] whose bean properties are sorted alphabetically (fastjson's
//! order), omits `None` properties (fastjson omits nulls), and writes it in the style asked
//! for. Decoding accepts any property order, ignores unknown properties, gives absent ones the
//! Java field default, and binds values as fastjson does (numbers from numeric strings,
//! booleans from `1`/`0`, enums from names or ordinals).

mod groups;
mod heartbeat;
mod lists;
mod lock;
mod member_group;
mod offsets;
mod register;
mod route;

pub use groups::{SubscriptionGroupConfig, SubscriptionGroupWrapper};
pub use heartbeat::{
    ConsumeFromWhere, ConsumeType, ConsumerData, HeartbeatData, MessageModel, ProducerData,
    SubscriptionData,
};
pub use lists::{ConsumerListByGroupResponseBody, GroupList, KvTable, TopicList};
pub use lock::{LockBatchRequestBody, LockBatchResponseBody, MessageQueue, UnlockBatchRequestBody};
pub use member_group::{BrokerMemberGroup, GetBrokerMemberGroupResponseBody};
pub use offsets::{ConsumeStats, ConsumerOffsetSerializeWrapper, OffsetWrapper};
pub use register::{
    DataVersion, MAX_INFLATED_REGISTER_BODY_BYTES, RegisterBrokerBody, TopicConfig,
    TopicConfigSerializeWrapper, VERSION_V3_0_11, VERSION_V5_0_0,
};
pub use route::{BrokerData, ClusterInfo, QueueData, TopicRouteData};

use crate::error::{Error, Result};
use crate::json::{self, JsonStyle, Object, Value};

/// A body type that travels as fastjson JSON.
pub trait JsonBody: Sized {
    /// The JSON tree fastjson would produce for the Java bean.
    fn to_json(&self) -> Value;

    /// Binds a parsed tree, leniently.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] naming the property path when a value has the wrong shape.
    fn from_json(value: &Value) -> Result<Self>;

    /// Bytes in fastjson's default style (what a Java broker or name server sends).
    fn encode(&self) -> Vec<u8> {
        json::to_vec(&self.to_json(), JsonStyle::Fastjson)
    }

    /// Bytes in the given style.
    fn encode_with(&self, style: JsonStyle) -> Vec<u8> {
        json::to_vec(&self.to_json(), style)
    }

    /// Parses and binds body bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Json`] for malformed text, else as [`JsonBody::from_json`].
    fn decode(bytes: &[u8]) -> Result<Self> {
        Self::from_json(&json::parse(bytes)?)
    }
}

/// Builds a bean object; [`Bean::build`] sorts the properties as fastjson does.
pub(crate) struct Bean(Object);

impl Bean {
    pub(crate) fn new() -> Self {
        Self(Object::new())
    }

    pub(crate) fn put(mut self, name: &str, value: Value) -> Self {
        self.0.insert(name, value);
        self
    }

    pub(crate) fn put_opt(self, name: &str, value: Option<Value>) -> Self {
        match value {
            Some(value) => self.put(name, value),
            None => self,
        }
    }

    pub(crate) fn build(mut self) -> Value {
        self.0.sort_keys();
        Value::Object(self.0)
    }
}

/// Reads a bean's properties with fastjson's leniency and path-naming errors.
pub(crate) struct Props<'a> {
    object: &'a Object,
    path: &'a str,
}

impl<'a> Props<'a> {
    pub(crate) fn new(value: &'a Value, path: &'a str) -> Result<Self> {
        match value {
            Value::Object(object) => Ok(Self { object, path }),
            other => Err(wrong_shape(path, other, "an object")),
        }
    }

    pub(crate) fn path(&self, name: &str) -> String {
        if self.path.is_empty() { name.to_owned() } else { format!("{}.{name}", self.path) }
    }

    /// The property, treating `null` as absent.
    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|value| **value != Value::Null)
    }

    pub(crate) fn string_opt(&self, name: &str) -> Result<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(value @ (Value::Number(_) | Value::Bool(_))) => Ok(value.to_field_string()),
            Some(other) => Err(wrong_shape(&self.path(name), other, "a string")),
        }
    }

    pub(crate) fn string(&self, name: &str) -> Result<String> {
        Ok(self.string_opt(name)?.unwrap_or_default())
    }

    pub(crate) fn i64_or(&self, name: &str, default: i64) -> Result<i64> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value
                .to_i64_lenient()
                .ok_or_else(|| wrong_shape(&self.path(name), value, "an integer")),
        }
    }

    pub(crate) fn i32_or(&self, name: &str, default: i32) -> Result<i32> {
        let wide = self.i64_or(name, i64::from(default))?;
        i32::try_from(wide).map_err(|_| {
            Error::invalid_field(&self.path(name), &wide.to_string(), "a 32-bit integer")
        })
    }

    pub(crate) fn bool_or(&self, name: &str, default: bool) -> Result<bool> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value
                .to_bool_lenient()
                .ok_or_else(|| wrong_shape(&self.path(name), value, "a boolean")),
        }
    }

    pub(crate) fn array(&self, name: &str) -> Result<&'a [Value]> {
        match self.get(name) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(wrong_shape(&self.path(name), other, "an array")),
        }
    }

    pub(crate) fn object_opt(&self, name: &str) -> Result<Option<&'a Object>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(object)) => Ok(Some(object)),
            Some(other) => Err(wrong_shape(&self.path(name), other, "an object")),
        }
    }

    /// A `List<String>`/`Set<String>` property.
    pub(crate) fn strings(&self, name: &str) -> Result<Vec<String>> {
        let path = self.path(name);
        self.array(name)?.iter().map(|item| string_value(item, &path)).collect()
    }
}

/// A string element, accepting numbers and booleans as their text.
pub(crate) fn string_value(value: &Value, path: &str) -> Result<String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(_) | Value::Bool(_) => Ok(value.to_field_string().unwrap_or_default()),
        other => Err(wrong_shape(path, other, "a string")),
    }
}

/// A `Map<String, V>` key, accepting number keys as their text.
pub(crate) fn key_string(key: &Value, path: &str) -> Result<String> {
    key.key_text()
        .map(|text| text.into_owned())
        .ok_or_else(|| wrong_shape(path, key, "a string key"))
}

pub(crate) fn wrong_shape(path: &str, value: &Value, expected: &'static str) -> Error {
    let text = value.to_field_string().unwrap_or_else(|| "null".to_owned());
    Error::invalid_field(path, &text, expected)
}

pub(crate) fn strings_value(items: &[String]) -> Value {
    Value::Array(items.iter().map(|item| Value::string(item.clone())).collect())
}

/// Declares a Java enum that fastjson writes by name and reads by name or ordinal.
macro_rules! java_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$doc:meta])* $variant:ident = $java:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$doc])* $variant, )*
        }

        impl $name {
            const VARIANTS: &'static [($name, &'static str)] = &[$( ($name::$variant, $java), )*];

            /// The Java enum name.
            pub fn name(self) -> &'static str {
                Self::VARIANTS
                    .iter()
                    .find(|(variant, _)| *variant == self)
                    .map_or("", |(_, name)| name)
            }

            /// The variant for a Java name or ordinal (as fastjson binds enums).
            pub fn from_json(value: &$crate::json::Value, path: &str) -> $crate::error::Result<Self> {
                let found = match value {
                    $crate::json::Value::String(text) => Self::VARIANTS
                        .iter()
                        .find(|(_, name)| *name == text.as_str()),
                    $crate::json::Value::Number(number) => number
                        .as_i64()
                        .and_then(|ordinal| usize::try_from(ordinal).ok())
                        .and_then(|ordinal| Self::VARIANTS.get(ordinal)),
                    _ => None,
                };
                found.map(|(variant, _)| *variant).ok_or_else(|| {
                    $crate::bodies::wrong_shape(path, value, concat!("a ", stringify!($name), " name or ordinal"))
                })
            }

            /// The JSON value fastjson writes (the name).
            pub fn to_json(self) -> $crate::json::Value {
                $crate::json::Value::string(self.name())
            }
        }
    };
}
pub(crate) use java_enum;
