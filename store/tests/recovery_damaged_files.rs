//! Damaged files. For each kind of file (CommitLog segment, ConsumeQueue, IndexFile,
//! checkpoint, abort) and each kind of damage (truncation, zero fill, random bytes, a stale
//! copy of an older valid record in the tail), recovery never panics, keeps the longest valid
//! prefix (what the CommitLog still holds, with ConsumeQueues and IndexFiles rebuilt from it),
//! and warns once, naming the file and the offset. Bit flips and other damage inside a sealed
//! CommitLog segment (one followed by more data) are found on read, by CRC, with an error
//! naming the file and the offset; every other record stays readable and recovery never
//! truncates the segment.
//!
//! Each case builds a store of 200 keyed messages in four queues (four 64 KiB CommitLog
//! segments, 20-unit ConsumeQueue files, 64-entry IndexFiles), closes it, damages one file,
//! reopens it while capturing the log, and checks every message: kept (readable, byte for
//! byte, and found by key), lost (past its queue's end, never served) or damaged (its unit
//! stays and reading it fails with `Corrupt`). A put then lands right after what was kept,
//! and a second reopen finds the same store.

#![cfg(test)]

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferromq_message::properties::{Properties, encode_properties};
use ferromq_store::{Error, GetStatus, MessageStore, PutMessage, StoreConfig};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::util::SubscriberInitExt;

const SEGMENT: u64 = 64 * 1024;
const CQ_UNITS: u64 = 20;
const MESSAGES: usize = 200;
const QUEUES: [(&str, i32); 4] = [("TopicA", 0), ("TopicA", 1), ("TopicB", 0), ("TopicB", 1)];
/// Entries per IndexFile (the file is 40 + 16 × 4 + 64 × 20 = 1,384 bytes).
const INDEX_ENTRIES: u64 = 64;
const INDEX_SLOTS: u64 = 16;
const INDEX_FILE_LEN: u64 = 40 + INDEX_SLOTS * 4 + INDEX_ENTRIES * 20;

fn config(dir: &Path) -> StoreConfig {
    let mut config = StoreConfig::small_for_tests(dir);
    config.mapped_file_size_consume_queue = CQ_UNITS * 20;
    config.max_hash_slot_num = INDEX_SLOTS as u32;
    config.max_index_num = INDEX_ENTRIES as u32;
    config
}

/// One stored message, as put.
#[derive(Debug, Clone)]
struct Stored {
    topic: &'static str,
    queue: i32,
    queue_offset: i64,
    phy: u64,
    raw: Vec<u8>,
    key: String,
}

impl Stored {
    fn segment(&self) -> u64 {
        self.phy - self.phy % SEGMENT
    }

    /// Position in its segment file.
    fn pos(&self) -> u64 {
        self.phy % SEGMENT
    }

    fn end(&self) -> u64 {
        self.phy + self.raw.len() as u64
    }
}

/// What a message must be after recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Kept,
    Lost,
    Damaged,
}

fn body(n: usize) -> Vec<u8> {
    let len = 400 + (n * 7919) % 1000;
    (0..len).map(|i| (i * 31 + n * 17) as u8).collect()
}

/// Fills a fresh store with `MESSAGES` keyed messages and closes it.
fn fill(dir: &Path) -> Vec<Stored> {
    let store = MessageStore::open(config(dir)).unwrap();
    let mut stored = Vec::new();
    for n in 0..MESSAGES {
        if n + 1 == MESSAGES {
            // The last record gets a later store time than every earlier one, so that the
            // checkpoint's flushed time proves the segments before it flushed whole.
            std::thread::sleep(Duration::from_millis(3));
        }
        let (topic, queue) = QUEUES[n % QUEUES.len()];
        let key = format!("key-{n}");
        let properties: Properties = [("KEYS".to_owned(), key.clone())].into_iter().collect();
        let properties = encode_properties(&properties);
        let body = body(n);
        let mut message = PutMessage::new(topic, queue, &body);
        message.properties = &properties;
        let put = store.put(&message).unwrap();
        assert!(put.status.is_ok());
        let phy = put.phy_offset as u64;
        let raw = store.message_by_phy_offset(put.phy_offset).unwrap().unwrap().to_vec();
        stored.push(Stored { topic, queue, queue_offset: put.queue_offset, phy, raw, key });
    }
    let last = stored.last().unwrap();
    assert!(last.phy > 3 * SEGMENT && last.end() < 4 * SEGMENT, "four segments of data");
    assert!(stored[stored.len() - 5].segment() == last.segment(), "the last one holds five");
    store.close().unwrap();
    stored
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join("commitlog").join(format!("{segment:020}"))
}

