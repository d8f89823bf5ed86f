//! JSON header serialization (spec §3.1, serialize type 0).
//!
//! Encoding reproduces `RemotingSerializable.encode(command)` byte for byte: fastjson writes
//! the bean's getter properties in alphabetical order, omits nulls and always includes
//! `serializeTypeCurrentRPC`:
//!
//! ```text
//! {"code":0,"extFields":{..},"flag":1,"language":"JAVA","opaque":7,"remark":"..","serializeTypeCurrentRPC":"JSON","version":479}
//! ```
//!
//! Decoding accepts what real clients send: any property order, no
//! `serializeTypeCurrentRPC`, `language` as a name or a number (unknown → `OTHER`), missing
//! `flag` (0), `remark` as `""` or `null`, extFields values as numbers or booleans (stored as
//! their text), numbers given as numeric strings, unknown properties, trailing whitespace.

use crate::command::RemotingCommand;
use crate::error::{Error, Result};
use crate::ext_fields::ExtFields;
use crate::frame::SerializeType;
use crate::json::{self, JsonStyle, Object, Value, write_string};
use crate::language::LanguageCode;

/// Decodes a JSON header into a command with an empty body.
///
/// # Errors
///
/// [`Error::Json`] for malformed JSON or a non-object header, [`Error::InvalidField`] when
/// `code`, `version`, `opaque` or `flag` is not a 32-bit integer.
pub fn decode(header: &[u8]) -> Result<RemotingCommand> {
    if let Some(command) = decode_plain(header) {
        return Ok(command);
    }
    decode_tree(header)
}

/// [`decode`] through the general JSON tree: every leniency, and the errors.
pub fn decode_tree(header: &[u8]) -> Result<RemotingCommand> {
    let Value::Object(mut object) = json::parse(header)? else {
        return Err(Error::Json { offset: 0, reason: "header is not a JSON object" });
    };
    // extFields is moved out of the tree rather than copied: it is most of the header.
    let ext_fields = take_property(&mut object, "extFields").and_then(ext_fields);
    Ok(RemotingCommand {
        code: int_property(&object, "code")?,
        language: object.get("language").map_or(LanguageCode::Java, language),
        version: int_property(&object, "version")?,
        opaque: int_property(&object, "opaque")?,
        flag: int_property(&object, "flag")?,
        remark: object.get("remark").and_then(Value::to_field_string),
        ext_fields,
        body: bytes::Bytes::new(),
        serialize_type: SerializeType::Json,
    })
}

/// The header as every client writes it, decoded without building a JSON tree (a third of
/// a send's cost on the broker went to the tree): known properties once each, integers as
/// plain digits, property names without escapes, extFields values all strings. Anything
/// else — numbers or nulls among extFields, unknown or repeated properties, malformed
/// input — returns `None`, and [`decode_tree`] decodes it (or reports the error): the two
/// agree on everything this accepts (a property test and the header fuzz target check it).
pub fn decode_plain(header: &[u8]) -> Option<RemotingCommand> {
    let mut scan = Plain { input: header, pos: 0 };
    let mut command = RemotingCommand {
        code: 0,
        language: LanguageCode::Java,
        version: 0,
        opaque: 0,
        flag: 0,
        remark: None,
        ext_fields: None,
        body: bytes::Bytes::new(),
        serialize_type: SerializeType::Json,
    };
    let mut seen = 0u8;
    scan.byte(b'{')?;
    if !scan.eat(b'}') {
        loop {
            let key = scan.string()?;
            scan.byte(b':')?;
            let bit = match key {
                b"code" => {
                    command.code = scan.int()?;
                    1
                }
                b"version" => {
                    command.version = scan.int()?;
                    2
                }
                b"opaque" => {
                    command.opaque = scan.int()?;
                    4
                }
                b"flag" => {
                    command.flag = scan.int()?;
                    8
                }
                b"language" => {
                    command.language = LanguageCode::from_name(scan.text()?);
                    16
                }
                b"remark" => {
                    command.remark = if scan.literal(b"null") { None } else { Some(scan.owned()?) };
                    32
                }
                b"serializeTypeCurrentRPC" => {
                    // Ignored, but it must be a valid string, as the tree demands.
                    scan.text()?;
                    64
                }
                b"extFields" => {
                    command.ext_fields = Some(scan.string_map()?);
                    128
                }
                _ => return None,
            };
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            if scan.eat(b'}') {
                break;
            }
            scan.byte(b',')?;
        }
    }
    scan.skip_whitespace();
    (scan.pos == header.len()).then_some(command)
}

