//! Basic behaviour of the public API: put and get across segment rolls, tag filtering, the
//! get statuses, batches, delayed messages, size and name limits, key queries, the directory
//! lock, clean restarts and expiry.

// Helpers outside `#[test]` functions unwrap too: mark the whole file as test code so that
// clippy's `allow-unwrap-in-tests` covers them.
#![cfg(test)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use ferromq_message::hash::tags_code;
use ferromq_message::msg_id::decode_offset_msg_id;
use ferromq_message::properties::{Properties, encode_properties};
use ferromq_message::record::crc_property::{compute_record_crc, encode_crc_property};
use ferromq_message::record::{self, decode_record};
use ferromq_store::{
    Error, GetStatus, MessageStore, PutMessage, PutStatus, RecoveryMode, StoreConfig,
};

const SEGMENT_BYTES: i64 = 64 * 1024;

fn open(dir: &Path) -> MessageStore {
    MessageStore::open(StoreConfig::small_for_tests(dir)).unwrap()
}

/// The producer's properties of a stored record `raw`, after checking that the store ended
/// them with the record-CRC property (`enabled_append_prop_crc`, on by default) and that it
/// matches the record.
fn user_properties<'a>(raw: &[u8], stored: &'a [u8]) -> Option<&'a [u8]> {
    let crc = compute_record_crc(raw)?;
    stored.strip_suffix(&encode_crc_property(crc)[..])
}

fn props(pairs: &[(&str, &str)]) -> Vec<u8> {
    let properties: Properties =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    encode_properties(&properties)
}

fn body(n: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (n * 31 + i * 7) as u8).collect()
}

fn put_with(
    store: &MessageStore,
    topic: &str,
    queue: i32,
    body: &[u8],
    properties: &[u8],
) -> ferromq_store::PutResult {
    let mut message = PutMessage::new(topic, queue, body);
    message.properties = properties;
    store.put(&message).unwrap()
}

/// Reads `topic`/`queue` from `from` to the end with unfiltered pulls of 32.
fn read_all(store: &MessageStore, topic: &str, queue: i32, from: i64) -> Vec<bytes::Bytes> {
    let max = store.max_offset_in_queue(topic, queue).unwrap();
    let (mut offset, mut out) = (from, Vec::new());
    while offset < max {
        let got = store.get(topic, queue, offset, 32, &|_| true).unwrap();
        assert_eq!(got.status, GetStatus::Found, "{topic}/{queue}@{offset}");
        assert!(got.next_begin_offset > offset);
        offset = got.next_begin_offset;
        out.extend(got.messages);
    }
    out
}

fn commit_log_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("commitlog")).map_or(0, Iterator::count)
}

#[test]
fn put_get_round_trip_across_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut puts = Vec::new();
    for n in 0..1500 {
        let queue = (n % 3) as i32;
        let data = body(n, 300 + n % 1700);
        let properties = props(&[("TAGS", "roll"), ("KEYS", &format!("k{n}"))]);
        let put = put_with(&store, "RollTopic", queue, &data, &properties);
        assert_eq!(put.status, PutStatus::PutOk);
        assert_eq!(put.message_count, 1);
        assert!(put.batch_phy_offsets.is_empty());
        puts.push((queue, data, properties, put));
    }
    let end = store.max_phy_offset();
    assert!(end > 20 * SEGMENT_BYTES, "only {end} bytes written: too few segment rolls");
    assert!(commit_log_files(dir.path()) > 20);

    for queue in 0..3 {
        let records = read_all(&store, "RollTopic", queue, 0);
        let mine: Vec<_> = puts.iter().filter(|p| p.0 == queue).collect();
        assert_eq!(records.len(), mine.len());
        let mut last_phy = -1;
        for (offset, (raw, (_, data, properties, put))) in records.iter().zip(&mine).enumerate() {
            let (rec, len) = decode_record(raw).unwrap();
            assert_eq!(len, raw.len());
            assert_eq!(len as i32, put.wrote_bytes);
            assert_eq!(
                (rec.topic, rec.queue_id, rec.queue_offset),
                ("RollTopic", queue, offset as i64)
            );
            assert_eq!(put.queue_offset, offset as i64);
            assert_eq!(rec.physical_offset, put.phy_offset);
            assert_eq!(rec.store_timestamp, put.store_timestamp);
            assert_eq!(rec.body, &data[..]);
            assert_eq!(user_properties(raw, rec.properties), Some(&properties[..]));
            assert!(record::check_record(raw, true).is_ok(), "body CRC is right");
            // No record crosses a segment end, and a BLANK (8 bytes) always fits after it.
            let in_segment = rec.physical_offset % SEGMENT_BYTES;
            assert!(
                in_segment + len as i64 + 8 <= SEGMENT_BYTES,
                "record at {}",
                rec.physical_offset
            );
            assert!(rec.physical_offset > last_phy);
            last_phy = rec.physical_offset;
            let by_phy = store.message_by_phy_offset(put.phy_offset).unwrap().unwrap();
            assert_eq!(by_phy, *raw);
            let by_id = store.message_by_msg_id(&put.msg_id()).unwrap().unwrap();
            assert_eq!(by_id, *raw);
        }
    }
    assert_eq!(store.message_by_phy_offset(end).unwrap(), None);
    assert_eq!(store.message_by_phy_offset(-1).unwrap(), None);
    store.close().unwrap();
}

