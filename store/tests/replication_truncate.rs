//! The two store operations a slave needs beyond appending its master's bytes:
//! - an empty slave store starts where its master's stream starts (the start of the
//!   master's last segment, as RocketMQ's HA does), not at 0;
//! - `open_truncated` cuts the tail a new master lacks (after a master change), crash-safely:
//!   a power cut at any operation of the cut leaves a valid prefix of the old CommitLog that
//!   still reaches the cut, and running the cut again finishes it.
#![cfg(test)]

use std::path::Path;
use std::sync::Arc;

use ferromq_message::properties::{Properties, encode_properties};
use ferromq_store::internals::{CutFates, PowerCut, SimStorage};
use ferromq_store::{GetStatus, MessageStore, PutMessage, PutResult, StoreConfig};

const SEGMENT: i64 = 64 * 1024;

fn put_some(store: &MessageStore, count: usize, tag: &str) -> Vec<(String, i32, PutResult)> {
    let mut puts = Vec::new();
    for i in 0..count {
        let mut properties = Properties::new();
        properties.insert("TAGS".into(), format!("{tag}{}", i % 3));
        properties.insert("KEYS".into(), format!("{tag}-key-{i}"));
        let properties = encode_properties(&properties);
        let body = vec![b'a' + (i % 26) as u8; 200 + (i * 37) % 700];
        let topic = if i % 2 == 0 { "TopicA" } else { "TopicB" };
        let queue_id = (i % 3) as i32;
        let message =
            PutMessage { properties: &properties, ..PutMessage::new(topic, queue_id, &body) };
        let result = store.put(&message).unwrap();
        assert!(result.status.is_ok());
        puts.push((topic.to_owned(), queue_id, result));
    }
    puts
}

/// Feeds `slave` the master's bytes `[from, to)` in odd chunk sizes.
fn replicate(master: &MessageStore, slave: &MessageStore, from: i64, to: i64) {
    let mut offset = from;
    let mut chunk = 3usize;
    while offset < to {
        let data = master.commit_log_data(offset).unwrap().expect("master has data here");
        let take = data.len().min(chunk).min((to - offset) as usize);
        slave.append_replicated(offset, &data[..take]).unwrap();
        offset += take as i64;
        chunk = chunk * 7 % 9001 + 1;
    }
}

fn commit_log_bytes(store: &MessageStore, from: i64, to: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < to {
        let data = store.commit_log_data(offset).unwrap().expect("data below the end");
        let take = data.len().min((to - offset) as usize);
        out.extend_from_slice(&data[..take]);
        offset += take as i64;
    }
    out
}

fn record_end(result: &PutResult) -> i64 {
    result.phy_offset + i64::from(result.wrote_bytes)
}

#[test]
fn empty_slave_starts_at_the_masters_last_segment() {
    let master_dir = tempfile::tempdir().unwrap();
    let slave_dir = tempfile::tempdir().unwrap();
    let master = MessageStore::open(StoreConfig::small_for_tests(master_dir.path())).unwrap();
    let puts = put_some(&master, 300, "t");
    let end = master.max_phy_offset();
    assert!(end > 3 * SEGMENT, "several segments, end={end}");
    let start = end - end % SEGMENT;

    let slave = MessageStore::open(StoreConfig::small_for_tests(slave_dir.path())).unwrap();
    assert_eq!(slave.max_phy_offset(), 0);
    let err = slave.append_replicated(start + 1, b"x").unwrap_err();
    assert!(err.to_string().contains("segment boundary"), "{err}");
    replicate(&master, &slave, start, end);
    assert_eq!(slave.min_phy_offset(), start);
    assert_eq!(slave.max_phy_offset(), end);
    assert_eq!(commit_log_bytes(&slave, start, end), commit_log_bytes(&master, start, end));
    // Every message of the replicated segment is readable at its master queue offset.
    let check = |slave: &MessageStore| {
        for (topic, queue_id, put) in &puts {
            let got = slave.get(topic, *queue_id, put.queue_offset, 1, &|_| true).unwrap();
            if put.phy_offset >= start {
                assert_eq!(got.status, GetStatus::Found, "{topic}/{queue_id}@{}", put.queue_offset);
                assert_eq!(
                    got.messages[0],
                    master.message_by_phy_offset(put.phy_offset).unwrap().unwrap()
                );
            } else {
                assert_ne!(got.status, GetStatus::Found);
            }
        }
    };
    check(&slave);
    slave.close().unwrap();
    // No stray segment before `start`: the store reopens, and keeps following the master.
    let slave = MessageStore::open(StoreConfig::small_for_tests(slave_dir.path())).unwrap();
    assert_eq!((slave.min_phy_offset(), slave.max_phy_offset()), (start, end));
    check(&slave);
    let more = put_some(&master, 50, "u");
    replicate(&master, &slave, end, master.max_phy_offset());
    let last = &more[more.len() - 1].2;
    assert_eq!(slave.max_phy_offset(), record_end(last));
    slave.close().unwrap();
    master.close().unwrap();
}

