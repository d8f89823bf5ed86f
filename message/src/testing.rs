//! Proptest strategies and the codec properties as plain functions returning
//! `Result<(), TestCaseError>` (STYLE §10), so this crate's tests, fuzz targets and other
//! crates' tests can run the same checks. Compiled for this crate's tests and, for other
//! users, behind the `testing` feature. Not a stable API.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::batch::{self, BatchItem};
use crate::error::Error;
use crate::hash::rocketmq_crc32;
use crate::msg_id::{self, OFFSET_MSG_ID_V4_LEN, UniqKey};
use crate::properties::{self, Properties};
use crate::record::{self, MessageVersion, RecordCheck, RecordRef};

/// An owned record, the input the record properties take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    /// See [`RecordRef::version`].
    pub version: MessageVersion,
    /// See [`RecordRef::queue_id`].
    pub queue_id: i32,
    /// See [`RecordRef::flag`].
    pub flag: i32,
    /// See [`RecordRef::queue_offset`].
    pub queue_offset: i64,
    /// See [`RecordRef::physical_offset`].
    pub physical_offset: i64,
    /// See [`RecordRef::sysflag`]; host bits may be wrong, the encoder fixes them.
    pub sysflag: i32,
    /// See [`RecordRef::born_timestamp`].
    pub born_timestamp: i64,
    /// See [`RecordRef::born_host`].
    pub born_host: SocketAddr,
    /// See [`RecordRef::store_timestamp`].
    pub store_timestamp: i64,
    /// See [`RecordRef::store_host`].
    pub store_host: SocketAddr,
    /// See [`RecordRef::reconsume_times`].
    pub reconsume_times: i32,
    /// See [`RecordRef::prepared_transaction_offset`].
    pub prepared_transaction_offset: i64,
    /// See [`RecordRef::body`].
    pub body: Vec<u8>,
    /// See [`RecordRef::topic`].
    pub topic: String,
    /// See [`RecordRef::properties`].
    pub properties: Vec<u8>,
}

impl OwnedRecord {
    /// The borrowed form, with `body_crc` 0 (the encoder computes it).
    #[must_use]
    pub fn as_record(&self) -> RecordRef<'_> {
        RecordRef {
            version: self.version,
            body_crc: 0,
            queue_id: self.queue_id,
            flag: self.flag,
            queue_offset: self.queue_offset,
            physical_offset: self.physical_offset,
            sysflag: self.sysflag,
            born_timestamp: self.born_timestamp,
            born_host: self.born_host,
            store_timestamp: self.store_timestamp,
            store_host: self.store_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: &self.body,
            topic: &self.topic,
            properties: &self.properties,
        }
    }
}

/// IPv4 or IPv6 socket addresses, any port.
pub fn arb_socket_addr() -> impl Strategy<Value = SocketAddr> {
    let v4 = any::<[u8; 4]>().prop_map(|octets| IpAddr::V4(Ipv4Addr::from(octets)));
    let v6 = any::<[u8; 16]>().prop_map(|octets| IpAddr::V6(Ipv6Addr::from(octets)));
    (prop_oneof![v4, v6], any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
}

/// Topics that fit `version`: mixed ASCII and multi-byte text, up to the version's limit.
pub fn arb_topic(version: MessageVersion) -> impl Strategy<Value = String> {
    let max_chars = match version {
        MessageVersion::V1 => 60,
        MessageVersion::V2 => 400,
    };
    let max_len = version.topic_max_len();
    vec(prop_oneof![4 => proptest::char::range('!', '~'), 1 => any::<char>()], 0..max_chars)
        .prop_map(String::from_iter)
        .prop_filter("topic fits the version", move |topic| topic.len() <= max_len)
}

/// Property maps that survive an encode/parse round trip: non-empty names without
/// `0x01`/`0x02`, non-empty values without `0x02`.
pub fn arb_properties() -> impl Strategy<Value = Properties> {
    let name = "[A-Za-z0-9_#.é]{1,12}";
    let value = "[ -~\u{1}é消]{1,24}";
    btree_map(name, value, 0..8)
}

/// Stored properties fields: encoded maps, or arbitrary bytes (the record codec treats the
/// field as opaque).
pub fn arb_properties_field() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        arb_properties().prop_map(|props| properties::encode_properties(&props)),
        vec(any::<u8>(), 0..256),
    ]
}

