//! The store's file formats, fuzzed through its public API (their codecs are `pub(crate)`).
//!
//! Once per process we build a small valid store (64 KiB CommitLog segments, 100-unit
//! ConsumeQueue files, a 64-slot IndexFile) and keep its files in memory. For every input we
//! write a fresh copy, replace one file with the input (cut or zero-padded to the file's
//! size), and open the store twice: after a clean close, and with the `abort` file present
//! (abnormal recovery). Opening, reading, querying, putting and closing must return `Ok` or
//! `Err` and never panic; a message put after recovery must read back intact.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ferromq_message::properties::{Properties, encode_properties};
use ferromq_message::property;
use ferromq_message::record::crc_property::{compute_record_crc, stored_record_crc};
use ferromq_message::record::{RecordCheck, check_record};
use ferromq_store::{GetStatus, MessageStore, PutMessage, StoreConfig};

/// Which file of the store the fuzz input replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planted {
    /// `consumequeue/TopicA/0/00000000000000000000` (2,000 bytes).
    ConsumeQueue,
    /// The one file in `index/` (40 + 64 × 4 + 256 × 20 = 5,416 bytes).
    IndexFile,
    /// `checkpoint` (4,096 bytes).
    Checkpoint,
    /// The last CommitLog segment (65,536 bytes); every record `get` returns must then pass
    /// `check_record` with its CRC, and match its record-CRC property.
    LastSegment,
}

/// Every (topic, queue id) the template store writes to.
const QUEUES: [(&str, i32); 3] = [("TopicA", 0), ("TopicA", 1), ("TopicB", 0)];
/// Body of the message put after recovery.
const AFTER_RECOVERY: &[u8] = b"put after recovery";

/// The template store's files, relative to its root, and where the work copies go.
#[derive(Debug)]
pub struct Template {
    process_dir: PathBuf,
    files: Vec<(PathBuf, Vec<u8>)>,
    copies: AtomicU64,
}

/// Writes `data` as the `planted` file of a fresh copy of the template store, then opens and
/// uses the store once normally and once with abnormal recovery.
///
/// # Panics
/// On a broken invariant (that is the point), or if the template store cannot be built.
pub fn fuzz_planted_file(planted: Planted, data: &[u8]) {
    let template = template();
    for abnormal in [false, true] {
        let dir = template.fresh_copy(planted, data);
        if abnormal {
            fs::write(dir.join("abort"), b"").expect("create the abort file");
        }
        let Ok(store) = MessageStore::open(config(&dir)) else {
            continue;
        };
        exercise(&store, planted == Planted::LastSegment);
        let _ = store.close();
    }
}

/// The store's configuration for a root directory: the small test geometry.
#[must_use]
pub fn config(dir: &Path) -> StoreConfig {
    let mut config = StoreConfig::small_for_tests(dir);
    // Skip reading /proc/meminfo on every open.
    config.physical_memory_bytes = Some(1 << 30);
    config
}

/// The template, built on first use.
pub fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let template = build_template();
        template.check_intact();
        template
    })
}

impl Template {
    /// The template's files as `(path relative to the root, contents)`.
    #[must_use]
    pub fn files(&self) -> &[(PathBuf, Vec<u8>)] {
        &self.files
    }

    /// The relative path of the file that `planted` names.
    #[must_use]
    pub fn path_of(&self, planted: Planted) -> &Path {
        let is_planted = |path: &Path| match planted {
            Planted::ConsumeQueue => path.starts_with("consumequeue/TopicA/0"),
            Planted::IndexFile => path.starts_with("index"),
            Planted::Checkpoint => path == Path::new("checkpoint"),
            Planted::LastSegment => path.starts_with("commitlog"),
        };
        // Files are sorted, so the last match is the newest segment.
        let found = self.files.iter().map(|(path, _)| path.as_path()).rfind(|p| is_planted(p));
        found.expect("the template store has every planted file")
    }

