//! Writes [`Value`] trees as fastjson 1.x does, in its default style or in the "standard"
//! style the name server uses for new clients (spec §5 rule 6).
//!
//! Fastjson default: keys as given (string keys quoted, number keys bare, object keys as
//! their JSON), entries in the order given, non-ASCII text as UTF-8, and only control
//! characters, U+007F..U+009F, U+2028 and U+2029 escaped (`\u` with upper-case hex).
//!
//! Standard (`BrowserCompatible + QuoteFieldNames + MapSortField`): every key quoted, entries
//! sorted by key, every character at or above U+007F escaped as `\uXXXX` (UTF-16 units),
//! `/` escaped as `\/`, and integers beyond ±(2^53 − 1) written as strings.

use super::{Object, Value};

/// Which of fastjson's two output styles to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonStyle {
    /// `JSON.toJSONString(obj)` with default features: what every Java broker writes.
    Fastjson,
    /// The name server's route output for `version >= 401` or `acceptStandardJsonOnly`.
    Standard,
}

/// Largest integer a JavaScript double holds exactly; fastjson's `BrowserCompatible`
/// quotes longs beyond it.
const BROWSER_SAFE_INTEGER_MAX: i64 = 9_007_199_254_740_991;

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

/// Serializes `value` in the given style.
pub fn to_vec(value: &Value, style: JsonStyle) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value, style);
    out
}

/// Appends `text` as a quoted JSON string in the given style.
pub fn write_string(out: &mut Vec<u8>, text: &str, style: JsonStyle) {
    out.push(b'"');
    match style {
        JsonStyle::Fastjson => escape_fastjson(out, text),
        JsonStyle::Standard => escape_browser_compatible(out, text),
    }
    out.push(b'"');
}

fn write_value(out: &mut Vec<u8>, value: &Value, style: JsonStyle) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => {
            let unsafe_for_browsers = number.as_i64().is_some_and(|n| {
                !(-BROWSER_SAFE_INTEGER_MAX..=BROWSER_SAFE_INTEGER_MAX).contains(&n)
            });
            if style == JsonStyle::Standard && unsafe_for_browsers {
                write_string(out, number.as_str(), style);
            } else {
                out.extend_from_slice(number.as_str().as_bytes());
            }
        }
        Value::String(text) => write_string(out, text, style),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item, style);
            }
            out.push(b']');
        }
        Value::Object(object) => write_object(out, object, style),
    }
}

fn write_object(out: &mut Vec<u8>, object: &Object, style: JsonStyle) {
    let sorted;
    let object = if style == JsonStyle::Standard {
        let mut copy = object.clone();
        copy.sort_keys();
        sorted = copy;
        &sorted
    } else {
        object
    };
    out.push(b'{');
    for (index, (key, value)) in object.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_key(out, key, style);
        out.push(b':');
        write_value(out, value, style);
    }
    out.push(b'}');
}

fn write_key(out: &mut Vec<u8>, key: &Value, style: JsonStyle) {
    match (style, key) {
        (_, Value::String(text)) => write_string(out, text, style),
        // Fastjson writes non-String map keys with their own serializer: bare numbers and
        // bean JSON. That is the "not valid JSON" of spec §5 rule 5.
        (JsonStyle::Fastjson, other) => write_value(out, other, style),
        // BrowserCompatible turns on WriteNonStringKeyAsString: the key's JSON text, quoted.
        (JsonStyle::Standard, Value::Number(number)) => write_string(out, number.as_str(), style),
        (JsonStyle::Standard, other) => {
            let text = String::from_utf8_lossy(&to_vec(other, JsonStyle::Fastjson)).into_owned();
            write_string(out, &text, style);
        }
    }
}

fn push_unicode_escape(out: &mut Vec<u8>, unit: u16) {
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX_DIGITS[usize::from((unit >> shift) & 0xF)]);
    }
}

/// Whether `byte` can be copied as is by both escapers: printable ASCII other than `"`,
/// `\\` and `/` (which the browser-compatible style escapes).
fn plain_ascii(byte: u8) -> bool {
    (0x20..0x7F).contains(&byte) && byte != b'"' && byte != b'\\' && byte != b'/'
}