#[test]
fn get_filters_by_tags_code_and_consumes_skipped_units() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let tags = ["TagA", "TagB", "", "TagA", "TagC", "TagA", "", "TagB"];
    for (n, tag) in tags.iter().enumerate() {
        let properties = if tag.is_empty() { Vec::new() } else { props(&[("TAGS", tag)]) };
        assert!(put_with(&store, "TagTopic", 0, &body(n, 10), &properties).status.is_ok());
    }
    let only = |tag: &'static str| move |code: i64| code == tags_code(tag);
    let got = store.get("TagTopic", 0, 0, 32, &only("TagA")).unwrap();
    assert_eq!(got.status, GetStatus::Found);
    let offsets: Vec<i64> =
        got.messages.iter().map(|m| decode_record(m).unwrap().0.queue_offset).collect();
    assert_eq!(offsets, [0, 3, 5]);
    assert_eq!(got.next_begin_offset, 8, "units that did not match are consumed too");
    for raw in &got.messages {
        assert_eq!(decode_record(raw).unwrap().0.property("TAGS"), Some(&b"TagA"[..]));
    }

    // Untagged messages have tags code 0.
    let got = store.get("TagTopic", 0, 0, 32, &|code| code == 0).unwrap();
    let offsets: Vec<i64> =
        got.messages.iter().map(|m| decode_record(m).unwrap().0.queue_offset).collect();
    assert_eq!(offsets, [2, 6]);

    // max_count stops before the next match, and the next pull resumes right there.
    let got = store.get("TagTopic", 0, 0, 2, &only("TagA")).unwrap();
    assert_eq!(got.messages.len(), 2);
    assert_eq!(got.next_begin_offset, 4);
    let got = store.get("TagTopic", 0, got.next_begin_offset, 2, &only("TagA")).unwrap();
    assert_eq!(decode_record(&got.messages[0]).unwrap().0.queue_offset, 5);

    let got = store.get("TagTopic", 0, 0, 32, &only("TagZ")).unwrap();
    assert_eq!(got.status, GetStatus::NoMatchedMessage);
    assert!(got.messages.is_empty());
    assert_eq!(got.next_begin_offset, 8);
    store.close().unwrap();
}

#[test]
fn get_reports_offset_and_queue_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for n in 0..5 {
        assert!(
            store.put(&PutMessage::new("StatusTopic", 1, &body(n, 20))).unwrap().status.is_ok()
        );
    }
    let all = |_: i64| true;
    let check = |topic: &str, queue: i32, offset: i64, status: GetStatus, next: i64| {
        let got = store.get(topic, queue, offset, 32, &all).unwrap();
        assert_eq!((got.status, got.next_begin_offset), (status, next), "{topic}/{queue}@{offset}");
        if status != GetStatus::Found {
            assert!(got.messages.is_empty());
        }
        got
    };
    let found = check("StatusTopic", 1, 2, GetStatus::Found, 5);
    assert_eq!((found.min_offset, found.max_offset, found.messages.len()), (0, 5, 3));
    let too_small = check("StatusTopic", 1, -1, GetStatus::OffsetTooSmall, 0);
    assert_eq!((too_small.min_offset, too_small.max_offset), (0, 5));
    check("StatusTopic", 1, 5, GetStatus::OffsetOverflowOne, 5);
    check("StatusTopic", 1, 6, GetStatus::OffsetOverflowBadly, 5);
    check("StatusTopic", 1, 1_000_000, GetStatus::OffsetOverflowBadly, 5);
    check("StatusTopic", 0, 0, GetStatus::NoMatchedLogicQueue, 0);
    check("NoSuchTopic", 1, 0, GetStatus::NoMatchedLogicQueue, 0);
    assert_eq!(store.max_offset_in_queue("NoSuchTopic", 1).unwrap(), 0);
    assert_eq!(store.min_offset_in_queue("NoSuchTopic", 1), 0);
    assert_eq!(store.max_offset_in_queue("StatusTopic", 1).unwrap(), 5);
    store.close().unwrap();
}

