//! Regression (found by the `segment_recovery` fuzz target): a BLANK written over the start of
//! the last segment used to make recovery jump past the segment's end, keeping ConsumeQueue
//! units that pointed at the overwritten records, so `get` served zero bytes as messages.
//! After a clean exit (normal recovery) the BLANK went unnoticed: the ConsumeQueues were
//! trusted and the unit of the overwritten record stayed, pointing at the BLANK. A BLANK
//! followed by data is now damage: in the last segment the data ends there.
#![cfg(test)]

use ferromq_message::record::{self, RecordCheck};
use ferromq_store::{MessageStore, PutMessage, StoreConfig};

#[test]
fn blank_at_the_start_of_the_last_segment_ends_the_data() {
    check_blank_in_last_segment(false);
}

#[test]
fn blank_at_the_start_of_the_last_segment_ends_the_data_after_a_clean_exit() {
    check_blank_in_last_segment(true);
}

fn check_blank_in_last_segment(remove_abort: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(StoreConfig::small_for_tests(dir.path())).unwrap();
    let body = vec![7u8; 1000];
    for _ in 0..100 {
        assert!(store.put(&PutMessage::new("TopicA", 0, &body)).unwrap().status.is_ok());
    }
    let last_segment_start = store.max_phy_offset() - store.max_phy_offset() % (64 * 1024);
    assert!(last_segment_start > 0);
    store.simulate_crash();

    let path = dir.path().join("commitlog").join(format!("{last_segment_start:020}"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..4].copy_from_slice(&(64 * 1024i32).to_be_bytes());
    bytes[4..8].copy_from_slice(&record::BLANK_MAGIC.to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    if remove_abort {
        std::fs::remove_file(dir.path().join("abort")).unwrap();
    }

    let store = MessageStore::open(StoreConfig::small_for_tests(dir.path())).unwrap();
    // The BLANK is followed by the rest of the record it overwrote: the data ends at it.
    assert_eq!(store.max_phy_offset(), last_segment_start);
    let max = store.max_offset_in_queue("TopicA", 0).unwrap();
    assert!(max > 0 && max < 100, "units past the cut are gone: max={max}");
    let mut offset = 0;
    while offset < max {
        let got = store.get("TopicA", 0, offset, 32, &|_| true).unwrap();
        assert!(!got.messages.is_empty(), "{offset}: {:?}", got.status);
        for message in &got.messages {
            assert!(matches!(record::check_record(message, true), Ok(RecordCheck::Message(_))));
        }
        offset = got.next_begin_offset;
    }
    assert_eq!(offset, max);
    // New puts continue where the data ends.
    let put = store.put(&PutMessage::new("TopicA", 0, &body)).unwrap();
    assert_eq!(put.queue_offset, max);
    store.close().unwrap();
}
