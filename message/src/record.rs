//! The CommitLog record (storage.md §3): the stored form of a message, also the format of
//! pull-response bodies.
//!
//! ```text
//!  offset          width   field
//!  0               4       TOTALSIZE            i32, whole record incl. this field
//!  4               4       MAGICCODE            v1 0xDAA320A7 | v2 0xDAA320AB
//!  8               4       BODYCRC              crc32(body) & 0x7FFFFFFF
//!  12              4       QUEUEID              i32
//!  16              4       FLAG                 i32, producer's flag
//!  20              8       QUEUEOFFSET          i64, ConsumeQueue index
//!  28              8       PHYSICALOFFSET       i64, CommitLog byte offset
//!  36              4       SYSFLAG              i32, see `sysflag`
//!  40              8       BORNTIMESTAMP        i64 ms
//!  48              Hb      BORNHOST             4|16 address bytes + i32 port (Hb = 8|20)
//!  48+Hb           8       STORETIMESTAMP       i64 ms
//!  56+Hb           Hs      STOREHOST            4|16 address bytes + i32 port (Hs = 8|20)
//!  56+Hb+Hs        4       RECONSUMETIMES       i32
//!  60+Hb+Hs        8       PREPARED TX OFFSET   i64
//!  68+Hb+Hs        4       BODYLENGTH           i32 (B)
//!  72+Hb+Hs        B       BODY
//!  72+Hb+Hs+B      T       TOPICLENGTH          v1: 1 byte read signed; v2: i16 (T = 1|2)
//!  ..              Tp      TOPIC                UTF-8
//!  ..              2       PROPERTIESLENGTH     i16 (P)
//!  ..              P       PROPERTIES           see `properties`
//! ```
//!
//! `TOTALSIZE = 74 + Hb + Hs + T + B + Tp + P` ([`record_len`]). The end-of-file BLANK
//! record is 8 bytes: `TOTALSIZE` = the bytes left in the file, then [`BLANK_MAGIC`].

use std::net::SocketAddr;
use std::ops::Range;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::hash::rocketmq_crc32;
use crate::message::MessageExt;
use crate::msg_id::encode_offset_msg_id;
use crate::properties::PROPERTIES_MAX_LEN;
use crate::reader::{Bound, Reader, put_socket_addr};
use crate::sysflag;

pub mod crc_property;

/// Magic code of a v1 record (1-byte topic length). `0xDAA320A7`.
pub const MAGIC_V1: i32 = -626_843_481;
/// Magic code of a v2 record (2-byte topic length) [5.x]. `0xDAA320AB`.
pub const MAGIC_V2: i32 = -626_843_477;
/// Magic code of the end-of-file BLANK record. `0xCBD43194`.
pub const BLANK_MAGIC: i32 = -875_286_124;
/// Bytes a BLANK record writes: `TOTALSIZE` and the magic.
pub const BLANK_RECORD_SIZE: usize = 8;

/// Offset of `TOTALSIZE` (i32).
pub const TOTAL_SIZE_POS: usize = 0;
/// Offset of `MAGICCODE` (i32).
pub const MAGIC_POS: usize = TOTAL_SIZE_POS + 4;
/// Offset of `BODYCRC` (i32).
pub const BODY_CRC_POS: usize = MAGIC_POS + 4;
/// Offset of `QUEUEID` (i32).
pub const QUEUE_ID_POS: usize = BODY_CRC_POS + 4;
/// Offset of `FLAG` (i32).
pub const FLAG_POS: usize = QUEUE_ID_POS + 4;
/// Offset of `QUEUEOFFSET` (i64).
pub const QUEUE_OFFSET_POS: usize = FLAG_POS + 4;
/// Offset of `PHYSICALOFFSET` (i64).
pub const PHYSICAL_OFFSET_POS: usize = QUEUE_OFFSET_POS + 8;
/// Offset of `SYSFLAG` (i32).
pub const SYSFLAG_POS: usize = PHYSICAL_OFFSET_POS + 8;
/// Offset of `BORNTIMESTAMP` (i64).
pub const BORN_TIMESTAMP_POS: usize = SYSFLAG_POS + 4;
/// Offset of `BORNHOST`; every later offset depends on the host widths.
pub const BORN_HOST_POS: usize = BORN_TIMESTAMP_POS + 8;

