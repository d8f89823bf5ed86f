//! A put allocates nothing on the heap in steady state (issue 3): the record is encoded into
//! a per-thread buffer, the queue's state is found in the writer's map and the unit written
//! through its cursor. Counted with an instrumented global allocator over many puts; the
//! background threads may allocate a little meanwhile (flush ticks), never per put.

use std::alloc::System;

use ferromq_store::{MessageStore, PutMessage, StoreConfig};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PUTS: usize = 20_000;

#[test]
fn steady_state_puts_do_not_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.mapped_file_size_commit_log = 64 << 20;
    // The index thread copies keys out of records it indexes; this test is about the put.
    config.message_index_enable = false;
    let store = MessageStore::open(config).unwrap();
    let body = vec![b'x'; 1024];
    let properties = b"TAGS\x01tag\x02UNIQ_KEY\x010A0000010000000000000000000000AB\x02";
    let message = PutMessage { properties, ..PutMessage::new("AllocTopic", 3, &body) };
    // Warm up: the queue, its file and the thread-local buffers exist after this.
    for _ in 0..1_000 {
        assert!(store.put(&message).unwrap().status.is_ok());
    }
    let region = Region::new(GLOBAL);
    for _ in 0..PUTS {
        let put = store.put(&message).unwrap();
        assert!(put.status.is_ok());
    }
    let stats = region.change();
    // Per put would be at least PUTS; allow a few for background threads.
    assert!(
        stats.allocations + stats.reallocations < PUTS / 100,
        "{} allocations and {} reallocations during {PUTS} puts",
        stats.allocations,
        stats.reallocations
    );
    store.close().unwrap();
}
