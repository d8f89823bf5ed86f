use std::net::SocketAddr;

use super::*;
use crate::properties::Properties;
use crate::sysflag::{COMPRESSED_FLAG, COMPRESSION_LZ4_TYPE, COMPRESSION_ZLIB_TYPE};

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn sample<'a>(body: &'a [u8], topic: &'a str, properties: &'a [u8]) -> RecordRef<'a> {
    RecordRef {
        version: MessageVersion::for_topic(topic),
        body_crc: 0,
        queue_id: 3,
        flag: 9,
        queue_offset: 42,
        physical_offset: 4096,
        sysflag: 0,
        born_timestamp: 1,
        born_host: addr("10.0.0.1:1234"),
        store_timestamp: 2,
        store_host: addr("10.0.0.2:10911"),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        topic,
        properties,
    }
}

fn encode(rec: &RecordRef<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_record(rec, &mut out).unwrap();
    out
}

#[test]
fn positions_follow_the_layout() {
    assert_eq!(
        [MAGIC_POS, BODY_CRC_POS, QUEUE_ID_POS, FLAG_POS, QUEUE_OFFSET_POS],
        [4, 8, 12, 16, 20]
    );
    assert_eq!([PHYSICAL_OFFSET_POS, SYSFLAG_POS, BORN_TIMESTAMP_POS], [28, 36, 40]);
    assert_eq!(store_timestamp_pos(0), 56);
    assert_eq!(store_timestamp_pos(sysflag::BORNHOST_V6_FLAG), 68);
    assert_eq!(reconsume_times_pos(0), 72);
    assert_eq!(prepared_transaction_offset_pos(0), 76);
    assert_eq!(body_len_pos(0), 84);
    assert_eq!(body_len_pos(sysflag::HOST_V6_FLAGS), 108);
    assert_eq!(host_len(false), 8);
    assert_eq!(host_len(true), 20);
}

#[test]
fn record_len_matches_calmsglength() {
    assert_eq!(record_len(MessageVersion::V1, 0, 0, 0, 0), 91);
    assert_eq!(record_len(MessageVersion::V2, 0, 0, 0, 0), 92);
    assert_eq!(record_len(MessageVersion::V1, sysflag::HOST_V6_FLAGS, 0, 0, 0), 115);
    assert_eq!(record_len(MessageVersion::V1, 0, usize::MAX, 1, 1), usize::MAX);
}

#[test]
fn version_for_topic_counts_utf16_units() {
    assert_eq!(MessageVersion::for_topic(&"a".repeat(127)), MessageVersion::V1);
    assert_eq!(MessageVersion::for_topic(&"a".repeat(128)), MessageVersion::V2);
    // 100 chars, 200 bytes: Java sees 100 chars and writes v1, which cannot hold it.
    let wide = "é".repeat(100);
    assert_eq!(MessageVersion::for_topic(&wide), MessageVersion::V1);
    let err = encode_record(&sample(b"", &wide, b""), &mut Vec::new()).unwrap_err();
    assert_eq!(err, Error::TooLong { field: "TOPIC", len: 200, max: 127 });
    assert_eq!(MessageVersion::from_magic(MAGIC_V2), Some(MessageVersion::V2));
    assert_eq!(MessageVersion::from_magic(BLANK_MAGIC), None);
}

#[test]
fn encode_appends_and_ignores_the_given_crc() {
    let rec = RecordRef { body_crc: 12345, ..sample(b"Hello", "T", b"") };
    let mut out = vec![1, 2, 3];
    let len = encode_record(&rec, &mut out).unwrap();
    assert_eq!(out.len(), 3 + len);
    assert_eq!(out[3 + BODY_CRC_POS..3 + BODY_CRC_POS + 4], 2_010_220_930_i32.to_be_bytes());
    let RecordCheck::Message(back) = check_record_at(&out, 3, true).unwrap() else {
        panic!("blank");
    };
    assert_eq!(back.body_crc, 2_010_220_930);
}