/// Length of a host field holding an IPv4 address: 4 address bytes + i32 port.
pub const HOST_V4_LEN: usize = 4 + 4;
/// Length of a host field holding an IPv6 address: 16 address bytes + i32 port.
pub const HOST_V6_LEN: usize = 16 + 4;

/// Bytes of a record that do not depend on hosts, version or contents: the 48-byte fixed
/// head, STORETIMESTAMP (8), RECONSUMETIMES + PREPARED TX OFFSET (12), BODYLENGTH (4) and
/// PROPERTIESLENGTH (2).
const FIXED_LEN: usize = BORN_HOST_POS + 8 + 12 + 4 + 2;

/// Largest topic a v1 record can carry: its 1-byte length is read as a signed byte.
pub const TOPIC_MAX_LEN_V1: usize = 127;
/// Largest topic a v2 record can carry: its length is an i16.
pub const TOPIC_MAX_LEN_V2: usize = 32767;

const _: () = assert!(BORN_HOST_POS == 48);
const _: () = assert!(FIXED_LEN == 74);
const _: () = assert!(MAGIC_V1 as u32 == 0xDAA3_20A7);
const _: () = assert!(MAGIC_V2 as u32 == 0xDAA3_20AB);
const _: () = assert!(BLANK_MAGIC as u32 == 0xCBD4_3194);

/// Largest body [`decode_messages`] inflates a compressed body to: 64 MiB, sixteen times
/// the default `maxMessageSize` (Java producers check the size before compressing, so a
/// real body stays under 4 MiB unless the limit was raised on both sides).
pub const DEFAULT_MAX_DECOMPRESSED_BODY_LEN: usize = 64 * 1024 * 1024;

/// Length of a host field: 8 (IPv4) or 20 (IPv6).
#[must_use]
pub const fn host_len(v6: bool) -> usize {
    if v6 { HOST_V6_LEN } else { HOST_V4_LEN }
}

/// Offset of `STORETIMESTAMP`: 48 + born host length (56 with an IPv4 born host).
#[must_use]
pub const fn store_timestamp_pos(sysflag: i32) -> usize {
    BORN_HOST_POS + host_len(sysflag::born_host_v6(sysflag))
}

/// Offset of `STOREHOST`.
#[must_use]
pub const fn store_host_pos(sysflag: i32) -> usize {
    store_timestamp_pos(sysflag) + 8
}

/// Offset of `RECONSUMETIMES`.
#[must_use]
pub const fn reconsume_times_pos(sysflag: i32) -> usize {
    store_host_pos(sysflag) + host_len(sysflag::store_host_v6(sysflag))
}

/// Offset of `PREPARED TX OFFSET`.
#[must_use]
pub const fn prepared_transaction_offset_pos(sysflag: i32) -> usize {
    reconsume_times_pos(sysflag) + 4
}

/// Offset of `BODYLENGTH`; the body follows it.
#[must_use]
pub const fn body_len_pos(sysflag: i32) -> usize {
    prepared_transaction_offset_pos(sysflag) + 8
}

/// Record layout version, chosen by the magic code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageVersion {
    /// Magic [`MAGIC_V1`]: 1-byte topic length. The only version 4.9 brokers and most
    /// clients (Java 4.x, Go) can read.
    V1,
    /// Magic [`MAGIC_V2`] [5.x]: 2-byte topic length.
    V2,
}

