//! extFields, the per-request "custom header" map (spec §4), and the typed reads and writes
//! of its values.
//!
//! Every value travels as a string. Reads follow Java's `decodeCommandCustomHeader`:
//! integers and longs via `Integer.parseInt`/`Long.parseLong` (we also trim whitespace),
//! booleans via `Boolean.parseBoolean` (only `true`, in any case, is true; `"1"` is false),
//! and an optional field whose value does not parse is treated as absent (Java logs it and
//! leaves the field null). A missing or unparsable mandatory field is an error naming it.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// The extFields map. Sorted by key, so encoding is deterministic (Java's `HashMap` order
/// is arbitrary and no peer depends on it).
pub type ExtFields = BTreeMap<String, String>;

/// A type that can be an extFields value.
pub trait FieldValue: Sized {
    /// Description for error messages, e.g. "an integer".
    const EXPECTED: &'static str;

    /// Parses a wire value; `None` if it is not one.
    fn parse_field(raw: &str) -> Option<Self>;

    /// The wire text (Java `toString()`).
    fn format_field(&self) -> String;
}

impl FieldValue for String {
    const EXPECTED: &'static str = "a string";

    fn parse_field(raw: &str) -> Option<Self> {
        Some(raw.to_owned())
    }

    fn format_field(&self) -> String {
        self.clone()
    }
}

impl FieldValue for i32 {
    const EXPECTED: &'static str = "a 32-bit integer";

    fn parse_field(raw: &str) -> Option<Self> {
        raw.trim().parse().ok()
    }

    fn format_field(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for i64 {
    const EXPECTED: &'static str = "a 64-bit integer";

    fn parse_field(raw: &str) -> Option<Self> {
        raw.trim().parse().ok()
    }

    fn format_field(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for bool {
    const EXPECTED: &'static str = "a boolean";

    /// `Boolean.parseBoolean`: never fails; only case-insensitive `true` is true.
    fn parse_field(raw: &str) -> Option<Self> {
        Some(raw.trim().eq_ignore_ascii_case("true"))
    }

    fn format_field(&self) -> String {
        self.to_string()
    }
}

/// Reads a mandatory (`@CFNotNull`) field.
///
/// # Errors
///
/// [`Error::MissingField`] when absent, [`Error::InvalidField`] when it does not parse.
pub fn required<T: FieldValue>(fields: &ExtFields, name: &str) -> Result<T> {
    let raw = fields.get(name).ok_or_else(|| Error::missing(name))?;
    T::parse_field(raw).ok_or_else(|| Error::invalid_field(name, raw, T::EXPECTED))
}

/// Reads an optional field; absent or unparsable values are `None`, as in Java.
pub fn optional<T: FieldValue>(fields: &ExtFields, name: &str) -> Option<T> {
    fields.get(name).and_then(|raw| T::parse_field(raw))
}

/// Writes a field's wire text.
pub fn put<T: FieldValue>(fields: &mut ExtFields, name: &str, value: &T) {
    fields.insert(name.to_owned(), value.format_field());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> ExtFields {
        entries.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn numbers_parse_leniently_and_errors_name_the_field() {
        let fields = map(&[("queueId", " 3 "), ("offset", "-1"), ("bad", "x1")]);
        assert_eq!(required::<i32>(&fields, "queueId").unwrap(), 3);
        assert_eq!(required::<i64>(&fields, "offset").unwrap(), -1);
        assert_eq!(
            required::<i32>(&fields, "bad").unwrap_err().to_string(),
            "field `bad` has value \"x1\", expected a 32-bit integer"
        );
        assert_eq!(
            required::<i32>(&fields, "absent").unwrap_err().to_string(),
            "missing mandatory field `absent`"
        );
        assert_eq!(optional::<i32>(&fields, "bad"), None);
    }

    #[test]
    fn booleans_follow_java_parse_boolean() {
        let fields = map(&[("a", "TRUE"), ("b", "false"), ("c", "1"), ("d", "0")]);
        assert_eq!(optional::<bool>(&fields, "a"), Some(true));
        assert_eq!(optional::<bool>(&fields, "b"), Some(false));
        // Java's Boolean.parseBoolean("1") is false; C++ clients send "0" for false.
        assert_eq!(optional::<bool>(&fields, "c"), Some(false));
        assert_eq!(optional::<bool>(&fields, "d"), Some(false));
    }

    #[test]
    fn i32_rejects_out_of_range() {
        let fields = map(&[("n", "2147483648")]);
        assert!(required::<i32>(&fields, "n").is_err());
        assert_eq!(required::<i64>(&fields, "n").unwrap(), 2_147_483_648);
    }
}