#[test]
fn batch_gets_consecutive_queue_offsets_and_one_msg_id_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(store.put(&PutMessage::new("BatchTopic", 2, b"before")).unwrap().status.is_ok());
    let items: Vec<(i32, Vec<u8>, Vec<u8>)> = (0..5)
        .map(|n| {
            (
                n * 10,
                body(n as usize, 50 + n as usize),
                props(&[("TAGS", "b"), ("KEYS", &format!("bk{n}"))]),
            )
        })
        .collect();
    let mut batch = Vec::new();
    for (flag, data, properties) in &items {
        ferromq_message::batch::encode_batch_item(*flag, data, properties, &mut batch).unwrap();
    }
    let put = store.put_batch(&PutMessage::new("BatchTopic", 2, b""), &batch).unwrap();
    assert_eq!(put.status, PutStatus::PutOk);
    assert_eq!((put.queue_offset, put.message_count), (1, 5));
    assert_eq!(put.batch_phy_offsets.len(), 5);
    assert_eq!(put.batch_phy_offsets[0], put.phy_offset);
    let ids: Vec<String> = put.msg_id().split(',').map(str::to_owned).collect();
    assert_eq!(ids.len(), 5);

    let got = store.get("BatchTopic", 2, 1, 32, &|_| true).unwrap();
    assert_eq!(got.messages.len(), 5);
    let mut total = 0;
    for (i, raw) in got.messages.iter().enumerate() {
        let (rec, len) = decode_record(raw).unwrap();
        let (flag, data, properties) = &items[i];
        assert_eq!(rec.queue_offset, 1 + i as i64);
        assert_eq!(rec.physical_offset, put.batch_phy_offsets[i]);
        let user = user_properties(raw, rec.properties);
        assert_eq!((rec.flag, rec.body, user), (*flag, &data[..], Some(&properties[..])));
        assert_eq!(rec.offset_msg_id(), ids[i]);
        assert_eq!(
            decode_offset_msg_id(&ids[i]).unwrap(),
            (put.store_host, put.batch_phy_offsets[i])
        );
        assert_eq!(store.message_by_msg_id(&ids[i]).unwrap().unwrap(), *raw);
        if i > 0 {
            assert_eq!(
                put.batch_phy_offsets[i],
                put.batch_phy_offsets[i - 1] + total,
                "records are contiguous"
            );
        }
        total = len as i64;
    }
    let written: i64 = got.messages.iter().map(|m| m.len() as i64).sum();
    assert_eq!(i64::from(put.wrote_bytes), written);
    let next = store.put(&PutMessage::new("BatchTopic", 2, b"after")).unwrap();
    assert_eq!(next.queue_offset, 6);

    // A malformed or empty batch body is illegal and stores nothing.
    let bad =
        store.put_batch(&PutMessage::new("BatchTopic", 2, b""), &batch[..batch.len() - 3]).unwrap();
    assert_eq!(bad.status, PutStatus::MessageIllegal);
    let empty = store.put_batch(&PutMessage::new("BatchTopic", 2, b""), b"").unwrap();
    assert_eq!(empty.status, PutStatus::MessageIllegal);
    assert_eq!(store.max_offset_in_queue("BatchTopic", 2).unwrap(), 7);
    store.close().unwrap();
}