#[test]
fn encode_refuses_oversized_fields_without_writing() {
    let props = vec![b'p'; PROPERTIES_MAX_LEN + 1];
    let mut out = vec![7];
    let err = encode_record(&sample(b"", "T", &props), &mut out).unwrap_err();
    assert_eq!(err, Error::TooLong { field: "PROPERTIES", len: 32768, max: 32767 });
    assert_eq!(err.to_string(), "PROPERTIES is 32768 bytes, expected at most 32767");
    let long_topic = "t".repeat(TOPIC_MAX_LEN_V2 + 1);
    let rec = RecordRef { version: MessageVersion::V2, ..sample(b"", &long_topic, b"") };
    assert!(matches!(encode_record(&rec, &mut out), Err(Error::TooLong { field: "TOPIC", .. })));
    assert_eq!(out, [7]);
    // The limits themselves are fine.
    let props = vec![b'p'; PROPERTIES_MAX_LEN];
    let topic = "t".repeat(TOPIC_MAX_LEN_V2);
    let rec = RecordRef { version: MessageVersion::V2, ..sample(b"", &topic, &props) };
    assert_eq!(encode_record(&rec, &mut out).unwrap(), rec.encoded_len());
}

#[test]
fn truncated_body_error_names_field_and_counts() {
    let out = encode(&sample(b"Hello", "T", b""));
    // Lie about the length so that only 3 of the 5 body bytes fit the declared size.
    let mut short = out[..body_len_pos(0) + 4 + 3].to_vec();
    let declared = i32::try_from(short.len()).unwrap();
    short[..4].copy_from_slice(&declared.to_be_bytes());
    let err = check_record(&short, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "record at offset 0 overruns its declared size 91 in field BODY: needs 5 bytes, 3 left"
    );
    let err = check_record(&out[..50], false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "record at offset 0 is truncated in field TOTALSIZE: needs 97 bytes, 50 available"
    );
    assert!(err.is_incomplete());
}

#[test]
fn size_mismatch_when_fields_end_early() {
    let mut out = encode(&sample(b"Hello", "T", b""));
    out.extend_from_slice(&[0; 4]);
    let declared = i32::try_from(out.len()).unwrap();
    out[..4].copy_from_slice(&declared.to_be_bytes());
    assert_eq!(
        check_record(&out, false),
        Err(Error::SizeMismatch { offset: 0, declared: 101, computed: 97 })
    );
}

#[test]
fn crc_mismatch_only_when_checked() {
    let mut out = encode(&sample(b"Hello", "T", b""));
    let last_body_byte = body_len_pos(0) + 4 + 4;
    out[last_body_byte] ^= 0xFF;
    assert!(matches!(check_record(&out, false), Ok(RecordCheck::Message(_))));
    let err = check_record(&out, true).unwrap_err();
    assert!(matches!(err, Error::CrcMismatch { offset: 0, stored: 2_010_220_930, .. }), "{err}");
}

#[test]
fn bad_magic_negative_size_and_bad_port() {
    let mut out = encode(&sample(b"", "T", b""));
    let good = out.clone();
    out[MAGIC_POS..MAGIC_POS + 4].copy_from_slice(&0x1234_5678_i32.to_be_bytes());
    let err = check_record(&out, false).unwrap_err();
    assert_eq!(err, Error::BadMagic { offset: 0, found: 0x1234_5678 });
    assert_eq!(
        err.to_string(),
        "record at offset 0 has magic code 0x12345678, expected 0xdaa320a7 (v1), 0xdaa320ab (v2) or 0xcbd43194 (blank)"
    );
    // An all-zero tail (pre-allocated file space) is a bad magic, not a blank.
    assert!(matches!(check_record(&[0; 16], false), Err(Error::BadMagic { found: 0, .. })));

    let mut out = good.clone();
    out[..4].copy_from_slice(&(-5_i32).to_be_bytes());
    let err = check_record(&out, false).unwrap_err();
    assert!(matches!(err, Error::InvalidField { field: "TOTALSIZE", found: -5, .. }), "{err}");

    let mut out = good;
    let port_pos = BORN_HOST_POS + 4;
    out[port_pos..port_pos + 4].copy_from_slice(&70_000_i32.to_be_bytes());
    let err = check_record(&out, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "record at offset 0 has BORNHOST 70000, expected a port in 0..=65535"
    );
}

