//! A full disk: puts fail with a clear `DiskFull` error naming the file that could not be
//! allocated, nothing written before is lost, and puts succeed again once space is freed;
//! after a restart everything acknowledged is there.
//!
//! Twice: with `ENOSPC` injected through the I/O seam (a simulated disk whose capacity the
//! test sets), and on a real size-limited tmpfs (only when running as root, where `mount`
//! works; otherwise the test says it skipped and passes).

#![cfg(test)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferromq_store::internals::SimStorage;
use ferromq_store::{Error, FlushMode, GetStatus, MessageStore, PutMessage, StoreConfig};

const QUEUES: i32 = 3;

fn config(dir: impl Into<PathBuf>, flush: FlushMode) -> StoreConfig {
    let mut config = StoreConfig::small_for_tests(dir);
    config.flush_disk_type = flush;
    // Expiry would delete the oldest segments of a nearly full disk (RocketMQ's forced
    // cleaning): keep it out, this test is about ENOSPC.
    config.clean_resource_interval_ms = 86_400_000;
    config
}

/// What was acknowledged: queue, queue offset, body.
type Acked = Vec<(i32, i64, Vec<u8>)>;

fn put(store: &MessageStore, n: usize) -> ferromq_store::Result<(i32, i64, Vec<u8>)> {
    let queue = (n % QUEUES as usize) as i32;
    let body: Vec<u8> = (0..1000).map(|i| (i + n) as u8).collect();
    let result = store.put(&PutMessage::new("FullTopic", queue, &body))?;
    assert!(result.status.is_ok(), "{result:?}");
    Ok((queue, result.queue_offset, body))
}

/// Puts until one fails, which must be `DiskFull`; returns what was acknowledged.
fn put_until_full(store: &MessageStore, acked: &mut Acked, limit: usize) -> Error {
    for n in acked.len()..limit {
        match put(store, n) {
            Ok(put) => acked.push(put),
            Err(err) => {
                assert!(matches!(err, Error::DiskFull { .. }), "{err}");
                assert!(err.to_string().starts_with("disk full: cannot allocate"), "{err}");
                return err;
            }
        }
    }
    panic!("the disk never filled up in {limit} puts");
}