impl MessageVersion {
    /// The version a 5.x broker writes (with `autoMessageVersionOnTopicLen`, the default):
    /// V2 iff the topic has more than 127 UTF-16 code units (Java `String.length()`).
    ///
    /// A non-ASCII topic can have at most 127 units but more than 127 bytes; it gets V1, and
    /// [`encode_record`] then refuses it rather than write a length byte Java misreads.
    #[must_use]
    pub fn for_topic(topic: &str) -> Self {
        // UTF-16 never has more units than UTF-8 has bytes, so short topics need no count.
        if topic.len() <= TOPIC_MAX_LEN_V1 || topic.encode_utf16().count() <= TOPIC_MAX_LEN_V1 {
            Self::V1
        } else {
            Self::V2
        }
    }

    /// The version whose magic is `magic`, if any (the BLANK magic is not a version).
    #[must_use]
    pub const fn from_magic(magic: i32) -> Option<Self> {
        match magic {
            MAGIC_V1 => Some(Self::V1),
            MAGIC_V2 => Some(Self::V2),
            _ => None,
        }
    }

    /// The magic code written for this version.
    #[must_use]
    pub const fn magic(self) -> i32 {
        match self {
            Self::V1 => MAGIC_V1,
            Self::V2 => MAGIC_V2,
        }
    }

    /// Width of the `TOPICLENGTH` field: 1 or 2 bytes.
    #[must_use]
    pub const fn topic_len_width(self) -> usize {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }

    /// Largest topic, in bytes, this version can carry.
    #[must_use]
    pub const fn topic_max_len(self) -> usize {
        match self {
            Self::V1 => TOPIC_MAX_LEN_V1,
            Self::V2 => TOPIC_MAX_LEN_V2,
        }
    }
}

/// `TOTALSIZE` of a record (Java `calMsgLength`): `74 + Hb + Hs + T + B + Tp + P`, host
/// widths taken from the V6 bits of `sysflag`. Saturates instead of overflowing on absurd
/// lengths (a real record is below 2 GiB).
#[must_use]
pub fn record_len(
    version: MessageVersion,
    sysflag: i32,
    body_len: usize,
    topic_len: usize,
    properties_len: usize,
) -> usize {
    let fixed = FIXED_LEN
        + host_len(sysflag::born_host_v6(sysflag))
        + host_len(sysflag::store_host_v6(sysflag))
        + version.topic_len_width();
    fixed.saturating_add(body_len).saturating_add(topic_len).saturating_add(properties_len)
}

/// Every field of a stored record, borrowed (encode input; decode output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Layout version (magic code).
    pub version: MessageVersion,
    /// `BODYCRC` as stored. Ignored by [`encode_record`], which computes it.
    pub body_crc: i32,
    /// `QUEUEID`.
    pub queue_id: i32,
    /// `FLAG`, the producer's opaque flag.
    pub flag: i32,
    /// `QUEUEOFFSET`: index in the ConsumeQueue (0 for PREPARED/ROLLBACK).
    pub queue_offset: i64,
    /// `PHYSICALOFFSET`: this record's byte offset in the CommitLog.
    pub physical_offset: i64,
    /// `SYSFLAG`. On encode the two host-V6 bits are replaced from the address types.
    pub sysflag: i32,
    /// `BORNTIMESTAMP`, ms since the epoch.
    pub born_timestamp: i64,
    /// `BORNHOST`: the producer's address.
    pub born_host: SocketAddr,
    /// `STORETIMESTAMP`, ms since the epoch.
    pub store_timestamp: i64,
    /// `STOREHOST`: the broker's `brokerIP1:listenPort`.
    pub store_host: SocketAddr,
    /// `RECONSUMETIMES`.
    pub reconsume_times: i32,
    /// `PREPARED TX OFFSET`.
    pub prepared_transaction_offset: i64,
    /// `BODY` as stored (compressed when the sysflag says so).
    pub body: &'a [u8],
    /// `TOPIC`.
    pub topic: &'a str,
    /// `PROPERTIES`, encoded (see `properties`).
    pub properties: &'a [u8],
}