#[test]
fn delayed_message_goes_to_schedule_topic_with_real_topic_and_queue() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let properties = props(&[("DELAY", "3"), ("TAGS", "Late")]);
    let put = put_with(&store, "DelayTopic", 5, b"later", &properties);
    assert_eq!(put.status, PutStatus::PutOk);
    assert_eq!(put.queue_offset, 0);
    assert_eq!(
        store.get("DelayTopic", 5, 0, 1, &|_| true).unwrap().status,
        GetStatus::NoMatchedLogicQueue
    );

    // Level 3 (10 s) lives in queue 2; its tags code is the delivery time.
    let mut codes = Vec::new();
    let codes_cell = std::cell::RefCell::new(&mut codes);
    let got = store
        .get("SCHEDULE_TOPIC_XXXX", 2, 0, 1, &|code| {
            codes_cell.borrow_mut().push(code);
            true
        })
        .unwrap();
    assert_eq!(got.status, GetStatus::Found);
    let (rec, _) = decode_record(&got.messages[0]).unwrap();
    assert_eq!((rec.topic, rec.queue_id, rec.body), ("SCHEDULE_TOPIC_XXXX", 2, &b"later"[..]));
    assert_eq!(rec.property("REAL_TOPIC"), Some(&b"DelayTopic"[..]));
    assert_eq!(rec.property("REAL_QID"), Some(&b"5"[..]));
    assert_eq!(rec.property("DELAY"), Some(&b"3"[..]));
    assert_eq!(rec.property("TAGS"), Some(&b"Late"[..]));
    assert_eq!(codes, [rec.store_timestamp + 10_000]);

    // Levels above the highest (18) are clamped to it.
    let put = put_with(&store, "DelayTopic", 0, b"much later", &props(&[("DELAY", "99")]));
    assert!(put.status.is_ok());
    let got = store.get("SCHEDULE_TOPIC_XXXX", 17, 0, 1, &|_| true).unwrap();
    let (rec, _) = decode_record(&got.messages[0]).unwrap();
    assert_eq!(rec.property("DELAY"), Some(&b"18"[..]));
    assert_eq!(rec.property("REAL_QID"), Some(&b"0"[..]));

    // A delayed message survives a restart in its schedule queue.
    store.close().unwrap();
    let store = open(dir.path());
    assert_eq!(store.max_offset_in_queue("SCHEDULE_TOPIC_XXXX", 2).unwrap(), 1);
    assert_eq!(store.max_offset_in_queue("SCHEDULE_TOPIC_XXXX", 17).unwrap(), 1);
    store.close().unwrap();
}

#[test]
fn oversize_body_and_bad_topics_are_illegal() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let max = StoreConfig::small_for_tests(dir.path()).max_message_size as usize;
    let status = |topic: &str, len: usize| {
        store.put(&PutMessage::new(topic, 0, &vec![b'x'; len])).unwrap().status
    };

    assert_eq!(status("SizeTopic", max + 1), PutStatus::MessageIllegal);
    assert_eq!(status("SizeTopic", max), PutStatus::PutOk);
    assert_eq!(status(&"t".repeat(128), 1), PutStatus::MessageIllegal);
    assert_eq!(status(&"t".repeat(127), 1), PutStatus::PutOk);
    assert_eq!(status("", 1), PutStatus::MessageIllegal);
    let retry = format!("%RETRY%{}", "g".repeat(200));
    assert_eq!(status(&retry, 1), PutStatus::PutOk, "retry topics may be up to 255 bytes");
    assert_eq!(status(&format!("%RETRY%{}", "g".repeat(249)), 1), PutStatus::MessageIllegal);
    let rejected = store.put(&PutMessage::new("SizeTopic", 0, &vec![0; max + 1])).unwrap();
    assert_eq!((rejected.queue_offset, rejected.message_count), (-1, 0));

    // Only the legal puts were stored.
    assert_eq!(store.max_offset_in_queue("SizeTopic", 0).unwrap(), 1);
    assert_eq!(store.max_offset_in_queue(&"t".repeat(128), 0).unwrap(), 0);
    let got = store.get(&retry, 0, 0, 1, &|_| true).unwrap();
    assert_eq!(decode_record(&got.messages[0]).unwrap().0.topic, retry);
    let big = store.get("SizeTopic", 0, 0, 1, &|_| true).unwrap();
    assert_eq!(decode_record(&big.messages[0]).unwrap().0.body.len(), max);

    // Properties longer than 32,767 bytes.
    let long = props(&[("KEYS", &"k".repeat(33_000))]);
    let mut message = PutMessage::new("SizeTopic", 0, b"x");
    message.properties = &long;
    assert_eq!(store.put(&message).unwrap().status, PutStatus::PropertiesSizeExceeded);
    store.close().unwrap();
}

