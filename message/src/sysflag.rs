//! The record's `SYSFLAG` bits (Java `MessageSysFlag`, storage.md §5).
//!
//! ```text
//! bit  10 9 8 | 7           6           5            4           3 2        1          0
//!      compr. | INNER_BATCH NEED_UNWRAP STOREHOST_V6 BORNHOST_V6 tx type    MULTI_TAGS COMPRESSED
//! ```

/// The body is compressed; the algorithm is in [`COMPRESSION_TYPE_MASK`].
pub const COMPRESSED_FLAG: i32 = 0x1;
/// The topic's filter type is MULTI_TAG. Does not change the tagsCode.
pub const MULTI_TAGS_FLAG: i32 = 0x2;
/// Bits 2..=3: the transaction type.
pub const TRANSACTION_MASK: i32 = 0xC;
/// Not a transactional message.
pub const TRANSACTION_NOT_TYPE: i32 = 0;
/// Half (prepared) transactional message: not dispatched, queue offset 0.
pub const TRANSACTION_PREPARED_TYPE: i32 = 0x4;
/// Committed transactional message: dispatched like a normal one.
pub const TRANSACTION_COMMIT_TYPE: i32 = 0x8;
/// Rolled-back transactional message: not dispatched, not indexed.
pub const TRANSACTION_ROLLBACK_TYPE: i32 = 0xC;
/// The born host is stored as 16 address bytes + port (20 bytes), not 4 + port.
pub const BORNHOST_V6_FLAG: i32 = 0x10;
/// The store host is stored as 16 address bytes + port; also selects the 28-byte msgId.
/// Java calls it `STOREHOSTADDRESS_V6_FLAG`.
pub const STOREHOST_V6_FLAG: i32 = 0x20;
/// [5.x] The record is an inner batch that the client must unwrap.
pub const NEED_UNWRAP_FLAG: i32 = 0x40;
/// [5.x] One record holds many messages (BatchConsumeQueue topics only).
pub const INNER_BATCH_FLAG: i32 = 0x80;
/// Bits 8..=10: the compression type. Java calls it `COMPRESSION_TYPE_COMPARATOR`.
pub const COMPRESSION_TYPE_MASK: i32 = 0x700;
/// Compression type LZ4 in place (`1 << 8`).
pub const COMPRESSION_LZ4_TYPE: i32 = 0x100;
/// Compression type ZSTD in place (`2 << 8`).
pub const COMPRESSION_ZSTD_TYPE: i32 = 0x200;
/// Compression type ZLIB in place (`3 << 8`); what Java producers set by default (`0x301`
/// together with [`COMPRESSED_FLAG`]).
pub const COMPRESSION_ZLIB_TYPE: i32 = 0x300;

/// Both host-V6 bits.
pub const HOST_V6_FLAGS: i32 = BORNHOST_V6_FLAG | STOREHOST_V6_FLAG;

/// How a compressed body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompressionType {
    /// LZ4 frame (type value 1).
    Lz4,
    /// Zstandard (type value 2).
    Zstd,
    /// zlib stream (type value 3, and the legacy value 0).
    Zlib,
}

impl CompressionType {
    /// The type value stored in bits 8..=10 (1, 2 or 3).
    #[must_use]
    pub const fn value(self) -> i32 {
        match self {
            Self::Lz4 => 1,
            Self::Zstd => 2,
            Self::Zlib => 3,
        }
    }

    /// The type bits in place, ready to OR into a sysflag.
    #[must_use]
    pub const fn flag_bits(self) -> i32 {
        self.value() << 8
    }
}

/// The transaction type: one of the `TRANSACTION_*_TYPE` values.
#[must_use]
pub const fn transaction_type(sysflag: i32) -> i32 {
    sysflag & TRANSACTION_MASK
}

/// `sysflag` with its transaction type replaced by `transaction_type` (Java
/// `resetTransactionValue`).
#[must_use]
pub const fn reset_transaction_type(sysflag: i32, transaction_type: i32) -> i32 {
    (sysflag & !TRANSACTION_MASK) | (transaction_type & TRANSACTION_MASK)
}

/// The raw compression type value, `(sysflag & 0x700) >> 8`, in `0..=7`.
#[must_use]
pub const fn compression_type_value(sysflag: i32) -> i32 {
    (sysflag & COMPRESSION_TYPE_MASK) >> 8
}

/// The compression algorithm named by bits 8..=10: 0 (legacy producers that set only
/// [`COMPRESSED_FLAG`]) and 3 mean zlib, 1 LZ4, 2 ZSTD; 4..=7 are unknown (`None`, where
/// Java throws). Meaningful only when [`is_compressed`] is true.
#[must_use]
pub const fn compression_type(sysflag: i32) -> Option<CompressionType> {
    match compression_type_value(sysflag) {
        0 | 3 => Some(CompressionType::Zlib),
        1 => Some(CompressionType::Lz4),
        2 => Some(CompressionType::Zstd),
        _ => None,
    }
}

/// True when the body is compressed.
#[must_use]
pub const fn is_compressed(sysflag: i32) -> bool {
    sysflag & COMPRESSED_FLAG != 0
}

/// True when the born host is stored in the 20-byte IPv6 form.
#[must_use]
pub const fn born_host_v6(sysflag: i32) -> bool {
    sysflag & BORNHOST_V6_FLAG != 0
}

/// True when the store host is stored in the 20-byte IPv6 form.
#[must_use]
pub const fn store_host_v6(sysflag: i32) -> bool {
    sysflag & STOREHOST_V6_FLAG != 0
}

/// True for the transaction types that get a queue offset and are dispatched to a
/// ConsumeQueue: NOT and COMMIT (storage.md §5).
#[must_use]
pub const fn is_dispatched_type(sysflag: i32) -> bool {
    matches!(transaction_type(sysflag), TRANSACTION_NOT_TYPE | TRANSACTION_COMMIT_TYPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_type_masks_bits_2_and_3() {
        assert_eq!(transaction_type(0x1 | 0x8 | 0x10), TRANSACTION_COMMIT_TYPE);
        assert_eq!(transaction_type(0xFF), TRANSACTION_ROLLBACK_TYPE);
        assert_eq!(reset_transaction_type(0x35, TRANSACTION_NOT_TYPE), 0x31);
        assert!(is_dispatched_type(TRANSACTION_COMMIT_TYPE));
        assert!(!is_dispatched_type(TRANSACTION_PREPARED_TYPE));
        assert!(!is_dispatched_type(TRANSACTION_ROLLBACK_TYPE));
    }

    #[test]
    fn compression_type_treats_zero_as_zlib() {
        assert_eq!(compression_type(COMPRESSED_FLAG), Some(CompressionType::Zlib));
        assert_eq!(compression_type(0x301), Some(CompressionType::Zlib));
        assert_eq!(compression_type(0x101), Some(CompressionType::Lz4));
        assert_eq!(compression_type(0x201), Some(CompressionType::Zstd));
        assert_eq!(compression_type(0x401), None);
        assert_eq!(CompressionType::Zlib.flag_bits() | COMPRESSED_FLAG, 0x301);
    }
}