fn cq_path(dir: &Path, topic: &str, queue: i32, file: u64) -> PathBuf {
    let name = format!("{:020}", file * CQ_UNITS * 20);
    dir.join("consumequeue").join(topic).join(queue.to_string()).join(name)
}

fn index_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir.join("index")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

// ---------------------------------------------------------------------------------------
// Damage

fn write_at(path: &Path, pos: u64, bytes: &[u8]) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, pos).unwrap();
    file.sync_all().unwrap();
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

fn zero_fill(path: &Path, pos: u64, len: usize) {
    write_at(path, pos, &vec![0; len]);
}

fn random_fill(path: &Path, pos: u64, len: usize, seed: u64) {
    let mut state = seed;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect();
    write_at(path, pos, &bytes);
}

fn flip_bit(path: &Path, pos: u64, bit: u8) {
    let file = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, pos).unwrap();
    file.write_all_at(&[byte[0] ^ (1 << bit)], pos).unwrap();
}

fn write_abort(dir: &Path, content: &[u8]) {
    std::fs::File::create(dir.join("abort")).unwrap().write_all(content).unwrap();
}

// ---------------------------------------------------------------------------------------
// Reopening and checking

/// The log lines a `tracing` subscriber writes, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Opens the store, returning it with the warnings recovery logged (on this thread).
fn open_capturing(dir: &Path) -> (MessageStore, Vec<String>) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(LevelFilter::WARN)
        .finish();
    let store = {
        let _guard = subscriber.set_default();
        MessageStore::open(config(dir)).unwrap()
    };
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings = text.lines().filter(|line| line.contains("WARN")).map(str::to_owned).collect();
    (store, warnings)
}

/// Exactly one warning names `file`; returns it.
fn warned_once<'a>(warnings: &'a [String], file: &Path) -> &'a str {
    let naming: Vec<&String> =
        warnings.iter().filter(|w| w.contains(&*file.to_string_lossy())).collect();
    assert_eq!(naming.len(), 1, "warnings naming {}: {warnings:#?}", file.display());
    naming[0]
}

/// Exactly one warning names `file`, and it names `offset` too.
fn assert_warned_once(warnings: &[String], file: &Path, offset: u64) {
    let warning = warned_once(warnings, file);
    let offset = offset.to_string();
    let says_offset = warning.split(|c: char| !c.is_ascii_digit()).any(|number| number == offset);
    assert!(says_offset, "offset {offset} in {warning}");
}

fn get_error(store: &MessageStore, s: &Stored) -> String {
    match store.get(s.topic, s.queue, s.queue_offset, 1, &|_| true) {
        Err(err @ Error::Corrupt { .. }) => err.to_string(),
        other => panic!(
            "{}/{}@{}: expected a corruption error, got {other:?}",
            s.topic, s.queue, s.queue_offset
        ),
    }
}

/// Checks every message against its fate, then that a put lands after what was kept.
fn check(dir: &Path, store: &MessageStore, stored: &[Stored], fate: &dyn Fn(&Stored) -> Fate) {
    for &(topic, queue) in &QUEUES {
        let mine: Vec<&Stored> =
            stored.iter().filter(|s| s.topic == topic && s.queue == queue).collect();
        let present = mine.iter().take_while(|s| fate(s) != Fate::Lost).count();
        assert!(
            mine[present..].iter().all(|s| fate(s) == Fate::Lost),
            "{topic}/{queue}: what is lost is a suffix"
        );
        assert_eq!(
            store.max_offset_in_queue(topic, queue).unwrap(),
            present as i64,
            "{topic}/{queue}"
        );
        assert_eq!(store.min_offset_in_queue(topic, queue), 0);
        for s in &mine[..present] {
            if fate(s) == Fate::Damaged {
                let error = get_error(store, s);
                let file = segment_path(dir, s.segment());
                assert!(error.contains(&*file.to_string_lossy()), "{error}");
                assert!(error.contains(&s.phy.to_string()), "{error}");
                // By offset: an error if a record still starts there, else nothing.
                let by_offset = store.message_by_phy_offset(s.phy as i64);
                assert!(
                    matches!(by_offset, Err(Error::Corrupt { .. }) | Ok(None)),
                    "{by_offset:?}"
                );
                continue;
            }
            let got = store.get(topic, queue, s.queue_offset, 1, &|_| true).unwrap();
            assert_eq!(got.status, GetStatus::Found, "{topic}/{queue}@{}", s.queue_offset);
            assert_eq!(&got.messages[0][..], &s.raw[..], "{topic}/{queue}@{}", s.queue_offset);
        }
        for s in &mine[present..] {
            let got = store.get(topic, queue, s.queue_offset, 1, &|_| true).unwrap();
            assert!(got.messages.is_empty(), "lost {topic}/{queue}@{} is served", s.queue_offset);
            let by_offset = store.message_by_phy_offset(s.phy as i64).unwrap();
            assert!(
                by_offset.is_none_or(|b| b[..] != s.raw[..]),
                "lost record at {} is served",
                s.phy
            );
        }
    }
    check_keys(store, stored, fate);
}