/// Records of both versions with random hosts, flags, bodies, topics and properties.
pub fn arb_record() -> impl Strategy<Value = OwnedRecord> {
    prop_oneof![Just(MessageVersion::V1), Just(MessageVersion::V2)]
        .prop_flat_map(|version| {
            let numbers = (
                any::<i32>(),
                any::<i32>(),
                any::<i64>(),
                any::<i64>(),
                any::<i32>(),
                any::<i64>(),
                any::<i64>(),
                any::<i32>(),
                any::<i64>(),
            );
            let parts = (
                arb_socket_addr(),
                arb_socket_addr(),
                vec(any::<u8>(), 0..512),
                arb_topic(version),
                arb_properties_field(),
            );
            (Just(version), numbers, parts)
        })
        .prop_map(|(version, numbers, parts)| {
            let (
                queue_id,
                flag,
                queue_offset,
                physical_offset,
                sysflag,
                born,
                stored,
                reconsume,
                prepared,
            ) = numbers;
            let (born_host, store_host, body, topic, properties) = parts;
            OwnedRecord {
                version,
                queue_id,
                flag,
                queue_offset,
                physical_offset,
                sysflag,
                born_timestamp: born,
                born_host,
                store_timestamp: stored,
                store_host,
                reconsume_times: reconsume,
                prepared_transaction_offset: prepared,
                body,
                topic,
                properties,
            }
        })
}

/// Batch items as `(flag, body, properties)`.
pub fn arb_batch_items() -> impl Strategy<Value = Vec<(i32, Vec<u8>, Vec<u8>)>> {
    vec((any::<i32>(), vec(any::<u8>(), 0..128), arb_properties_field()), 0..6)
}

/// UNIQ_KEY parts with IPv4 or IPv6 addresses.
pub fn arb_uniq_key() -> impl Strategy<Value = UniqKey> {
    (arb_socket_addr(), any::<u16>(), any::<i32>(), any::<i32>(), any::<u16>()).prop_map(
        |(addr, pid, class_loader_hash, time, counter)| UniqKey {
            ip: addr.ip(),
            pid,
            class_loader_hash,
            time_since_month_start_ms: time,
            counter,
        },
    )
}

/// Encoding then decoding gives every field back, `TOTALSIZE` equals `encoded_len`, the
/// CRC is the body's, and decoding ignores bytes before and after the record.
pub fn record_round_trip(owned: &OwnedRecord) -> Result<(), TestCaseError> {
    let rec = owned.as_record();
    let mut out = vec![0xAB; 3];
    let len = record::encode_record(&rec, &mut out).map_err(fail)?;
    prop_assert_eq!(len, rec.encoded_len());
    prop_assert_eq!(out.len(), 3 + len);
    out.extend_from_slice(&[0xCD; 5]);

    let expected = RecordRef {
        body_crc: rocketmq_crc32(&owned.body),
        sysflag: rec.effective_sysflag(),
        ..rec
    };
    let checked = record::check_record_at(&out, 3, true).map_err(fail)?;
    prop_assert_eq!(checked, RecordCheck::Message(expected));
    let record_bytes = out.get(3..).unwrap_or_default();
    let (decoded, consumed) = record::decode_record(record_bytes).map_err(fail)?;
    prop_assert_eq!(decoded, expected);
    prop_assert_eq!(consumed, len);
    prop_assert_eq!(decoded.encoded_len(), len);
    let declared = i32::try_from(len).map_err(fail)?;
    prop_assert_eq!(out.get(3..7), Some(&declared.to_be_bytes()[..]));
    Ok(())
}

/// Every strict prefix of an encoded record fails with [`Error::Incomplete`].
pub fn record_prefixes_fail(owned: &OwnedRecord) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    record::encode_record(&owned.as_record(), &mut out).map_err(fail)?;
    for end in 0..out.len() {
        let prefix = out.get(..end).unwrap_or_default();
        let checked = record::check_record(prefix, true);
        prop_assert!(
            matches!(checked, Err(Error::Incomplete { .. })),
            "prefix {}: {:?}",
            end,
            checked
        );
        prop_assert!(record::decode_record(prefix).is_err());
        prop_assert!(record::decode_messages(prefix, true).is_err() || end == 0);
    }
    Ok(())
}

/// A BLANK record decodes to its size, and its strict prefixes are incomplete.
pub fn blank_round_trip(remaining: i32) -> Result<(), TestCaseError> {
    let blank = record::encode_blank(remaining);
    let checked = record::check_record(&blank, true);
    match usize::try_from(remaining) {
        Ok(size) if size >= record::BLANK_RECORD_SIZE => {
            prop_assert_eq!(checked, Ok(RecordCheck::Blank { size }));
        }
        _ => prop_assert!(matches!(checked, Err(Error::InvalidField { .. })), "{:?}", checked),
    }
    prop_assert!(record::decode_record(&blank).is_err());
    for end in 0..blank.len() {
        let prefix = blank.get(..end).unwrap_or_default();
        let checked = record::check_record(prefix, false);
        prop_assert!(
            matches!(checked, Err(Error::Incomplete { .. })),
            "prefix {}: {:?}",
            end,
            checked
        );
    }
    Ok(())
}