#[test]
fn blank_needs_only_its_header_and_a_sane_size() {
    let blank = encode_blank(8);
    assert_eq!(check_record(&blank, true), Ok(RecordCheck::Blank { size: 8 }));
    let err = check_record(&encode_blank(7), true).unwrap_err();
    assert_eq!(err.to_string(), "blank record at offset 0 has TOTALSIZE 7, expected a size >= 8");
    assert!(check_record(&encode_blank(-1), true).is_err());
    let mut file = vec![0_u8; 24];
    file[16..].copy_from_slice(&encode_blank(1 << 30));
    assert_eq!(check_record_at(&file, 16, true), Ok(RecordCheck::Blank { size: 1 << 30 }));
}

#[test]
fn invalid_utf8_topic_is_an_error() {
    let mut out = encode(&sample(b"", "ab", b""));
    let topic_pos = body_len_pos(0) + 4 + 1;
    out[topic_pos + 1] = 0xFF;
    let err = check_record(&out, false).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidUtf8 { what: "record", offset: 0, field: "TOPIC", valid_up_to: 1 }
    );
}

#[test]
fn patchers_write_in_place() {
    let rec = RecordRef { born_host: addr("[::1]:9"), ..sample(b"xyz", "T", b"K\x01V\x02") };
    let mut out = encode(&rec);
    set_queue_offset(&mut out, 77).unwrap();
    set_physical_offset(&mut out, 88).unwrap();
    set_store_timestamp(&mut out, 99).unwrap();
    let (back, _) = decode_record(&out).unwrap();
    assert_eq!((back.queue_offset, back.physical_offset, back.store_timestamp), (77, 88, 99));
    assert_eq!(back.born_host, addr("[::1]:9"));
    assert_eq!(back.property("K"), Some(&b"V"[..]));
    assert!(set_store_timestamp(&mut out[..60], 1).is_err());
    assert!(set_queue_offset(&mut out[..27], 1).is_err());
}

#[test]
fn iter_records_walks_a_pull_body_and_stops_at_errors() {
    let mut body = encode(&sample(b"one", "T", b""));
    let second_offset = body.len();
    body.extend(encode(&RecordRef { physical_offset: 5000, ..sample(b"two", "T", b"") }));
    let offsets: Vec<usize> = iter_records(&body).map(|item| item.unwrap().0).collect();
    assert_eq!(offsets, [0, second_offset]);
    body.extend_from_slice(&encode_blank(100));
    let results: Vec<_> = iter_records(&body).collect();
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[2].as_ref().unwrap_err(),
        &Error::UnexpectedBlank { offset: body.len() - 8 }
    );
}

#[test]
fn decode_messages_builds_owned_messages() {
    let mut props = Properties::new();
    props.insert("TAGS".into(), "TagA".into());
    props.insert("UNIQ_KEY".into(), "ABC".into());
    let props = crate::properties::encode_properties(&props);
    let mut body = encode(&sample(b"first", "TopicTest", &props));
    body.extend(encode(&RecordRef {
        store_host: addr("[2001:db8::2]:10911"),
        physical_offset: 5000,
        ..sample(b"", "TopicTest", b"")
    }));
    let messages = decode_messages(&body, true).unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].topic(), "TopicTest");
    assert_eq!(messages[0].body().as_ref(), b"first");
    assert_eq!(messages[0].message.tags(), Some("TagA"));
    assert_eq!(messages[0].client_msg_id(), "ABC");
    assert_eq!(messages[0].msg_id, "0A00000200002A9F0000000000001000");
    assert_eq!(messages[0].store_size, 91 + 5 + 9 + props.len());
    assert_eq!(messages[1].msg_id, "20010DB800000000000000000000000200002A9F0000000000001388");
    assert_eq!(messages[1].client_msg_id(), messages[1].msg_id);
    assert_eq!(messages[1].sysflag, sysflag::STOREHOST_V6_FLAG);

    let shared = Bytes::from(body.clone());
    let again = decode_messages_shared(&shared, &DecodeOptions::default()).unwrap();
    assert_eq!(again, messages);
    assert_eq!(decode_messages(&[], true).unwrap(), []);

    let mut reencoded = Vec::new();
    for message in &messages {
        message.encode_record(&mut reencoded).unwrap();
    }
    assert_eq!(reencoded, body);
}

