//! The client batch body (storage.md §3.5): the request body of SEND_BATCH_MESSAGE, the
//! concatenation of one item per message as Java's `MessageDecoder.encodeMessage` writes it.
//!
//! ```text
//!  offset      width  field
//!  0           4      TOTALSIZE         i32 = 22 + B + P (not checked by Java's broker)
//!  4           4      MAGICCODE         i32, written 0, ignored
//!  8           4      BODYCRC           i32, written 0, ignored (the broker recomputes it)
//!  12          4      FLAG              i32
//!  16          4      BODYLENGTH        i32 (B)
//!  20          B      BODY
//!  20+B        2      PROPERTIESLENGTH  i16 (P)
//!  22+B        P      PROPERTIES
//! ```
//!
//! Like the Java broker, the decoder walks items by their body and properties lengths and
//! does not trust `TOTALSIZE`; negative lengths are errors.

use crate::error::{Error, Result};
use crate::message::Message;
use crate::properties::{PROPERTIES_MAX_LEN, encode_properties, encoded_properties_len};
use crate::reader::{Bound, Reader};

/// Offset of `TOTALSIZE` in an item.
pub const TOTAL_SIZE_POS: usize = 0;
/// Offset of `MAGICCODE` (ignored).
pub const MAGIC_POS: usize = TOTAL_SIZE_POS + 4;
/// Offset of `BODYCRC` (ignored).
pub const BODY_CRC_POS: usize = MAGIC_POS + 4;
/// Offset of `FLAG`.
pub const FLAG_POS: usize = BODY_CRC_POS + 4;
/// Offset of `BODYLENGTH`; the body follows it.
pub const BODY_LEN_POS: usize = FLAG_POS + 4;
/// Bytes of an item besides its body and properties.
pub const ITEM_OVERHEAD_LEN: usize = BODY_LEN_POS + 4 + 2;

const _: () = assert!(ITEM_OVERHEAD_LEN == 22);

/// One message of a batch body, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchItem<'a> {
    /// The message's flag.
    pub flag: i32,
    /// The message's body.
    pub body: &'a [u8],
    /// The message's encoded properties (its own `UNIQ_KEY`, `TAGS`, `KEYS`, ...).
    pub properties: &'a [u8],
}

impl BatchItem<'_> {
    /// Bytes this item occupies in a batch body.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        batch_item_len(self.body.len(), self.properties.len())
    }
}

/// Length of an item with a `body_len`-byte body and `properties_len` bytes of properties.
#[must_use]
pub fn batch_item_len(body_len: usize, properties_len: usize) -> usize {
    ITEM_OVERHEAD_LEN.saturating_add(body_len).saturating_add(properties_len)
}

/// Decodes a whole batch body. An empty body is an empty batch.
///
/// # Errors
///
/// The first failing item, see [`BatchIter`].
pub fn decode_batch(body: &[u8]) -> Result<Vec<BatchItem<'_>>> {
    iter_batch(body).collect()
}

/// Iterates over the items of a batch body without allocating.
#[must_use]
pub fn iter_batch(body: &[u8]) -> BatchIter<'_> {
    BatchIter { body, pos: 0, failed: false }
}

/// Iterator over the items of a batch body; stops after the first error.
///
/// Items fail with [`Error::Incomplete`] when the body ends inside them and with
/// [`Error::InvalidField`] for a negative body or properties length.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    body: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<BatchItem<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.body.len() {
            return None;
        }
        let rest = self.body.get(self.pos..).unwrap_or_default();
        match decode_item(rest, self.pos) {
            Ok((item, len)) => {
                self.pos = self.pos.saturating_add(len);
                Some(Ok(item))
            }
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }
}

impl std::iter::FusedIterator for BatchIter<'_> {}

/// Appends one item and returns the bytes written.
///
/// # Errors
///
/// [`Error::TooLong`] when the properties exceed 32767 bytes or the item exceeds
/// `i32::MAX`; nothing is written then. (Java silently truncates the length to a short.)
pub fn encode_batch_item(
    flag: i32,
    body: &[u8],
    properties: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize> {
    let properties_len = i16::try_from(properties.len())
        .ok()
        .filter(|_| properties.len() <= PROPERTIES_MAX_LEN)
        .ok_or(Error::TooLong {
            field: "PROPERTIES",
            len: properties.len(),
            max: PROPERTIES_MAX_LEN,
        })?;
    let total = batch_item_len(body.len(), properties.len());
    let too_long = || Error::TooLong { field: "batch item", len: total, max: 0x7FFF_FFFF };
    let total_size = i32::try_from(total).map_err(|_| too_long())?;
    // The body is shorter than the item, so it fits an i32 too.
    let body_len = i32::try_from(body.len()).map_err(|_| too_long())?;
    out.reserve(total);
    out.extend_from_slice(&total_size.to_be_bytes());
    out.extend_from_slice(&0_i32.to_be_bytes());
    out.extend_from_slice(&0_i32.to_be_bytes());
    out.extend_from_slice(&flag.to_be_bytes());
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&properties_len.to_be_bytes());
    out.extend_from_slice(properties);
    Ok(total)
}