impl RecordRef<'_> {
    /// The sysflag [`encode_record`] writes: `self.sysflag` with the host-V6 bits set from
    /// the address types.
    #[must_use]
    pub fn effective_sysflag(&self) -> i32 {
        let mut flags = self.sysflag & !sysflag::HOST_V6_FLAGS;
        if self.born_host.is_ipv6() {
            flags |= sysflag::BORNHOST_V6_FLAG;
        }
        if self.store_host.is_ipv6() {
            flags |= sysflag::STOREHOST_V6_FLAG;
        }
        flags
    }

    /// Bytes [`encode_record`] writes for this record.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        record_len(
            self.version,
            self.effective_sysflag(),
            self.body.len(),
            self.topic.len(),
            self.properties.len(),
        )
    }

    /// The transaction type bits (`sysflag & 0xC`).
    #[must_use]
    pub fn transaction_type(&self) -> i32 {
        sysflag::transaction_type(self.sysflag)
    }

    /// The offset message id of this record (storage.md §6.1).
    #[must_use]
    pub fn offset_msg_id(&self) -> String {
        encode_offset_msg_id(self.store_host, self.physical_offset)
    }

    /// The value of property `name`, found without allocating.
    #[must_use]
    pub fn property(&self, name: &str) -> Option<&[u8]> {
        crate::properties::find_property(self.properties, name)
    }
}

/// Result of [`check_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordCheck<'a> {
    /// A valid message record; its length is `TOTALSIZE`, i.e. `record.encoded_len()`.
    Message(RecordRef<'a>),
    /// An end-of-file BLANK record: the rest of the file (`size` bytes from its start,
    /// `size >= 8`) holds no records.
    Blank {
        /// The declared size (the bytes that were left in the file).
        size: usize,
    },
}

/// Appends the record to `out` and returns the bytes written.
///
/// Computes `BODYCRC` from `body` (ignores `rec.body_crc`) and sets or clears the two
/// host-V6 sysflag bits from the actual address types. Writes the fields straight into
/// `out`; the only allocation is `out` growing.
///
/// # Errors
///
/// [`Error::TooLong`] when the topic does not fit its length field (v1 ≤ 127 bytes, read as
/// a signed byte; v2 ≤ 32767), properties exceed 32767 bytes, or the body or the whole
/// record exceed `i32::MAX`. Nothing is written then.
pub fn encode_record(rec: &RecordRef<'_>, out: &mut Vec<u8>) -> Result<usize> {
    let topic_len = TopicLength::new(rec.version, rec.topic.len())?;
    let properties_len = length_within(rec.properties.len(), "PROPERTIES", PROPERTIES_MAX_LEN)?;
    let body_len = i32_length(rec.body.len(), "BODY")?;
    let sysflag = rec.effective_sysflag();
    let total = rec.encoded_len();
    let total_size = i32_length(total, "record")?;
    let start = out.len();
    out.reserve(total);

    out.extend_from_slice(&total_size.to_be_bytes());
    out.extend_from_slice(&rec.version.magic().to_be_bytes());
    out.extend_from_slice(&rocketmq_crc32(rec.body).to_be_bytes());
    out.extend_from_slice(&rec.queue_id.to_be_bytes());
    out.extend_from_slice(&rec.flag.to_be_bytes());
    out.extend_from_slice(&rec.queue_offset.to_be_bytes());
    out.extend_from_slice(&rec.physical_offset.to_be_bytes());
    out.extend_from_slice(&sysflag.to_be_bytes());
    out.extend_from_slice(&rec.born_timestamp.to_be_bytes());
    put_socket_addr(out, rec.born_host);
    out.extend_from_slice(&rec.store_timestamp.to_be_bytes());
    put_socket_addr(out, rec.store_host);
    out.extend_from_slice(&rec.reconsume_times.to_be_bytes());
    out.extend_from_slice(&rec.prepared_transaction_offset.to_be_bytes());
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(rec.body);
    match topic_len {
        TopicLength::V1(len) => out.extend_from_slice(&len.to_be_bytes()),
        TopicLength::V2(len) => out.extend_from_slice(&len.to_be_bytes()),
    }
    out.extend_from_slice(rec.topic.as_bytes());
    out.extend_from_slice(&properties_len.to_be_bytes());
    out.extend_from_slice(rec.properties);

    let written = out.len() - start;
    debug_assert_eq!(written, total, "record length formula disagrees with the encoder");
    Ok(written)
}

