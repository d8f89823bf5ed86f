//! The hashes RocketMQ stores on disk: Java `String.hashCode` (tagsCode, index key hash) and
//! the masked CRC-32 (body CRC).
//!
//! Java hashes **UTF-16 code units**, `h = 31 * h + unit` with wrapping i32 arithmetic, so a
//! character outside the Basic Multilingual Plane contributes two units (storage.md §23.2).

/// Java `String.hashCode` of `s`: over its UTF-16 code units, wrapping.
#[must_use]
pub fn java_string_hash(s: &str) -> i32 {
    java_hash_continue(0, s)
}

/// Continues a Java string hash `hash` over `s`, as if `s` were appended to the string that
/// produced `hash`. `java_hash_continue(java_string_hash(a), b) == java_string_hash(a + b)`.
#[must_use]
pub fn java_hash_continue(hash: i32, s: &str) -> i32 {
    if s.is_ascii() {
        return hash_units(hash, s.bytes().map(u16::from));
    }
    hash_units(hash, s.encode_utf16())
}

/// Java `new String(utf8, UTF_8).hashCode()` without building the string: invalid UTF-8
/// sequences count as U+FFFD, as they would after Java's (and Rust's lossy) decoding.
/// Does not allocate.
#[must_use]
pub fn java_bytes_hash(utf8: &[u8]) -> i32 {
    if utf8.is_ascii() {
        return hash_units(0, utf8.iter().map(|&b| u16::from(b)));
    }
    let mut hash = 0;
    for chunk in utf8.utf8_chunks() {
        hash = java_hash_continue(hash, chunk.valid());
        if !chunk.invalid().is_empty() {
            hash = java_hash_continue(hash, "\u{fffd}");
        }
    }
    hash
}

/// The ConsumeQueue tagsCode of a normal topic (storage.md §8.2): the Java hash of the tags,
/// sign-extended to i64; 0 for empty tags.
#[must_use]
pub fn tags_code(tags: &str) -> i64 {
    if tags.is_empty() {
        return 0;
    }
    i64::from(java_string_hash(tags))
}

/// The IndexFile key hash (storage.md §9.2): `abs(hashCode(key))`, and 0 where Java's
/// `Math.abs(Integer.MIN_VALUE)` stays negative.
#[must_use]
pub fn index_key_hash(key: &str) -> i32 {
    abs_or_zero(java_string_hash(key))
}

/// [`index_key_hash`] of `topic + "#" + key`, the string the store indexes, without building
/// it. Does not allocate.
#[must_use]
pub fn topic_key_hash(topic: &str, key: &str) -> i32 {
    let hash = java_hash_continue(java_string_hash(topic), "#");
    abs_or_zero(java_hash_continue(hash, key))
}

/// RocketMQ's `UtilAll.crc32`: the IEEE (zlib) CRC-32 with the sign bit cleared, so the result
/// is never negative.
#[must_use]
pub fn rocketmq_crc32(bytes: &[u8]) -> i32 {
    let masked = crc32fast::hash(bytes) & 0x7FFF_FFFF;
    // The mask makes the value fit; `from_be_bytes` reinterprets without a lossy cast.
    i32::from_be_bytes(masked.to_be_bytes())
}

fn hash_units(start: i32, units: impl Iterator<Item = u16>) -> i32 {
    units.fold(start, |hash, unit| hash.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

fn abs_or_zero(hash: i32) -> i32 {
    // `wrapping_abs(i32::MIN)` is i32::MIN; Java's index code then uses 0.
    hash.wrapping_abs().max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_jdk_values() {
        // storage.md §22, computed on a JDK 17.
        assert_eq!(java_string_hash("TagA"), 2_598_919);
        assert_eq!(java_string_hash("TopicTest#KEY1"), -1_656_969_516);
        assert_eq!(java_string_hash(""), 0);
        // "Aa" and "BB" collide in Java.
        assert_eq!(java_string_hash("Aa"), java_string_hash("BB"));
    }

    #[test]
    fn java_hash_counts_utf16_units_not_chars() {
        // U+1F600 is the surrogate pair D83D DE00 in UTF-16.
        let expected = 0xD83D_i32.wrapping_mul(31).wrapping_add(0xDE00);
        assert_eq!(java_string_hash("\u{1F600}"), expected);
        assert_eq!(java_string_hash("é"), 0xE9);
    }

    #[test]
    fn bytes_hash_agrees_with_string_hash() {
        for s in ["", "TagA", "héllo wörld ✓ 消息", "\u{1F600}x"] {
            assert_eq!(java_bytes_hash(s.as_bytes()), java_string_hash(s), "{s:?}");
        }
        assert_eq!(java_bytes_hash(b"a\xffb"), java_string_hash("a\u{fffd}b"));
    }

    #[test]
    fn index_hash_of_vector_a_key() {
        assert_eq!(index_key_hash("TopicTest#KEY1"), 1_656_969_516);
        assert_eq!(topic_key_hash("TopicTest", "KEY1"), 1_656_969_516);
        assert_eq!(index_key_hash("TopicTest#KEY1") % 5_000_000, 1_969_516);
        assert_eq!(1_656_969_516_i32.to_be_bytes(), [0x62, 0xc3, 0x59, 0x2c]);
    }

    #[test]
    fn index_hash_maps_min_value_to_zero() {
        assert_eq!(abs_or_zero(i32::MIN), 0);
        assert_eq!(abs_or_zero(-5), 5);
        assert_eq!(abs_or_zero(7), 7);
    }

    #[test]
    fn tags_code_sign_extends() {
        assert_eq!(tags_code("TagA"), 2_598_919);
        assert_eq!(tags_code(""), 0);
        let negative = "TopicTest#KEY1";
        assert_eq!(tags_code(negative), -1_656_969_516_i64);
    }

    #[test]
    fn crc32_is_masked_ieee() {
        assert_eq!(rocketmq_crc32(b"Hello"), 2_010_220_930);
        assert_eq!(rocketmq_crc32(b""), 0);
        // IEEE CRC-32 of "123456789" is 0xCBF43926; the mask clears the top bit.
        assert_eq!(rocketmq_crc32(b"123456789"), 0x4BF4_3926);
    }
}