/// Every acknowledged message is readable, byte for byte, at its queue offset.
fn assert_all_there(store: &MessageStore, acked: &Acked) {
    for (queue, offset, body) in acked {
        let got = store.get("FullTopic", *queue, *offset, 1, &|_| true).unwrap();
        assert_eq!(got.status, GetStatus::Found, "{queue}@{offset}");
        let (rec, _) = ferromq_message::record::decode_record(&got.messages[0]).unwrap();
        assert_eq!(rec.body, &body[..], "{queue}@{offset}");
    }
    for queue in 0..QUEUES {
        let count = acked.iter().filter(|a| a.0 == queue).count() as i64;
        assert_eq!(store.max_offset_in_queue("FullTopic", queue).unwrap(), count);
    }
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn enospc_fails_puts_keeps_what_was_written_and_recovers_once_space_is_freed() {
    for flush in [FlushMode::Async, FlushMode::Sync] {
        let sim = Arc::new(SimStorage::new());
        sim.create_dir_all_durable(Path::new("/mnt"));
        let store = MessageStore::open_simulated(config("/mnt/store", flush), sim.clone()).unwrap();
        let mut acked = Acked::new();
        for n in 0..20 {
            acked.push(put(&store, n).unwrap());
        }
        // Room for what exists and a little more: the next segment cannot be allocated.
        let next_segment = Path::new("/mnt/store/commitlog/00000000000000065536");
        wait_for("the background allocation", || sim.files().iter().any(|f| f == next_segment));
        let used: u64 =
            sim.files().iter().map(|f| sim.file_contents(f).unwrap().len() as u64).sum();
        sim.set_capacity_bytes(used + 1000);
        let err = put_until_full(&store, &mut acked, 1000);
        assert!(err.to_string().contains("/mnt/store/"), "{err}");
        // Still full: the put that failed fails again, cleanly, and nothing written before
        // is lost.
        for _ in 0..3 {
            assert!(matches!(put(&store, acked.len()), Err(Error::DiskFull { .. })));
        }
        assert_all_there(&store, &acked);
        // Space is freed: puts go on where they stopped.
        sim.set_capacity_bytes(1 << 40);
        let before = acked.len();
        for n in before..before + 100 {
            acked.push(put(&store, n).unwrap());
        }
        assert_all_there(&store, &acked);
        store.close().unwrap();
        let store = MessageStore::open_simulated(config("/mnt/store", flush), sim.clone()).unwrap();
        assert_all_there(&store, &acked);
        store.close().unwrap();
    }
}

#[test]
fn enospc_creating_a_new_queue_writes_nothing() {
    // A put to a new queue needs its ConsumeQueue file first: when that fails the record is
    // not written either, so no record is left without its unit.
    let sim = Arc::new(SimStorage::new());
    sim.create_dir_all_durable(Path::new("/mnt"));
    let store =
        MessageStore::open_simulated(config("/mnt/store", FlushMode::Async), sim.clone()).unwrap();
    let acked = vec![put(&store, 0).unwrap()];
    let next_segment = Path::new("/mnt/store/commitlog/00000000000000065536");
    wait_for("the background allocation", || sim.files().iter().any(|f| f == next_segment));
    let end = store.max_phy_offset();
    sim.fail_create_with_enospc_at(1);
    let err = store.put(&PutMessage::new("NewTopic", 0, b"x")).unwrap_err();
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");
    assert!(err.to_string().contains("consumequeue/NewTopic/0"), "{err}");
    assert_eq!(store.max_phy_offset(), end, "nothing reached the commit log");
    let put = store.put(&PutMessage::new("NewTopic", 0, b"y")).unwrap();
    assert_eq!(put.queue_offset, 0);
    assert_all_there(&store, &acked);
    store.close().unwrap();
}

#[test]
fn a_failed_background_allocation_does_not_fail_the_roll_once_space_is_back() {
    // Regression (found by the tmpfs test): the next segment is created in the background;
    // when that failed on a full disk, the roll that needed it failed with that old error
    // even after space was freed.
    let sim = Arc::new(SimStorage::new());
    sim.create_dir_all_durable(Path::new("/mnt"));
    let store =
        MessageStore::open_simulated(config("/mnt/store", FlushMode::Async), sim.clone()).unwrap();
    // The first put rolls into the first segment, which starts allocating the second.
    let mut acked = vec![put(&store, 0).unwrap()];
    let second = Path::new("/mnt/store/commitlog/00000000000000065536");
    wait_for("the background allocation", || sim.files().iter().any(|f| f == second));
    let mut n = 1;
    while store.max_phy_offset() < 60_000 {
        acked.push(put(&store, n).unwrap());
        n += 1;
    }
    // The roll into the second segment starts allocating the third, which fails.
    sim.fail_create_with_enospc_at(1);
    while store.max_phy_offset() < 70_000 {
        acked.push(put(&store, n).unwrap());
        n += 1;
    }
    std::thread::sleep(Duration::from_millis(50));
    // Space is there again: the roll into the third segment must succeed.
    while store.max_phy_offset() < 140_000 {
        acked.push(put(&store, n).unwrap());
        n += 1;
    }
    assert_all_there(&store, &acked);
    store.close().unwrap();
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it), or says why it cannot.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        if !rustix::process::geteuid().is_root() {
            return Err("not running as root".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "ferromq-test"])
            .arg(dir.path())
            .status()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !status.success() {
            return Err(format!("mount failed: {status}"));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn enospc_on_a_size_limited_tmpfs() {
    let tmpfs = match Tmpfs::mount("1m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            eprintln!("skipped: a size-limited tmpfs is needed ({why})");
            return;
        }
    };
    // Ballast to delete later, so that space can be freed.
    let ballast = tmpfs.path().join("ballast");
    std::fs::write(&ballast, vec![1u8; 256 * 1024]).unwrap();
    let root = tmpfs.path().join("store");
    let store = MessageStore::open(config(&root, FlushMode::Sync)).unwrap();
    let mut acked = Acked::new();
    let err = put_until_full(&store, &mut acked, 2000);
    assert!(err.to_string().contains(&*root.to_string_lossy()), "{err}");
    assert!(acked.len() > 100, "the disk filled up after {} puts", acked.len());
    eprintln!("tmpfs full after {} puts: {err}", acked.len());
    // While the disk stays full a put either fails the same way or (when a failed
    // background allocation gave its blocks back) succeeds; never anything else.
    for _ in 0..20 {
        match put(&store, acked.len()) {
            Ok(put) => acked.push(put),
            Err(err) => assert!(matches!(err, Error::DiskFull { .. }), "{err}"),
        }
    }
    assert_all_there(&store, &acked);
    std::fs::remove_file(&ballast).unwrap();
    let before = acked.len();
    // Regression: the first put after the space was freed failed too, with the error the
    // background allocation of the next segment had met while the disk was full.
    for n in before..before + 50 {
        acked.push(put(&store, n).unwrap());
    }
    assert_all_there(&store, &acked);
    store.close().unwrap();
    let store = MessageStore::open(config(&root, FlushMode::Sync)).unwrap();
    assert_all_there(&store, &acked);
    store.close().unwrap();
}
