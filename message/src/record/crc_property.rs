//! [5.x] The record-CRC property (storage.md §4.3), written only when the broker option
//! `enabledAppendPropCRC` is on (default off).
//!
//! The last 20 bytes of the PROPERTIES field are reserved and, once the record's offsets and
//! store timestamp are final, filled with the CRC of everything before them:
//!
//! ```text
//! +-----------+------+-------------------------------------+------+
//! | __CRC32#  | 0x01 | 10 ASCII digits, least significant  | 0x02 |
//! | 8 bytes   | 1    | first, zero-padded at the high end  | 1    |
//! +-----------+------+-------------------------------------+------+
//! ```
//!
//! e.g. 123456789 is written `9876543210`.

use crate::hash::rocketmq_crc32;
use crate::property;

/// Bytes the property occupies at the end of PROPERTIES (`CRC32_RESERVED_LEN`).
pub const CRC_PROPERTY_LEN: usize = 20;

/// Number of decimal digits of the value.
const DIGITS: usize = 10;

const PREFIX_LEN: usize = CRC_PROPERTY_LEN - DIGITS - 1;

const _: () = assert!(property::CRC32.len() + 1 == PREFIX_LEN);

/// The 20 property bytes for `crc` (a masked CRC, so non-negative; a negative value is
/// written as its absolute value would be, which no reader will match).
#[must_use]
pub fn encode_crc_property(crc: i32) -> [u8; CRC_PROPERTY_LEN] {
    let mut out = [0_u8; CRC_PROPERTY_LEN];
    let mut value = crc.unsigned_abs();
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = match index {
            0..8 => property::CRC32.as_bytes().get(index).copied().unwrap_or_default(),
            8 => crate::properties::NAME_VALUE_SEPARATOR,
            9..19 => {
                let digit = u8::try_from(value % 10).unwrap_or_default();
                value /= 10;
                b'0' + digit
            }
            _ => crate::properties::PROPERTY_SEPARATOR,
        };
    }
    out
}

/// The CRC stored in the last 20 bytes of `record` (a whole encoded record whose properties
/// end with the CRC property), or `None` if those bytes are not a well-formed CRC property.
#[must_use]
pub fn stored_record_crc(record: &[u8]) -> Option<i32> {
    let start = record.len().checked_sub(CRC_PROPERTY_LEN)?;
    let tail = record.get(start..)?;
    let (prefix, rest) = tail.split_at_checked(PREFIX_LEN)?;
    let (digits, end) = rest.split_at_checked(DIGITS)?;
    let expected_prefix = property::CRC32.as_bytes();
    let prefix_ok = prefix.get(..PREFIX_LEN - 1) == Some(expected_prefix)
        && prefix.last() == Some(&crate::properties::NAME_VALUE_SEPARATOR);
    if !prefix_ok || end != [crate::properties::PROPERTY_SEPARATOR] {
        return None;
    }
    // The last character is the most significant digit.
    let mut value: i64 = 0;
    for &digit in digits.iter().rev() {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(digit - b'0');
    }
    i32::try_from(value).ok()
}

/// The CRC the property must hold: `rocketmq_crc32` of the record without its last 20 bytes.
/// `None` when the record is shorter than 20 bytes.
#[must_use]
pub fn compute_record_crc(record: &[u8]) -> Option<i32> {
    let end = record.len().checked_sub(CRC_PROPERTY_LEN)?;
    record.get(..end).map(rocketmq_crc32)
}

/// Writes the CRC property into the last 20 bytes of `record`, computed over the bytes
/// before them. Returns the CRC, or `None` (nothing written) if `record` is too short.
pub fn fill_record_crc(record: &mut [u8]) -> Option<i32> {
    let crc = compute_record_crc(record)?;
    let start = record.len().checked_sub(CRC_PROPERTY_LEN)?;
    record.get_mut(start..)?.copy_from_slice(&encode_crc_property(crc));
    Some(crc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_written_least_significant_first() {
        assert_eq!(&encode_crc_property(123_456_789), b"__CRC32#\x019876543210\x02");
        assert_eq!(&encode_crc_property(123), b"__CRC32#\x013210000000\x02");
        assert_eq!(stored_record_crc(b"xx__CRC32#\x019876543210\x02"), Some(123_456_789));
        assert_eq!(stored_record_crc(b"__CRC32#\x017463847412\x02"), Some(i32::MAX));
    }

    #[test]
    fn malformed_properties_are_rejected() {
        assert_eq!(stored_record_crc(b"__CRC32#\x019876543210"), None);
        assert_eq!(stored_record_crc(b"__CRC33#\x019876543210\x02"), None);
        assert_eq!(stored_record_crc(b"__CRC32#\x01987654321x\x02"), None);
        // 8463847412 reversed is 2147483648, one above i32::MAX.
        assert_eq!(stored_record_crc(b"__CRC32#\x018463847412\x02"), None);
        assert_eq!(compute_record_crc(b"short"), None);
    }

    #[test]
    fn fill_then_verify() {
        let mut record = b"some record bytes".to_vec();
        record.extend_from_slice(&[0; CRC_PROPERTY_LEN]);
        let crc = fill_record_crc(&mut record);
        assert_eq!(crc, Some(rocketmq_crc32(b"some record bytes")));
        assert_eq!(stored_record_crc(&record), crc);
        assert_eq!(compute_record_crc(&record), crc);
    }
}
