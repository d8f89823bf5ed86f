//! storage.md §22 test vectors as golden bytes, both directions, plus a batch body captured
//! from a real client (rocketmq-client-rust 1.0.0, `/work/shared/wire-samples`).

use std::net::SocketAddr;

use ferromq_message::hash::{index_key_hash, java_string_hash, rocketmq_crc32, tags_code};
use ferromq_message::msg_id::{UniqKey, decode_offset_msg_id, encode_offset_msg_id};
use ferromq_message::properties::{find_property, parse_properties};
use ferromq_message::record::{
    self, MessageVersion, RecordCheck, RecordRef, check_record, decode_record, encode_record,
};
use ferromq_message::{Error, batch, sysflag};

/// Bytes from hex text; whitespace is skipped.
#[expect(clippy::unwrap_used, reason = "test helper: bad hex in a fixture fails the test")]
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

#[expect(clippy::unwrap_used, reason = "test helper: a bad address literal fails the test")]
fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

const VECTOR_A: &str = "
    00000073 daa320a7 77d18982 00000001 00000000 0000000000000005
    00000000000004d2 00000000 0000018bcfe56800 c0a8000a 0000c350
    0000018bcfe5687b c0a80002 00002a9f 00000000 0000000000000000
    00000005 48656c6c6f 09 546f70696354657374 000a 54414753 01 54616741 02";

const VECTOR_B: &str = "
    0000007f daa320a7 77d18982 00000001 00000000 0000000000000006
    0000000000000545 00000010 0000018bcfe56800 fe800000000000000000000000000001 0000c350
    0000018bcfe5687c c0a80002 00002a9f 00000000 0000000000000000
    00000005 48656c6c6f 09 546f70696354657374 000a 54414753 01 54616741 02";

fn vector_c_bytes() -> Vec<u8> {
    let mut bytes = hex("
        000000f1 daa320ab 00000000 00000000 00000007 0000000000000000
        0000000000001388 00000020 0000018bcfe56800 c0a8000a 0000c350
        0000018bcfe5687d 20010db8000000000000000000000002 00002a9f 00000003 0000000000000000
        00000000 0089 2552455452592567");
    bytes.extend(std::iter::repeat_n(b'g', 129));
    bytes.extend_from_slice(&[0, 0]);
    bytes
}

fn vector_a() -> RecordRef<'static> {
    RecordRef {
        version: MessageVersion::V1,
        body_crc: 2_010_220_930,
        queue_id: 1,
        flag: 0,
        queue_offset: 5,
        physical_offset: 1234,
        sysflag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: addr("192.168.0.10:50000"),
        store_timestamp: 1_700_000_000_123,
        store_host: addr("192.168.0.2:10911"),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: b"Hello",
        topic: "TopicTest",
        properties: b"TAGS\x01TagA\x02",
    }
}

fn vector_b() -> RecordRef<'static> {
    RecordRef {
        queue_offset: 6,
        physical_offset: 1349,
        sysflag: sysflag::BORNHOST_V6_FLAG,
        born_host: addr("[fe80::1]:50000"),
        store_timestamp: 1_700_000_000_124,
        ..vector_a()
    }
}

fn vector_c(topic: &str) -> RecordRef<'_> {
    RecordRef {
        version: MessageVersion::V2,
        body_crc: 0,
        queue_id: 0,
        flag: 7,
        queue_offset: 0,
        physical_offset: 5000,
        sysflag: sysflag::STOREHOST_V6_FLAG,
        born_timestamp: 1_700_000_000_000,
        born_host: addr("192.168.0.10:50000"),
        store_timestamp: 1_700_000_000_125,
        store_host: addr("[2001:db8::2]:10911"),
        reconsume_times: 3,
        prepared_transaction_offset: 0,
        body: b"",
        topic,
        properties: b"",
    }
}

#[expect(clippy::unwrap_used, reason = "test helper: any decode error fails the test")]
fn assert_golden(rec: &RecordRef<'_>, golden: &[u8], msg_id: &str) {
    let mut out = Vec::new();
    let len = encode_record(rec, &mut out).unwrap();
    assert_eq!(out, golden, "encoding differs from the golden bytes");
    assert_eq!(len, golden.len());
    assert_eq!(rec.encoded_len(), golden.len());

    let RecordCheck::Message(checked) = check_record(golden, true).unwrap() else {
        panic!("golden bytes decode as a blank record");
    };
    assert_eq!(&checked, rec);
    let (decoded, consumed) = decode_record(golden).unwrap();
    assert_eq!(&decoded, rec);
    assert_eq!(consumed, golden.len());
    assert_eq!(decoded.offset_msg_id(), msg_id);

    let (host, offset) = decode_offset_msg_id(msg_id).unwrap();
    assert_eq!(host, rec.store_host);
    assert_eq!(offset, rec.physical_offset);
    assert_eq!(encode_offset_msg_id(host, offset), msg_id);
}

