//! A lenient, bounded recursive-descent JSON parser.
//!
//! Accepts everything RFC 8259 accepts, plus what fastjson's own parser tolerates and
//! RocketMQ peers actually send: unquoted numeric keys (`{0:"a"}`), object keys
//! (`{{"topic":"T"}:1}`), bare identifier keys (`{topic:"T"}`), raw control characters
//! inside strings, and the escapes `\v`, `\'` and `\xHH`. Lone surrogates in `\u` escapes
//! become U+FFFD rather than errors.
//!
//! Bounds: nesting is limited to [`MAX_DEPTH`] (recursion never grows past it), and the input
//! size is the caller's frame limit. The parser never panics on any input.

use super::{Number, Object, Value};
use crate::error::{Error, Result};

/// Deepest nesting of arrays and objects accepted; deeper input is an error, not a stack
/// overflow. RocketMQ bodies nest at most about six levels.
pub const MAX_DEPTH: usize = 64;

/// Parses one JSON value from `input`; only whitespace may follow it.
///
/// # Errors
///
/// [`Error::Json`] with the byte offset of the first problem, [`Error::Utf8`] for invalid
/// UTF-8 inside a string.
pub fn parse(input: &[u8]) -> Result<Value> {
    let mut parser = Parser { input, pos: 0 };
    parser.skip_whitespace();
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos != input.len() {
        return Err(parser.error("trailing characters after the JSON value"));
    }
    Ok(value)
}

/// The JSON string starting with the `"` at `input[pos]`, escapes resolved exactly as
/// [`parse`] resolves them, and the position just past its closing quote; `None` if there
/// is no valid string there.
pub(crate) fn string_at(input: &[u8], pos: usize) -> Option<(String, usize)> {
    if input.get(pos) != Some(&b'"') {
        return None;
    }
    let mut parser = Parser { input, pos };
    let text = parser.string(b'"').ok()?;
    Some((text, parser.pos))
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, reason: &'static str) -> Error {
        Error::Json { offset: self.pos, reason }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect_literal(&mut self, literal: &'static [u8], value: Value) -> Result<Value> {
        if self.input[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            Ok(value)
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(Value::String(self.string(b'"')?)),
            Some(b't') => self.expect_literal(b"true", Value::Bool(true)),
            Some(b'f') => self.expect_literal(b"false", Value::Bool(false)),
            Some(b'n') => self.expect_literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => Ok(Value::Number(self.number()?)),
            Some(_) => Err(self.error("expected a JSON value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting deeper than the limit"));
        }
        self.pos += 1; // '{'
        let mut object = Object(Vec::with_capacity(8));
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(object));
        }
        loop {
            self.skip_whitespace();
            let key = self.key(depth)?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':' after an object key"));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value(depth)?;
            object.insert_key(key, value);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(object));
                }
                None => return Err(self.error("unexpected end of input in an object")),
                Some(_) => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    /// An object key: a string, a number or an object (fastjson), or a bare identifier.
    fn key(&mut self, depth: usize) -> Result<Value> {
        match self.peek() {
            Some(b'"') => Ok(Value::String(self.string(b'"')?)),
            Some(b'-' | b'0'..=b'9') => Ok(Value::Number(self.number()?)),
            Some(b'{') => self.object(depth + 1),
            Some(byte) if byte == b'_' || byte == b'$' || byte.is_ascii_alphabetic() => {
                let start = self.pos;
                while let Some(byte) = self.peek() {
                    if byte == b'_' || byte == b'$' || byte.is_ascii_alphanumeric() {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                // Identifier bytes are ASCII, so this conversion cannot fail.
                let text = String::from_utf8_lossy(&self.input[start..self.pos]).into_owned();
                Ok(Value::String(text))
            }
            None => Err(self.error("unexpected end of input in an object")),
            Some(_) => Err(self.error("expected an object key")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting deeper than the limit"));
        }
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err(self.error("unexpected end of input in an array")),
                Some(_) => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    fn number(&mut self) -> Result<Number> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        if self.digits() == 0 {
            return Err(self.error("expected digits in a number"));
        }
        // Lenient like fastjson (`01` reads as 1), but the kept text must be valid JSON when
        // written back, so leading zeros are dropped from it.
        let zeros = self.input[int_start..self.pos - 1].iter().take_while(|&&b| b == b'0').count();
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("expected digits after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected digits in an exponent"));
            }
        }
        // Only ASCII sign, digits, '.', 'e' and '+' were consumed.
        let sign = &self.input[start..int_start];
        let rest = &self.input[int_start + zeros..self.pos];
        let mut text = String::with_capacity(sign.len() + rest.len());
        text.push_str(&String::from_utf8_lossy(sign));
        text.push_str(&String::from_utf8_lossy(rest));
        Ok(Number::from_text(text))
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn string(&mut self, quote: u8) -> Result<String> {
        self.pos += 1; // opening quote
        let start = self.pos;
        let mut out: Vec<u8> = Vec::new();
        loop {
            // Copy the run up to the next quote or backslash in one go.
            let rest = &self.input[self.pos..];
            let Some(end) = rest.iter().position(|byte| *byte == quote || *byte == b'\\') else {
                self.pos = self.input.len();
                return Err(self.error("unterminated string"));
            };
            let stop = rest[end];
            if stop == quote && out.is_empty() {
                // No escape at all: one copy of the slice.
                self.pos += end + 1;
                return String::from_utf8(rest[..end].to_vec())
                    .map_err(|_| Error::Utf8 { what: "JSON string", offset: start });
            }
            out.extend_from_slice(&rest[..end]);
            self.pos += end + 1;
            if stop == quote {
                break;
            }
            self.escape(&mut out)?;
        }
        String::from_utf8(out).map_err(|_| Error::Utf8 { what: "JSON string", offset: start })
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let Some(kind) = self.peek() else {
            return Err(self.error("unterminated escape"));
        };
        self.pos += 1;
        let simple = match kind {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'\'' => b'\'',
            b'b' => 0x08,
            b'f' => 0x0C,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0B,
            b'x' => {
                let value = self.hex(2)?;
                push_char(out, char::from_u32(value).unwrap_or('\u{FFFD}'));
                return Ok(());
            }
            b'u' => {
                let ch = self.unicode_escape()?;
                push_char(out, ch);
                return Ok(());
            }
            _ => return Err(self.error("unknown escape sequence")),
        };
        out.push(simple);
        Ok(())
    }

    fn unicode_escape(&mut self) -> Result<char> {
        let first = self.hex(4)?;
        if !(0xD800..0xDC00).contains(&first) {
            return Ok(char::from_u32(first).unwrap_or('\u{FFFD}'));
        }
        // A high surrogate: combine with a following `\uDC00..\uDFFF` if there is one.
        if self.input[self.pos..].starts_with(b"\\u") {
            let saved = self.pos;
            self.pos += 2;
            let second = self.hex(4)?;
            if (0xDC00..0xE000).contains(&second) {
                let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return Ok(char::from_u32(code).unwrap_or('\u{FFFD}'));
            }
            self.pos = saved;
        }
        Ok('\u{FFFD}')
    }

    fn hex(&mut self, count: usize) -> Result<u32> {
        let mut value = 0u32;
        for _ in 0..count {
            let digit = match self.peek() {
                Some(byte @ b'0'..=b'9') => byte - b'0',
                Some(byte @ b'a'..=b'f') => byte - b'a' + 10,
                Some(byte @ b'A'..=b'F') => byte - b'A' + 10,
                _ => return Err(self.error("expected a hex digit in an escape")),
            };
            value = value * 16 + u32::from(digit);
            self.pos += 1;
        }
        Ok(value)
    }
}