    /// Self-check: an intact copy opens both ways and passes every check, so a failure on
    /// an input is that input's doing.
    fn check_intact(&self) {
        let checkpoint = self.path_of(Planted::Checkpoint);
        let (_, intact) =
            self.files.iter().find(|(path, _)| path == checkpoint).expect("a checkpoint");
        for abnormal in [false, true] {
            let dir = self.fresh_copy(Planted::Checkpoint, intact);
            if abnormal {
                fs::write(dir.join("abort"), b"").expect("create the abort file");
            }
            let store = MessageStore::open(config(&dir)).expect("open an intact copy");
            exercise(&store, true);
            store.close().expect("close an intact copy");
        }
    }

    /// Writes the template's files to a new directory, `planted` holding `data` cut or
    /// zero-padded to the original's size, and returns the directory.
    ///
    /// Each open gets a new directory, so that no background thread a previous store left
    /// behind can still be writing into it; old copies are removed when they can be.
    fn fresh_copy(&self, planted: Planted, data: &[u8]) -> PathBuf {
        for entry in fs::read_dir(&self.process_dir).expect("list the fuzz directory").flatten() {
            if entry.file_name().to_string_lossy().starts_with("work-") {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let copy = self.copies.fetch_add(1, Ordering::Relaxed);
        let dir = self.process_dir.join(format!("work-{copy}"));
        let planted_path = self.path_of(planted);
        for (path, contents) in &self.files {
            let full = dir.join(path);
            fs::create_dir_all(full.parent().expect("files live under the root"))
                .expect("create a store directory");
            if path == planted_path {
                let mut replaced = data[..data.len().min(contents.len())].to_vec();
                replaced.resize(contents.len(), 0);
                fs::write(&full, replaced)
            } else {
                fs::write(&full, contents)
            }
            .expect("write a store file");
        }
        dir
    }
}

/// Reads every queue, queries keys, puts one message and reads it back.
fn exercise(store: &MessageStore, strict: bool) {
    for (topic, queue_id) in QUEUES {
        let mut offset = store.min_offset_in_queue(topic, queue_id);
        for _ in 0..8 {
            let Ok(got) = store.get(topic, queue_id, offset, 32, &|_| true) else {
                break;
            };
            if strict {
                for record in &got.messages {
                    if let Err(err) = check_record(record, true) {
                        panic!("get({topic}, {queue_id}, {offset}) returned a bad record: {err}");
                    }
                    // A record without the property (RocketMQ's default) has only its body
                    // CRC; one with it must match it.
                    if let Some(stored) = stored_record_crc(record)
                        && Some(stored) != compute_record_crc(record)
                    {
                        panic!("get({topic}, {queue_id}, {offset}) returned a torn record");
                    }
                }
            }
            if got.next_begin_offset <= offset {
                break;
            }
            offset = got.next_begin_offset;
        }
        let _ = store.max_offset_in_queue(topic, queue_id);
        let _ = store.offset_by_time(topic, queue_id, 0);
        let _ = store.offset_by_time(topic, queue_id, i64::MAX);
        let _ = store.earliest_message_time(topic, queue_id);
    }
    for key in ["key-0", "key-9", "key-19"] {
        let _ = store.query_by_key("TopicA", key, 64, 0, i64::MAX);
    }
    let _ = store.earliest_store_time();
    let _ = store.message_by_phy_offset(store.min_phy_offset());
    put_after_recovery(store, strict);
}

/// A put the store accepts after recovery is readable at its physical offset and, with an
/// intact ConsumeQueue, through its queue offset.
fn put_after_recovery(store: &MessageStore, strict: bool) {
    let Ok(put) = store.put(&PutMessage::new("TopicA", 0, AFTER_RECOVERY)) else {
        return;
    };
    if !put.status.is_ok() {
        return;
    }
    let record = store.message_by_phy_offset(put.phy_offset);
    let Ok(Some(record)) = record else {
        panic!("put at {} is not readable: {record:?}", put.phy_offset);
    };
    match check_record(&record, true) {
        Ok(RecordCheck::Message(rec)) => assert_eq!(rec.body, AFTER_RECOVERY),
        other => panic!("put at {} reads back as {other:?}", put.phy_offset),
    }
    if strict {
        let got = store.get("TopicA", 0, put.queue_offset, 1, &|_| true);
        let Ok(got) = got else {
            panic!("get of the put at queue offset {} failed: {got:?}", put.queue_offset);
        };
        assert_eq!(got.status, GetStatus::Found, "put at queue offset {}", put.queue_offset);
        assert_eq!(got.messages.first(), Some(&record));
    }
}

/// Builds the template store in a per-process directory and loads its files.
fn build_template() -> Template {
    let base = base_dir();
    let process_dir = base.join(format!("ferromq-fuzz-{}", std::process::id()));
    remove_stale_dirs(&base);
    let template_dir = process_dir.join("template");
    let _ = fs::remove_dir_all(&process_dir);
    let store = MessageStore::open(config(&template_dir)).expect("open the template store");
    fill(&store);
    store.close().expect("close the template store");

    let mut files = Vec::new();
    read_tree(&template_dir, Path::new(""), &mut files);
    files.retain(|(path, _)| path != Path::new("lock"));
    // A segment pre-allocated past the data is all zeros; without it the segment holding
    // the tail is the last one, the one segment_recovery replaces.
    files.retain(|(path, contents)| {
        !(path.starts_with("commitlog") && contents.iter().all(|&byte| byte == 0))
    });
    files.sort();
    fs::remove_dir_all(&template_dir).expect("remove the template store");
    let template = Template { process_dir, files, copies: AtomicU64::new(0) };
    for planted in
        [Planted::ConsumeQueue, Planted::IndexFile, Planted::Checkpoint, Planted::LastSegment]
    {
        let _ = template.path_of(planted);
    }
    template
}

/// Four large messages nearly fill segment 0; the small ones that follow roll into segment
/// 1, so its content (the segment_recovery seed) stays small.
fn fill(store: &MessageStore) {
    let large = vec![b'x'; 16_000];
    for index in 0..20 {
        let (topic, queue_id) = if index < 4 { ("TopicB", 0) } else { QUEUES[index % 3] };
        let small = format!("message {index}");
        let body = if index < 4 { &large[..] } else { small.as_bytes() };
        let mut properties = Properties::new();
        let tag = if index % 2 == 0 { "TagA" } else { "TagB" };
        properties.insert(property::TAGS.into(), tag.into());
        properties.insert(property::KEYS.into(), format!("key-{index}"));
        properties.insert(property::UNIQ_KEY.into(), format!("7F000001000100000000{index:012X}"));
        let properties = encode_properties(&properties);
        let message =
            PutMessage { properties: &properties, ..PutMessage::new(topic, queue_id, body) };
        let put = store.put(&message).expect("put into the template store");
        assert!(put.status.is_ok(), "template put {index}: {:?}", put.status);
    }
}

/// `$FERROMQ_FUZZ_DIR` if set (run.sh points it at a directory it removes afterwards), else
/// `/dev/shm` (tmpfs) when there is one, else the system's temp directory.
fn base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FERROMQ_FUZZ_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() }
}

/// Removes the directories of fuzz processes that are gone (libFuzzer exits without running
/// destructors, so nobody else cleans them up).
fn remove_stale_dirs(base: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("ferromq-fuzz-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn read_tree(root: &Path, relative: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in fs::read_dir(root.join(relative)).expect("list the template store") {
        let entry = entry.expect("list the template store");
        let path = relative.join(entry.file_name());
        if entry.file_type().expect("stat a template file").is_dir() {
            read_tree(root, &path, out);
        } else {
            out.push((path.clone(), fs::read(root.join(&path)).expect("read a template file")));
        }
    }
}
