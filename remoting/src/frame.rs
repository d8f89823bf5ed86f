//! The remoting frame (spec §2): a length-prefixed envelope around one header and one body.
//!
//! ```text
//! offset 0   i32 length          bytes after this field = 4 + header_len + body_len
//! offset 4   u8  serialize type  0 = JSON, 1 = ROCKETMQ binary
//! offset 5   u24 header_len      big-endian
//! offset 8   header_len bytes    header (see `header_json` / `header_binary`)
//! then       body                everything left in the frame; no length of its own
//! ```
//!
//! The decoder checks each length as soon as its bytes have arrived, so an oversized or
//! inconsistent frame is rejected before the caller buffers (or allocates for) its contents,
//! and it returns `Ok(None)` until a whole frame is buffered.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

/// Width of the frame's leading length field.
pub const LENGTH_FIELD_LEN: usize = 4;
/// Offset of the serialize-type byte.
pub const SERIALIZE_TYPE_OFFSET: usize = LENGTH_FIELD_LEN;
/// Offset of the 24-bit header length.
pub const HEADER_LEN_OFFSET: usize = SERIALIZE_TYPE_OFFSET + 1;
/// Offset of the header bytes; also the size of the fixed frame prefix.
pub const HEADER_OFFSET: usize = HEADER_LEN_OFFSET + 3;
/// Largest header the 24-bit length can describe.
pub const MAX_HEADER_LEN: usize = 0x00FF_FFFF;
/// Java's `com.rocketmq.remoting.frameMaxLength` default: 16 MiB, counting the length field.
pub const DEFAULT_MAX_FRAME_SIZE_BYTES: usize = 16 * 1024 * 1024;
/// The largest frame the i32 length field can describe.
pub const MAX_FRAME_SIZE_BYTES_LIMIT: usize = i32::MAX as usize + LENGTH_FIELD_LEN;

const _: () = assert!(HEADER_OFFSET == 8);
const _: () = assert!(DEFAULT_MAX_FRAME_SIZE_BYTES <= MAX_FRAME_SIZE_BYTES_LIMIT);

/// How a frame's header is serialized (the high byte of the second int).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SerializeType {
    /// fastjson JSON text (spec §3.1); what Java brokers send by default.
    #[default]
    Json,
    /// RocketMQ's compact binary header (spec §3.2).
    RocketMq,
}

impl SerializeType {
    /// The wire byte: 0 for JSON, 1 for ROCKETMQ.
    pub fn code(self) -> u8 {
        match self {
            Self::Json => 0,
            Self::RocketMq => 1,
        }
    }

    /// Parses the wire byte.
    ///
    /// # Errors
    ///
    /// [`Error::SerializeType`] for anything but 0 or 1.
    pub fn from_code(code: u8) -> Result<Self> {
        match code {
            0 => Ok(Self::Json),
            1 => Ok(Self::RocketMq),
            other => Err(Error::SerializeType(other)),
        }
    }

    /// The Java enum name (`JSON` / `ROCKETMQ`), as in `serializeTypeCurrentRPC`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "JSON",
            Self::RocketMq => "ROCKETMQ",
        }
    }
}

/// One undecoded frame: serialize type, raw header bytes and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// How `header` is serialized.
    pub serialize_type: SerializeType,
    /// Header bytes (JSON text or binary header).
    pub header: Bytes,
    /// Body bytes; empty when the frame has none.
    pub body: Bytes,
}

/// Splits frames off a byte stream, enforcing a maximum frame size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_frame_size_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self { max_frame_size_bytes: DEFAULT_MAX_FRAME_SIZE_BYTES }
    }
}

impl FrameDecoder {
    /// A decoder accepting frames of at most `max_frame_size_bytes`, counting the 4-byte
    /// length field (default [`DEFAULT_MAX_FRAME_SIZE_BYTES`], minimum 8, maximum
    /// [`MAX_FRAME_SIZE_BYTES_LIMIT`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the size is outside that range.
    pub fn new(max_frame_size_bytes: usize) -> Result<Self> {
        if !(HEADER_OFFSET..=MAX_FRAME_SIZE_BYTES_LIMIT).contains(&max_frame_size_bytes) {
            return Err(Error::InvalidConfig {
                field: "max_frame_size_bytes",
                value: u64::try_from(max_frame_size_bytes).unwrap_or(u64::MAX),
                allowed: "8..=2147483651",
            });
        }
        Ok(Self { max_frame_size_bytes })
    }