fn push_char(out: &mut Vec<u8>, ch: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(value: &Value) -> &Object {
        value.as_object().unwrap()
    }

    #[test]
    fn leading_zeros_are_read_leniently_and_written_as_valid_json() {
        // Found by the `remoting_json` fuzz target: `01` used to be written back verbatim.
        for (input, written) in
            [(&b"01"[..], &b"1"[..]), (b"-007", b"-7"), (b"00.5", b"0.5"), (b"0", b"0")]
        {
            let value = parse(input).unwrap();
            assert_eq!(crate::json::to_vec(&value, crate::json::JsonStyle::Standard), written);
        }
    }

    #[test]
    fn parses_fastjson_unquoted_numeric_keys() {
        let value = parse(br#"{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"}}"#).unwrap();
        let addrs = obj(obj(&value).get("brokerAddrs").unwrap());
        assert_eq!(addrs.len(), 2);
        assert_eq!(addrs.0[0].0, Value::int(0));
        assert_eq!(addrs.get("1").unwrap().as_str(), Some("10.0.0.2:10911"));
    }

    #[test]
    fn parses_fastjson_object_keys() {
        let value =
            parse(br#"{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:42}}"#).unwrap();
        let table = obj(obj(&value).get("offsetTable").unwrap());
        let (key, offset) = &table.0[0];
        assert_eq!(obj(key).get("topic").unwrap().as_str(), Some("T"));
        assert_eq!(offset, &Value::int(42));
    }

    #[test]
    fn parses_escapes_and_surrogates() {
        let value = parse(br#""a\u0001\uD83D\uDE00\n\/\x41\uD800z""#).unwrap();
        assert_eq!(value.as_str(), Some("a\u{1}\u{1F600}\n/A\u{FFFD}z"));
    }

    #[test]
    fn keeps_number_text() {
        let value = parse(b"[1795316032582, -0.50, 1e3]").unwrap();
        let items = value.as_array().unwrap();
        assert_eq!(items[0], Value::int(1_795_316_032_582_i64));
        assert_eq!(items[1].to_field_string().as_deref(), Some("-0.50"));
        assert_eq!(items[2].to_field_string().as_deref(), Some("1e3"));
    }

    #[test]
    fn accepts_trailing_newline_but_not_garbage() {
        assert!(parse(b"{}\n").is_ok());
        assert!(matches!(parse(b"{} x"), Err(Error::Json { offset: 3, .. })));
    }

    #[test]
    fn rejects_deep_nesting_without_overflowing() {
        let deep = "[".repeat(10_000);
        assert!(matches!(parse(deep.as_bytes()), Err(Error::Json { .. })));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            &b""[..],
            b"{",
            b"{\"a\"}",
            b"{\"a\":}",
            b"[1,]",
            b"\"abc",
            b"-",
            b"1.",
            b"tru",
            b"\"\\q\"",
            b"\"\xff\"",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
