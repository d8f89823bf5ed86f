//! An `EIO` from a flush poisons the store, whichever file the flush was for (CommitLog,
//! ConsumeQueue, IndexFile, checkpoint) and whoever ran it (a sync-flush put, `flush`, the
//! background flush thread, the index thread sealing a file): the put that waited for it is
//! not acknowledged, and from then on no put, flush or close succeeds, even though the next
//! `fsync` would (Linux clears the error once reported, and the pages it dropped are gone).
//! Reopening recovers everything acknowledged before the failure.
//!
//! The errors are injected through the I/O seam (`SimStorage::fail_next_sync_of`).

#![cfg(test)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferromq_message::properties::{Properties, encode_properties};
use ferromq_store::internals::SimStorage;
use ferromq_store::{
    Error, FlushMode, GetStatus, MessageStore, PutMessage, RecoveryMode, StoreConfig,
};

const ROOT: &str = "/mnt/store";

fn disk() -> Arc<SimStorage> {
    let sim = Arc::new(SimStorage::new());
    sim.create_dir_all_durable(Path::new("/mnt"));
    sim
}

/// A store whose background flushing stays idle unless `flush_interval_ms` is given.
fn open(sim: &Arc<SimStorage>, flush: FlushMode, flush_interval_ms: Option<u64>) -> MessageStore {
    let mut config = StoreConfig::small_for_tests(ROOT);
    config.flush_disk_type = flush;
    let interval = flush_interval_ms.unwrap_or(60_000);
    config.flush_interval_commit_log_ms = interval;
    config.flush_interval_consume_queue_ms = interval;
    config.flush_commit_log_least_pages = 0;
    config.flush_consume_queue_least_pages = 0;
    config.clean_resource_interval_ms = 86_400_000;
    config.max_index_num = 8;
    MessageStore::open_simulated(config, sim.clone()).unwrap()
}

fn put(store: &MessageStore, n: usize) -> ferromq_store::Result<i64> {
    let properties: Properties = [("KEYS".to_owned(), format!("k{n}"))].into_iter().collect();
    let properties = encode_properties(&properties);
    let body = vec![n as u8; 300 + n % 200];
    let mut message = PutMessage::new("TopicEio", (n % 2) as i32, &body);
    message.properties = &properties;
    let result = store.put(&message)?;
    assert!(result.status.is_ok(), "{result:?}");
    Ok(result.phy_offset)
}

fn assert_poisoned<T: std::fmt::Debug>(result: ferromq_store::Result<T>) {
    match result {
        Err(Error::Poisoned { cause }) => assert!(cause.contains("os error 5"), "{cause}"),
        other => panic!("expected the store to be poisoned, got {other:?}"),
    }
}

/// Everything acknowledged is readable.
fn assert_readable(store: &MessageStore, acked: &[i64]) {
    for &phy in acked {
        assert!(store.message_by_phy_offset(phy).unwrap().is_some(), "record at {phy}");
    }
    for queue in 0..2 {
        let count = acked.len().div_ceil(2) - usize::from(queue == 1 && acked.len() % 2 == 1);
        let got = store.get("TopicEio", queue, 0, 64, &|_| true).unwrap();
        assert_eq!(got.status, GetStatus::Found);
        assert!(got.messages.len() >= count.min(32), "queue {queue}");
    }
}

/// Nothing succeeds on a poisoned store; reopening it recovers what was acknowledged.
fn assert_poisoned_then_recovers(sim: &Arc<SimStorage>, store: MessageStore, acked: &[i64]) {
    assert_poisoned(put(&store, 1000));
    assert_poisoned(store.flush());
    assert_poisoned(put(&store, 1001));
    assert_readable(&store, acked);
    assert_poisoned(store.close());
    let store = open(sim, FlushMode::Sync, None);
    assert_eq!(store.recovery_mode(), RecoveryMode::Abnormal, "close failed: abort stays");
    assert_readable(&store, acked);
    assert!(put(&store, 2000).is_ok(), "a reopened store takes puts again");
    store.close().unwrap();
}

fn put_some(store: &MessageStore, count: usize) -> Vec<i64> {
    (0..count).map(|n| put(store, n).unwrap()).collect()
}

#[test]
fn sync_flush_eio_fails_the_put_and_poisons_the_store() {
    let sim = disk();
    let store = open(&sim, FlushMode::Sync, None);
    let acked = put_some(&store, 10);
    // "commitlog/": a segment's data, not the directory, which the thread preparing the next
    // segment may still be syncing (it would take the failure instead, now and then).
    sim.fail_next_sync_of("commitlog/");
    let err = put(&store, 10).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_poisoned_then_recovers(&sim, store, &acked);
}

#[test]
fn commit_log_flush_eio_poisons_the_store() {
    let sim = disk();
    let store = open(&sim, FlushMode::Async, None);
    let acked = put_some(&store, 10);
    sim.fail_next_sync_of("commitlog/");
    let err = store.flush().unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_poisoned_then_recovers(&sim, store, &acked);
}

#[test]
fn consume_queue_flush_eio_poisons_the_store() {
    let sim = disk();
    let store = open(&sim, FlushMode::Async, None);
    let mut acked = put_some(&store, 10);
    store.flush().unwrap();
    acked.extend((10..20).map(|n| put(&store, n).unwrap()));
    sim.fail_next_sync_of("consumequeue");
    let err = store.flush().unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_poisoned_then_recovers(&sim, store, &acked);
}

#[test]
fn checkpoint_flush_eio_poisons_the_store() {
    let sim = disk();
    let store = open(&sim, FlushMode::Async, None);
    // Fewer puts than an IndexFile holds: sealing one also flushes the checkpoint, and the
    // index thread doing that late would take the failure instead of `flush`, now and then.
    let acked = put_some(&store, 4);
    sim.fail_next_sync_of("checkpoint");
    let err = store.flush().unwrap_err();
    assert!(matches!(err, Error::Io { op: "flush", .. }), "{err}");
    assert_poisoned_then_recovers(&sim, store, &acked);
}

/// Puts until the store reports it is poisoned (a background thread failed a flush).
fn put_until_poisoned(store: &MessageStore, acked: &mut Vec<i64>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in 100.. {
        assert!(Instant::now() < deadline, "the store was never poisoned");
        match put(store, n) {
            Ok(phy) => acked.push(phy),
            Err(Error::Poisoned { .. }) => return,
            // The put that hit the failed sync itself (creating a segment syncs its
            // directory) reports the I/O error; the next one finds the store poisoned.
            Err(Error::Io { .. }) => {}
            Err(err) => panic!("{err}"),
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn background_commit_log_flush_eio_poisons_the_store() {
    let sim = disk();
    let store = open(&sim, FlushMode::Async, Some(5));
    let mut acked = put_some(&store, 10);
    sim.fail_next_sync_of("commitlog");
    put_until_poisoned(&store, &mut acked);
    // What was put after the flush failed is not acknowledged as durable, but it is in
    // the page cache: the reopened store (no power cut) still has it.
    assert_poisoned_then_recovers(&sim, store, &acked);
}

#[test]
fn index_file_seal_eio_poisons_the_store() {
    // 8 entries per IndexFile: the index thread seals (flushes) one every few puts.
    let sim = disk();
    let store = open(&sim, FlushMode::Async, None);
    let mut acked = put_some(&store, 4);
    sim.fail_next_sync_of("/index/");
    put_until_poisoned(&store, &mut acked);
    assert_poisoned_then_recovers(&sim, store, &acked);
}
