//! `RemotingCommand`: one request or response, as both sides of a connection see it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Result;
use crate::ext_fields::{ExtFields, FieldValue};
use crate::frame::{Frame, SerializeType, encode_frame_prefix};
use crate::headers::CommandHeader;
use crate::language::LanguageCode;
use crate::{header_binary, header_json};

/// `flag` bit 0: the command is a response.
pub const FLAG_RESPONSE: i32 = 0x1;
/// `flag` bit 1: the request is oneway and must not be answered.
pub const FLAG_ONEWAY: i32 = 0x2;

/// The `version` this crate puts in commands it creates: `V5_3_3` (ordinal 479). Java
/// clients record a broker's version from heartbeat responses and gate features on it
/// (spec §3), so it must look like a real release.
pub const CURRENT_VERSION: i32 = 479;

/// One remoting command: header fields, extFields and body (spec §3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemotingCommand {
    /// Request code (§6) in requests, response code (§7) in responses.
    pub code: i32,
    /// Sender's language.
    pub language: LanguageCode,
    /// Sender's `MQVersion` ordinal.
    pub version: i32,
    /// Request id; a response carries its request's opaque.
    pub opaque: i32,
    /// Bit field: [`FLAG_RESPONSE`], [`FLAG_ONEWAY`].
    pub flag: i32,
    /// Error text of responses, GetMessageStatus name of pull responses. `None` and `""`
    /// are different on the JSON wire (omitted vs `"remark":""`).
    pub remark: Option<String>,
    /// The custom header. `None` is omitted from JSON headers; a send response must carry
    /// `Some` (Java clients dereference it).
    pub ext_fields: Option<ExtFields>,
    /// The body, kept as `Bytes` so a pull response can reference mapped store data.
    pub body: Bytes,
    /// How the header is (or will be) serialized.
    pub serialize_type: SerializeType,
}

impl RemotingCommand {
    /// A new request with the given code, JSON header, language `JAVA`, version
    /// [`CURRENT_VERSION`], opaque 0 (the caller assigns it).
    pub fn request(code: i32) -> Self {
        Self { code, version: CURRENT_VERSION, ..Self::default() }
    }

    /// A new response with the given code and remark; the caller sets `opaque` (or use
    /// [`RemotingCommand::response_to`]).
    pub fn response(code: i32, remark: Option<String>) -> Self {
        Self { code, version: CURRENT_VERSION, flag: FLAG_RESPONSE, remark, ..Self::default() }
    }

    /// A response to `request`: same opaque and the same serialize type (the spec's
    /// recommendation; Java clients decode either).
    pub fn response_to(request: &Self, code: i32, remark: Option<String>) -> Self {
        Self {
            opaque: request.opaque,
            serialize_type: request.serialize_type,
            ..Self::response(code, remark)
        }
    }

    /// Replaces the body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Writes a typed header's fields into extFields (creating the map).
    #[must_use]
    pub fn with_header<H: CommandHeader>(mut self, header: &H) -> Self {
        header.to_ext_fields(self.ext_fields.get_or_insert_with(ExtFields::new));
        self
    }

    /// True when `flag` has the response bit.
    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    /// True when `flag` has the oneway bit.
    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// Sets the oneway bit.
    pub fn mark_oneway(&mut self) {
        self.flag |= FLAG_ONEWAY;
    }

    /// Sets the response bit.
    pub fn mark_response(&mut self) {
        self.flag |= FLAG_RESPONSE;
    }

    /// One extFields value.
    pub fn ext_field(&self, name: &str) -> Option<&str> {
        self.ext_fields.as_ref()?.get(name).map(String::as_str)
    }

    /// One extFields value parsed as `T` (Java's rules, see [`crate::ext_fields`]); `None`
    /// when absent or unparsable.
    pub fn ext_field_as<T: FieldValue>(&self, name: &str) -> Option<T> {
        crate::ext_fields::optional(self.ext_fields.as_ref()?, name)
    }

    /// Sets one extFields value (creating the map).
    pub fn set_ext_field(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.ext_fields.get_or_insert_with(ExtFields::new).insert(name.into(), value.into());
    }

    /// Decodes the typed header `H` from extFields (a missing map counts as empty).
    ///
    /// # Errors
    ///
    /// [`crate::Error::MissingField`] / [`crate::Error::InvalidField`] naming the field.
    pub fn decode_header<H: CommandHeader>(&self) -> Result<H> {
        match &self.ext_fields {
            Some(fields) => H::from_ext_fields(fields),
            None => H::from_ext_fields(&ExtFields::new()),
        }
    }