    /// The configured maximum frame size in bytes, counting the length field.
    pub fn max_frame_size_bytes(&self) -> usize {
        self.max_frame_size_bytes
    }

    /// Checks the buffered prefix of a frame and returns its total size (length field
    /// included) once all of it is in `buf`; `Ok(None)` while more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`Error::FrameLength`], [`Error::SerializeType`] or [`Error::HeaderLength`] as soon as
    /// the bytes that prove the frame bad have arrived.
    pub fn check(&self, buf: &[u8]) -> Result<Option<usize>> {
        let Some(length_bytes) = buf.first_chunk::<LENGTH_FIELD_LEN>() else {
            return Ok(None);
        };
        let length = i32::from_be_bytes(*length_bytes);
        let max_length = self.max_frame_size_bytes - LENGTH_FIELD_LEN;
        let min_length = HEADER_OFFSET - LENGTH_FIELD_LEN;
        let length = usize::try_from(length)
            .ok()
            .filter(|length| (min_length..=max_length).contains(length))
            .ok_or(Error::FrameLength {
                length: i64::from(length),
                min: i64::try_from(min_length).unwrap_or(i64::MAX),
                max: i64::try_from(max_length).unwrap_or(i64::MAX),
            })?;
        let Some(prefix) = buf.first_chunk::<HEADER_OFFSET>() else {
            return Ok(None);
        };
        SerializeType::from_code(prefix[SERIALIZE_TYPE_OFFSET])?;
        let header_len = read_u24(prefix);
        let available = length - (HEADER_OFFSET - LENGTH_FIELD_LEN);
        if header_len > available {
            return Err(Error::HeaderLength { header_len, available });
        }
        let total = LENGTH_FIELD_LEN + length;
        Ok((buf.len() >= total).then_some(total))
    }

    /// Removes one whole frame from the front of `buf`, or returns `Ok(None)` (leaving `buf`
    /// untouched) until one is buffered. Header and body share `buf`'s allocation.
    ///
    /// # Errors
    ///
    /// As [`FrameDecoder::check`]; after an error the stream cannot be resynchronised and
    /// the connection should be closed.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>> {
        let Some(total) = self.check(buf)? else {
            return Ok(None);
        };
        let mut frame = buf.split_to(total);
        let serialize_type = SerializeType::from_code(frame[SERIALIZE_TYPE_OFFSET])?;
        let header_len = read_u24(&frame[..HEADER_OFFSET]);
        frame.advance(HEADER_OFFSET);
        let header = frame.split_to(header_len).freeze();
        Ok(Some(Frame { serialize_type, header, body: frame.freeze() }))
    }
}

/// [`FrameDecoder::decode`] with the default 16 MiB limit.
///
/// # Errors
///
/// As [`FrameDecoder::check`].
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<Frame>> {
    FrameDecoder::default().decode(buf)
}

/// Writes the 8-byte frame prefix plus `header` into `dst`, for a body of `body_len` bytes
/// that the caller writes separately (vectored write, zero-copy file slices).
///
/// # Errors
///
/// [`Error::OutOfRange`] when the header exceeds 24 bits or the frame exceeds `i32::MAX`.
pub fn encode_frame_prefix(
    serialize_type: SerializeType,
    header: &[u8],
    body_len: usize,
    dst: &mut BytesMut,
) -> Result<()> {
    let length = frame_length(header.len(), body_len)?;
    dst.reserve(HEADER_OFFSET + header.len());
    dst.put_i32(length);
    dst.put_u8(serialize_type.code());
    let header_len = u32::try_from(header.len()).unwrap_or(u32::MAX);
    dst.put_slice(&header_len.to_be_bytes()[1..]);
    dst.put_slice(header);
    Ok(())
}

/// The value of the length field for a header and body of the given sizes.
fn frame_length(header_len: usize, body_len: usize) -> Result<i32> {
    if header_len > MAX_HEADER_LEN {
        return Err(Error::OutOfRange {
            what: "header length",
            value: i64::try_from(header_len).unwrap_or(i64::MAX),
            limit: "24 bits",
        });
    }
    let length = (HEADER_OFFSET - LENGTH_FIELD_LEN)
        .checked_add(header_len)
        .and_then(|sum| sum.checked_add(body_len));
    length.and_then(|length| i32::try_from(length).ok()).ok_or(Error::OutOfRange {
        what: "frame length",
        value: i64::try_from(body_len).unwrap_or(i64::MAX),
        limit: "i32 (body too large)",
    })
}