/// Checks and parses the record at the start of `buf` (Java `checkMessageAndReturnSize`),
/// borrowing from `buf`. See [`check_record_at`].
///
/// # Errors
///
/// As [`check_record_at`].
pub fn check_record(buf: &[u8], check_crc: bool) -> Result<RecordCheck<'_>> {
    check_record_at(buf, 0, check_crc)
}

/// Checks and parses the record starting at `buf[offset..]`; errors report offsets in `buf`.
///
/// A BLANK record needs only its 8 bytes. A message record needs `TOTALSIZE` bytes; every
/// field is parsed inside them, the length recomputed with [`record_len`] and compared with
/// `TOTALSIZE`, and with `check_crc` the body CRC is recomputed. Does not allocate.
///
/// # Errors
///
/// [`Error::Incomplete`] when `buf` ends before the 8-byte head or before `TOTALSIZE`
/// bytes; [`Error::BadMagic`]; [`Error::InvalidField`] for a negative or too small size, a
/// negative length or a port above 65535; [`Error::FieldOverrun`] when a field runs past
/// `TOTALSIZE`; [`Error::SizeMismatch`] when the fields end before it;
/// [`Error::CrcMismatch`]; [`Error::InvalidUtf8`] for the topic.
pub fn check_record_at(buf: &[u8], offset: usize, check_crc: bool) -> Result<RecordCheck<'_>> {
    let input = buf.get(offset..).unwrap_or_default();
    let mut head = Reader::new(input, "record", offset, Bound::InputEnd);
    let total_size = head.i32("TOTALSIZE")?;
    let magic = head.i32("MAGICCODE")?;
    if magic == BLANK_MAGIC {
        let size = usize::try_from(total_size)
            .ok()
            .filter(|&size| size >= BLANK_RECORD_SIZE)
            .ok_or(Error::InvalidField {
                what: "blank record",
                offset,
                field: "TOTALSIZE",
                found: i64::from(total_size),
                expected: "a size >= 8",
            })?;
        return Ok(RecordCheck::Blank { size });
    }
    let Some(version) = MessageVersion::from_magic(magic) else {
        return Err(Error::BadMagic { offset, found: u32::from_be_bytes(magic.to_be_bytes()) });
    };
    let declared = head.len_field("TOTALSIZE", i64::from(total_size))?;
    let Some(record) = input.get(..declared) else {
        return Err(Error::Incomplete {
            what: "record",
            offset,
            field: "TOTALSIZE",
            needed: declared,
            available: input.len(),
        });
    };
    let rec = parse_fields(record, version, offset)?;
    let computed = rec.encoded_len();
    if computed != declared {
        return Err(Error::SizeMismatch { offset, declared, computed });
    }
    if check_crc {
        let computed = rocketmq_crc32(rec.body);
        if computed != rec.body_crc {
            return Err(Error::CrcMismatch { offset, stored: rec.body_crc, computed });
        }
    }
    Ok(RecordCheck::Message(rec))
}

/// Decodes the message record at the start of `buf` without checking the body CRC and
/// returns it with the bytes it occupies (`TOTALSIZE`).
///
/// # Errors
///
/// As [`check_record`], plus [`Error::UnexpectedBlank`] for a BLANK record.
pub fn decode_record(buf: &[u8]) -> Result<(RecordRef<'_>, usize)> {
    decode_record_at(buf, 0)
}

