//! The crate's one error type.
//!
//! Decode errors name the structure (`what`), the offset where it starts, the field that failed
//! and, for short input, the bytes needed and available. Encode errors name the field and the
//! allowed range. No variant wraps an I/O error: this crate does no I/O.

use crate::validate::{GroupViolation, TopicViolation};

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while encoding, decoding or validating.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ends inside a field: more bytes could complete it. A reader of a growing
    /// stream may wait; a reader of a finished file has found a torn tail.
    #[error(
        "{what} at offset {offset} is truncated in field {field}: needs {needed} bytes, {available} available"
    )]
    Incomplete {
        /// The structure being decoded, e.g. `record`, `batch item`.
        what: &'static str,
        /// Offset of the start of that structure in the input.
        offset: usize,
        /// Field name as in storage.md, e.g. `BODY`.
        field: &'static str,
        /// Bytes the field needs from its own start.
        needed: usize,
        /// Bytes left in the input at the field's start.
        available: usize,
    },

    /// A field runs past the size the record itself declares (its `TOTALSIZE`), although the
    /// input holds the whole declared size: the record is corrupt, more input will not help.
    #[error(
        "{what} at offset {offset} overruns its declared size {declared} in field {field}: needs {needed} bytes, {available} left"
    )]
    FieldOverrun {
        /// The structure being decoded.
        what: &'static str,
        /// Offset of the start of that structure in the input.
        offset: usize,
        /// Field that does not fit.
        field: &'static str,
        /// The declared size (`TOTALSIZE`).
        declared: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left before the declared end.
        available: usize,
    },

    /// The magic code is neither a message magic (v1/v2) nor the BLANK magic.
    #[error(
        "record at offset {offset} has magic code {found:#010x}, expected 0xdaa320a7 (v1), 0xdaa320ab (v2) or 0xcbd43194 (blank)"
    )]
    BadMagic {
        /// Offset of the record in the input.
        offset: usize,
        /// The magic code found, as the unsigned bit pattern.
        found: u32,
    },

    /// A fixed-width field holds a value outside its legal range (negative length, port above
    /// 65535, BLANK size below 8, ...).
    #[error("{what} at offset {offset} has {field} {found}, expected {expected}")]
    InvalidField {
        /// The structure being decoded.
        what: &'static str,
        /// Offset of the start of that structure in the input.
        offset: usize,
        /// Field name as in storage.md.
        field: &'static str,
        /// The value found.
        found: i64,
        /// The legal range, in words.
        expected: &'static str,
    },

    /// `TOTALSIZE` differs from the length computed from the record's own length fields
    /// (Java's "half message" case in `checkMessageAndReturnSize`).
    #[error(
        "record at offset {offset} declares TOTALSIZE {declared}, but its fields add up to {computed} bytes"
    )]
    SizeMismatch {
        /// Offset of the record in the input.
        offset: usize,
        /// `TOTALSIZE` as stored.
        declared: usize,
        /// `record_len` of the parsed fields.
        computed: usize,
    },

    /// The stored body CRC differs from the CRC of the stored body bytes.
    #[error("record at offset {offset} has BODYCRC {stored}, but its body hashes to {computed}")]
    CrcMismatch {
        /// Offset of the record in the input.
        offset: usize,
        /// `BODYCRC` as stored.
        stored: i32,
        /// `rocketmq_crc32` of the body bytes.
        computed: i32,
    },

    /// A text field (the topic) is not valid UTF-8.
    #[error(
        "{what} at offset {offset} has a {field} that is not valid utf-8 (first bad byte at {valid_up_to})"
    )]
    InvalidUtf8 {
        /// The structure being decoded.
        what: &'static str,
        /// Offset of the start of that structure in the input.
        offset: usize,
        /// Field name.
        field: &'static str,
        /// Index of the first invalid byte inside the field.
        valid_up_to: usize,
    },

    /// A message record was expected, but the bytes hold an end-of-file BLANK record.
    #[error("record at offset {offset} is a blank end-of-file record, expected a message")]
    UnexpectedBlank {
        /// Offset of the record in the input.
        offset: usize,
    },

    /// An input to an encoder does not fit its length field.
    #[error("{field} is {len} bytes, expected at most {max}")]
    TooLong {
        /// Field name as in storage.md, e.g. `PROPERTIES`.
        field: &'static str,
        /// Actual length in bytes.
        len: usize,
        /// Largest length the format can carry.
        max: usize,
    },

    /// The record's sysflag names a compression this crate cannot inflate (LZ4, ZSTD or an
    /// unknown value; only zlib is supported).
    #[error(
        "record at offset {offset} uses compression type {found}, expected 0 or 3 (zlib, the only supported type)"
    )]
    UnsupportedCompression {
        /// Offset of the record in the input.
        offset: usize,
        /// `(sysflag & 0x700) >> 8`.
        found: i32,
    },

    /// A compressed body is not a valid, complete zlib stream.
    #[error("record at offset {offset} has a compressed body that does not inflate: {reason}")]
    Decompress {
        /// Offset of the record in the input.
        offset: usize,
        /// What the inflater reported.
        reason: String,
    },

    /// A compressed body inflates beyond the configured limit.
    #[error("record at offset {offset} has a body that inflates to more than {limit} bytes")]
    DecompressedTooLarge {
        /// Offset of the record in the input.
        offset: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// An offset message id or UNIQ_KEY string does not decode. The id itself is not kept,
    /// as it is untrusted input of any length.
    #[error("{what} of {len} characters is invalid: {reason}")]
    InvalidMessageId {
        /// `offset message id` or `unique key`.
        what: &'static str,
        /// Length of the input in bytes.
        len: usize,
        /// What is wrong, in words.
        reason: &'static str,
    },

    /// A topic name breaks the broker's naming rules (broker.md §2.6).
    #[error("invalid topic {topic:?}: {violation}")]
    InvalidTopic {
        /// The topic as given.
        topic: String,
        /// Which rule it breaks.
        violation: TopicViolation,
    },

    /// A group name breaks the broker's naming rules (broker.md §2.6).
    #[error("invalid group {group:?}: {violation}")]
    InvalidGroup {
        /// The group as given.
        group: String,
        /// Which rule it breaks.
        violation: GroupViolation,
    },
}

impl Error {
    /// True for [`Error::Incomplete`]: the input stopped early and more bytes may complete it.
    /// Every other decode error means the bytes present are wrong.
    #[must_use]
    pub fn is_incomplete(&self) -> bool {
        matches!(self, Self::Incomplete { .. })
    }
}