/// Polls `query_by_key` until it returns something (the index is built in the background).
fn query_eventually(store: &MessageStore, topic: &str, key: &str) -> Vec<bytes::Bytes> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = store.query_by_key(topic, key, 32, 0, i64::MAX).unwrap();
        if !found.messages.is_empty() || Instant::now() > deadline {
            return found.messages;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn query_by_key_finds_keys_and_uniq_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut phys = Vec::new();
    for n in 0..20 {
        let keys = format!("order-{n} customer-{}", n % 4);
        let uniq = format!("UNIQ{n:04}");
        let properties = props(&[("KEYS", &keys), ("UNIQ_KEY", &uniq)]);
        let put = put_with(&store, "KeyTopic", n % 2, &body(n as usize, 30), &properties);
        phys.push(put.phy_offset);
    }
    // Same key in another topic: never returned for KeyTopic.
    put_with(&store, "OtherKeyTopic", 0, b"other", &props(&[("KEYS", "order-7")]));

    let keys_of = |records: &[bytes::Bytes]| -> BTreeSet<i64> {
        records.iter().map(|r| decode_record(r).unwrap().0.physical_offset).collect()
    };
    // The index is built in CommitLog order: once the last put is found, all are indexed.
    let found = query_eventually(&store, "OtherKeyTopic", "order-7");
    assert_eq!(found.len(), 1);
    assert_eq!(decode_record(&found[0]).unwrap().0.topic, "OtherKeyTopic");
    let found = query_eventually(&store, "KeyTopic", "order-7");
    assert_eq!(keys_of(&found), BTreeSet::from([phys[7]]));
    let (rec, _) = decode_record(&found[0]).unwrap();
    assert_eq!(rec.topic, "KeyTopic");
    let found = query_eventually(&store, "KeyTopic", "customer-3");
    assert_eq!(keys_of(&found), [3, 7, 11, 15, 19].iter().map(|&n| phys[n]).collect());
    let found = query_eventually(&store, "KeyTopic", "UNIQ0012");
    assert_eq!(keys_of(&found), BTreeSet::from([phys[12]]));

    // Unknown keys find nothing (the index has caught up: the keys above were found).
    assert!(
        store.query_by_key("KeyTopic", "order-99", 32, 0, i64::MAX).unwrap().messages.is_empty()
    );
    assert!(
        store.query_by_key("KeyTopic", "UNIQ9999", 32, 0, i64::MAX).unwrap().messages.is_empty()
    );
    // max_count caps the answer.
    let capped = store.query_by_key("KeyTopic", "customer-3", 2, 0, i64::MAX).unwrap();
    assert_eq!(capped.messages.len(), 2);
    // A time range before the messages finds nothing.
    assert!(store.query_by_key("KeyTopic", "order-7", 32, 0, 1000).unwrap().messages.is_empty());

    // The index survives a clean restart.
    store.close().unwrap();
    let store = open(dir.path());
    let found = store.query_by_key("KeyTopic", "order-7", 32, 0, i64::MAX).unwrap();
    assert_eq!(keys_of(&found.messages), BTreeSet::from([phys[7]]));
    store.close().unwrap();
}

#[test]
fn second_open_of_the_same_directory_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    match MessageStore::open(StoreConfig::small_for_tests(dir.path())) {
        Err(Error::Locked { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    // The failed open did not disturb the first store.
    assert!(store.put(&PutMessage::new("LockTopic", 0, b"x")).unwrap().status.is_ok());
    store.close().unwrap();
    let again = open(dir.path());
    assert_eq!(again.recovery_mode(), RecoveryMode::Normal);
    assert_eq!(again.max_offset_in_queue("LockTopic", 0).unwrap(), 1);
    again.close().unwrap();
}

#[test]
fn clean_restart_recovers_normally_with_data_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.recovery_mode(), RecoveryMode::Normal, "a new store");
    for n in 0..600 {
        let properties = props(&[("TAGS", ["x", "y"][n % 2])]);
        assert!(
            put_with(&store, "RestartTopic", (n % 2) as i32, &body(n, 400), &properties)
                .status
                .is_ok()
        );
    }
    let before: Vec<Vec<bytes::Bytes>> =
        (0..2).map(|q| read_all(&store, "RestartTopic", q, 0)).collect();
    let end = store.max_phy_offset();
    store.close().unwrap();
    assert!(!dir.path().join("abort").exists(), "a clean close removes the abort file");

    let store = open(dir.path());
    assert_eq!(store.recovery_mode(), RecoveryMode::Normal);
    assert_eq!(store.max_phy_offset(), end);
    for queue in 0..2 {
        assert_eq!(store.max_offset_in_queue("RestartTopic", queue).unwrap(), 300);
        assert_eq!(read_all(&store, "RestartTopic", queue, 0), before[queue as usize]);
    }
    let got = store.get("RestartTopic", 1, 0, 32, &|code| code == tags_code("y")).unwrap();
    assert_eq!(got.messages.len(), 32, "tags codes survive the restart");
    let put = store.put(&PutMessage::new("RestartTopic", 1, b"next")).unwrap();
    assert_eq!((put.queue_offset, put.phy_offset), (300, end));
    store.close().unwrap();
}

