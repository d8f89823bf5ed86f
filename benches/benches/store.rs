//! Criterion benchmarks of the store engine.
//!
//! Groups (each sets its throughput, so reports show messages/s or bytes/s):
//!
//! - `store/put/{128B,1KiB,4KiB}/{single,batch32}`: puts from one thread, async flush, into
//!   warm 256 MiB segments: pre-warmed by putting before measuring, samples of equal length
//!   (~10 ms), and between samples (outside the timing) old segments are deleted, so disk use
//!   stays bounded, and the background threads get time to pre-fault the space the next
//!   sample will use. `ferromq-store bench` measures the unpaused steady state instead;
//! - `store/put_sync/{1,8,64}_writers`: 1 KiB puts under sync flush, one round = one put per
//!   writer (group commit lets concurrent writers share each flush);
//! - `store/get/hot`: pulls of 32 in-memory 1 KiB messages (zero-copy views);
//! - `store/index/query`: one key lookup among 100,000 indexed messages;
//! - `store/recover/{64,256}MiB`: `MessageStore::open` after a simulated crash (abnormal
//!   recovery: CRC scan and re-dispatch of everything), the files in the page cache;
//! - `reference/memcpy_warm/{128B,1KiB,4KiB}`: copying pieces of those sizes one after
//!   another into a warm 256 MiB buffer, the ceiling for appending into a warm mapping.
//!
//! Store files go under `RMQ_BENCH_DIR` (default: the system temp directory), so numbers can
//! come from a real disk rather than tmpfs. Each fixture is built only when one of its
//! benchmarks is selected, so `cargo bench -p ferromq-benches -- --test` runs every benchmark
//! once in a few seconds.

use std::cell::Cell;
use std::fmt::Display;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use ferromq_message::batch::encode_batch_item;
use ferromq_message::record::crc_property::CRC_PROPERTY_LEN;
use ferromq_message::record::{MessageVersion, record_len};
use ferromq_store::{FlushMode, MessageStore, PutMessage, RecoveryMode, StoreConfig};
use tempfile::TempDir;

/// CommitLog segment size of the put, get and index fixtures.
const SEGMENT_BYTES: u64 = 256 << 20;
/// Bytes put before measuring, so the first segment is faulted in and the next one is being
/// pre-allocated.
const PREWARM_BYTES: u64 = 32 << 20;
/// Rate at which the background threads are assumed to prepare segment space (page faults
/// and zeroing), for the pause between put samples.
const SETTLE_BYTES_PER_S: f64 = 1e9;
/// Longest pause between put samples.
const SETTLE_MAX: Duration = Duration::from_millis(300);
/// Messages per client batch.
const BATCH_COUNT: usize = 32;
const SIZES: [(&str, usize); 3] = [("128B", 128), ("1KiB", 1024), ("4KiB", 4096)];
const SYNC_WRITERS: [usize; 3] = [1, 8, 64];
const GET_MESSAGES: i64 = 16_384;
const GET_BATCH: u32 = 32;
const INDEX_MESSAGES: usize = 100_000;
const RECOVER_MIB: [u64; 2] = [64, 256];

/// A store in its own temporary directory. Dropping it drops the store without flushing
/// (a simulated crash): the directory is deleted anyway, and writing back gigabytes of
/// benchmark data would only slow the run down.
struct Fixture {
    store: Option<MessageStore>,
    config: StoreConfig,
    /// CommitLog end when the background work last had time to catch up.
    settled_end: Cell<i64>,
    _dir: TempDir,
}

impl Fixture {
    fn new(name: &str, configure: impl FnOnce(&mut StoreConfig)) -> Fixture {
        let dir = bench_dir();
        let mut config = StoreConfig::new(dir.path().join(name));
        config.mapped_file_size_commit_log = SEGMENT_BYTES;
        configure(&mut config);
        let store = or_die(MessageStore::open(config.clone()), "open the store");
        Fixture { store: Some(store), config, settled_end: Cell::new(0), _dir: dir }
    }

