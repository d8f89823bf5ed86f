//! The properties string (storage.md §4.1): `name 0x01 value 0x02` per entry, every entry
//! including the last terminated by `0x02`.
//!
//! ```text
//! +------+------+-------+------+------+------+-------+------+
//! | name | 0x01 | value | 0x02 | name | 0x01 | value | 0x02 | ...
//! +------+------+-------+------+------+------+-------+------+
//! ```
//!
//! Parsing follows Java `MessageDecoder.string2messageProperties` exactly: split on `0x02`
//! (text after the last `0x02` counts as a final segment); in each segment the **first**
//! `0x01` splits name from value, and the segment is kept only if both are non-empty (a value
//! may itself contain `0x01`). A name that occurs twice keeps its last value. Nothing is ever
//! rejected, so parsing cannot fail.
//!
//! Splitting bytes is the same as splitting Java's decoded string: `0x01` and `0x02` never
//! occur inside a multi-byte UTF-8 sequence. Invalid UTF-8 becomes U+FFFD, as Java's decoder
//! does.

use std::collections::BTreeMap;

/// Separates a name from its value.
pub const NAME_VALUE_SEPARATOR: u8 = 1;
/// Terminates each name/value pair.
pub const PROPERTY_SEPARATOR: u8 = 2;
/// Largest PROPERTIES field a record or batch item can carry (its length is an i16).
pub const PROPERTIES_MAX_LEN: usize = 32767;

/// A message's properties, ordered by name so that encoding is deterministic. (Java uses a
/// `HashMap`; its order is unspecified and no reader depends on it.)
pub type Properties = BTreeMap<String, String>;

/// Encodes `properties` into a new buffer. See [`encode_properties_into`].
#[must_use]
pub fn encode_properties(properties: &Properties) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_properties_len(properties));
    encode_properties_into(properties, &mut out);
    out
}

/// Appends `name 0x01 value 0x02` for every entry, in name order.
///
/// Like Java, this writes every entry as given: an empty name or value, or a name containing
/// `0x01`/`0x02` or a value containing `0x02`, is written but will not parse back the same.
/// Callers check the result against [`PROPERTIES_MAX_LEN`] (the record encoder does).
pub fn encode_properties_into(properties: &Properties, out: &mut Vec<u8>) {
    out.reserve(encoded_properties_len(properties));
    for (name, value) in properties {
        out.extend_from_slice(name.as_bytes());
        out.push(NAME_VALUE_SEPARATOR);
        out.extend_from_slice(value.as_bytes());
        out.push(PROPERTY_SEPARATOR);
    }
}

/// Length in bytes of [`encode_properties`]'s output, without encoding.
#[must_use]
pub fn encoded_properties_len(properties: &Properties) -> usize {
    properties
        .iter()
        .map(|(name, value)| name.len().saturating_add(value.len()).saturating_add(2))
        .fold(0, usize::saturating_add)
}

/// Parses a properties field with Java's lenient rules (module docs). Never fails.
#[must_use]
pub fn parse_properties(bytes: &[u8]) -> Properties {
    let mut properties = Properties::new();
    for (name, value) in iter_properties(bytes) {
        properties.insert(
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        );
    }
    properties
}

/// Finds the value of `name` without allocating: the value [`parse_properties`] would give
/// (the last occurrence wins). Returns the raw bytes, which are UTF-8 if the input is.
#[must_use]
pub fn find_property<'a>(bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let name = name.as_bytes();
    iter_properties(bytes)
        .filter(|(candidate, _)| *candidate == name)
        .map(|(_, value)| value)
        .last()
}

/// Iterates over the `(name, value)` pairs that [`parse_properties`] keeps, in stored order,
/// duplicates included, without allocating. Use it to pick several properties in one pass.
#[must_use]
pub fn iter_properties(bytes: &[u8]) -> PropertiesIter<'_> {
    PropertiesIter { rest: bytes }
}

/// Iterator returned by [`iter_properties`].
#[derive(Debug, Clone)]
pub struct PropertiesIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for PropertiesIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            let (segment, rest) = match self.rest.iter().position(|&b| b == PROPERTY_SEPARATOR) {
                Some(end) => (
                    self.rest.get(..end).unwrap_or_default(),
                    self.rest.get(end + 1..).unwrap_or_default(),
                ),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            if let Some(pair) = split_pair(segment) {
                return Some(pair);
            }
        }
        None
    }
}

/// Splits one segment at its first `0x01` if name and value are both non-empty.
fn split_pair(segment: &[u8]) -> Option<(&[u8], &[u8])> {
    let separator = segment.iter().position(|&b| b == NAME_VALUE_SEPARATOR)?;
    let name = segment.get(..separator)?;
    let value = segment.get(separator + 1..)?;
    (!name.is_empty() && !value.is_empty()).then_some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Properties {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn encode_terminates_every_pair() {
        let encoded = encode_properties(&props(&[("TAGS", "TagA"), ("KEYS", "k1 k2")]));
        assert_eq!(encoded, b"KEYS\x01k1 k2\x02TAGS\x01TagA\x02");
        assert_eq!(
            encoded.len(),
            encoded_properties_len(&props(&[("TAGS", "TagA"), ("KEYS", "k1 k2")]))
        );
        assert!(encode_properties(&Properties::new()).is_empty());
    }

    #[test]
    fn parse_drops_empty_names_and_values_and_accepts_unterminated_last_pair() {
        // storage.md §22 edge case.
        let parsed = parse_properties(b"A\x01B\x02\x01X\x02C\x01\x02DD\x01E");
        assert_eq!(parsed, props(&[("A", "B"), ("DD", "E")]));
    }

    #[test]
    fn parse_splits_at_first_name_value_separator_only() {
        assert_eq!(parse_properties(b"K\x01V\x01W\x02"), props(&[("K", "V\x01W")]));
        // First 0x01 at the start: dropped, even though a later 0x01 would give a pair.
        assert_eq!(parse_properties(b"\x01K\x01V\x02"), Properties::new());
        assert_eq!(parse_properties(b"NOSEP\x02\x02\x02"), Properties::new());
        assert_eq!(parse_properties(b""), Properties::new());
    }

    #[test]
    fn parse_keeps_the_last_duplicate_and_find_agrees() {
        let bytes = b"K\x011\x02X\x01y\x02K\x012\x02";
        assert_eq!(parse_properties(bytes).get("K").map(String::as_str), Some("2"));
        assert_eq!(find_property(bytes, "K"), Some(&b"2"[..]));
        assert_eq!(find_property(bytes, "X"), Some(&b"y"[..]));
        assert_eq!(find_property(bytes, "Z"), None);
        assert_eq!(find_property(b"C\x01\x02", "C"), None);
    }

    #[test]
    fn parse_replaces_invalid_utf8() {
        let parsed = parse_properties(b"K\x01\xff\x02");
        assert_eq!(parsed.get("K").map(String::as_str), Some("\u{fffd}"));
    }
}