/// [`decode_record`] for the record at `buf[offset..]`; errors report offsets in `buf`.
///
/// # Errors
///
/// As [`decode_record`].
pub fn decode_record_at(buf: &[u8], offset: usize) -> Result<(RecordRef<'_>, usize)> {
    match check_record_at(buf, offset, false)? {
        RecordCheck::Message(rec) => Ok((rec, rec.encoded_len())),
        RecordCheck::Blank { .. } => Err(Error::UnexpectedBlank { offset }),
    }
}

/// The 8-byte BLANK record: `remaining` (the bytes left in the file, this record included)
/// then [`BLANK_MAGIC`].
#[must_use]
pub fn encode_blank(remaining: i32) -> [u8; BLANK_RECORD_SIZE] {
    let mut blank = [0; BLANK_RECORD_SIZE];
    let (size, magic) = blank.split_at_mut(4);
    size.copy_from_slice(&remaining.to_be_bytes());
    magic.copy_from_slice(&BLANK_MAGIC.to_be_bytes());
    blank
}

/// Iterates over the message records of `buf` (a pull-response body, a query result): each
/// item is a record or the error that stops the iteration. BLANK records are errors.
#[must_use]
pub fn iter_records(buf: &[u8]) -> RecordIter<'_> {
    RecordIter { buf, pos: 0, failed: false }
}

/// Iterator returned by [`iter_records`]; yields `(offset, record)` pairs.
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<(usize, RecordRef<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let offset = self.pos;
        match decode_record_at(self.buf, offset) {
            Ok((rec, len)) => {
                self.pos = offset.saturating_add(len);
                Some(Ok((offset, rec)))
            }
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }
}

impl std::iter::FusedIterator for RecordIter<'_> {}

/// How [`decode_messages_with_options`] and [`decode_messages_shared`] treat bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Inflate bodies whose sysflag has [`sysflag::COMPRESSED_FLAG`] (zlib only). Default
    /// true, as Java clients do.
    pub decompress: bool,
    /// Largest inflated body, in bytes. Default [`DEFAULT_MAX_DECOMPRESSED_BODY_LEN`].
    pub max_decompressed_body_len: usize,
    /// Check each body CRC. Default false, as Java clients do.
    pub check_crc: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            decompress: true,
            max_decompressed_body_len: DEFAULT_MAX_DECOMPRESSED_BODY_LEN,
            check_crc: false,
        }
    }
}

/// Decodes a whole pull-response body (concatenated records) into owned messages.
///
/// With `decompress`, zlib bodies are inflated (up to [`DEFAULT_MAX_DECOMPRESSED_BODY_LEN`]);
/// the sysflag keeps its compression bits, as in Java. `msg_id` is the offset message id
/// (store host + physical offset). Copies each body; [`decode_messages_shared`] does not.
///
/// # Errors
///
/// The first record that fails to decode, see [`check_record`]; a BLANK record
/// ([`Error::UnexpectedBlank`]); [`Error::UnsupportedCompression`] for LZ4/ZSTD bodies;
/// [`Error::Decompress`] or [`Error::DecompressedTooLarge`] for bad zlib bodies.
/// (Java's client instead stops quietly at the first bad record and keeps the ones before.)
pub fn decode_messages(body: &[u8], decompress: bool) -> Result<Vec<MessageExt>> {
    let options = DecodeOptions { decompress, ..DecodeOptions::default() };
    decode_messages_with_options(body, &options)
}

/// [`decode_messages`] with explicit options.
///
/// # Errors
///
/// As [`decode_messages`].
pub fn decode_messages_with_options(
    body: &[u8],
    options: &DecodeOptions,
) -> Result<Vec<MessageExt>> {
    decode_all(body, options, |range| Bytes::copy_from_slice(body.get(range).unwrap_or_default()))
}

