//! ROCKETMQ binary header serialization (spec §3.2, serialize type 1).
//!
//! ```text
//! offset 0   i16 code
//! offset 2   u8  language code
//! offset 3   i16 version
//! offset 5   i32 opaque
//! offset 9   i32 flag
//! offset 13  i32 remark_len      0 = null
//! offset 17  remark_len bytes    UTF-8
//! then       i32 ext_len         total bytes of the entries below; 0 = no map
//! then       entries             repeated: i16 key_len, key, i32 value_len, value
//! ```
//!
//! A zero-length key or value decodes as Java `null`; since a null value looks the same as
//! a missing one to every header reader, such entries are dropped. Encoding writes empty
//! strings with length 0, as Java does. Codes and versions that do not fit an i16 are an
//! encoding error (Java silently truncates them).

use bytes::Bytes;

use crate::command::RemotingCommand;
use crate::error::{Error, Result};
use crate::ext_fields::ExtFields;
use crate::frame::SerializeType;
use crate::language::LanguageCode;

/// Offset of the i16 `code` in a binary header.
pub const CODE_OFFSET: usize = 0;
const LANGUAGE_OFFSET: usize = CODE_OFFSET + 2;
const VERSION_OFFSET: usize = LANGUAGE_OFFSET + 1;
/// Offset of the i32 `opaque` in a binary header.
pub const OPAQUE_OFFSET: usize = VERSION_OFFSET + 2;
const FLAG_OFFSET: usize = OPAQUE_OFFSET + 4;
const REMARK_LEN_OFFSET: usize = FLAG_OFFSET + 4;
/// Bytes before the remark: the fixed fields plus the remark length.
pub const FIXED_LEN: usize = REMARK_LEN_OFFSET + 4;

const _: () = assert!(REMARK_LEN_OFFSET == 13);

/// Decodes a binary header into a command with an empty body.
///
/// # Errors
///
/// [`Error::Truncated`] / [`Error::NegativeLength`] when a length points outside the header,
/// [`Error::Utf8`] for a remark, key or value that is not UTF-8.
pub fn decode(header: &[u8]) -> Result<RemotingCommand> {
    let mut reader = Reader { buf: header, pos: 0 };
    let code = reader.i16("code")?;
    let language = LanguageCode::from_code(reader.u8("language")?);
    let version = reader.i16("version")?;
    let opaque = reader.i32("opaque")?;
    let flag = reader.i32("flag")?;
    let remark_len = reader.length_i32("remark length")?;
    let remark = match remark_len {
        0 => None,
        len => Some(reader.string("remark", len)?),
    };
    let ext_len = reader.length_i32("extFields length")?;
    let ext_fields = match ext_len {
        0 => None,
        len => {
            let start = reader.pos;
            let entries = reader.take("extFields", len)?;
            Some(decode_map(entries, start)?)
        }
    };
    Ok(RemotingCommand {
        code: i32::from(code),
        language,
        version: i32::from(version),
        opaque,
        flag,
        remark,
        ext_fields,
        body: Bytes::new(),
        serialize_type: SerializeType::RocketMq,
    })
}

/// Appends the binary header of `command`.
///
/// # Errors
///
/// [`Error::OutOfRange`] when `code` or `version` does not fit an i16, or a key, the
/// remark or the map exceeds its length field.
pub fn encode(command: &RemotingCommand, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(&to_i16("code", command.code)?.to_be_bytes());
    out.push(command.language.code());
    out.extend_from_slice(&to_i16("version", command.version)?.to_be_bytes());
    out.extend_from_slice(&command.opaque.to_be_bytes());
    out.extend_from_slice(&command.flag.to_be_bytes());
    let remark = command.remark.as_deref().unwrap_or("");
    put_i32_len(out, "remark length", remark.len())?;
    out.extend_from_slice(remark.as_bytes());
    let mut map = Vec::new();
    if let Some(fields) = &command.ext_fields {
        encode_map(fields, &mut map)?;
    }
    put_i32_len(out, "extFields length", map.len())?;
    out.extend_from_slice(&map);
    Ok(())
}

fn encode_map(fields: &ExtFields, out: &mut Vec<u8>) -> Result<()> {
    for (key, value) in fields {
        let key_len = i16::try_from(key.len()).map_err(|_| Error::OutOfRange {
            what: "extFields key length",
            value: i64::try_from(key.len()).unwrap_or(i64::MAX),
            limit: "i16",
        })?;
        out.extend_from_slice(&key_len.to_be_bytes());
        out.extend_from_slice(key.as_bytes());
        put_i32_len(out, "extFields value length", value.len())?;
        out.extend_from_slice(value.as_bytes());
    }
    Ok(())
}