    fn store(&self) -> &MessageStore {
        match &self.store {
            Some(store) => store,
            None => panic!("the fixture's store was taken"),
        }
    }

    /// Between samples, outside the timing: deletes all but the newest segment once more
    /// than two are stored, then pauses long enough for the background threads to prepare
    /// (pre-fault) as much segment space as the last sample used, at `SETTLE_BYTES_PER_S`.
    /// On this 2-core machine that preparation otherwise competes with the writer for a
    /// core; the pause keeps the segments warm, as the targets assume. The
    /// `ferromq-store bench` command measures the unpaused steady state.
    fn settle(&self) {
        let store = self.store();
        if store.max_phy_offset() - store.min_phy_offset() > 2 * SEGMENT_BYTES as i64 {
            or_die(store.delete_expired_files(), "delete old segments");
        }
        let written = (store.max_phy_offset() - self.settled_end.get()).max(0) as f64;
        let pause = Duration::from_secs_f64(written / SETTLE_BYTES_PER_S).min(SETTLE_MAX);
        std::thread::sleep(pause);
        self.settled_end.set(store.max_phy_offset());
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            store.simulate_crash();
        }
    }
}

/// A fresh directory under `RMQ_BENCH_DIR`, or under the system temp directory.
fn bench_dir() -> TempDir {
    match std::env::var_os("RMQ_BENCH_DIR") {
        Some(root) => {
            or_die(std::fs::create_dir_all(&root), "create RMQ_BENCH_DIR");
            or_die(tempfile::tempdir_in(root), "create a directory in RMQ_BENCH_DIR")
        }
        None => or_die(tempfile::tempdir(), "create a temporary directory"),
    }
}

/// Benchmarks cannot go on without their fixture: stop with the reason.
fn or_die<T, E: Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{what}: {err}"),
    }
}

fn put_ok(store: &MessageStore, message: &PutMessage<'_>) {
    let put = or_die(store.put(message), "put");
    assert!(put.status.is_ok(), "put refused: {:?}", put.status);
}

fn prewarm(store: &MessageStore, topic: &str) {
    let body = vec![b'w'; 4096];
    let message = PutMessage::new(topic, 0, &body);
    while store.max_phy_offset() < PREWARM_BYTES as i64 {
        put_ok(store, &message);
    }
}

/// A client batch body of `BATCH_COUNT` messages with `body` each.
fn batch_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..BATCH_COUNT {
        or_die(encode_batch_item(0, body, b"", &mut out), "encode a batch item");
    }
    out
}

fn put(c: &mut Criterion) {
    let mut group = c.benchmark_group("store/put");
    // Flat sampling, 100 samples of about 10 ms each: a sample writes ~25 MB, well inside
    // the 64 MiB the warm thread keeps faulted in ahead of the writer. (Criterion's default
    // linear sampling makes the last samples ten times longer than the first: those would
    // outrun the pre-faulting and measure page faults, not warm segments.)
    group
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(1));
    let mut fixture: Option<Fixture> = None;
    for (label, size) in SIZES {
        let body = vec![b'x'; size];
        put_single(&mut group, &mut fixture, label, &body);
        put_batch(&mut group, &mut fixture, label, &body);
    }
    group.finish();
}

fn put_fixture(fixture: &mut Option<Fixture>) -> &Fixture {
    fixture.get_or_insert_with(|| {
        let fixture = Fixture::new("put", |config| config.file_reserved_time_hours = 0);
        prewarm(fixture.store(), "BenchPut");
        fixture
    })
}

fn put_single(
    group: &mut BenchmarkGroup<'_, WallTime>,
    fixture: &mut Option<Fixture>,
    label: &str,
    body: &[u8],
) {
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("{label}/single"), |b| {
        let fixture = put_fixture(fixture);
        let message = PutMessage::new("BenchPut", 0, body);
        b.iter_custom(|iters| {
            fixture.settle();
            let store = fixture.store();
            let start = Instant::now();
            for _ in 0..iters {
                black_box(or_die(store.put(black_box(&message)), "put"));
            }
            start.elapsed()
        });
    });
}