/// [`decode_messages`] over a shared buffer: uncompressed bodies are slices of `body`, not
/// copies.
///
/// # Errors
///
/// As [`decode_messages`].
pub fn decode_messages_shared(body: &Bytes, options: &DecodeOptions) -> Result<Vec<MessageExt>> {
    decode_all(body, options, |range| {
        if range.end <= body.len() && range.start <= range.end {
            body.slice(range)
        } else {
            Bytes::new()
        }
    })
}

/// Decodes every record of `body`; `share` turns the byte range of a stored body (always
/// inside `body`) into [`Bytes`].
fn decode_all(
    body: &[u8],
    options: &DecodeOptions,
    share: impl Fn(Range<usize>) -> Bytes,
) -> Result<Vec<MessageExt>> {
    let mut messages = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let rec = match check_record_at(body, pos, options.check_crc)? {
            RecordCheck::Message(rec) => rec,
            RecordCheck::Blank { .. } => return Err(Error::UnexpectedBlank { offset: pos }),
        };
        let stored_body = if options.decompress && sysflag::is_compressed(rec.sysflag) {
            Bytes::from(inflate_body(&rec, pos, options.max_decompressed_body_len)?)
        } else {
            let start = pos + body_len_pos(rec.sysflag) + 4;
            share(start..start + rec.body.len())
        };
        messages.push(MessageExt::from_record(&rec, stored_body));
        pos = pos.saturating_add(rec.encoded_len());
    }
    Ok(messages)
}

/// Inflates a compressed record body, refusing anything but zlib.
fn inflate_body(rec: &RecordRef<'_>, offset: usize, limit: usize) -> Result<Vec<u8>> {
    match sysflag::compression_type(rec.sysflag) {
        Some(sysflag::CompressionType::Zlib) => crate::zlib::inflate_bounded(rec.body, limit)
            .map_err(|failure| failure.into_error(offset, limit)),
        _ => Err(Error::UnsupportedCompression {
            offset,
            found: sysflag::compression_type_value(rec.sysflag),
        }),
    }
}

/// Parses every field of `record`, which is exactly the declared `TOTALSIZE` bytes.
fn parse_fields(record: &[u8], version: MessageVersion, offset: usize) -> Result<RecordRef<'_>> {
    let mut reader = Reader::new(record, "record", offset, Bound::Declared(record.len()));
    reader.bytes("TOTALSIZE+MAGICCODE", MAGIC_POS + 4)?;
    let body_crc = reader.i32("BODYCRC")?;
    let queue_id = reader.i32("QUEUEID")?;
    let flag = reader.i32("FLAG")?;
    let queue_offset = reader.i64("QUEUEOFFSET")?;
    let physical_offset = reader.i64("PHYSICALOFFSET")?;
    let sysflag = reader.i32("SYSFLAG")?;
    let born_timestamp = reader.i64("BORNTIMESTAMP")?;
    let born_host = reader.socket_addr("BORNHOST", sysflag::born_host_v6(sysflag))?;
    let store_timestamp = reader.i64("STORETIMESTAMP")?;
    let store_host = reader.socket_addr("STOREHOST", sysflag::store_host_v6(sysflag))?;
    let reconsume_times = reader.i32("RECONSUMETIMES")?;
    let prepared_transaction_offset = reader.i64("PREPARED TX OFFSET")?;
    let body_len = reader.i32("BODYLENGTH")?;
    let body_len = reader.len_field("BODYLENGTH", i64::from(body_len))?;
    let body = reader.bytes("BODY", body_len)?;
    let topic_len = match version {
        MessageVersion::V1 => i64::from(reader.i8("TOPICLENGTH")?),
        MessageVersion::V2 => i64::from(reader.i16("TOPICLENGTH")?),
    };
    let topic_len = reader.len_field("TOPICLENGTH", topic_len)?;
    let topic = reader.bytes("TOPIC", topic_len)?;
    let topic = std::str::from_utf8(topic).map_err(|err| Error::InvalidUtf8 {
        what: reader.what(),
        offset: reader.origin(),
        field: "TOPIC",
        valid_up_to: err.valid_up_to(),
    })?;
    let properties_len = reader.i16("PROPERTIESLENGTH")?;
    let properties_len = reader.len_field("PROPERTIESLENGTH", i64::from(properties_len))?;
    let properties = reader.bytes("PROPERTIES", properties_len)?;
    debug_assert!(reader.position() <= record.len(), "reader ran past the declared size");
    Ok(RecordRef {
        version,
        body_crc,
        queue_id,
        flag,
        queue_offset,
        physical_offset,
        sysflag,
        born_timestamp,
        born_host,
        store_timestamp,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        body,
        topic,
        properties,
    })
}