/// The cursor of [`decode_plain`]; every method skips whitespace before its token.
struct Plain<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Plain<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.input.get(self.pos) {
            self.pos += 1;
        }
    }

    /// Consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        let found = self.input.get(self.pos) == Some(&byte);
        self.pos += usize::from(found);
        found
    }

    fn byte(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    fn literal(&mut self, literal: &[u8]) -> bool {
        self.skip_whitespace();
        let found = self.input[self.pos..].starts_with(literal);
        if found {
            self.pos += literal.len();
        }
        found
    }

    /// A string without escapes: its raw bytes.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.byte(b'"')?;
        let rest = &self.input[self.pos..];
        let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
        if rest[end] != b'"' {
            return None;
        }
        self.pos += end + 1;
        Some(&rest[..end])
    }

    fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.string()?).ok()
    }

    /// A string, escapes resolved as the tree decoder resolves them.
    fn owned(&mut self) -> Option<String> {
        self.skip_whitespace();
        let (text, end) = json::string_at(self.input, self.pos)?;
        self.pos = end;
        Some(text)
    }

    /// An integer in plain digits that fits an `i32`.
    fn int(&mut self) -> Option<i32> {
        self.skip_whitespace();
        let start = self.pos;
        if self.input.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let digits = self.input[self.pos..].iter().take_while(|b| b.is_ascii_digit()).count();
        self.pos += digits;
        if digits == 0
            || digits > 10
            || matches!(self.input.get(self.pos), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        std::str::from_utf8(&self.input[start..self.pos]).ok()?.parse().ok()
    }

    /// An object whose values are all strings.
    fn string_map(&mut self) -> Option<ExtFields> {
        self.byte(b'{')?;
        let mut entries = Vec::with_capacity(16);
        if !self.eat(b'}') {
            loop {
                let key = self.owned()?;
                self.byte(b':')?;
                entries.push((key, self.owned()?));
                if self.eat(b'}') {
                    break;
                }
                self.byte(b',')?;
            }
        }
        // The last of a repeated key wins, as in the tree decoder.
        Some(entries.into_iter().collect())
    }
}

/// Removes and returns the last property named `name` (the one a lookup would find).
fn take_property(object: &mut Object, name: &str) -> Option<Value> {
    let index = object.0.iter().rposition(|(key, _)| key.as_str() == Some(name))?;
    Some(object.0.remove(index).1)
}

/// Appends the header's JSON text, exactly as a Java peer writes it.
pub fn encode(command: &RemotingCommand, out: &mut Vec<u8>) {
    let style = JsonStyle::Fastjson;
    out.extend_from_slice(b"{\"code\":");
    push_int(out, command.code);
    if let Some(fields) = &command.ext_fields {
        out.extend_from_slice(b",\"extFields\":{");
        for (index, (key, value)) in fields.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            write_string(out, key, style);
            out.push(b':');
            write_string(out, value, style);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"flag\":");
    push_int(out, command.flag);
    out.extend_from_slice(b",\"language\":");
    write_string(out, command.language.name(), style);
    out.extend_from_slice(b",\"opaque\":");
    push_int(out, command.opaque);
    if let Some(remark) = &command.remark {
        out.extend_from_slice(b",\"remark\":");
        write_string(out, remark, style);
    }
    // Java writes the type it is encoding with, which is JSON here by definition.
    out.extend_from_slice(b",\"serializeTypeCurrentRPC\":\"JSON\"");
    out.extend_from_slice(b",\"version\":");
    push_int(out, command.version);
    out.push(b'}');
}

