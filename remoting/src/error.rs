//! The crate's single error type.
//!
//! Every variant is about bad input: a frame, header or body that does not follow the
//! protocol. A transport answers (where it can) and closes that one connection; nothing here
//! is an I/O error, because the codec never touches a socket.

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a frame, header, extFields map or JSON body could not be decoded or encoded.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The frame's length field is negative, too small, or above the configured maximum.
    #[error("frame length {length} is outside {min}..={max} bytes")]
    FrameLength {
        /// The value read from the length field (bytes after the field).
        length: i64,
        /// Smallest acceptable value.
        min: i64,
        /// Largest acceptable value (maximum frame size minus the 4-byte length field).
        max: i64,
    },
    /// The header length does not fit inside the frame.
    #[error("header length {header_len} exceeds the {available} bytes left in the frame")]
    HeaderLength {
        /// Header length from the second int of the frame.
        header_len: usize,
        /// Bytes the frame has after the header-length int.
        available: usize,
    },
    /// The serialize-type byte is neither 0 (JSON) nor 1 (ROCKETMQ).
    #[error("serialize type {0} is unknown, expected 0 (JSON) or 1 (ROCKETMQ)")]
    SerializeType(u8),
    /// A length-prefixed field runs past the end of its enclosing buffer.
    #[error("{what} at offset {offset} needs {needed} bytes, {available} available")]
    Truncated {
        /// Name of the field being read.
        what: &'static str,
        /// Offset of the field inside the header.
        offset: usize,
        /// Bytes the field claims.
        needed: usize,
        /// Bytes actually left.
        available: usize,
    },
    /// A length field holds a negative value.
    #[error("{what} at offset {offset} has negative length {length}")]
    NegativeLength {
        /// Name of the field being read.
        what: &'static str,
        /// Offset of the length field inside the header.
        offset: usize,
        /// The value read.
        length: i64,
    },
    /// Bytes that must be UTF-8 are not.
    #[error("{what} at offset {offset} is not valid UTF-8")]
    Utf8 {
        /// Name of the field being read.
        what: &'static str,
        /// Offset of the field inside its buffer.
        offset: usize,
    },
    /// JSON text (header or body) is malformed or exceeds a limit.
    #[error("invalid JSON at offset {offset}: {reason}")]
    Json {
        /// Byte offset of the problem.
        offset: usize,
        /// What was expected or which limit was hit.
        reason: &'static str,
    },
    /// A mandatory (`@CFNotNull`) header field or body property is absent.
    #[error("missing mandatory field `{field}`")]
    MissingField {
        /// Wire name (or dotted path for body properties).
        field: String,
    },
    /// A field is present but its value cannot be parsed as the declared type.
    #[error("field `{field}` has value {value:?}, expected {expected}")]
    InvalidField {
        /// Wire name (or dotted path for body properties).
        field: String,
        /// The offending value, truncated to 64 characters.
        value: String,
        /// Description of the accepted values.
        expected: &'static str,
    },
    /// A value does not fit the field that must carry it on the wire.
    #[error("{what} is {value}, which does not fit {limit}")]
    OutOfRange {
        /// What was being encoded.
        what: &'static str,
        /// The value.
        value: i64,
        /// The wire type or limit it must fit.
        limit: &'static str,
    },
    /// A compressed body does not inflate: corrupt, truncated, or larger than the limit.
    #[error("cannot inflate {what}: {reason}")]
    Decompress {
        /// What was being inflated.
        what: &'static str,
        /// Why, e.g. the zlib error or the size limit.
        reason: String,
    },
    /// An invalid configuration value.
    #[error("invalid config: {field} is {value}, expected {allowed}")]
    InvalidConfig {
        /// Config field name.
        field: &'static str,
        /// The value given.
        value: u64,
        /// Allowed range.
        allowed: &'static str,
    },
}

impl Error {
    /// Builds [`Error::InvalidField`], truncating long values so messages stay readable.
    pub(crate) fn invalid_field(field: &str, value: &str, expected: &'static str) -> Self {
        let value: String = value.chars().take(64).collect();
        Self::InvalidField { field: field.to_owned(), value, expected }
    }

    /// Builds [`Error::MissingField`].
    pub(crate) fn missing(field: &str) -> Self {
        Self::MissingField { field: field.to_owned() }
    }
}