#[test]
fn vector_a_v1_ipv4_encodes_and_decodes() {
    let golden = hex(VECTOR_A);
    assert_eq!(golden.len(), 115);
    assert_golden(&vector_a(), &golden, "C0A8000200002A9F00000000000004D2");
    assert_eq!(
        record::record_len(MessageVersion::V1, 0, 5, 9, 10),
        115,
        "91 + B + Tp + P for v1 with IPv4 hosts"
    );
}

#[test]
fn vector_b_ipv6_born_host_encodes_and_decodes() {
    let golden = hex(VECTOR_B);
    assert_eq!(golden.len(), 127);
    assert_golden(&vector_b(), &golden, "C0A8000200002A9F0000000000000545");
    // The encoder derives the V6 bit from the address even when the caller forgets it.
    let mut out = Vec::new();
    encode_record(&RecordRef { sysflag: 0, ..vector_b() }, &mut out).unwrap();
    assert_eq!(out, golden);
}

#[test]
fn vector_c_v2_ipv6_store_host_encodes_and_decodes() {
    let topic = format!("%RETRY%{}", "g".repeat(130));
    assert_eq!(topic.len(), 137);
    assert_eq!(MessageVersion::for_topic(&topic), MessageVersion::V2);
    let golden = vector_c_bytes();
    assert_eq!(golden.len(), 241);
    assert_golden(
        &vector_c(&topic),
        &golden,
        "20010DB800000000000000000000000200002A9F0000000000001388",
    );
}

#[test]
fn vector_c_with_v1_magic_fails_to_decode() {
    // Written the v1 way (what Java's encoder would do with `(byte) 137`): one length byte
    // 0x89, which v1 readers take as -119 (Java: NegativeArraySizeException: -119).
    let mut bytes = vector_c_bytes();
    bytes[0..4].copy_from_slice(&240_i32.to_be_bytes());
    bytes[4..8].copy_from_slice(&record::MAGIC_V1.to_be_bytes());
    let topic_len_pos = record::body_len_pos(sysflag::STOREHOST_V6_FLAG) + 4;
    assert_eq!(&bytes[topic_len_pos..topic_len_pos + 2], &[0x00, 0x89]);
    bytes.remove(topic_len_pos);
    let err = check_record(&bytes, false).unwrap_err();
    assert!(matches!(err, Error::InvalidField { field: "TOPICLENGTH", found: -119, .. }), "{err}");
    assert_eq!(err.to_string(), "record at offset 0 has TOPICLENGTH -119, expected a length >= 0");
    assert!(decode_record(&bytes).is_err());

    // The v2 bytes unchanged but for the magic: v1 reads length 0x00, then 0x8925 as a
    // negative properties length.
    let mut bytes = vector_c_bytes();
    bytes[4..8].copy_from_slice(&record::MAGIC_V1.to_be_bytes());
    let err = check_record(&bytes, false).unwrap_err();
    assert!(matches!(err, Error::InvalidField { field: "PROPERTIESLENGTH", .. }), "{err}");

    // And the encoder refuses to write a v1 record with that topic at all.
    let topic = format!("%RETRY%{}", "g".repeat(130));
    let v1 = RecordRef { version: MessageVersion::V1, ..vector_c(&topic) };
    let mut out = Vec::new();
    let err = encode_record(&v1, &mut out).unwrap_err();
    assert_eq!(err, Error::TooLong { field: "TOPIC", len: 137, max: 127 });
    assert!(out.is_empty());
}