/// Appends the decimal text of `value` without allocating.
fn push_int(out: &mut Vec<u8>, value: i32) {
    let mut digits = [0u8; 11];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + u8::try_from(rest % 10).unwrap_or(0);
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        at -= 1;
        digits[at] = b'-';
    }
    out.extend_from_slice(&digits[at..]);
}

/// An `int` bean property: a number or numeric string; absent or null is 0 (Java default).
fn int_property(object: &Object, name: &str) -> Result<i32> {
    let Some(value) = object.get(name) else {
        return Ok(0);
    };
    if *value == Value::Null {
        return Ok(0);
    }
    value.to_i64_lenient().and_then(|wide| i32::try_from(wide).ok()).ok_or_else(|| {
        let text = value.to_field_string().unwrap_or_default();
        Error::invalid_field(name, &text, "a 32-bit integer")
    })
}

/// fastjson binds enums from a name or an ordinal.
fn language(value: &Value) -> LanguageCode {
    match value {
        Value::String(name) => LanguageCode::from_name(name),
        Value::Number(number) => number
            .as_i64()
            .and_then(|code| u8::try_from(code).ok())
            .map_or(LanguageCode::Other, LanguageCode::from_code),
        Value::Null => LanguageCode::Java,
        _ => LanguageCode::Other,
    }
}