fn put_batch(
    group: &mut BenchmarkGroup<'_, WallTime>,
    fixture: &mut Option<Fixture>,
    label: &str,
    body: &[u8],
) {
    let batch = batch_body(body);
    group.throughput(Throughput::Elements(BATCH_COUNT as u64));
    group.bench_function(format!("{label}/batch32"), |b| {
        let fixture = put_fixture(fixture);
        let template = PutMessage::new("BenchPut", 1, b"");
        b.iter_custom(|iters| {
            fixture.settle();
            let store = fixture.store();
            let start = Instant::now();
            for _ in 0..iters {
                black_box(or_die(store.put_batch(black_box(&template), &batch), "put batch"));
            }
            start.elapsed()
        });
    });
}

fn put_sync(c: &mut Criterion) {
    let mut group = c.benchmark_group("store/put_sync");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    let mut fixture: Option<Fixture> = None;
    let body = vec![b's'; 1024];
    for writers in SYNC_WRITERS {
        group.throughput(Throughput::Elements(writers as u64));
        group.bench_function(format!("{writers}_writers"), |b| {
            let fixture = fixture.get_or_insert_with(|| {
                Fixture::new("put_sync", |config| config.flush_disk_type = FlushMode::Sync)
            });
            b.iter_custom(|rounds| put_rounds(fixture.store(), writers, rounds, &body));
        });
    }
    group.finish();
}

/// `writers` threads each put `rounds` messages; times from the common start to the last
/// finish (thread start-up excluded).
fn put_rounds(store: &MessageStore, writers: usize, rounds: u64, body: &[u8]) -> Duration {
    let start_line = Barrier::new(writers + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|writer| {
                let start_line = &start_line;
                scope.spawn(move || {
                    let message = PutMessage::new("BenchSync", (writer % 8) as i32, body);
                    start_line.wait();
                    for _ in 0..rounds {
                        put_ok(store, &message);
                    }
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        for handle in handles {
            if handle.join().is_err() {
                panic!("a writer panicked");
            }
        }
        start.elapsed()
    })
}

fn get(c: &mut Criterion) {
    let mut group = c.benchmark_group("store/get");
    let record_bytes = get_record_len() as u64;
    group.throughput(Throughput::Bytes(record_bytes * u64::from(GET_BATCH)));
    let mut fixture: Option<Fixture> = None;
    group.bench_function("hot", |b| {
        let store = fixture.get_or_insert_with(get_fixture).store();
        let mut offset = 0;
        b.iter(|| {
            let got = or_die(store.get("BenchGet", 0, offset, GET_BATCH, &|_| true), "get");
            offset = (offset + i64::from(GET_BATCH)) % (GET_MESSAGES - i64::from(GET_BATCH));
            black_box(got)
        });
    });
    group.finish();
}

/// A queue of `GET_MESSAGES` 1 KiB messages, read once so every page is in memory.
fn get_fixture() -> Fixture {
    let fixture = Fixture::new("get", |_| {});
    let body = vec![b'g'; 1024];
    let message = PutMessage::new("BenchGet", 0, &body);
    for _ in 0..GET_MESSAGES {
        put_ok(fixture.store(), &message);
    }
    let got = or_die(fixture.store().get("BenchGet", 0, 0, GET_BATCH, &|_| true), "get");
    assert_eq!(got.messages.len(), GET_BATCH as usize, "a pull returns a full batch");
    let expected = get_record_len();
    assert!(got.messages.iter().all(|m| m.len() == expected), "records of {expected} bytes");
    fixture
}

/// Bytes of one record of the get fixture: a 1 KiB body, and as properties only the
/// record-CRC property the store appends by default.
fn get_record_len() -> usize {
    record_len(MessageVersion::for_topic("BenchGet"), 0, 1024, 8, CRC_PROPERTY_LEN)
}

fn index(c: &mut Criterion) {
    let mut group = c.benchmark_group("store/index");
    group.throughput(Throughput::Elements(1));
    let mut fixture: Option<Fixture> = None;
    let keys: Vec<String> = (0..INDEX_MESSAGES).map(|i| format!("key-{i}")).collect();
    group.bench_function("query", |b| {
        let fixture = fixture.get_or_insert_with(|| index_fixture(&keys));
        let store = fixture.store();
        let mut i = 0;
        b.iter(|| {
            i = (i + 7919) % INDEX_MESSAGES;
            let found =
                or_die(store.query_by_key("BenchIndex", &keys[i], 64, 0, i64::MAX), "query");
            black_box(found)
        });
    });
    group.finish();
}

/// `INDEX_MESSAGES` messages with `KEYS` and `UNIQ_KEY`, closed and reopened so that the
/// index has caught up.
fn index_fixture(keys: &[String]) -> Fixture {
    let mut fixture = Fixture::new("index", |_| {});
    let body = vec![b'i'; 128];
    for (i, key) in keys.iter().enumerate() {
        let properties = format!("KEYS\x01{key}\x02UNIQ_KEY\x01{i:032X}\x02");
        let message = PutMessage {
            properties: properties.as_bytes(),
            ..PutMessage::new("BenchIndex", 0, &body)
        };
        put_ok(fixture.store(), &message);
    }
    if let Some(store) = fixture.store.take() {
        or_die(store.close(), "close");
    }
    fixture.store = Some(or_die(MessageStore::open(fixture.config.clone()), "reopen"));
    let found =
        or_die(fixture.store().query_by_key("BenchIndex", &keys[1], 64, 0, i64::MAX), "query");
    assert!(!found.messages.is_empty(), "the index finds a key");
    fixture
}

fn recover(c: &mut Criterion) {
    let mut group = c.benchmark_group("store/recover");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    for mib in RECOVER_MIB {
        group.throughput(Throughput::Bytes(mib << 20));
        let mut crashed: Option<(TempDir, StoreConfig)> = None;
        group.bench_function(format!("{mib}MiB"), |b| {
            let (_, config) = crashed.get_or_insert_with(|| crashed_store(mib << 20));
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let store = or_die(MessageStore::open(config.clone()), "recover");
                    total += start.elapsed();
                    assert_eq!(store.recovery_mode(), RecoveryMode::Abnormal);
                    store.simulate_crash();
                }
                total
            });
        });
    }
    group.finish();
}

