//! Abnormal recovery of damaged tails: the CommitLog segment holding the write end is edited
//! on disk after a simulated crash (a torn record, garbage, a stale copy of an older record,
//! zeros), and ConsumeQueue tails are zeroed or deleted. Recovery must keep exactly the
//! intact records, drop the damaged one, cut the ConsumeQueues to match, and let new puts
//! continue at the right queue and physical offsets.

// Helpers outside `#[test]` functions unwrap too: mark the whole file as test code so that
// clippy's `allow-unwrap-in-tests` covers them.
#![cfg(test)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferromq_message::properties::{Properties, encode_properties};
use ferromq_message::record::{self, decode_record};
use ferromq_store::{GetStatus, MessageStore, PutMessage, RecoveryMode, StoreConfig};

const TOPIC: &str = "TornTopic";
const SEGMENT_BYTES: u64 = 64 * 1024;
const CQ_UNIT_BYTES: u64 = 20;
const CQ_FILE_UNITS: u64 = 100;

/// A message the test wrote, with the bytes the store returned for it.
#[derive(Debug, Clone)]
struct Stored {
    key: String,
    queue: i32,
    queue_offset: i64,
    phy_offset: i64,
    raw: Vec<u8>,
}

impl Stored {
    fn end(&self) -> i64 {
        self.phy_offset + self.raw.len() as i64
    }
}

fn open(dir: &Path) -> MessageStore {
    MessageStore::open(StoreConfig::small_for_tests(dir)).unwrap()
}

fn body_of(queue: i32, n: usize) -> Vec<u8> {
    let len = 200 + (n * 37 + queue as usize * 11) % 500;
    (0..len).map(|i| (i * 7 + n * 13 + queue as usize) as u8).collect()
}

fn properties_of(queue: i32, n: usize) -> Vec<u8> {
    let mut properties = Properties::new();
    properties.insert("TAGS".into(), format!("tag{}", n % 3));
    properties.insert("KEYS".into(), format!("key-{queue}-{n}"));
    encode_properties(&properties)
}

/// Puts `count` messages alternating over queues 0 and 1 (the last goes to `last_queue`)
/// and returns them with their stored bytes.
fn fill(store: &MessageStore, count: usize, last_queue: i32) -> Vec<Stored> {
    let mut stored = Vec::new();
    for n in 0..count {
        let queue = if n + 1 == count { last_queue } else { (n % 2) as i32 };
        let (body, properties) = (body_of(queue, n), properties_of(queue, n));
        let mut message = PutMessage::new(TOPIC, queue, &body);
        message.properties = &properties;
        let put = store.put(&message).unwrap();
        assert!(put.status.is_ok(), "{put:?}");
        let got = store.get(TOPIC, queue, put.queue_offset, 1, &|_| true).unwrap();
        assert_eq!(got.status, GetStatus::Found);
        stored.push(Stored {
            key: format!("key-{queue}-{n}"),
            queue,
            queue_offset: put.queue_offset,
            phy_offset: put.phy_offset,
            raw: got.messages[0].to_vec(),
        });
    }
    stored
}

/// The CommitLog segment file holding physical offset `phy`, and the position in it.
fn segment_of(dir: &Path, phy: i64) -> (PathBuf, u64) {
    let phy = phy as u64;
    let start = phy - phy % SEGMENT_BYTES;
    (dir.join("commitlog").join(format!("{start:020}")), phy - start)
}

fn write_at(path: &Path, pos: u64, bytes: &[u8]) {
    let len_before = std::fs::metadata(path).unwrap().len();
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, pos).unwrap();
    file.sync_all().unwrap();
    assert_eq!(
        std::fs::metadata(path).unwrap().len(),
        len_before,
        "damage must not resize {path:?}"
    );
}

fn read_at(path: &Path, pos: u64, len: usize) -> Vec<u8> {
    let file = OpenOptions::new().read(true).open(path).unwrap();
    let mut buf = vec![0; len];
    file.read_exact_at(&mut buf, pos).unwrap();
    buf
}

/// Deterministic bytes that are no valid record.
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    // A TOTALSIZE that fits the segment, so recovery must look past the size field.
    out[..4].copy_from_slice(&(len as i32).to_be_bytes());
    out
}