/// Arbitrary bytes never panic the record decoders; whatever `check_record` accepts with the
/// CRC checked re-encodes to exactly the bytes it came from.
pub fn arbitrary_record_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(RecordCheck::Message(rec)) = record::check_record(bytes, true) {
        let mut out = Vec::new();
        let len = record::encode_record(&rec, &mut out).map_err(fail)?;
        prop_assert_eq!(Some(out.as_slice()), bytes.get(..len));
    }
    if let Ok((rec, consumed)) = record::decode_record(bytes) {
        prop_assert_eq!(consumed, rec.encoded_len());
        prop_assert!(consumed <= bytes.len());
    }
    let _ = record::decode_messages(bytes, true);
    for item in record::iter_records(bytes) {
        if item.is_err() {
            break;
        }
    }
    Ok(())
}

/// A valid record with one byte overwritten never panics the decoders.
pub fn mutated_record(owned: &OwnedRecord, index: usize, value: u8) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    record::encode_record(&owned.as_record(), &mut out).map_err(fail)?;
    if out.is_empty() {
        return Ok(());
    }
    let index = index % out.len();
    if let Some(byte) = out.get_mut(index) {
        *byte = value;
    }
    arbitrary_record_bytes(&out)
}

/// A property map survives encode then parse, and `find_property` agrees with the map.
pub fn properties_round_trip(props: &Properties) -> Result<(), TestCaseError> {
    let encoded = properties::encode_properties(props);
    prop_assert_eq!(encoded.len(), properties::encoded_properties_len(props));
    prop_assert_eq!(&properties::parse_properties(&encoded), props);
    for (name, value) in props {
        prop_assert_eq!(properties::find_property(&encoded, name), Some(value.as_bytes()));
    }
    Ok(())
}

/// On any bytes, parsing never fails, every kept pair is non-empty, and for valid UTF-8 the
/// parsed map and `find_property` agree.
pub fn arbitrary_properties_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    let parsed = properties::parse_properties(bytes);
    for (name, value) in properties::iter_properties(bytes) {
        prop_assert!(!name.is_empty() && !value.is_empty());
        prop_assert!(!name.contains(&properties::NAME_VALUE_SEPARATOR));
    }
    if std::str::from_utf8(bytes).is_ok() {
        for (name, value) in &parsed {
            prop_assert_eq!(properties::find_property(bytes, name), Some(value.as_bytes()));
        }
    }
    Ok(())
}

/// A batch body decodes back to its items, and every strict prefix that does not end on an
/// item boundary is incomplete.
pub fn batch_round_trip(items: &[(i32, Vec<u8>, Vec<u8>)]) -> Result<(), TestCaseError> {
    let mut body = Vec::new();
    let mut boundaries = vec![0];
    for (flag, item_body, props) in items {
        let written = batch::encode_batch_item(*flag, item_body, props, &mut body).map_err(fail)?;
        prop_assert_eq!(written, batch::batch_item_len(item_body.len(), props.len()));
        boundaries.push(body.len());
    }
    let decoded = batch::decode_batch(&body).map_err(fail)?;
    let expected: Vec<BatchItem<'_>> = items
        .iter()
        .map(|(flag, item_body, props)| BatchItem {
            flag: *flag,
            body: item_body,
            properties: props,
        })
        .collect();
    prop_assert_eq!(decoded, expected);
    for end in 0..body.len() {
        let prefix = body.get(..end).unwrap_or_default();
        let result = batch::decode_batch(prefix);
        if boundaries.contains(&end) {
            prop_assert!(result.is_ok());
        } else {
            prop_assert!(
                matches!(result, Err(Error::Incomplete { .. })),
                "prefix {}: {:?}",
                end,
                result
            );
        }
    }
    Ok(())
}

/// Arbitrary bytes never panic the batch decoder; accepted items re-encode to the input
/// except for the ignored TOTALSIZE, MAGICCODE and BODYCRC words.
pub fn arbitrary_batch_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(items) = batch::decode_batch(bytes) else {
        return Ok(());
    };
    let mut out = Vec::new();
    for item in &items {
        batch::encode_batch_item(item.flag, item.body, item.properties, &mut out).map_err(fail)?;
    }
    prop_assert_eq!(out.len(), bytes.len());
    let mut pos = 0;
    for item in &items {
        let skip = pos + batch::FLAG_POS;
        let end = pos + item.encoded_len();
        prop_assert_eq!(out.get(skip..end), bytes.get(skip..end));
        pos = end;
    }
    Ok(())
}