/// Every kept message is found by its key once the index thread caught up, and a damaged
/// one is left out of the answer.
fn check_keys(store: &MessageStore, stored: &[Stored], fate: &dyn Fn(&Stored) -> Fate) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for s in stored {
        loop {
            let found = store.query_by_key(s.topic, &s.key, 64, 0, i64::MAX).unwrap();
            let hit = found.messages.iter().any(|m| m[..] == s.raw[..]);
            match fate(s) {
                Fate::Kept if hit => break,
                Fate::Kept if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Fate::Kept => panic!("key {} of the record at {} is not found", s.key, s.phy),
                Fate::Lost | Fate::Damaged => {
                    assert!(!hit, "key {} finds a {:?} record", s.key, fate(s));
                    break;
                }
            }
        }
    }
}

/// A put after recovery lands at its queue's end, right after what was kept.
fn check_put_after(store: &MessageStore, stored: &[Stored], fate: &dyn Fn(&Stored) -> Fate) {
    let (topic, queue) = QUEUES[0];
    let next = stored
        .iter()
        .filter(|s| s.topic == topic && s.queue == queue && fate(s) != Fate::Lost)
        .count();
    let put = store.put(&PutMessage::new(topic, queue, b"after the damage")).unwrap();
    assert!(put.status.is_ok());
    assert_eq!(put.queue_offset, next as i64);
    let got = store.get(topic, queue, put.queue_offset, 1, &|_| true).unwrap();
    assert_eq!(got.status, GetStatus::Found);
}

/// Reopens the damaged store and checks it; then (without the put) that a second reopen
/// finds the same store. Returns the warnings of the first open.
fn reopen_and_check(dir: &Path, stored: &[Stored], fate: &dyn Fn(&Stored) -> Fate) -> Vec<String> {
    let (store, warnings) = open_capturing(dir);
    check(dir, &store, stored, fate);
    store.close().unwrap();
    let store = MessageStore::open(config(dir)).unwrap();
    check(dir, &store, stored, fate);
    check_put_after(&store, stored, fate);
    store.close().unwrap();
    warnings
}

fn setup() -> (tempfile::TempDir, Vec<Stored>) {
    let dir = tempfile::tempdir().unwrap();
    let stored = fill(dir.path());
    (dir, stored)
}

// ---------------------------------------------------------------------------------------
// CommitLog: the tail of the last segment

/// The record the tail damage hits: the fourth-last, in the last segment.
fn tail_victim(stored: &[Stored]) -> Stored {
    let victim = stored[stored.len() - 4].clone();
    assert_eq!(victim.segment(), stored.last().unwrap().segment());
    victim
}

/// Records from the victim on are lost; the ones before it are kept.
fn lost_from(victim: &Stored) -> impl Fn(&Stored) -> Fate + '_ {
    move |s| if s.phy < victim.phy { Fate::Kept } else { Fate::Lost }
}

#[test]
fn commit_log_tail_truncated() {
    let (dir, stored) = setup();
    let victim = tail_victim(&stored);
    let path = segment_path(dir.path(), victim.segment());
    truncate(&path, victim.pos() + 10);
    let warnings = reopen_and_check(dir.path(), &stored, &lost_from(&victim));
    assert_warned_once(&warnings, &path, victim.pos() + 10);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), SEGMENT, "the segment is resized");
}

#[test]
fn commit_log_tail_zero_filled() {
    let (dir, stored) = setup();
    let victim = tail_victim(&stored);
    let path = segment_path(dir.path(), victim.segment());
    zero_fill(&path, victim.pos() + 10, 300);
    let warnings = reopen_and_check(dir.path(), &stored, &lost_from(&victim));
    assert_warned_once(&warnings, &path, victim.pos());
}