#[test]
fn delete_expired_files_removes_old_segments_but_not_open_views() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::small_for_tests(dir.path());
    config.file_reserved_time_hours = 0;
    // Only the explicit call below deletes: keep the background pass (it would act at the
    // `delete_when` hour) out of the way.
    config.clean_resource_interval_ms = 86_400_000;
    let store = MessageStore::open(config).unwrap();
    for n in 0..300 {
        let properties = props(&[("KEYS", &format!("exp{n}"))]);
        assert!(put_with(&store, "ExpireTopic", 0, &body(n, 900), &properties).status.is_ok());
    }
    let segments = (store.max_phy_offset() / SEGMENT_BYTES + 1) as usize;
    assert!(segments >= 4, "{segments} segments");
    let first = store.get("ExpireTopic", 0, 0, 1, &|_| true).unwrap().messages[0].clone();
    let first_copy = first.to_vec();
    let first_by_phy = store.message_by_phy_offset(0).unwrap().unwrap();

    let deleted = store.delete_expired_files().unwrap();
    assert_eq!(deleted, segments - 1, "every segment but the current one is expired");
    let min_phy = store.min_phy_offset();
    assert_eq!(min_phy, (segments as i64 - 1) * SEGMENT_BYTES);
    assert!(!dir.path().join("commitlog").join(format!("{:020}", 0)).exists());

    // Old offsets are gone; the first message still stored is readable.
    let min = store.min_offset_in_queue("ExpireTopic", 0);
    assert!(min > 0);
    let got = store.get("ExpireTopic", 0, 0, 1, &|_| true).unwrap();
    assert_eq!((got.status, got.next_begin_offset), (GetStatus::OffsetTooSmall, min));
    let got = store.get("ExpireTopic", 0, min - 1, 1, &|_| true).unwrap();
    assert_eq!(got.status, GetStatus::OffsetTooSmall);
    let got = store.get("ExpireTopic", 0, min, 1, &|_| true).unwrap();
    assert_eq!(got.status, GetStatus::Found);
    let (rec, _) = decode_record(&got.messages[0]).unwrap();
    assert_eq!(rec.queue_offset, min);
    assert!(rec.physical_offset >= min_phy);
    let remaining = read_all(&store, "ExpireTopic", 0, min);
    assert_eq!(remaining.len() as i64, 300 - min);
    for (i, raw) in remaining.iter().enumerate() {
        let (rec, _) = decode_record(raw).unwrap();
        assert_eq!(rec.queue_offset, min + i as i64);
        assert_eq!(rec.body, &body((min as usize) + i, 900)[..]);
    }
    assert_eq!(store.message_by_phy_offset(0).unwrap(), None);

    // Views taken before the deletion still read the old bytes.
    assert_eq!(&first[..], &first_copy[..]);
    assert_eq!(&first_by_phy[..], &first_copy[..]);
    assert_eq!(decode_record(&first).unwrap().0.body, &body(0, 900)[..]);

    // Puts continue, and a clean restart and a crash both keep the new minimum.
    let put = store.put(&PutMessage::new("ExpireTopic", 0, b"after expiry")).unwrap();
    assert_eq!(put.queue_offset, 300);
    store.close().unwrap();
    for (round, mode) in [RecoveryMode::Normal, RecoveryMode::Abnormal].into_iter().enumerate() {
        let store = open(dir.path());
        assert_eq!(store.recovery_mode(), mode);
        assert_eq!(store.min_phy_offset(), min_phy);
        assert_eq!(store.min_offset_in_queue("ExpireTopic", 0), min);
        let got = store.get("ExpireTopic", 0, 0, 1, &|_| true).unwrap();
        assert_eq!((got.status, got.next_begin_offset), (GetStatus::OffsetTooSmall, min));
        assert_eq!(store.max_offset_in_queue("ExpireTopic", 0).unwrap(), 301);
        let remaining = read_all(&store, "ExpireTopic", 0, min);
        assert_eq!(remaining.len() as i64, 301 - min);
        assert_eq!(decode_record(remaining.last().unwrap()).unwrap().0.body, b"after expiry");
        if round == 0 {
            store.simulate_crash();
        } else {
            store.close().unwrap();
        }
    }
}