fn read_u24(prefix: &[u8]) -> usize {
    let bytes = [
        0,
        prefix[HEADER_LEN_OFFSET],
        prefix[HEADER_LEN_OFFSET + 1],
        prefix[HEADER_LEN_OFFSET + 2],
    ];
    usize::try_from(u32::from_be_bytes(bytes)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(serialize_type: u8, header: &[u8], body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        let length = i32::try_from(4 + header.len() + body.len()).unwrap();
        buf.put_i32(length);
        buf.put_u8(serialize_type);
        buf.put_slice(&u32::try_from(header.len()).unwrap().to_be_bytes()[1..]);
        buf.put_slice(header);
        buf.put_slice(body);
        buf
    }

    #[test]
    fn decodes_one_frame_and_leaves_the_rest() {
        let mut buf = frame_bytes(0, b"{}", b"body");
        buf.extend_from_slice(&[0, 0]);
        let frame = decode_frame(&mut buf).unwrap().unwrap();
        assert_eq!(frame.serialize_type, SerializeType::Json);
        assert_eq!(&frame.header[..], b"{}");
        assert_eq!(&frame.body[..], b"body");
        assert_eq!(&buf[..], &[0, 0]);
        assert_eq!(decode_frame(&mut buf).unwrap(), None);
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let full = frame_bytes(1, b"header", b"body");
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert_eq!(decode_frame(&mut buf).unwrap(), None, "cut at {cut}");
            assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn rejects_oversized_length_from_the_first_four_bytes() {
        let decoder = FrameDecoder::default();
        let at_limit = i32::try_from(DEFAULT_MAX_FRAME_SIZE_BYTES - 4).unwrap();
        assert_eq!(decoder.check(&at_limit.to_be_bytes()).unwrap(), None);
        let err = decoder.check(&(at_limit + 1).to_be_bytes()).unwrap_err();
        assert_eq!(
            err,
            Error::FrameLength {
                length: i64::from(at_limit) + 1,
                min: 4,
                max: i64::from(at_limit),
            }
        );
        assert!(decoder.check(&(-1i32).to_be_bytes()).is_err());
        assert!(decoder.check(&3i32.to_be_bytes()).is_err());
    }

    #[test]
    fn rejects_header_longer_than_frame_and_unknown_serialize_type() {
        let mut bad = frame_bytes(0, b"{}", b"");
        bad[7] = 3; // header_len 3 > 2 available
        assert_eq!(
            decode_frame(&mut bad).unwrap_err(),
            Error::HeaderLength { header_len: 3, available: 2 }
        );
        let mut bad = frame_bytes(2, b"{}", b"");
        assert_eq!(decode_frame(&mut bad).unwrap_err(), Error::SerializeType(2));
    }

    #[test]
    fn custom_limit_and_config_validation() {
        let decoder = FrameDecoder::new(16).unwrap();
        let mut ok = frame_bytes(0, b"{}", b"123456");
        assert!(decoder.decode(&mut ok).unwrap().is_some());
        let mut too_big = frame_bytes(0, b"{}", b"1234567");
        assert!(decoder.decode(&mut too_big).is_err());
        assert!(FrameDecoder::new(7).is_err());
    }

    #[test]
    fn prefix_encoding_round_trips() {
        let mut buf = BytesMut::new();
        encode_frame_prefix(SerializeType::RocketMq, b"hdr", 5, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 12, 1, 0, 0, 3, b'h', b'd', b'r']);
        buf.extend_from_slice(b"hello");
        let frame = decode_frame(&mut buf).unwrap().unwrap();
        assert_eq!(&frame.body[..], b"hello");
        let huge_header = vec![0u8; MAX_HEADER_LEN + 1];
        assert!(encode_frame_prefix(SerializeType::Json, &huge_header, 0, &mut buf).is_err());
        assert!(encode_frame_prefix(SerializeType::Json, b"", usize::MAX, &mut buf).is_err());
    }
}