#[test]
fn commit_log_tail_zero_filled_from_a_record_start() {
    // Zeros from a record's first byte look like the end of the data, but after a clean
    // exit the queues point past them.
    let (dir, stored) = setup();
    let victim = tail_victim(&stored);
    let path = segment_path(dir.path(), victim.segment());
    zero_fill(&path, victim.pos(), 300);
    let warnings = reopen_and_check(dir.path(), &stored, &lost_from(&victim));
    assert_warned_once(&warnings, &path, victim.phy);
}

#[test]
fn commit_log_tail_random_bytes() {
    let (dir, stored) = setup();
    let victim = tail_victim(&stored);
    let path = segment_path(dir.path(), victim.segment());
    random_fill(&path, victim.pos() + 10, 300, 7);
    let warnings = reopen_and_check(dir.path(), &stored, &lost_from(&victim));
    assert_warned_once(&warnings, &path, victim.pos());
}

#[test]
fn commit_log_tail_stale_record() {
    // An older valid record copied after the last one: it claims another offset.
    let (dir, stored) = setup();
    let last = stored.last().unwrap();
    let path = segment_path(dir.path(), last.segment());
    write_at(&path, last.end() % SEGMENT, &stored[3].raw);
    let warnings = reopen_and_check(dir.path(), &stored, &|_| Fate::Kept);
    assert_warned_once(&warnings, &path, last.end() % SEGMENT);
}

// ---------------------------------------------------------------------------------------
// CommitLog: a sealed segment

/// A record in the middle of the second-last segment, which normal recovery scans.
fn sealed_victim(stored: &[Stored]) -> Stored {
    let last_segment = stored.last().unwrap().segment();
    let in_segment: Vec<&Stored> =
        stored.iter().filter(|s| s.segment() == last_segment - SEGMENT).collect();
    in_segment[in_segment.len() / 2].clone()
}