#[test]
fn open_truncated_cuts_at_a_record_boundary_and_follows_a_new_master() {
    let old_dir = tempfile::tempdir().unwrap();
    let new_dir = tempfile::tempdir().unwrap();
    // The old master wrote 200 messages; the new master (its former slave) got 120 of them,
    // then wrote 60 of its own: the logs diverge at the end of message 120.
    let old = MessageStore::open(StoreConfig::small_for_tests(old_dir.path())).unwrap();
    let puts = put_some(&old, 200, "t");
    let new = MessageStore::open(StoreConfig::small_for_tests(new_dir.path())).unwrap();
    let common_end = record_end(&puts[119].2);
    replicate(&old, &new, 0, common_end);
    new.close().unwrap();
    let new = MessageStore::open(StoreConfig::small_for_tests(new_dir.path())).unwrap();
    put_some(&new, 60, "n");
    let old_end = old.max_phy_offset();
    old.close().unwrap();

    // A cut inside record 121 rounds down to its start.
    let old =
        MessageStore::open_truncated(StoreConfig::small_for_tests(old_dir.path()), common_end + 10)
            .unwrap();
    assert_eq!(old.max_phy_offset(), common_end);
    assert!(old_end > common_end);
    for (index, (topic, queue_id, put)) in puts.iter().enumerate() {
        let got = old.get(topic, *queue_id, put.queue_offset, 1, &|_| true).unwrap();
        let key = format!("t-key-{index}");
        let found = old.query_by_key(topic, &key, 32, 0, i64::MAX).unwrap();
        if index < 120 {
            assert_eq!(got.status, GetStatus::Found);
            assert_eq!(found.messages.len(), 1, "{key}");
        } else {
            assert_ne!(got.status, GetStatus::Found, "message {index} is past the cut");
            assert!(found.messages.is_empty(), "{key} is past the cut");
        }
    }
    // It now follows the new master and ends byte-identical to it.
    replicate(&new, &old, common_end, new.max_phy_offset());
    let end = new.max_phy_offset();
    assert_eq!(commit_log_bytes(&old, 0, end), commit_log_bytes(&new, 0, end));
    for topic in ["TopicA", "TopicB"] {
        for queue_id in 0..3 {
            assert_eq!(
                old.max_offset_in_queue(topic, queue_id).unwrap(),
                new.max_offset_in_queue(topic, queue_id).unwrap()
            );
        }
    }
    old.close().unwrap();
    new.close().unwrap();
    // A cut at or past the end changes nothing.
    let old = MessageStore::open_truncated(StoreConfig::small_for_tests(old_dir.path()), i64::MAX)
        .unwrap();
    assert_eq!(old.max_phy_offset(), end);
    old.close().unwrap();
}

