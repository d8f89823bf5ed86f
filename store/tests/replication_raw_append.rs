//! A slave store fed the master's raw CommitLog bytes in arbitrary chunks (cut mid-record,
//! across segment ends) ends up byte-identical, with the same queues readable.

use ferromq_message::properties::{Properties, encode_properties};
use ferromq_store::{GetStatus, MessageStore, PutMessage, StoreConfig};

#[expect(clippy::unwrap_used, reason = "a test helper: a failed put fails the test")]
fn put_some(store: &MessageStore, count: usize) {
    for i in 0..count {
        let mut properties = Properties::new();
        properties.insert("TAGS".into(), format!("tag{}", i % 3));
        properties.insert("KEYS".into(), format!("key-{i}"));
        let properties = encode_properties(&properties);
        let body = vec![b'a' + (i % 26) as u8; 100 + (i * 37) % 900];
        let topic = if i % 2 == 0 { "TopicA" } else { "TopicB" };
        let message =
            PutMessage { properties: &properties, ..PutMessage::new(topic, (i % 4) as i32, &body) };
        assert!(store.put(&message).unwrap().status.is_ok());
    }
}

#[test]
fn raw_bytes_in_odd_chunks_rebuild_an_identical_slave() {
    let master_dir = tempfile::tempdir().unwrap();
    let slave_dir = tempfile::tempdir().unwrap();
    let master = MessageStore::open(StoreConfig::small_for_tests(master_dir.path())).unwrap();
    let slave = MessageStore::open(StoreConfig::small_for_tests(slave_dir.path())).unwrap();
    put_some(&master, 400);
    let end = master.max_phy_offset();
    assert!(end > 3 * 64 * 1024, "the test must cross several segments, end={end}");

    let mut offset = 0i64;
    let mut chunk = 1usize;
    while offset < end {
        let data = master.commit_log_data(offset).unwrap().expect("master has data here");
        let take = data.len().min(chunk);
        slave.append_replicated(offset, &data[..take]).unwrap();
        offset += take as i64;
        chunk = chunk * 7 % 5003 + 1; // 1, 8, 57, 400, 2801, ... odd sizes
        assert_eq!(slave.max_phy_offset(), offset);
    }

    // Appending anywhere but the end is refused.
    let err = slave.append_replicated(offset - 1, b"x").unwrap_err();
    assert!(err.to_string().contains("ends at"), "{err}");

    for topic in ["TopicA", "TopicB"] {
        for queue_id in 0..4 {
            let max = master.max_offset_in_queue(topic, queue_id).unwrap();
            assert_eq!(slave.max_offset_in_queue(topic, queue_id).unwrap(), max);
            let mut next = 0;
            while next < max {
                let a = master.get(topic, queue_id, next, 32, &|_| true).unwrap();
                let b = slave.get(topic, queue_id, next, 32, &|_| true).unwrap();
                assert_eq!(a.status, GetStatus::Found);
                assert_eq!(a.messages, b.messages, "{topic}/{queue_id} from {next}");
                assert_eq!(a.next_begin_offset, b.next_begin_offset);
                next = a.next_begin_offset;
            }
        }
    }
    master.close().unwrap();
    slave.close().unwrap();

    let segments = |dir: &std::path::Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir.join("commitlog"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let names = segments(master_dir.path());
    assert_eq!(names, segments(slave_dir.path()));
    for name in names {
        let a = std::fs::read(master_dir.path().join("commitlog").join(&name)).unwrap();
        let b = std::fs::read(slave_dir.path().join("commitlog").join(&name)).unwrap();
        assert!(a == b, "segment {name} differs");
    }
}

#[test]
fn garbage_from_the_master_is_refused_and_nothing_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let slave = MessageStore::open(StoreConfig::small_for_tests(dir.path())).unwrap();
    let mut garbage = vec![0u8; 300];
    garbage[..4].copy_from_slice(&200i32.to_be_bytes());
    garbage[4..8].copy_from_slice(&0x1234_5678i32.to_be_bytes());
    assert!(slave.append_replicated(0, &garbage).is_err());
    assert_eq!(slave.max_phy_offset(), 0);
}