/// Waits (up to 5 s) until the index finds `stored` by its key, and checks it finds exactly
/// that record.
fn assert_indexed(store: &MessageStore, stored: &Stored) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = store.query_by_key(TOPIC, &stored.key, 32, 0, i64::MAX).unwrap();
        if !found.messages.is_empty() {
            assert_eq!(found.messages.len(), 1, "{}", stored.key);
            assert_eq!(&found.messages[0][..], &stored.raw[..], "{}", stored.key);
            return;
        }
        assert!(Instant::now() < deadline, "the index never found {}", stored.key);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every message in `expected` reads back byte-identical, each queue ends where `expected`
/// says, and nothing follows.
fn assert_exactly(store: &MessageStore, expected: &[Stored]) {
    assert_records(store, expected);
    let end = expected.iter().map(Stored::end).max().unwrap_or(0);
    assert_eq!(store.max_phy_offset(), end, "CommitLog end");
}

/// As [`assert_exactly`], except for where the CommitLog ends.
fn assert_records(store: &MessageStore, expected: &[Stored]) {
    for queue in 0..2 {
        let mine: Vec<&Stored> = expected.iter().filter(|s| s.queue == queue).collect();
        let max = store.max_offset_in_queue(TOPIC, queue).unwrap();
        assert_eq!(max, mine.len() as i64, "queue {queue} max offset");
        for (offset, want) in mine.iter().enumerate() {
            assert_eq!(want.queue_offset, offset as i64, "test bookkeeping");
            let got = store.get(TOPIC, queue, offset as i64, 1, &|_| true).unwrap();
            assert_eq!(got.status, GetStatus::Found, "queue {queue} offset {offset}");
            assert_eq!(&got.messages[0][..], &want.raw[..], "queue {queue} offset {offset} bytes");
            let by_phy = store.message_by_phy_offset(want.phy_offset).unwrap().unwrap();
            assert_eq!(&by_phy[..], &want.raw[..], "record at {}", want.phy_offset);
        }
        let past = store.get(TOPIC, queue, max, 1, &|_| true).unwrap();
        assert_eq!(past.status, GetStatus::OffsetOverflowOne, "queue {queue} after the end");
    }
}

/// After recovery: new puts continue at the right offsets, and a clean restart keeps it all.
fn assert_puts_continue(
    dir: &Path,
    store: MessageStore,
    mut expected: Vec<Stored>,
    dropped: &[String],
) {
    let end = expected.iter().map(Stored::end).max().unwrap_or(0);
    let mut next_phy = end;
    for (i, queue) in [1, 0, 1].into_iter().enumerate() {
        let n = 10_000 + i;
        let (body, properties) = (body_of(queue, n), properties_of(queue, n));
        let mut message = PutMessage::new(TOPIC, queue, &body);
        message.properties = &properties;
        let put = store.put(&message).unwrap();
        assert!(put.status.is_ok(), "{put:?}");
        let next_offset = expected.iter().filter(|s| s.queue == queue).count() as i64;
        assert_eq!(put.queue_offset, next_offset, "new put {i} on queue {queue}");
        let fits = (next_phy as u64 % SEGMENT_BYTES) + put.wrote_bytes as u64 + 8 <= SEGMENT_BYTES;
        let want_phy = if fits {
            next_phy
        } else {
            next_phy + (SEGMENT_BYTES - next_phy as u64 % SEGMENT_BYTES) as i64
        };
        assert_eq!(put.phy_offset, want_phy, "new put {i} starts at the recovered end");
        let raw =
            store.get(TOPIC, queue, put.queue_offset, 1, &|_| true).unwrap().messages[0].to_vec();
        let (rec, _) = decode_record(&raw).unwrap();
        assert_eq!(
            (rec.body, rec.queue_offset, rec.physical_offset),
            (&body[..], put.queue_offset, put.phy_offset)
        );
        next_phy = put.phy_offset + put.wrote_bytes as i64;
        let key = format!("key-{queue}-{n}");
        expected.push(Stored {
            key,
            queue,
            queue_offset: put.queue_offset,
            phy_offset: put.phy_offset,
            raw,
        });
    }
    assert_exactly(&store, &expected);
    // The new records may sit where dropped ones were: the index must not send a query for
    // a dropped key to them.
    assert_indexed(&store, expected.last().unwrap());
    for key in dropped {
        let found = store.query_by_key(TOPIC, key, 32, 0, i64::MAX).unwrap();
        assert!(
            found.messages.is_empty(),
            "dropped key {key} still finds {} record(s)",
            found.messages.len()
        );
    }
    store.close().unwrap();
    let store = open(dir);
    assert_eq!(store.recovery_mode(), RecoveryMode::Normal);
    assert_exactly(&store, &expected);
    store.close().unwrap();
}