/// Overwrites `QUEUEOFFSET` in an encoded record (the store fills it in inside its append
/// lock).
///
/// # Errors
///
/// [`Error::Incomplete`] when `record` is too short to hold the field.
pub fn set_queue_offset(record: &mut [u8], queue_offset: i64) -> Result<()> {
    patch(record, QUEUE_OFFSET_POS, "QUEUEOFFSET", &queue_offset.to_be_bytes())
}

/// Overwrites `PHYSICALOFFSET` in an encoded record.
///
/// # Errors
///
/// [`Error::Incomplete`] when `record` is too short to hold the field.
pub fn set_physical_offset(record: &mut [u8], physical_offset: i64) -> Result<()> {
    patch(record, PHYSICAL_OFFSET_POS, "PHYSICALOFFSET", &physical_offset.to_be_bytes())
}

/// Overwrites `STORETIMESTAMP` in an encoded record; its position depends on the record's
/// own sysflag.
///
/// # Errors
///
/// [`Error::Incomplete`] when `record` is too short to hold the sysflag or the field.
pub fn set_store_timestamp(record: &mut [u8], store_timestamp: i64) -> Result<()> {
    let mut reader = Reader::new(record, "record", 0, Bound::InputEnd);
    reader.bytes("TOTALSIZE..BORNTIMESTAMP", SYSFLAG_POS)?;
    let sysflag = reader.i32("SYSFLAG")?;
    let pos = store_timestamp_pos(sysflag);
    patch(record, pos, "STORETIMESTAMP", &store_timestamp.to_be_bytes())
}

fn patch(record: &mut [u8], pos: usize, field: &'static str, value: &[u8]) -> Result<()> {
    let available = record.len().saturating_sub(pos);
    let target = record.get_mut(pos..pos + value.len()).ok_or(Error::Incomplete {
        what: "record",
        offset: 0,
        field,
        needed: value.len(),
        available,
    })?;
    target.copy_from_slice(value);
    Ok(())
}

/// The `TOPICLENGTH` field in its version's width.
#[derive(Debug, Clone, Copy)]
enum TopicLength {
    V1(i8),
    V2(i16),
}

impl TopicLength {
    fn new(version: MessageVersion, len: usize) -> Result<Self> {
        let too_long = || Error::TooLong { field: "TOPIC", len, max: version.topic_max_len() };
        match version {
            MessageVersion::V1 => i8::try_from(len).map(Self::V1).map_err(|_| too_long()),
            MessageVersion::V2 => i16::try_from(len).map(Self::V2).map_err(|_| too_long()),
        }
    }
}

fn length_within(len: usize, field: &'static str, max: usize) -> Result<i16> {
    i16::try_from(len).ok().filter(|_| len <= max).ok_or(Error::TooLong { field, len, max })
}

fn i32_length(len: usize, field: &'static str) -> Result<i32> {
    i32::try_from(len).map_err(|_| Error::TooLong { field, len, max: MAX_I32_LEN })
}

/// `i32::MAX` as a length.
const MAX_I32_LEN: usize = 0x7FFF_FFFF;

#[cfg(test)]
mod tests;
