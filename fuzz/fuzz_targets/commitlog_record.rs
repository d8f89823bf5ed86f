//! Arbitrary bytes to the CommitLog record decoders (`check_record`, `decode_record`,
//! `iter_records`, `decode_messages*` with a 1 MiB inflate limit): `Ok` or `Err`, never a
//! panic. What `check_record` accepts re-encodes to the same bytes; decoded messages survive
//! encode → decode. The same bytes also build a record that must round-trip.
#![no_main]

use std::net::SocketAddr;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use ferromq_message::MessageExt;
use ferromq_message::properties::PROPERTIES_MAX_LEN;
use ferromq_message::record::{self, DecodeOptions, MessageVersion, TOPIC_MAX_LEN_V1};
use ferromq_message::testing::{self, OwnedRecord};
use libfuzzer_sys::fuzz_target;

/// Inflate limit: a zlib bomb in the input stays cheap, and the limit must hold.
const INFLATE_LIMIT_BYTES: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Err(err) = testing::arbitrary_record_bytes(data) {
        panic!("{err}");
    }
    for check_crc in [false, true] {
        let options = DecodeOptions {
            decompress: true,
            max_decompressed_body_len: INFLATE_LIMIT_BYTES,
            check_crc,
        };
        let copied = record::decode_messages_with_options(data, &options);
        let shared = record::decode_messages_shared(&Bytes::copy_from_slice(data), &options);
        assert_eq!(copied, shared);
        for message in copied.iter().flatten() {
            assert!(message.body().len() <= INFLATE_LIMIT_BYTES, "inflated past the limit");
        }
    }
    if let Ok(messages) = record::decode_messages(data, false) {
        messages.iter().for_each(message_round_trips);
    }
    if let Ok(built) = ArbitraryRecord::arbitrary(&mut Unstructured::new(data))
        && let Some(owned) = built.owned()
    {
        for result in [testing::record_round_trip(&owned), testing::record_prefixes_fail(&owned)] {
            if let Err(err) = result {
                panic!("{err}");
            }
        }
    }
});

/// Re-encoding a decoded message and decoding it again gives the same message, except for
/// what encoding canonicalises: the record version follows the topic, properties are
/// re-encoded from the parsed map (so `store_size` may change) and the CRC is recomputed.
fn message_round_trips(message: &MessageExt) {
    let mut encoded = Vec::new();
    if let Err(err) = message.encode_record(&mut encoded) {
        // Two refusals are expected: a topic of at most 127 UTF-16 units gets a v1 record,
        // which holds at most 127 bytes (documented at `MessageVersion::for_topic`), and
        // properties whose invalid UTF-8 became U+FFFD may outgrow their i16 length.
        let topic = message.topic();
        let long_v1_topic = MessageVersion::for_topic(topic) == MessageVersion::V1
            && topic.len() > TOPIC_MAX_LEN_V1;
        let long_properties = message.message.encode_properties().len() > PROPERTIES_MAX_LEN;
        assert!(long_v1_topic || long_properties, "decoded message does not re-encode: {err}");
        return;
    }
    let again = match record::decode_messages(&encoded, false).as_deref() {
        Ok([again]) => again.clone(),
        other => panic!("re-encoded message decodes as {other:?}"),
    };
    let canonical = |m: &MessageExt| MessageExt { store_size: 0, body_crc: 0, ..m.clone() };
    assert_eq!(canonical(&again), canonical(message));
    let mut twice = Vec::new();
    assert!(again.encode_record(&mut twice).is_ok());
    assert_eq!(twice, encoded, "encoding is not stable");
}

/// The address without IPv6 flow info and scope id, which a record does not carry.
fn plain(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip(), addr.port())
}

/// The fields of [`OwnedRecord`], from fuzz bytes.
#[derive(Debug, Arbitrary)]
struct ArbitraryRecord {
    v2: bool,
    queue_id: i32,
    flag: i32,
    queue_offset: i64,
    physical_offset: i64,
    sysflag: i32,
    born_timestamp: i64,
    born_host: SocketAddr,
    store_timestamp: i64,
    store_host: SocketAddr,
    reconsume_times: i32,
    prepared_transaction_offset: i64,
    body: Vec<u8>,
    topic: String,
    properties: Vec<u8>,
}

impl ArbitraryRecord {
    /// The record, if its topic and properties fit their length fields.
    fn owned(self) -> Option<OwnedRecord> {
        let version = if self.v2 { MessageVersion::V2 } else { MessageVersion::V1 };
        if self.topic.len() > version.topic_max_len() || self.properties.len() > PROPERTIES_MAX_LEN
        {
            return None;
        }
        Some(OwnedRecord {
            version,
            queue_id: self.queue_id,
            flag: self.flag,
            queue_offset: self.queue_offset,
            physical_offset: self.physical_offset,
            sysflag: self.sysflag,
            born_timestamp: self.born_timestamp,
            born_host: plain(self.born_host),
            store_timestamp: self.store_timestamp,
            store_host: plain(self.store_host),
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: self.body,
            topic: self.topic,
            properties: self.properties,
        })
    }
}