/// Writes messages, crashes, applies `damage` to the files, reopens, and checks the store
/// holds exactly `survivors(&written)`.
fn scenario(
    last_queue: i32,
    damage: impl FnOnce(&Path, &[Stored]),
    survivors: impl FnOnce(&[Stored]) -> Vec<Stored>,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let written = fill(&store, 500, last_queue);
    let last = written.last().unwrap();
    // Let the index reach the last record, so that recovery has index entries to cut.
    assert_indexed(&store, last);
    assert!(last.phy_offset as u64 >= 2 * SEGMENT_BYTES, "the test wants several segment rolls");
    assert!(
        !(last.phy_offset as u64).is_multiple_of(SEGMENT_BYTES),
        "the last record is not a segment's first"
    );
    store.simulate_crash();

    damage(dir.path(), &written);
    let expected = survivors(&written);

    let store = open(dir.path());
    assert_eq!(store.recovery_mode(), RecoveryMode::Abnormal);
    assert_exactly(&store, &expected);
    let dropped: Vec<String> = written
        .iter()
        .filter(|w| !expected.iter().any(|e| e.phy_offset == w.phy_offset))
        .map(|w| w.key.clone())
        .collect();
    assert_indexed(&store, expected.last().unwrap());
    for key in &dropped {
        assert!(
            store.query_by_key(TOPIC, key, 32, 0, i64::MAX).unwrap().messages.is_empty(),
            "{key}"
        );
    }
    assert_puts_continue(dir.path(), store, expected, &dropped);
}

fn all_but_last(written: &[Stored]) -> Vec<Stored> {
    written[..written.len() - 1].to_vec()
}

#[test]
fn recover_drops_torn_last_record() {
    // Only the first half of the last record reached the file; the rest is zeros.
    scenario(
        1,
        |dir, written| {
            let last = written.last().unwrap();
            let (path, pos) = segment_of(dir, last.phy_offset);
            let half = last.raw.len() / 2;
            write_at(&path, pos, &vec![0; last.raw.len()]);
            write_at(&path, pos, &last.raw[..half]);
        },
        all_but_last,
    );
}

#[test]
fn recover_ignores_torn_append_after_last_record() {
    // The first half of a record that would have been valid at the end: a torn append.
    scenario(
        0,
        |dir, written| {
            let last = written.last().unwrap();
            let mut next = last.raw.clone();
            record::set_physical_offset(&mut next, last.end()).unwrap();
            record::set_queue_offset(&mut next, last.queue_offset + 1).unwrap();
            let (path, pos) = segment_of(dir, last.end());
            write_at(&path, pos, &next[..next.len() / 2]);
        },
        <[Stored]>::to_vec,
    );
}

#[test]
fn recover_drops_garbage_over_last_record() {
    scenario(
        1,
        |dir, written| {
            let last = written.last().unwrap();
            let (path, pos) = segment_of(dir, last.phy_offset);
            write_at(&path, pos, &garbage(last.raw.len(), 0xDEAD_BEEF));
        },
        all_but_last,
    );
}

#[test]
fn recover_ignores_garbage_after_last_record() {
    scenario(
        0,
        |dir, written| {
            let last = written.last().unwrap();
            let (path, pos) = segment_of(dir, last.end());
            let room = (SEGMENT_BYTES - pos).min(3000) as usize;
            write_at(&path, pos, &garbage(room, 0x1234_5678));
        },
        <[Stored]>::to_vec,
    );
}

#[test]
fn recover_rejects_stale_copy_of_older_record_at_tail() {
    // A valid record (good CRC, good length) that claims another physical offset: left over
    // from before an earlier truncation. It must not be taken as a new record.
    scenario(
        1,
        |dir, written| {
            let last = written.last().unwrap();
            let old = &written[written.len() - 5];
            assert!(record::check_record(&old.raw, true).is_ok());
            let (path, pos) = segment_of(dir, last.end());
            assert!(pos + old.raw.len() as u64 + 8 <= SEGMENT_BYTES, "the copy fits the segment");
            write_at(&path, pos, &old.raw);
        },
        <[Stored]>::to_vec,
    );
}