fn only_damaged<'a>(victims: &'a [&'a Stored]) -> impl Fn(&Stored) -> Fate + 'a {
    move |s| if victims.iter().any(|v| v.phy == s.phy) { Fate::Damaged } else { Fate::Kept }
}

/// After damage inside a sealed segment nothing is truncated: every segment file is still
/// there at its full size, and the data still ends after the last record.
fn assert_nothing_truncated(dir: &Path, stored: &[Stored]) {
    let last = stored.last().unwrap();
    for segment in (0..=last.segment()).step_by(SEGMENT as usize) {
        let len = std::fs::metadata(segment_path(dir, segment)).unwrap().len();
        assert_eq!(len, SEGMENT, "segment {segment}");
    }
    let store = MessageStore::open(config(dir)).unwrap();
    assert!(store.max_phy_offset() as u64 > last.end());
    store.close().unwrap();
}

#[test]
fn sealed_segment_bit_flips_fail_on_read_only() {
    // One flip in each part of a record: a header field no other check covers (born
    // timestamp), the body, and the record-CRC property itself.
    for (bit, pos_in_record) in [(0, 45_i64), (1, 200), (2, -5)] {
        let (dir, stored) = setup();
        let victim = sealed_victim(&stored);
        let path = segment_path(dir.path(), victim.segment());
        let pos_in_record = pos_in_record.rem_euclid(victim.raw.len() as i64) as u64;
        flip_bit(&path, victim.pos() + pos_in_record, bit);
        let warnings = reopen_and_check(dir.path(), &stored, &only_damaged(&[&victim]));
        assert_warned_once(&warnings, &path, victim.pos());
        assert_nothing_truncated(dir.path(), &stored);
    }
}

#[test]
fn sealed_segment_damage_after_a_crash_marker_is_stepped_over_too() {
    // With `abort` present recovery is abnormal: the segment counts as sealed because the
    // checkpoint shows the record after it flushed.
    let (dir, stored) = setup();
    let victim = sealed_victim(&stored);
    let path = segment_path(dir.path(), victim.segment());
    flip_bit(&path, victim.pos() + 100, 3);
    write_abort(dir.path(), b"");
    let warnings = reopen_and_check(dir.path(), &stored, &only_damaged(&[&victim]));
    assert_warned_once(&warnings, &path, victim.pos());
    assert_nothing_truncated(dir.path(), &stored);
}

#[test]
fn sealed_segment_zero_filled_and_random_bytes() {
    for zeros in [true, false] {
        let (dir, stored) = setup();
        let victim = sealed_victim(&stored);
        let path = segment_path(dir.path(), victim.segment());
        let len = victim.raw.len() - 20;
        if zeros {
            zero_fill(&path, victim.pos() + 10, len);
        } else {
            random_fill(&path, victim.pos() + 10, len, 11);
        }
        let warnings = reopen_and_check(dir.path(), &stored, &only_damaged(&[&victim]));
        assert_warned_once(&warnings, &path, victim.pos());
        assert_nothing_truncated(dir.path(), &stored);
    }
}

#[test]
fn sealed_segment_truncated() {
    // The segment gets its size back: the records in the cut part are damaged, the rest of
    // the store is untouched.
    let (dir, stored) = setup();
    let victim = sealed_victim(&stored);
    let path = segment_path(dir.path(), victim.segment());
    truncate(&path, victim.pos() + 10);
    let fate = |s: &Stored| {
        if s.segment() == victim.segment() && s.phy >= victim.phy {
            Fate::Damaged
        } else {
            Fate::Kept
        }
    };
    let warnings = reopen_and_check(dir.path(), &stored, &fate);
    assert_warned_once(&warnings, &path, victim.pos() + 10);
    assert_nothing_truncated(dir.path(), &stored);
}

#[test]
fn sealed_segment_stale_record_after_its_blank() {
    // Data after a segment's BLANK (an older record copied there): every record stays.
    let (dir, stored) = setup();
    let victim = sealed_victim(&stored);
    let last_in_segment = stored.iter().rfind(|s| s.segment() == victim.segment()).unwrap();
    let path = segment_path(dir.path(), victim.segment());
    let blank_pos = last_in_segment.end() % SEGMENT;
    write_at(&path, blank_pos + 8, &stored[3].raw[..8]);
    let warnings = reopen_and_check(dir.path(), &stored, &|_| Fate::Kept);
    assert_warned_once(&warnings, &path, victim.segment() + blank_pos);
    assert_nothing_truncated(dir.path(), &stored);
}

// ---------------------------------------------------------------------------------------
// ConsumeQueue: the last file of one queue. Units lost are rebuilt from the CommitLog.

/// The last file of TopicA/0, the logical offset of its first byte, and the position in it
/// of the unit the damage starts at.
fn cq_victim(dir: &Path, stored: &[Stored]) -> (PathBuf, u64, u64) {
    let count = stored.iter().filter(|s| s.topic == "TopicA" && s.queue == 0).count() as u64;
    assert!(count % CQ_UNITS > 6, "the last file is partly filled: {count} units");
    let file = count / CQ_UNITS;
    (cq_path(dir, "TopicA", 0, file), file * CQ_UNITS * 20, (count % CQ_UNITS) / 2 * 20)
}

#[test]
fn consume_queue_truncated() {
    let (dir, stored) = setup();
    let (path, _, pos) = cq_victim(dir.path(), &stored);
    truncate(&path, pos + 7);
    let warnings = reopen_and_check(dir.path(), &stored, &|_| Fate::Kept);
    assert_warned_once(&warnings, &path, pos + 7);
}

#[test]
fn consume_queue_zero_filled() {
    let (dir, stored) = setup();
    let (path, start, pos) = cq_victim(dir.path(), &stored);
    zero_fill(&path, pos, 40);
    let warnings = reopen_and_check(dir.path(), &stored, &|_| Fate::Kept);
    assert_warned_once(&warnings, &path, start + pos);
}

#[test]
fn consume_queue_random_bytes() {
    for seed in 0..4 {
        let (dir, stored) = setup();
        let (path, start, pos) = cq_victim(dir.path(), &stored);
        random_fill(&path, pos, 60, seed);
        let warnings = reopen_and_check(dir.path(), &stored, &|_| Fate::Kept);
        assert_warned_once(&warnings, &path, start + pos);
    }
}

#[test]
fn consume_queue_stale_unit() {
    let (dir, stored) = setup();
    let (path, start, _) = cq_victim(dir.path(), &stored);
    let bytes = std::fs::read(&path).unwrap();
    let end = bytes.chunks(20).take_while(|unit| unit.iter().any(|&b| b != 0)).count() as u64;
    write_at(&path, end * 20, &bytes[..20]);
    let warnings = reopen_and_check(dir.path(), &stored, &|_| Fate::Kept);
    assert_warned_once(&warnings, &path, start + end * 20);
}

// ---------------------------------------------------------------------------------------
// IndexFile: the newest file. A damaged file is destroyed and rebuilt from the CommitLog.

/// The newest index file and where its last written entry is.
fn index_victim(dir: &Path) -> (PathBuf, u64) {
    let path = index_files(dir).pop().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let count = u64::from(u32::from_be_bytes(bytes[36..40].try_into().unwrap()));
    assert!(count > 2, "the newest index file has entries");
    (path, 40 + INDEX_SLOTS * 4 + (count - 1) * 20)
}

#[test]
fn index_file_truncated() {
    let (dir, stored) = setup();
    let (path, last_entry) = index_victim(dir.path());
    truncate(&path, last_entry);
    let warnings = reopen_and_check(dir.path(), &stored, &|_| Fate::Kept);
    assert_warned_once(&warnings, &path, last_entry);
}

#[test]
fn index_file_zero_filled() {
    let (dir, stored) = setup();
    let (path, last_entry) = index_victim(dir.path());
    zero_fill(&path, last_entry, 20);
    let warnings = reopen_and_check(dir.path(), &stored, &|_| Fate::Kept);
    assert_warned_once(&warnings, &path, last_entry);
}

#[test]
fn index_file_random_bytes() {
    let (dir, stored) = setup();
    let (path, last_entry) = index_victim(dir.path());
    random_fill(&path, last_entry - 20, 40, 5);
    let warnings = reopen_and_check(dir.path(), &stored, &|_| Fate::Kept);
    assert_warned_once(&warnings, &path, last_entry);
}

#[test]
fn index_file_stale_entry_past_its_count_is_ignored() {
    // An older entry copied past the last one is outside the header's count: not damage.
    let (dir, stored) = setup();
    let (path, last_entry) = index_victim(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let first_entry = (40 + INDEX_SLOTS * 4 + 20) as usize;
    write_at(&path, last_entry + 20, &bytes[first_entry..first_entry + 20]);
    assert!(last_entry + 40 <= INDEX_FILE_LEN);
    let warnings = reopen_and_check(dir.path(), &stored, &|_| Fate::Kept);
    assert!(warnings.is_empty(), "{warnings:#?}");
}

// ---------------------------------------------------------------------------------------
// checkpoint and abort. With `abort` present (abnormal recovery) the checkpoint decides
// where recovery starts; a damaged one is ignored, and recovery starts at the first segment.

#[test]
fn checkpoint_damage() {
    /// What the damage is, how to do it, and the offset the warning names.
    type Case = (&'static str, fn(&Path), u64);
    let cases: [Case; 3] = [
        ("truncated", |path| truncate(path, 20), 20),
        ("zero filled", |path| zero_fill(path, 0, 16), 44),
        ("random bytes", |path| random_fill(path, 0, 48, 3), 40),
    ];
    for (what, damage, offset) in cases {
        let (dir, stored) = setup();
        let path = dir.path().join("checkpoint");
        damage(&path);
        write_abort(dir.path(), b"");
        let warnings = reopen_and_check(dir.path(), &stored, &|_| Fate::Kept);
        assert_warned_once(&warnings, &path, offset);
        assert_eq!(
            warnings.len(),
            2,
            "{what}: the checkpoint and the abnormal exit: {warnings:#?}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096, "{what}");
    }
}

#[test]
fn checkpoint_stale_copy_is_sound() {
    // An older checkpoint is not damage: recovery just starts earlier.
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    store.put(&PutMessage::new("TopicA", 0, b"first")).unwrap();
    store.close().unwrap();
    let old = std::fs::read(dir.path().join("checkpoint")).unwrap();
    std::fs::remove_dir_all(dir.path()).unwrap();
    let stored = fill(dir.path());
    std::fs::write(dir.path().join("checkpoint"), &old).unwrap();
    write_abort(dir.path(), b"");
    let warnings = reopen_and_check(dir.path(), &stored, &|_| Fate::Kept);
    assert_eq!(warnings.len(), 1, "only the abnormal exit: {warnings:#?}");
}

#[test]
fn abort_marker_content_does_not_matter() {
    // Only its existence counts (RocketMQ 5.x writes its pid into it).
    for content in [&b""[..], &[0u8; 64][..], &[0x5a, 0xc3, 0x01, 0xff, 0x80][..], b"4242"] {
        let (dir, stored) = setup();
        write_abort(dir.path(), content);
        let warnings = reopen_and_check(dir.path(), &stored, &|_| Fate::Kept);
        warned_once(&warnings, &dir.path().join("abort"));
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
    }
}