/// A store holding `bytes` of 1 KiB messages over 8 queues in one segment, left by a
/// simulated crash so every open runs abnormal recovery over all of it.
fn crashed_store(bytes: u64) -> (TempDir, StoreConfig) {
    let dir = bench_dir();
    let mut config = StoreConfig::new(dir.path().join("recover"));
    config.mapped_file_size_commit_log = (bytes * 2).max(SEGMENT_BYTES);
    config.prefault_segments = false;
    let store = or_die(MessageStore::open(config.clone()), "open");
    let body = vec![b'r'; 1024];
    let mut queue = 0;
    while store.max_phy_offset() < bytes as i64 {
        put_ok(&store, &PutMessage::new("BenchRecover", queue, &body));
        queue = (queue + 1) % 8;
    }
    store.simulate_crash();
    (dir, config)
}

fn reference(c: &mut Criterion) {
    let mut group = c.benchmark_group("reference/memcpy_warm");
    let mut buffer: Vec<u8> = Vec::new();
    for (label, size) in SIZES {
        let source = vec![0xA5u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(label, |b| {
            if buffer.is_empty() {
                buffer = vec![1u8; SEGMENT_BYTES as usize]; // every page written: warm
            }
            let mut pos = 0;
            b.iter(|| {
                buffer[pos..pos + size].copy_from_slice(black_box(&source));
                pos = if pos + 2 * size > buffer.len() { 0 } else { pos + size };
            });
            black_box(&buffer);
        });
    }
    group.finish();
}

criterion_group!(benches, put, put_sync, get, index, recover, reference);
criterion_main!(benches);