#[test]
fn recover_rejects_stale_copy_of_older_record_over_last_record() {
    // The last record's place holds an older record instead (a stale page), with its old
    // physical offset: the last record is gone, and the copy must not replace it.
    scenario(
        1,
        |dir, written| {
            let last = written.last().unwrap();
            let old = written.iter().rev().skip(1).find(|s| s.raw.len() <= last.raw.len()).unwrap();
            let (path, pos) = segment_of(dir, last.phy_offset);
            write_at(&path, pos, &vec![0; last.raw.len()]);
            write_at(&path, pos, &old.raw);
        },
        all_but_last,
    );
}

#[test]
fn recover_cuts_everything_after_a_damaged_record_in_an_older_segment() {
    // RocketMQ's rule: recovery stops at the first invalid record. A damaged record in an
    // older segment takes every later record with it: later segments are deleted and the
    // ConsumeQueues are cut back across a file boundary.
    const DAMAGED: usize = 230;
    scenario(
        1,
        |dir, written| {
            let victim = &written[DAMAGED];
            let last = written.last().unwrap();
            assert!(
                last.phy_offset as u64 / SEGMENT_BYTES
                    > victim.phy_offset as u64 / SEGMENT_BYTES + 1
            );
            let (path, pos) = segment_of(dir, victim.phy_offset);
            write_at(&path, pos, &garbage(victim.raw.len(), 0xFEED));
        },
        |written| written[..DAMAGED].to_vec(),
    );
}

#[test]
fn recover_drops_zeroed_last_record() {
    scenario(
        0,
        |dir, written| {
            let last = written.last().unwrap();
            let (path, pos) = segment_of(dir, last.phy_offset);
            write_at(&path, pos, &vec![0; last.raw.len()]);
        },
        all_but_last,
    );
}

#[test]
fn recover_drops_last_record_with_bad_body_crc() {
    // One flipped body byte: the length is right, the CRC is not.
    scenario(
        1,
        |dir, written| {
            let last = written.last().unwrap();
            let (path, pos) = segment_of(dir, last.phy_offset);
            let at = pos + last.raw.len() as u64 - 40;
            let byte = read_at(&path, at, 1)[0];
            write_at(&path, at, &[byte ^ 0xFF]);
        },
        all_but_last,
    );
}

/// The ConsumeQueue file of queue `queue` holding queue offset `offset`, and the position.
fn cq_file_of(dir: &Path, queue: i32, offset: i64) -> (PathBuf, u64) {
    let file_bytes = CQ_FILE_UNITS * CQ_UNIT_BYTES;
    let logic = offset as u64 * CQ_UNIT_BYTES;
    let start = logic - logic % file_bytes;
    let path =
        dir.join("consumequeue").join(TOPIC).join(queue.to_string()).join(format!("{start:020}"));
    (path, logic - start)
}

/// Writes 250 messages per queue (three ConsumeQueue files each), crashes, applies `damage`,
/// reopens, and checks that every queue was rebuilt in full, tags codes included.
fn cq_scenario(damage: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let written = fill(&store, 500, 1);
    assert_eq!(store.max_offset_in_queue(TOPIC, 0).unwrap(), 250);
    store.simulate_crash();

    damage(dir.path());

    let store = open(dir.path());
    assert_eq!(store.recovery_mode(), RecoveryMode::Abnormal);
    assert_exactly(&store, &written);
    // The tags codes were rebuilt too: a tag filter sees exactly the tagged messages.
    for queue in 0..2 {
        let want_code = i64::from(ferromq_message::hash::java_string_hash("tag2"));
        let (mut offset, mut matched) = (0, Vec::new());
        while offset < 250 {
            let got = store.get(TOPIC, queue, offset, 32, &|code| code == want_code).unwrap();
            for raw in &got.messages {
                let (rec, _) = decode_record(raw).unwrap();
                assert_eq!(rec.property("TAGS"), Some(&b"tag2"[..]));
                matched.push(rec.queue_offset);
            }
            offset = got.next_begin_offset;
        }
        let expected: Vec<i64> = written
            .iter()
            .enumerate()
            .filter(|(n, s)| s.queue == queue && n % 3 == 2)
            .map(|(_, s)| s.queue_offset)
            .collect();
        assert_eq!(matched, expected, "queue {queue} tag filter");
    }
    assert_puts_continue(dir.path(), store, written, &[]);
}