/// extFields as a string map; null values are dropped (Java's map lookup sees null).
fn ext_fields(value: Value) -> Option<ExtFields> {
    let Value::Object(object) = value else { return None };
    let mut fields = Vec::with_capacity(object.0.len());
    for (key, value) in object.0 {
        let key = match key {
            Value::String(text) => text,
            other => match other.to_field_string() {
                Some(text) => text,
                None => continue,
            },
        };
        let value = match value {
            Value::String(text) => text,
            other => match other.to_field_string() {
                Some(text) => text,
                None => continue,
            },
        };
        fields.push((key, value));
    }
    // Built in one go from the sorted entries (the last of a repeated key wins, as with
    // inserting them in turn): cheaper than a B-tree insert per entry.
    Some(fields.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_response_header_matches_java_bytes() {
        let mut response = RemotingCommand::response(0, None);
        response.opaque = 7;
        response.set_ext_field("queueOffset", "12");
        response.set_ext_field("msgId", "7F00000100002A9F0000000000C133B7");
        response.set_ext_field("queueId", "1");
        response.set_ext_field("MSG_REGION", "DefaultRegion");
        response.set_ext_field("TRACE_ON", "true");
        let mut out = Vec::new();
        encode(&response, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"code":0,"extFields":{"MSG_REGION":"DefaultRegion","TRACE_ON":"true","#,
                r#""msgId":"7F00000100002A9F0000000000C133B7","queueId":"1","queueOffset":"12"},"#,
                r#""flag":1,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":479}"#
            )
        );
    }

    #[test]
    fn golden_error_response_with_remark_and_no_ext_fields() {
        let mut response =
            RemotingCommand::response(3, Some(" request type 999 not supported".into()));
        response.opaque = 1;
        let mut out = Vec::new();
        encode(&response, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"code":3,"flag":1,"language":"JAVA","opaque":1,"remark":" request type 999 not supported","serializeTypeCurrentRPC":"JSON","version":479}"#
        );
    }

    #[test]
    fn golden_remark_escapes_like_fastjson() {
        let mut response = RemotingCommand::response(1, Some("a\"b\\c\u{1}ü".into()));
        response.ext_fields = Some(ExtFields::new());
        let mut out = Vec::new();
        encode(&response, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"code\":1,\"extFields\":{},\"flag\":1,\"language\":\"JAVA\",\"opaque\":0,\"remark\":\"a\\\"b\\\\c\\u0001ü\",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":479}"
        );
    }

    #[test]
    fn decodes_go_style_header() {
        let command = decode(
            br#"{"code":105,"language":"GO","version":317,"opaque":3,"flag":0,"remark":"","extFields":{"topic":"T"}}"#,
        )
        .unwrap();
        assert_eq!(command.code, 105);
        assert_eq!(command.language, LanguageCode::Go);
        assert_eq!(command.version, 317);
        assert_eq!(command.opaque, 3);
        assert_eq!(command.remark.as_deref(), Some(""));
        assert_eq!(command.ext_field("topic"), Some("T"));
    }

    #[test]
    fn leniency_numbers_booleans_languages_and_missing_fields() {
        let command = decode(
            br#"{"code":"11","language":12,"opaque":5,"remark":null,"unknown":[1,{"x":2}],
                "extFields":{"queueId":0,"k":false,"g":1795316032582,"n":null,"f":1.50}}"#,
        )
        .unwrap();
        assert_eq!(command.code, 11);
        assert_eq!(command.language, LanguageCode::Rust);
        assert_eq!(command.flag, 0);
        assert_eq!(command.version, 0);
        assert_eq!(command.remark, None);
        let fields = command.ext_fields.unwrap();
        assert_eq!(fields.get("queueId").map(String::as_str), Some("0"));
        assert_eq!(fields.get("k").map(String::as_str), Some("false"));
        assert_eq!(fields.get("g").map(String::as_str), Some("1795316032582"));
        assert_eq!(fields.get("f").map(String::as_str), Some("1.50"));
        assert!(!fields.contains_key("n"));
        let other = decode(br#"{"code":1,"language":"KOTLIN"}"#).unwrap();
        assert_eq!(other.language, LanguageCode::Other);
        assert_eq!(other.ext_fields, None);
    }

    #[test]
    fn a_repeated_ext_field_keeps_its_last_value() {
        let command =
            decode(br#"{"code":1,"extFields":{"b":"1","a":"x","b":"2","b":"3"}}"#).unwrap();
        let fields = command.ext_fields.unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields.get("b").map(String::as_str), Some("3"));
    }

    #[test]
    fn the_plain_decoder_takes_what_clients_send_and_leaves_the_rest_to_the_tree() {
        let java = br#"{"code":310,"extFields":{"a":"G","b":"TopicTest","i":"TAGS\u0001A"},"flag":0,"language":"JAVA","opaque":9,"serializeTypeCurrentRPC":"JSON","version":475}"#;
        // Escapes in values (fastjson writes the property separators as \u0001) are read.
        assert_eq!(decode_plain(java).unwrap(), decode_tree(java).unwrap());
        assert_eq!(decode_plain(java).unwrap().ext_field("i"), Some("TAGS\u{1}A"));
        let plain = br#" {"code":310, "extFields":{"a":"G","b":"TopicTest"},"flag":0,"language":"GO","opaque":-9,"remark":"","version":475} "#;
        let command = decode_plain(plain).unwrap();
        assert_eq!(command, decode_tree(plain).unwrap());
        assert_eq!((command.code, command.opaque, command.language), (310, -9, LanguageCode::Go));
        assert_eq!(command.remark.as_deref(), Some(""));
        for other in [
            &br#"{"code":1,"code":2}"#[..],
            br#"{"code":1.0}"#,
            br#"{"code":"1"}"#,
            br#"{"code":2147483648}"#,
            br#"{"extFields":{"n":1}}"#,
            br#"{"extFields":{"n":null}}"#,
            br#"{"unknown":1}"#,
            br#"{"code":1} x"#,
            br#"{"code":1"#,
            br#"{"language":12}"#,
            br#"{"code\u0031":1}"#,
            // Found by the remoting_header fuzz target: an ignored property must still be a
            // valid string.
            b"{\"serializeTypeCurrentRPC\":\"\xff\"}",
        ] {
            assert!(decode_plain(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
        for same in [&br#"{}"#[..], br#"{"remark":null,"extFields":{}}"#, br#"{"code":-0}"#] {
            assert_eq!(decode_plain(same).unwrap(), decode_tree(same).unwrap());
        }
    }

    #[test]
    fn rejects_non_object_and_bad_ints() {
        assert!(decode(b"[]").is_err());
        assert!(decode(br#"{"code":"x"}"#).is_err());
        assert!(decode(br#"{"code":2147483648}"#).is_err());
        assert!(decode(b"").is_err());
    }
}