/// Offset msg ids round trip, have the documented length, and their strict prefixes fail
/// (but for the IPv4-sized prefix of an IPv6 id).
pub fn offset_msg_id_round_trip(addr: SocketAddr, offset: i64) -> Result<(), TestCaseError> {
    let id = msg_id::encode_offset_msg_id(addr, offset);
    let expected_len = if addr.is_ipv4() { 32 } else { 56 };
    prop_assert_eq!(id.len(), expected_len);
    prop_assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
    prop_assert_eq!(msg_id::decode_offset_msg_id(&id), Ok((addr, offset)));
    prop_assert_eq!(msg_id::decode_offset_msg_id(&id.to_ascii_lowercase()), Ok((addr, offset)));
    for end in 0..id.len() {
        // The first 32 characters of an IPv6 id have the length of an IPv4 id; they decode
        // whenever the address bytes 4..8 happen to form a valid port.
        if end == OFFSET_MSG_ID_V4_LEN {
            continue;
        }
        let decoded = msg_id::decode_offset_msg_id(id.get(..end).unwrap_or_default());
        prop_assert!(decoded.is_err(), "prefix {}: {:?}", end, decoded);
    }
    Ok(())
}

/// UNIQ_KEYs round trip through their hex form.
pub fn uniq_key_round_trip(key: &UniqKey) -> Result<(), TestCaseError> {
    let id = key.encode();
    prop_assert_eq!(id.len(), if key.ip.is_ipv4() { 32 } else { 56 });
    prop_assert_eq!(UniqKey::parse(&id), Ok(*key));
    Ok(())
}

/// Arbitrary strings never panic the id decoders; accepted ids re-encode to the uppercased
/// input.
pub fn arbitrary_msg_id(id: &str) -> Result<(), TestCaseError> {
    if let Ok((addr, offset)) = msg_id::decode_offset_msg_id(id) {
        prop_assert_eq!(msg_id::encode_offset_msg_id(addr, offset), id.to_ascii_uppercase());
    }
    if let Ok(key) = UniqKey::parse(id) {
        prop_assert_eq!(key.encode(), id.to_ascii_uppercase());
    }
    Ok(())
}

fn fail(err: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(err.to_string())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    // Default config: 256 cases, or PROPTEST_CASES from the environment.
    proptest! {
        #[test]
        fn prop_record_round_trip(rec in arb_record()) {
            record_round_trip(&rec)?;
        }

        #[test]
        fn prop_record_prefixes_fail(rec in arb_record()) {
            record_prefixes_fail(&rec)?;
        }

        #[test]
        fn prop_blank_round_trip(remaining in any::<i32>()) {
            blank_round_trip(remaining)?;
        }

        #[test]
        fn prop_arbitrary_record_bytes(bytes in vec(any::<u8>(), 0..512)) {
            arbitrary_record_bytes(&bytes)?;
        }

        #[test]
        fn prop_arbitrary_record_bytes_with_valid_head(
            total in 0_i32..400,
            magic in prop_oneof![Just(record::MAGIC_V1), Just(record::MAGIC_V2), Just(record::BLANK_MAGIC)],
            rest in vec(any::<u8>(), 0..400),
        ) {
            let mut bytes = total.to_be_bytes().to_vec();
            bytes.extend_from_slice(&magic.to_be_bytes());
            bytes.extend_from_slice(&rest);
            arbitrary_record_bytes(&bytes)?;
        }

        #[test]
        fn prop_mutated_record(rec in arb_record(), index in any::<usize>(), value in any::<u8>()) {
            mutated_record(&rec, index, value)?;
        }

        #[test]
        fn prop_properties_round_trip(props in arb_properties()) {
            properties_round_trip(&props)?;
        }

        #[test]
        fn prop_arbitrary_properties_bytes(
            bytes in vec(prop_oneof![Just(1_u8), Just(2_u8), Just(b'a'), any::<u8>()], 0..64),
        ) {
            arbitrary_properties_bytes(&bytes)?;
        }

        #[test]
        fn prop_batch_round_trip(items in arb_batch_items()) {
            batch_round_trip(&items)?;
        }

        #[test]
        fn prop_arbitrary_batch_bytes(bytes in vec(any::<u8>(), 0..256)) {
            arbitrary_batch_bytes(&bytes)?;
        }

        #[test]
        fn prop_offset_msg_id_round_trip(addr in arb_socket_addr(), offset in any::<i64>()) {
            offset_msg_id_round_trip(addr, offset)?;
        }

        #[test]
        fn prop_uniq_key_round_trip(key in arb_uniq_key()) {
            uniq_key_round_trip(&key)?;
        }

        #[test]
        fn prop_arbitrary_msg_id(id in "[0-9A-Fa-fG]{0,60}|\\PC{0,60}") {
            arbitrary_msg_id(&id)?;
        }
    }
}