#[test]
fn recover_rebuilds_zeroed_consume_queue_tail() {
    // The last 70 units of queue 0 never reached the disk: the whole last file's units and
    // the end of the one before.
    cq_scenario(|dir| {
        for offset in 180..250 {
            let (path, pos) = cq_file_of(dir, 0, offset);
            write_at(&path, pos, &[0; CQ_UNIT_BYTES as usize]);
        }
    });
}

#[test]
fn recover_rebuilds_torn_consume_queue_unit() {
    // The last unit of queue 1 is torn: its physical offset arrived, its size did not.
    cq_scenario(|dir| {
        let (path, pos) = cq_file_of(dir, 1, 249);
        write_at(&path, pos + 8, &[0; 12]);
    });
}

#[test]
fn recover_rebuilds_deleted_consume_queue_files() {
    // Queue 0 lost its newest file, queue 1 lost all of them.
    cq_scenario(|dir| {
        let (last, _) = cq_file_of(dir, 0, 249);
        std::fs::remove_file(&last).unwrap();
        let queue_dir = dir.join("consumequeue").join(TOPIC).join("1");
        std::fs::remove_dir_all(&queue_dir).unwrap();
    });
}

/// Polls up to 2 s for a CommitLog segment file at or after `from` (the store pre-allocates
/// the next segment on a background thread after open).
fn wait_for_segment_file_from(dir: &Path, from: u64) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let found = std::fs::read_dir(dir.join("commitlog")).unwrap().any(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.parse::<u64>().is_ok_and(|start| start >= from)
        });
        if found {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn recovery_ending_at_a_segment_boundary_leaves_a_store_that_opens_again() {
    // A crash after the BLANK that closes a segment was written but before the record that
    // opens the next one was: recovery ends exactly at a segment boundary. Closing the
    // recovered store without putting anything must leave a store that opens again.
    //
    // Regression: open used to pre-allocate the segment *after* the one starting at `end`,
    // leaving a gap (…, N-1, N+1) that the next open refused as corrupt.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut written = Vec::new();
    for n in 0.. {
        let queue = i32::from(n == 0);
        let (body, properties) = (body_of(queue, n), properties_of(queue, n));
        let mut message = PutMessage::new(TOPIC, queue, &body);
        message.properties = &properties;
        let put = store.put(&message).unwrap();
        let raw =
            store.get(TOPIC, queue, put.queue_offset, 1, &|_| true).unwrap().messages[0].to_vec();
        let key = format!("key-{queue}-{n}");
        written.push(Stored {
            key,
            queue,
            queue_offset: put.queue_offset,
            phy_offset: put.phy_offset,
            raw,
        });
        if put.phy_offset as u64 >= 2 * SEGMENT_BYTES
            && (put.phy_offset as u64).is_multiple_of(SEGMENT_BYTES)
        {
            break;
        }
    }
    store.simulate_crash();
    let last = written.pop().unwrap();
    let boundary = last.phy_offset as u64;
    let (path, pos) = segment_of(dir.path(), last.phy_offset);
    assert_eq!(pos, 0);
    write_at(&path, 0, &vec![0; last.raw.len()]);

    let store = open(dir.path());
    assert_eq!(store.recovery_mode(), RecoveryMode::Abnormal);
    assert_records(&store, &written);
    assert_eq!(store.max_phy_offset() as u64, boundary, "the BLANK before the boundary is kept");
    wait_for_segment_file_from(dir.path(), boundary);
    store.close().unwrap();

    let store = MessageStore::open(StoreConfig::small_for_tests(dir.path()))
        .expect("a store closed cleanly after recovery must open again");
    assert_eq!(store.recovery_mode(), RecoveryMode::Normal);
    assert_records(&store, &written);
    assert_eq!(store.max_phy_offset() as u64, boundary);
    assert_puts_continue(dir.path(), store, written, &[last.key]);
}