    /// Decodes a command from a frame.
    ///
    /// # Errors
    ///
    /// Any header decoding error of [`header_json::decode`] / [`header_binary::decode`].
    pub fn from_frame(frame: Frame) -> Result<Self> {
        let mut command = match frame.serialize_type {
            SerializeType::Json => header_json::decode(&frame.header)?,
            SerializeType::RocketMq => header_binary::decode(&frame.header)?,
        };
        command.body = frame.body;
        Ok(command)
    }

    /// The serialized header alone (no frame prefix), in `self.serialize_type`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::OutOfRange`] when a binary header cannot hold `code` or `version`.
    pub fn encode_header(&self) -> Result<Vec<u8>> {
        let mut header = Vec::with_capacity(128);
        match self.serialize_type {
            SerializeType::Json => header_json::encode(self, &mut header),
            SerializeType::RocketMq => header_binary::encode(self, &mut header)?,
        }
        Ok(header)
    }

    /// Writes frame prefix and header for a body of `body_len` bytes that the caller sends
    /// itself, e.g. as a list of `Bytes` chunks or file slices (Java's `encodeHeader(int)`).
    /// `self.body` is ignored.
    ///
    /// # Errors
    ///
    /// As [`RemotingCommand::encode_header`], or [`crate::Error::OutOfRange`] when the frame
    /// length overflows `i32`.
    pub fn encode_header_prefix(&self, body_len: usize, dst: &mut BytesMut) -> Result<()> {
        let header = self.encode_header()?;
        encode_frame_prefix(self.serialize_type, &header, body_len, dst)
    }

    /// The frame split for a vectored write: prefix plus header, and the body (not copied).
    ///
    /// # Errors
    ///
    /// As [`RemotingCommand::encode_header_prefix`].
    pub fn encode_parts(&self) -> Result<(Bytes, Bytes)> {
        let mut prefix = BytesMut::new();
        self.encode_header_prefix(self.body.len(), &mut prefix)?;
        Ok((prefix.freeze(), self.body.clone()))
    }

    /// Appends the whole frame, body included, to `dst`.
    ///
    /// # Errors
    ///
    /// As [`RemotingCommand::encode_header_prefix`].
    pub fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        self.encode_header_prefix(self.body.len(), dst)?;
        dst.put_slice(&self.body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::decode_frame;

    #[test]
    fn response_to_copies_opaque_and_serialize_type() {
        let mut request = RemotingCommand::request(34);
        request.opaque = 77;
        request.serialize_type = SerializeType::RocketMq;
        let response = RemotingCommand::response_to(&request, 0, None);
        assert!(response.is_response());
        assert!(!response.is_oneway());
        assert_eq!(response.opaque, 77);
        assert_eq!(response.serialize_type, SerializeType::RocketMq);
        assert_eq!(response.version, CURRENT_VERSION);
    }

    #[test]
    fn flags() {
        let mut request = RemotingCommand::request(15);
        assert!(!request.is_response());
        request.mark_oneway();
        assert!(request.is_oneway());
        assert_eq!(request.flag, FLAG_ONEWAY);
        request.set_ext_field("queueId", "3");
        assert_eq!(request.ext_field_as::<i32>("queueId"), Some(3));
        assert_eq!(request.ext_field_as::<i64>("absent"), None);
    }

    #[test]
    fn encode_then_decode_both_serializations() {
        for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
            let mut command = RemotingCommand::request(310).with_body(&b"payload"[..]);
            command.serialize_type = serialize_type;
            command.opaque = 9;
            command.remark = Some("r".to_owned());
            command.set_ext_field("a", "group");
            let mut buf = BytesMut::new();
            command.encode(&mut buf).unwrap();
            let frame = decode_frame(&mut buf).unwrap().unwrap();
            assert_eq!(RemotingCommand::from_frame(frame).unwrap(), command);
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn header_prefix_supports_chunked_bodies() {
        let command = RemotingCommand::response(0, Some("FOUND".to_owned()));
        let chunks = [Bytes::from_static(b"abc"), Bytes::from_static(b"defg")];
        let body_len = chunks.iter().map(Bytes::len).sum();
        let mut buf = BytesMut::new();
        command.encode_header_prefix(body_len, &mut buf).unwrap();
        for chunk in &chunks {
            buf.extend_from_slice(chunk);
        }
        let frame = decode_frame(&mut buf).unwrap().unwrap();
        assert_eq!(&frame.body[..], b"abcdefg");
        let (prefix, body) = command.clone().with_body(&b"xyz"[..]).encode_parts().unwrap();
        assert_eq!(&body[..], b"xyz");
        assert_eq!(
            prefix.len() + 3,
            4 + usize::try_from(i32::from_be_bytes(prefix[..4].try_into().unwrap())).unwrap()
        );
    }
}