fn escape_fastjson(out: &mut Vec<u8>, text: &str) {
    let mut rest = text;
    while !rest.is_empty() {
        // Copy the run of bytes that need no escaping in one go ('/' needs none here).
        let run = rest
            .bytes()
            .position(|byte| !(plain_ascii(byte) || byte == b'/'))
            .unwrap_or(rest.len());
        out.extend_from_slice(&rest.as_bytes()[..run]);
        rest = &rest[run..];
        let Some(ch) = rest.chars().next() else { break };
        rest = &rest[ch.len_utf8()..];
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{C}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}' | '\u{2028}' | '\u{2029}' => {
                // The match arm bounds every char here below U+FFFF.
                push_unicode_escape(out, u16::try_from(u32::from(ch)).unwrap_or(0xFFFD));
            }
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

fn escape_browser_compatible(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(plain_ascii) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for ch in text.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '/' => out.extend_from_slice(b"\\/"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{C}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\u{0}'..='\u{1F}' | '\u{7F}'.. => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    push_unicode_escape(out, *unit);
                }
            }
            _ => out.push(u8::try_from(u32::from(ch)).unwrap_or(b'?')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn text(value: &Value, style: JsonStyle) -> String {
        String::from_utf8(to_vec(value, style)).unwrap()
    }

    fn broker_addrs() -> Value {
        let mut addrs = Object::new();
        addrs.insert_key(Value::int(1), Value::string("10.0.0.2:10911"));
        addrs.insert_key(Value::int(0), Value::string("10.0.0.1:10911"));
        Value::Object(addrs)
    }

    #[test]
    fn fastjson_style_writes_numeric_keys_bare_in_given_order() {
        assert_eq!(
            text(&broker_addrs(), JsonStyle::Fastjson),
            r#"{1:"10.0.0.2:10911",0:"10.0.0.1:10911"}"#
        );
    }

    #[test]
    fn standard_style_quotes_and_sorts_keys() {
        assert_eq!(
            text(&broker_addrs(), JsonStyle::Standard),
            r#"{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"}"#
        );
    }

    #[test]
    fn fastjson_style_writes_object_keys_as_json() {
        let mut queue = Object::new();
        queue.insert("brokerName", Value::string("b"));
        queue.insert("queueId", Value::int(0));
        queue.insert("topic", Value::string("T"));
        let mut table = Object::new();
        table.insert_key(Value::Object(queue), Value::int(42));
        let value = Value::Object(table);
        assert_eq!(
            text(&value, JsonStyle::Fastjson),
            r#"{{"brokerName":"b","queueId":0,"topic":"T"}:42}"#
        );
        assert_eq!(
            text(&value, JsonStyle::Standard),
            r#"{"{\"brokerName\":\"b\",\"queueId\":0,\"topic\":\"T\"}":42}"#
        );
        assert_eq!(parse(&to_vec(&value, JsonStyle::Fastjson)).unwrap(), value);
    }

    #[test]
    fn fastjson_escapes_only_control_and_c1_characters() {
        let value = Value::string("a\u{1}\u{b}\t\"\\/ü✓\u{7f}\u{2028}");
        assert_eq!(
            text(&value, JsonStyle::Fastjson),
            "\"a\\u0001\\u000B\\t\\\"\\\\/ü✓\\u007F\\u2028\""
        );
    }

    #[test]
    fn standard_escapes_non_ascii_as_utf16_units() {
        let value = Value::string("ü/😀\u{1}");
        assert_eq!(text(&value, JsonStyle::Standard), r#""\u00FC\/\uD83D\uDE00\u0001""#);
    }

    #[test]
    fn standard_quotes_longs_beyond_two_pow_53() {
        let value = Value::Array(vec![
            Value::int(9_007_199_254_740_991_i64),
            Value::int(9_007_199_254_740_992_i64),
            Value::int(i64::MIN),
        ]);
        assert_eq!(
            text(&value, JsonStyle::Standard),
            r#"[9007199254740991,"9007199254740992","-9223372036854775808"]"#
        );
        assert_eq!(
            text(&value, JsonStyle::Fastjson),
            "[9007199254740991,9007199254740992,-9223372036854775808]"
        );
    }
}