#[test]
fn decode_messages_inflates_zlib_bodies() {
    let original: Vec<u8> = b"compress me please ".iter().copied().cycle().take(10_000).collect();
    let compressed = crate::zlib::deflate(&original, 5);
    assert!(compressed.len() < original.len());
    let rec = RecordRef {
        sysflag: COMPRESSED_FLAG | COMPRESSION_ZLIB_TYPE,
        ..sample(&compressed, "T", b"")
    };
    let body = encode(&rec);

    let messages = decode_messages(&body, true).unwrap();
    assert_eq!(messages[0].body().as_ref(), original.as_slice());
    assert_eq!(messages[0].sysflag, 0x301);
    assert_eq!(messages[0].body_crc, rocketmq_crc32(&compressed));
    let raw = decode_messages(&body, false).unwrap();
    assert_eq!(raw[0].body().as_ref(), compressed.as_slice());

    let tight = DecodeOptions { max_decompressed_body_len: 9_999, ..DecodeOptions::default() };
    assert_eq!(
        decode_messages_with_options(&body, &tight),
        Err(Error::DecompressedTooLarge { offset: 0, limit: 9_999 })
    );

    // Legacy producers set only the COMPRESSED flag: type 0 means zlib.
    let legacy = encode(&RecordRef { sysflag: COMPRESSED_FLAG, ..rec });
    assert_eq!(decode_messages(&legacy, true).unwrap()[0].body().as_ref(), original.as_slice());

    let lz4 = encode(&RecordRef { sysflag: COMPRESSED_FLAG | COMPRESSION_LZ4_TYPE, ..rec });
    assert_eq!(
        decode_messages(&lz4, true),
        Err(Error::UnsupportedCompression { offset: 0, found: 1 })
    );

    let garbage = encode(&RecordRef { body: b"not zlib", ..rec });
    assert!(matches!(decode_messages(&garbage, true), Err(Error::Decompress { offset: 0, .. })));
}

#[test]
fn decode_messages_inflates_what_flate2_compressed() {
    use std::io::Write as _;

    let original = b"a body compressed by flate2's own zlib writer, level 5 ".repeat(200);
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(5));
    encoder.write_all(&original).unwrap();
    let compressed = encoder.finish().unwrap();
    let rec = RecordRef {
        sysflag: COMPRESSED_FLAG | COMPRESSION_ZLIB_TYPE,
        ..sample(&compressed, "TopicTest", b"")
    };
    let mut body = encode(&rec);
    body.extend(encode(&sample(b"plain", "TopicTest", b"")));
    let messages = decode_messages(&body, true).unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].body().as_ref(), original.as_slice());
    assert_eq!(messages[1].body().as_ref(), b"plain");
    // Our deflate produces a stream flate2 reads back too.
    assert_eq!(
        crate::zlib::inflate(&crate::zlib::deflate(&original, 5), 1 << 20).unwrap(),
        original
    );
}

#[test]
fn decode_messages_with_crc_check() {
    let mut body = encode(&sample(b"abc", "T", b""));
    let crc_checked = DecodeOptions { check_crc: true, ..DecodeOptions::default() };
    assert!(decode_messages_with_options(&body, &crc_checked).is_ok());
    body[body_len_pos(0) + 4] = b'X';
    assert!(matches!(
        decode_messages_with_options(&body, &crc_checked),
        Err(Error::CrcMismatch { .. })
    ));
    assert!(decode_messages(&body, true).is_ok());
}
