//! The JSON tree: [`Value`], [`Number`] (kept as text) and [`Object`] (ordered entries with
//! arbitrary keys), plus the lenient conversions fastjson applies when binding to Java types.

use std::fmt;

/// A parsed JSON value, fastjson flavour: object keys may be numbers or objects.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, kept as its exact text.
    Number(Number),
    /// A string (escapes already resolved).
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object; entries keep their input order.
    Object(Object),
}

/// A JSON number kept as validated text (`-12`, `3.5e2`), so large longs never lose digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Number(String);

/// A JSON object: ordered `(key, value)` entries. Keys are usually [`Value::String`], but
/// fastjson writes `Long` keys as [`Value::Number`] and bean keys as [`Value::Object`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object(pub Vec<(Value, Value)>);

impl Number {
    /// Wraps already validated number text. Only the parser and the `From` impls call this.
    pub(crate) fn from_text(text: String) -> Self {
        Self(text)
    }

    /// The number exactly as read or written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as an `i64` if the text is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }

    /// The value as an `f64` (may round).
    pub fn as_f64(&self) -> Option<f64> {
        self.0.parse().ok()
    }
}

impl From<i64> for Number {
    fn from(value: i64) -> Self {
        Self(value.to_string())
    }
}

impl From<i32> for Number {
    fn from(value: i32) -> Self {
        Self(value.to_string())
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Appends an entry with a string key.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        self.0.push((Value::String(key.into()), value));
    }

    /// Appends an entry with an arbitrary key (numeric or object keys).
    pub fn insert_key(&mut self, key: Value, value: Value) {
        self.0.push((key, value));
    }

    /// The value of the last entry whose key is the string (or number text) `name`.
    ///
    /// The last one wins, as in fastjson and `serde_json`, when a key is repeated.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key.key_text().as_deref() == Some(name))
            .map(|(_, value)| value)
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = &(Value, Value)> {
        self.0.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the object has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorts entries by key the way fastjson orders bean properties and `MapSortField` maps:
    /// numbers numerically, strings by UTF-16 code units, anything else by its text.
    pub fn sort_keys(&mut self) {
        self.0.sort_by(|(a, _), (b, _)| compare_keys(a, b));
    }
}

impl Value {
    /// Shorthand for a string value.
    pub fn string(text: impl Into<String>) -> Self {
        Self::String(text.into())
    }

    /// Shorthand for an integer value.
    pub fn int(value: impl Into<i64>) -> Self {
        Self::Number(Number::from(value.into()))
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(text) => Some(text),
            _ => None,
        }
    }

    /// The object, if this is an object.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Self::Object(object) => Some(object),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    /// A key's text: a string key as is, a number key as its digits.
    pub fn key_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Self::String(text) => Some(std::borrow::Cow::Borrowed(text)),
            Self::Number(number) => Some(std::borrow::Cow::Borrowed(number.as_str())),
            _ => None,
        }
    }

    /// An integer the way fastjson casts to `long`: a JSON integer, or a string holding one
    /// (C++ clients send `"subVersion":"1795316055755"`).
    pub fn to_i64_lenient(&self) -> Option<i64> {
        match self {
            Self::Number(number) => number.as_i64(),
            Self::String(text) => parse_java_long(text),
            _ => None,
        }
    }

    /// A boolean the way fastjson casts to `boolean`: `true`/`false`, the numbers 1 and 0,
    /// or the strings `true`/`false`/`1`/`0`/`Y`/`N`/`T`/`F` in any case.
    pub fn to_bool_lenient(&self) -> Option<bool> {
        match self {
            Self::Bool(flag) => Some(*flag),
            Self::Number(number) => match number.as_i64() {
                Some(1) => Some(true),
                Some(0) => Some(false),
                _ => None,
            },
            Self::String(text) => match text.to_ascii_lowercase().as_str() {
                "true" | "1" | "y" | "t" => Some(true),
                "false" | "0" | "n" | "f" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// The text a lenient extFields reader stores for this value: strings as is, numbers
    /// and booleans as written, nested values as compact fastjson text. `None` for `null`.
    pub fn to_field_string(&self) -> Option<String> {
        match self {
            Self::Null => None,
            Self::Bool(flag) => Some(flag.to_string()),
            Self::Number(number) => Some(number.as_str().to_owned()),
            Self::String(text) => Some(text.clone()),
            Self::Array(_) | Self::Object(_) => Some(
                String::from_utf8_lossy(&super::to_vec(self, super::JsonStyle::Fastjson))
                    .into_owned(),
            ),
        }
    }
}

/// `Long.parseLong` semantics, plus surrounding whitespace: an optional sign and decimal
/// digits only.
pub(crate) fn parse_java_long(text: &str) -> Option<i64> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    trimmed.parse().ok()
}

fn compare_keys(a: &Value, b: &Value) -> std::cmp::Ordering {
    if let (Value::Number(x), Value::Number(y)) = (a, b) {
        // Exact for longs (the usual key type); doubles only when a key is fractional.
        if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
            return x.cmp(&y);
        }
        if let (Some(x), Some(y)) = (x.as_f64(), y.as_f64()) {
            return x.total_cmp(&y);
        }
    }
    let text_a = a.key_text().map(|text| text.into_owned()).unwrap_or_default();
    let text_b = b.key_text().map(|text| text.into_owned()).unwrap_or_default();
    // Java's String.compareTo compares UTF-16 code units, which differs from byte order for
    // characters above U+FFFF versus U+E000..U+FFFF; follow Java.
    text_a.encode_utf16().cmp(text_b.encode_utf16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_bool_accepts_fastjson_spellings() {
        for (value, expected) in [
            (Value::Bool(true), Some(true)),
            (Value::int(1), Some(true)),
            (Value::int(0), Some(false)),
            (Value::int(2), None),
            (Value::string("TRUE"), Some(true)),
            (Value::string("0"), Some(false)),
            (Value::string("yes"), None),
            (Value::Null, None),
        ] {
            assert_eq!(value.to_bool_lenient(), expected, "{value:?}");
        }
    }

    #[test]
    fn lenient_long_accepts_numeric_strings() {
        assert_eq!(Value::string("1795316055755").to_i64_lenient(), Some(1_795_316_055_755));
        assert_eq!(Value::string("-1").to_i64_lenient(), Some(-1));
        assert_eq!(Value::string("").to_i64_lenient(), None);
        assert_eq!(Value::string("1.5").to_i64_lenient(), None);
    }

    #[test]
    fn sort_keys_orders_numbers_numerically() {
        let mut object = Object::new();
        object.insert_key(Value::int(10), Value::Null);
        object.insert_key(Value::int(2), Value::Null);
        object.insert_key(Value::int(-1), Value::Null);
        object.sort_keys();
        let keys: Vec<_> = object.iter().map(|(key, _)| key.clone()).collect();
        assert_eq!(keys, vec![Value::int(-1), Value::int(2), Value::int(10)]);
    }
}