#[test]
fn open_truncated_to_a_segment_start_and_to_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(StoreConfig::small_for_tests(dir.path())).unwrap();
    put_some(&store, 300, "t");
    store.close().unwrap();
    let store = MessageStore::open_truncated(StoreConfig::small_for_tests(dir.path()), 2 * SEGMENT)
        .unwrap();
    assert!(store.max_phy_offset() <= 2 * SEGMENT);
    assert!(store.max_phy_offset() > SEGMENT);
    put_some(&store, 5, "x");
    store.close().unwrap();
    let store = MessageStore::open_truncated(StoreConfig::small_for_tests(dir.path()), 0).unwrap();
    assert_eq!(store.max_phy_offset(), 0);
    assert_eq!(
        store.get("TopicA", 0, 0, 1, &|_| true).unwrap().status,
        GetStatus::NoMessageInQueue
    );
    store.close().unwrap();
    let store = MessageStore::open(StoreConfig::small_for_tests(dir.path())).unwrap();
    assert_eq!(store.max_phy_offset(), 0);
    put_some(&store, 5, "y");
    store.close().unwrap();
}

const SIM_ROOT: &str = "/sim/slave";

fn sim_config() -> StoreConfig {
    StoreConfig::small_for_tests(SIM_ROOT)
}

/// A clean copy of `disk` (every page and entry of a cleanly closed store is durable).
fn copy(disk: &SimStorage) -> Arc<SimStorage> {
    Arc::new(disk.after_power_cut_with(0, CutFates::whole_pages()))
}

#[test]
fn power_cut_anywhere_in_open_truncated_leaves_a_prefix_that_reaches_the_cut() {
    let base = Arc::new(SimStorage::new());
    base.create_dir_all_durable(Path::new(SIM_ROOT));
    let store = MessageStore::open_simulated(sim_config(), base.clone()).unwrap();
    let puts = put_some(&store, 300, "t");
    let end = store.max_phy_offset();
    let original = commit_log_bytes(&store, 0, end);
    store.close().unwrap();
    let cut = puts[120].2.phy_offset;
    assert!(cut > SEGMENT && end > cut + SEGMENT, "the cut drops whole segments and a tail");

    // Count the operations of an uninterrupted cut.
    let counting = copy(&base);
    let before = counting.op_count();
    let store =
        MessageStore::open_truncated_simulated(sim_config(), counting.clone(), cut).unwrap();
    assert_eq!(store.max_phy_offset(), cut);
    store.close().unwrap();
    let total = counting.op_count() - before;
    assert!(total > 5, "the cut does some I/O: {total}");

    for at in 1..=total {
        let disk = copy(&base);
        disk.set_power_cut(Some(PowerCut { at_op: disk.op_count() + at, seed: at }));
        if let Ok(store) = MessageStore::open_truncated_simulated(sim_config(), disk.clone(), cut) {
            drop(store);
        }
        let rebooted = Arc::new(disk.after_power_cut());
        let store = MessageStore::open_simulated(sim_config(), rebooted.clone()).unwrap();
        let recovered = store.max_phy_offset();
        assert!(
            (cut..=end).contains(&recovered),
            "cut at op {at}: recovered end {recovered} outside [{cut}, {end}]"
        );
        assert_eq!(
            commit_log_bytes(&store, 0, recovered),
            original[..recovered as usize],
            "cut at op {at}: the recovered log is not a prefix of the old one"
        );
        for (topic, queue_id, put) in &puts {
            let got = store.get(topic, *queue_id, put.queue_offset, 1, &|_| true).unwrap();
            if record_end(put) <= recovered {
                assert_eq!(got.status, GetStatus::Found, "cut at op {at}");
            } else {
                assert_ne!(got.status, GetStatus::Found, "cut at op {at}");
            }
        }
        store.close().unwrap();
        // Running the cut again finishes it.
        let store = MessageStore::open_truncated_simulated(sim_config(), rebooted, cut).unwrap();
        assert_eq!(store.max_phy_offset(), cut, "second cut after op {at}");
        for (topic, queue_id, put) in &puts {
            let got = store.get(topic, *queue_id, put.queue_offset, 1, &|_| true).unwrap();
            assert_eq!(got.status == GetStatus::Found, record_end(put) <= cut, "after op {at}");
        }
        store.close().unwrap();
    }
}