fn decode_map(entries: &[u8], base_offset: usize) -> Result<ExtFields> {
    let mut reader = Reader { buf: entries, pos: 0 };
    let mut fields = ExtFields::new();
    while reader.pos < entries.len() {
        let key_len = reader.i16("extFields key length")?;
        let key_len = usize::try_from(key_len).map_err(|_| Error::NegativeLength {
            what: "extFields key length",
            offset: base_offset + reader.pos - 2,
            length: i64::from(key_len),
        })?;
        let key = reader.string("extFields key", key_len)?;
        let value_len = reader.length_i32("extFields value length")?;
        let value = reader.string("extFields value", value_len)?;
        if !key.is_empty() && !value.is_empty() {
            fields.insert(key, value);
        }
    }
    Ok(fields)
}

fn to_i16(what: &'static str, value: i32) -> Result<i16> {
    i16::try_from(value).map_err(|_| Error::OutOfRange {
        what,
        value: i64::from(value),
        limit: "the binary header's i16",
    })
}

fn put_i32_len(out: &mut Vec<u8>, what: &'static str, len: usize) -> Result<()> {
    let len = i32::try_from(len).map_err(|_| Error::OutOfRange {
        what,
        value: i64::try_from(len).unwrap_or(i64::MAX),
        limit: "i32",
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Bounds-checked big-endian reads over the header bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, what: &'static str, len: usize) -> Result<&'a [u8]> {
        let available = self.buf.len() - self.pos;
        if len > available {
            return Err(Error::Truncated { what, offset: self.pos, needed: len, available });
        }
        let bytes = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let bytes = self.take(what, N)?;
        let mut array = [0u8; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    fn i16(&mut self, what: &'static str) -> Result<i16> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    /// An i32 length that must be non-negative.
    fn length_i32(&mut self, what: &'static str) -> Result<usize> {
        let offset = self.pos;
        let length = self.i32(what)?;
        usize::try_from(length).map_err(|_| Error::NegativeLength {
            what,
            offset,
            length: i64::from(length),
        })
    }

    fn string(&mut self, what: &'static str, len: usize) -> Result<String> {
        let offset = self.pos;
        let bytes = self.take(what, len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::Utf8 { what, offset })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes_of_a_small_request() {
        let mut command = RemotingCommand::request(11);
        command.language = LanguageCode::Go;
        command.version = 317;
        command.opaque = 3;
        command.set_ext_field("topic", "T");
        let mut out = Vec::new();
        encode(&command, &mut out).unwrap();
        let expected: &[u8] = &[
            0, 11, // code
            9,  // GO
            1, 61, // version 317
            0, 0, 0, 3, // opaque
            0, 0, 0, 0, // flag
            0, 0, 0, 0, // remark length
            0, 0, 0, 12, // map length
            0, 5, b't', b'o', b'p', b'i', b'c', 0, 0, 0, 1, b'T',
        ];
        assert_eq!(out, expected);
        let decoded = decode(&out).unwrap();
        assert_eq!(decoded.serialize_type, SerializeType::RocketMq);
        assert_eq!(decoded.ext_field("topic"), Some("T"));
        assert_eq!(decoded.version, 317);
        assert_eq!(decoded.language, LanguageCode::Go);
    }

    #[test]
    fn zero_length_keys_and_values_decode_as_absent() {
        let mut command = RemotingCommand::request(11);
        command.set_ext_field("empty", "");
        command.set_ext_field("k", "v");
        let mut out = Vec::new();
        encode(&command, &mut out).unwrap();
        let decoded = decode(&out).unwrap();
        assert_eq!(decoded.ext_field("empty"), None);
        assert_eq!(decoded.ext_field("k"), Some("v"));
    }

    #[test]
    fn lengths_past_the_header_are_errors() {
        let mut out = Vec::new();
        encode(&RemotingCommand::request(11), &mut out).unwrap();
        out[16] = 9; // remark length 9 but nothing follows
        assert!(matches!(decode(&out), Err(Error::Truncated { what: "remark", .. })));
        out[13] = 0x80; // negative remark length
        assert!(matches!(decode(&out), Err(Error::NegativeLength { .. })));
    }

    #[test]
    fn codes_beyond_i16_cannot_be_encoded() {
        let command = RemotingCommand::request(200_050);
        assert!(encode(&command, &mut Vec::new()).is_err());
    }
}