#[test]
fn vector_a_consume_queue_unit_and_index_entry() {
    let rec = vector_a();
    let props = parse_properties(rec.properties);
    let tags = props.get("TAGS").unwrap();
    assert_eq!(find_property(rec.properties, "TAGS"), Some(&b"TagA"[..]));
    assert_eq!(tags_code(tags), 2_598_919);

    let mut unit = Vec::new();
    unit.extend_from_slice(&rec.physical_offset.to_be_bytes());
    unit.extend_from_slice(&i32::try_from(rec.encoded_len()).unwrap().to_be_bytes());
    unit.extend_from_slice(&tags_code(tags).to_be_bytes());
    assert_eq!(unit, hex("00000000000004d2 00000073 000000000027a807"));

    let key = format!("{}#{}", rec.topic, "KEY1");
    assert_eq!(java_string_hash(&key), -1_656_969_516);
    let key_hash = index_key_hash(&key);
    assert_eq!(key_hash, 1_656_969_516);
    assert_eq!(key_hash % 5_000_000, 1_969_516);
    let mut entry = Vec::new();
    entry.extend_from_slice(&key_hash.to_be_bytes());
    entry.extend_from_slice(&rec.physical_offset.to_be_bytes());
    entry.extend_from_slice(&0_i32.to_be_bytes());
    entry.extend_from_slice(&0_i32.to_be_bytes());
    assert_eq!(entry, hex("62c3592c 00000000000004d2 00000000 00000000"));
}

#[test]
fn java_semantics_checks() {
    assert_eq!(rocketmq_crc32(b"Hello"), 2_010_220_930);
    assert_eq!(rocketmq_crc32(b""), 0);
    assert_eq!(java_string_hash("TagA"), 0x0027_A807);
}

#[test]
fn uniq_key_sample_parses() {
    let key = UniqKey::parse("C0A8000A109230946E096C8E658E0000").unwrap();
    assert_eq!(key.ip.to_string(), "192.168.0.10");
    assert_eq!(key.pid, 4242);
}

#[test]
fn properties_edge_case() {
    let parsed = parse_properties(b"A\x01B\x02\x01X\x02C\x01\x02DD\x01E");
    let pairs: Vec<(&str, &str)> = parsed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(pairs, [("A", "B"), ("DD", "E")]);
}

#[test]
fn blank_record_bytes() {
    let blank = record::encode_blank(1000);
    assert_eq!(blank.to_vec(), hex("000003e8 cbd43194"));
    assert_eq!(check_record(&blank, true), Ok(RecordCheck::Blank { size: 1000 }));
    assert_eq!(decode_record(&blank), Err(Error::UnexpectedBlank { offset: 0 }));
}

/// A SEND_BATCH_MESSAGE frame from rocketmq-client-rust 1.0.0: length prefix, header length
/// (serialize type 0 = JSON in the top byte), JSON header, then the batch body.
#[test]
fn real_client_batch_body_decodes() {
    let frame = include_bytes!("fixtures/rust-client-1.0.0-send-batch-320.bin");
    let frame_len = usize::try_from(i32::from_be_bytes(frame[0..4].try_into().unwrap())).unwrap();
    assert_eq!(frame_len, frame.len() - 4);
    let header_len =
        usize::try_from(i32::from_be_bytes(frame[4..8].try_into().unwrap()) & 0xFF_FFFF).unwrap();
    let body = &frame[8 + header_len..];
    assert_eq!(body.len(), 8853);

    let items = batch::decode_batch(body).unwrap();
    assert_eq!(items.len(), 10);
    let mut total = 0;
    for (index, item) in items.iter().enumerate() {
        total += item.encoded_len();
        let props = parse_properties(item.properties);
        assert_eq!(props.get("kit_idx").map(String::as_str), Some(index.to_string().as_str()));
        assert_eq!(props.get("TAGS"), Some(&format!("batch_tag_{index}")));
        assert_eq!(props.get("kit_note").map(String::as_str), Some("ünïcødé ✓"));
        let uniq = props.get("UNIQ_KEY").unwrap();
        assert!(UniqKey::parse(uniq).is_ok(), "{uniq}");
        match index {
            3 => assert_eq!(item.body.len(), 259, "a binary body"),
            7 => {
                assert_eq!(item.body.len(), 6000);
                assert!(item.body.starts_with(b"batch:7:"));
            }
            _ => assert!(item.body.starts_with(format!("{{\"i\":{index},").as_bytes())),
        }
        assert_eq!(item.flag, 0);
        // Re-encoding an item reproduces its bytes, TOTALSIZE included.
        let mut again = Vec::new();
        batch::encode_batch_item(item.flag, item.body, item.properties, &mut again).unwrap();
        assert_eq!(again.len(), item.encoded_len());
    }
    assert_eq!(total, body.len());
    let mut again = Vec::new();
    for item in &items {
        batch::encode_batch_item(item.flag, item.body, item.properties, &mut again).unwrap();
    }
    assert_eq!(again, body);
}