#[test]
fn get_reports_no_message_in_queue_for_an_empty_consume_queue() {
    // A ConsumeQueue file with no units, as a crash right after creating it leaves behind.
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).close().unwrap();
    let queue_dir = dir.path().join("consumequeue").join("EmptyTopic").join("3");
    std::fs::create_dir_all(&queue_dir).unwrap();
    let cq_file_bytes = StoreConfig::small_for_tests(dir.path()).consume_queue_file_size();
    std::fs::write(queue_dir.join(format!("{:020}", 0)), vec![0; cq_file_bytes as usize]).unwrap();

    let store = open(dir.path());
    let got = store.get("EmptyTopic", 3, 0, 32, &|_| true).unwrap();
    assert_eq!((got.status, got.next_begin_offset), (GetStatus::NoMessageInQueue, 0));
    assert_eq!(store.max_offset_in_queue("EmptyTopic", 3).unwrap(), 0);
    let put = store.put(&PutMessage::new("EmptyTopic", 3, b"first")).unwrap();
    assert_eq!(put.queue_offset, 0);
    let got = store.get("EmptyTopic", 3, 0, 32, &|_| true).unwrap();
    assert_eq!((got.status, got.messages.len()), (GetStatus::Found, 1));
    store.close().unwrap();
}

#[test]
fn reopening_an_empty_store_keeps_physical_offsets_at_zero() {
    // Regression: open used to pre-allocate the segment after the one holding the end, so
    // for an empty store the file at 64 KiB instead of 0; each open/close then moved the
    // CommitLog end one segment on. The first message must land at offset 0.
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let store = open(dir.path());
        assert_eq!(store.max_phy_offset(), 0, "round {round}");
        // Let the background pre-allocation create its file before closing.
        let deadline = Instant::now() + Duration::from_secs(2);
        while commit_log_files(dir.path()) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        store.close().unwrap();
    }
    let store = open(dir.path());
    let put = store.put(&PutMessage::new("EmptyStoreTopic", 0, b"first")).unwrap();
    assert_eq!((put.phy_offset, put.queue_offset), (0, 0));
    assert_eq!(store.min_phy_offset(), 0);
    store.close().unwrap();
}

#[test]
fn the_record_crc_property_is_replaced_and_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    // A producer's own __CRC32# property (a reserved name) is dropped, as RocketMQ drops it,
    // and the store's is appended.
    let store = open(dir.path());
    let given = props(&[("TAGS", "a"), ("__CRC32#", "123")]);
    let put = put_with(&store, "CrcTopic", 0, b"first", &given);
    let raw = store.message_by_phy_offset(put.phy_offset).unwrap().unwrap();
    let (rec, _) = decode_record(&raw).unwrap();
    assert_eq!(user_properties(&raw, rec.properties), Some(&props(&[("TAGS", "a")])[..]));
    store.close().unwrap();

    // With the option off the record holds the properties as given (RocketMQ's default):
    // byte-identical to what a default RocketMQ broker writes.
    let mut config = StoreConfig::small_for_tests(dir.path());
    config.enabled_append_prop_crc = false;
    let store = MessageStore::open(config).unwrap();
    let given = props(&[("TAGS", "b")]);
    let put = put_with(&store, "CrcTopic", 0, b"second", &given);
    let raw = store.message_by_phy_offset(put.phy_offset).unwrap().unwrap();
    let (rec, _) = decode_record(&raw).unwrap();
    assert_eq!(rec.properties, &given[..]);
    store.simulate_crash();

    // Both kinds of record recover and read back, whatever the option says now.
    let store = open(dir.path());
    assert_eq!(store.recovery_mode(), RecoveryMode::Abnormal);
    let got = store.get("CrcTopic", 0, 0, 32, &|_| true).unwrap();
    let bodies: Vec<&[u8]> =
        got.messages.iter().map(|m| decode_record(m).unwrap().0.body).collect();
    assert_eq!(bodies, [&b"first"[..], &b"second"[..]]);
    store.close().unwrap();
}