/// Appends `message` as one item (Java `MessageDecoder.encodeMessage`): its flag, body and
/// encoded properties. The topic is not part of an item.
///
/// # Errors
///
/// As [`encode_batch_item`].
pub fn encode_message(message: &Message, out: &mut Vec<u8>) -> Result<usize> {
    let properties = encode_properties(&message.properties);
    encode_batch_item(message.flag, &message.body, &properties, out)
}

/// Appends every message as an item (Java `MessageDecoder.encodeMessages`) and returns the
/// bytes written. On error, `out` is left as it was.
///
/// # Errors
///
/// As [`encode_batch_item`], for the first message that does not fit.
pub fn encode_messages(messages: &[Message], out: &mut Vec<u8>) -> Result<usize> {
    let start = out.len();
    let expected: usize = messages
        .iter()
        .map(|msg| batch_item_len(msg.body.len(), encoded_properties_len(&msg.properties)))
        .fold(0, usize::saturating_add);
    out.reserve(expected);
    for message in messages {
        if let Err(err) = encode_message(message, out) {
            out.truncate(start);
            return Err(err);
        }
    }
    Ok(out.len() - start)
}

fn decode_item(rest: &[u8], offset: usize) -> Result<(BatchItem<'_>, usize)> {
    let mut reader = Reader::new(rest, "batch item", offset, Bound::InputEnd);
    reader.i32("TOTALSIZE")?;
    reader.i32("MAGICCODE")?;
    reader.i32("BODYCRC")?;
    let flag = reader.i32("FLAG")?;
    let body_len = reader.i32("BODYLENGTH")?;
    let body_len = reader.len_field("BODYLENGTH", i64::from(body_len))?;
    let body = reader.bytes("BODY", body_len)?;
    let properties_len = reader.i16("PROPERTIESLENGTH")?;
    let properties_len = reader.len_field("PROPERTIESLENGTH", i64::from(properties_len))?;
    let properties = reader.bytes("PROPERTIES", properties_len)?;
    Ok((BatchItem { flag, body, properties }, reader.position()))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::property;

    #[test]
    fn encode_message_matches_java_layout() {
        let mut msg = Message::new("ignored", Bytes::from_static(b"Hi"));
        msg.flag = 7;
        msg.set_tags("T");
        let mut out = Vec::new();
        let written = encode_message(&msg, &mut out).unwrap();
        let expected: &[u8] =
            b"\x00\x00\x00\x1f\0\0\0\0\0\0\0\0\0\0\0\x07\0\0\0\x02Hi\x00\x07TAGS\x01T\x02";
        assert_eq!(out, expected);
        assert_eq!(written, 31);
        let items = decode_batch(&out).unwrap();
        assert_eq!(items, [BatchItem { flag: 7, body: b"Hi", properties: b"TAGS\x01T\x02" }]);
    }

    #[test]
    fn encode_messages_concatenates_and_rolls_back_on_error() {
        let mut first = Message::new("t", Bytes::from_static(b"a"));
        first.set_keys(["k"]);
        let second = Message::new("t", Bytes::new());
        let mut out = vec![0xEE];
        let written = encode_messages(&[first, second.clone()], &mut out).unwrap();
        assert_eq!(written, out.len() - 1);
        let items = decode_batch(&out[1..]).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1], BatchItem { flag: 0, body: b"", properties: b"" });

        let mut huge = second;
        huge.put_property(property::KEYS, "k".repeat(PROPERTIES_MAX_LEN));
        let before = out.clone();
        let err = encode_messages(&[huge], &mut out).unwrap_err();
        assert!(matches!(err, Error::TooLong { field: "PROPERTIES", .. }), "{err}");
        assert_eq!(out, before);
    }

    #[test]
    fn negative_lengths_are_errors() {
        let mut out = Vec::new();
        encode_batch_item(0, b"xy", b"", &mut out).unwrap();
        let mut negative_body = out.clone();
        negative_body[BODY_LEN_POS..BODY_LEN_POS + 4].copy_from_slice(&(-1_i32).to_be_bytes());
        let err = decode_batch(&negative_body).unwrap_err();
        assert!(matches!(err, Error::InvalidField { field: "BODYLENGTH", found: -1, .. }), "{err}");
        let mut negative_props = out;
        let pos = BODY_LEN_POS + 4 + 2;
        negative_props[pos..pos + 2].copy_from_slice(&(-2_i16).to_be_bytes());
        let err = decode_batch(&negative_props).unwrap_err();
        assert!(matches!(err, Error::InvalidField { field: "PROPERTIESLENGTH", .. }), "{err}");
    }

    #[test]
    fn truncation_names_the_field_and_offset() {
        let mut out = Vec::new();
        encode_batch_item(1, b"body", b"K\x01V\x02", &mut out).unwrap();
        encode_batch_item(2, b"hello", b"", &mut out).unwrap();
        let cut = &out[..out.len() - 4];
        let err = decode_batch(cut).unwrap_err();
        assert_eq!(
            err.to_string(),
            "batch item at offset 30 is truncated in field BODY: needs 5 bytes, 3 available"
        );
        let mut iter = iter_batch(cut);
        assert!(matches!(iter.next(), Some(Ok(BatchItem { flag: 1, .. }))));
        assert!(matches!(iter.next(), Some(Err(_))));
        assert!(iter.next().is_none());
    }
}
