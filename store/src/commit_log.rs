//! The CommitLog: every message of every topic, appended to one run of 1 GiB segments
//! (storage.md §2–§3). The source of truth: ConsumeQueues and IndexFiles are rebuilt from it.
//!
//! Appending is single-writer (the store's writer lock). A record of `len` bytes goes into
//! the current segment only if `len + 8` bytes remain, so that an 8-byte BLANK record
//! (`remaining`, `BLANK_MAGIC`) always fits to mark the segment's end; otherwise the BLANK is
//! written and the record starts the next segment. The next segment is created, reserved
//! with `fallocate` and pre-faulted on a background thread before it is needed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::thread::JoinHandle;

use bytes::Bytes;
use ferromq_message::hash::rocketmq_crc32;
use ferromq_message::properties::{NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR};
use ferromq_message::property;
use ferromq_message::record::crc_property::{compute_record_crc, stored_record_crc};
use ferromq_message::record::{self, RecordCheck, RecordRef};

use crate::error::{Error, Result};
use crate::file_queue::{FileQueue, Segment};
use crate::io::{SegmentFile, Storage};

/// Most bytes after an append whose cache lines are prefetched for the next one.
const PREFETCH_MAX: usize = 4096;
/// How far ahead of the write position pages are faulted in.
pub(crate) const PREFAULT_WINDOW_BYTES: u64 = 64 << 20;

/// The CommitLog's files and published positions.
#[derive(Debug)]
pub(crate) struct CommitLog {
    files: FileQueue,
    storage: Arc<dyn Storage>,
    prefault: bool,
    /// Store timestamp of the last record appended (CommitLog order is time order).
    last_store_timestamp: AtomicI64,
    /// Background segment allocations started (a crash harness waits for each to finish).
    preallocations_started: AtomicU64,
}

/// Writer-side state: the segment being pre-allocated.
#[derive(Debug, Default)]
pub(crate) struct Appender {
    next_file: Option<(u64, Allocation)>,
    /// The segment appends go to, cached to keep the segment list's lock off the put path.
    current: Option<Arc<Segment>>,
}

/// A segment file being created on a background thread. The thread hands the file over as
/// soon as it exists and only then faults its head in, so a roll waits for `fallocate`, never
/// for page faults.
#[derive(Debug)]
struct Allocation {
    created: crossbeam_channel::Receiver<Result<Arc<dyn SegmentFile>>>,
    thread: JoinHandle<()>,
}

/// A record found while scanning, with where it lives.
#[derive(Debug)]
pub(crate) struct ScannedRecord<'a> {
    pub phy_offset: u64,
    pub size: u64,
    pub record: RecordRef<'a>,
}

/// How a scan of the CommitLog ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanEnd {
    /// End of the last valid record (or BLANK-completed segment).
    pub valid_end: u64,
    /// Why the scan stopped there, if not at the end of the last segment.
    pub stop_reason: Option<String>,
}

impl CommitLog {
    pub(crate) fn load(
        storage: Arc<dyn Storage>,
        dir: PathBuf,
        file_size: u64,
        prefault: bool,
    ) -> Result<Self> {
        let files = FileQueue::load(storage.clone(), dir, file_size)?;
        Ok(CommitLog {
            files,
            storage,
            prefault,
            last_store_timestamp: AtomicI64::new(0),
            preallocations_started: AtomicU64::new(0),
        })
    }

    pub(crate) fn prefault_enabled(&self) -> bool {
        self.prefault
    }

    pub(crate) fn files(&self) -> &FileQueue {
        &self.files
    }

    pub(crate) fn file_size(&self) -> u64 {
        self.files.file_size()
    }

    /// Physical offset of the first byte still stored.
    pub(crate) fn min_offset(&self) -> u64 {
        self.files.min_offset()
    }

    /// Physical end of the appended records.
    pub(crate) fn max_offset(&self) -> u64 {
        self.files.write_end()
    }

    pub(crate) fn flushed_offset(&self) -> u64 {
        self.files.flushed_end()
    }

    pub(crate) fn last_store_timestamp(&self) -> i64 {
        self.last_store_timestamp.load(Ordering::Acquire)
    }

    pub(crate) fn set_last_store_timestamp(&self, timestamp: i64) {
        self.last_store_timestamp.store(timestamp, Ordering::Release);
    }

    /// The offset of the segment after the one holding `offset` (RocketMQ's `rollNextFile`).
    pub(crate) fn roll_next_file(&self, offset: u64) -> u64 {
        offset + self.file_size() - offset % self.file_size()
    }

    /// Reserves room for `len` contiguous bytes at the write end, writing a BLANK and rolling
    /// to a new segment when they do not fit with 8 bytes to spare. Returns the physical
    /// offset at which to write them. Writer only.
    pub(crate) fn reserve(&self, appender: &mut Appender, len: u64) -> Result<(u64, Arc<Segment>)> {
        let file_size = self.file_size();
        assert!(len + record::BLANK_RECORD_SIZE as u64 <= file_size, "record of {len} bytes");
        let mut wrote = self.files.write_end();
        let cached =
            appender.current.take().filter(|s| s.from_offset <= wrote && wrote < s.end_offset());
        if let Some(segment) = cached.or_else(|| self.files.segment_for(wrote)) {
            let remaining = segment.end_offset() - wrote;
            if len + record::BLANK_RECORD_SIZE as u64 <= remaining {
                appender.current = Some(segment.clone());
                return Ok((wrote, segment));
            }
            let blank = record::encode_blank(remaining as i32);
            segment
                .file
                .write_at(wrote - segment.from_offset, &blank)
                .map_err(|e| Error::io("write", segment.file.path(), e))?;
            wrote += remaining;
            self.files.set_write_end(wrote);
            crate::crash_point::hit(crate::crash_point::ROLL_AFTER_BLANK);
        }
        assert_eq!(wrote % file_size, 0, "a roll starts a segment: {wrote}");
        let segment = self.roll(appender, wrote)?;
        appender.current = Some(segment.clone());
        Ok((wrote, segment))
    }

    /// Starts a new segment at `from_offset` (a slave following its master's bytes).
    pub(crate) fn roll_to(
        &self,
        appender: &mut Appender,
        from_offset: u64,
    ) -> Result<Arc<Segment>> {
        assert_eq!(from_offset % self.file_size(), 0, "segments start on a boundary");
        self.roll(appender, from_offset)
    }

    fn roll(&self, appender: &mut Appender, from_offset: u64) -> Result<Arc<Segment>> {
        let path = self.files.segment_path(from_offset);
        let prepared = match appender.next_file.take() {
            Some((offset, allocation)) => {
                // The thread goes on faulting the head in, if it still is; the warm thread
                // does the same ahead of the writer, so they only share the work.
                let file = allocation.created.recv().map_err(|_| {
                    Error::io("pre-allocate", &path, std::io::Error::other("allocator panicked"))
                })?;
                match file {
                    Ok(file) if offset == from_offset => Some(file),
                    Ok(_) => None,
                    // A failed sync must reach the writer, which poisons the store.
                    Err(err) if err.is_sync_failure() => return Err(err),
                    // Anything else (a full disk then) may have passed: try again now rather
                    // than fail this roll with an old error.
                    Err(err) => {
                        tracing::warn!(%err, "pre-allocating the segment failed; creating it now");
                        None
                    }
                }
            }
            None => None,
        };
        let file = match prepared {
            Some(file) => file,
            None => {
                self.storage
                    .create_dir_all(self.files.dir())
                    .map_err(|e| Error::io("mkdir", &path, e))?;
                FileQueue::create_file(&*self.storage, &path, self.file_size())?
            }
        };
        let segment = self.files.push_segment(from_offset, Some(file))?;
        crate::crash_point::hit(crate::crash_point::ROLL_AFTER_NEW_SEGMENT);
        self.preallocate(appender, from_offset + self.file_size());
        Ok(segment)
    }

    /// Starts creating the segment at `from_offset` in the background.
    pub(crate) fn preallocate(&self, appender: &mut Appender, from_offset: u64) {
        if let Some((offset, _)) = &appender.next_file
            && *offset == from_offset
        {
            return;
        }
        let storage = self.storage.clone();
        let dir = self.files.dir().to_path_buf();
        let path = self.files.segment_path(from_offset);
        let (size, prefault) = (self.file_size(), self.prefault);
        let (created, receiver) = crossbeam_channel::bounded(1);
        let spawned = std::thread::Builder::new().name("ferromq-alloc".into()).spawn(move || {
            let file = storage
                .create_dir_all(&dir)
                .map_err(|e| Error::io("mkdir", &dir, e))
                .and_then(|()| FileQueue::create_file(&*storage, &path, size));
            let head = match &file {
                Ok(file) if prefault => Some(file.clone()),
                _ => None,
            };
            // The writer may have stopped waiting (closed store): nothing to hand over then.
            let _ = created.send(file);
            if let Some(file) = head {
                // Only the head: the warm thread keeps a window ahead of the writer, so pages
                // are dirtied just before they are written rather than all at once.
                if let Err(err) = file.prefault_range(0, PREFAULT_WINDOW_BYTES.min(size)) {
                    tracing::warn!(%err, path = %path.display(), "pre-faulting a new segment failed");
                }
            }
        });
        appender.next_file =
            spawned.ok().map(|thread| (from_offset, Allocation { created: receiver, thread }));
        if appender.next_file.is_some() {
            self.preallocations_started.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many background segment allocations were started.
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn preallocations_started(&self) -> u64 {
        self.preallocations_started.load(Ordering::Relaxed)
    }

    /// Waits for a background allocation to finish (at close), keeping its file.
    pub(crate) fn finish_preallocation(&self, appender: &mut Appender) {
        if let Some((offset, allocation)) = appender.next_file.take() {
            if let Ok(Err(err)) = allocation.created.recv() {
                tracing::warn!(offset, %err, "pre-allocating a commit log segment failed");
            }
            let _ = allocation.thread.join();
        }
    }

    /// Writes `bytes` at `phy_offset` inside `segment` without publishing them.
    pub(crate) fn write(&self, segment: &Segment, phy_offset: u64, bytes: &[u8]) -> Result<()> {
        assert!(phy_offset >= segment.from_offset, "write before segment");
        assert!(phy_offset + bytes.len() as u64 <= segment.end_offset(), "write past segment");
        let pos = phy_offset - segment.from_offset;
        segment
            .file
            .write_at(pos, bytes)
            .map_err(|e| Error::io("write", segment.file.path(), e))?;
        // The next append most likely has about this size: have its cache lines on the way
        // while the caller encodes it (a copy into lines not in cache runs at memory speed).
        segment.file.prefetch_for_write(pos + bytes.len() as u64, bytes.len().min(PREFETCH_MAX));
        Ok(())
    }

    /// Publishes everything below `end` as written.
    pub(crate) fn publish(&self, end: u64, last_store_timestamp: i64) {
        assert!(end >= self.files.write_end(), "write end moves backwards");
        // Timestamp first: a reader that sees the new end must not see an older timestamp
        // paired with it (the flusher reads them in the opposite order).
        self.set_last_store_timestamp(last_store_timestamp);
        self.files.set_write_end(end);
    }

    /// `len` bytes at `phy_offset` as a zero-copy view, if they are all written and inside
    /// one segment.
    pub(crate) fn view(&self, phy_offset: u64, len: usize) -> Result<Option<Bytes>> {
        let end = phy_offset.saturating_add(len as u64);
        if end > self.max_offset() {
            return Ok(None);
        }
        let Some(segment) = self.files.segment_for(phy_offset) else {
            return Ok(None);
        };
        if end > segment.end_offset() {
            return Ok(None);
        }
        let path = segment.file.path().to_path_buf();
        let view = segment.file.clone().view(phy_offset - segment.from_offset, len);
        view.map(Some).map_err(|e| Error::io("read", path, e))
    }

    /// The record starting at `phy_offset` (its size read from its first 4 bytes), unchecked.
    pub(crate) fn record_at(&self, phy_offset: u64) -> Result<Option<Bytes>> {
        let Some(size_bytes) = self.view(phy_offset, 4)? else {
            return Ok(None);
        };
        let size = i32::from_be_bytes([size_bytes[0], size_bytes[1], size_bytes[2], size_bytes[3]]);
        if size <= 0 {
            return Ok(None);
        }
        self.view(phy_offset, size as usize)
    }

    /// The record starting at `phy_offset`, checked as recovery checks it, CRC included.
    /// `Ok(None)` when no record starts there (no message magic code, or nothing written);
    /// `Err(Corrupt)` naming the segment and offset when one does but does not check out (a
    /// CRC mismatch, a wrong physical offset, fields that do not parse).
    pub(crate) fn checked_record_at(&self, phy_offset: u64) -> Result<Option<Bytes>> {
        let Some(bytes) = self.record_at(phy_offset)? else {
            return Ok(None);
        };
        if !has_message_magic(&bytes) {
            return Ok(None);
        }
        match check_stored(&bytes, phy_offset, true) {
            Ok(_) => Ok(Some(bytes)),
            Err(reason) => Err(self.corrupt_at(phy_offset, &reason)),
        }
    }

    /// The record of `len` bytes at `phy_offset` (what a ConsumeQueue unit points at),
    /// checked as recovery checks it, CRC included. `Ok(None)` when those bytes are not all
    /// written; `Err(Corrupt)` naming the segment and offset when they are not that record.
    pub(crate) fn read_record(&self, phy_offset: u64, len: usize) -> Result<Option<Bytes>> {
        let Some(bytes) = self.view(phy_offset, len)? else {
            return Ok(None);
        };
        // Fast path: a record CRC that matches proves the bytes are what the writer wrote
        // (a whole, valid record); only its place needs checking. Anything else takes the
        // full check, which also says what is wrong.
        if record_crc_matches(&bytes) == Some(true)
            && read_be::<4>(&bytes, record::TOTAL_SIZE_POS).map(i32::from_be_bytes)
                == Some(len as i32)
            && read_be::<8>(&bytes, record::PHYSICAL_OFFSET_POS).map(i64::from_be_bytes)
                == Some(phy_offset as i64)
        {
            return Ok(Some(bytes));
        }
        match check_stored(&bytes, phy_offset, true) {
            Ok(RecordCheck::Message(rec)) if rec.encoded_len() == len => Ok(Some(bytes)),
            Ok(RecordCheck::Message(rec)) => Err(self.corrupt_at(
                phy_offset,
                &format!("is {} bytes, its consume queue unit says {len}", rec.encoded_len()),
            )),
            Ok(RecordCheck::Blank { .. }) => {
                Err(self.corrupt_at(phy_offset, "is a BLANK, not the message its unit names"))
            }
            Err(reason) => Err(self.corrupt_at(phy_offset, &reason)),
        }
    }

    /// After damage at `phy_offset`, the next offset in its segment where a record that
    /// checks out (its own physical offset, its CRC) starts, or the segment's end if none
    /// does: where reading can go on inside a damaged segment. The search is byte by byte,
    /// so it is for damage, never for a normal scan.
    pub(crate) fn resync(&self, phy_offset: u64) -> Result<u64> {
        let Some(segment) = self.files.segment_for(phy_offset) else {
            return Ok(phy_offset);
        };
        let limit = (self.max_offset().min(segment.end_offset()) - segment.from_offset) as usize;
        let path = segment.file.path();
        let whole = segment.file.clone().view(0, limit).map_err(|e| Error::io("read", path, e))?;
        let start = (phy_offset - segment.from_offset) as usize + 1;
        for pos in start..whole.len() {
            let bytes = &whole[pos..];
            if !has_message_magic(bytes) {
                continue;
            }
            let phy = segment.from_offset + pos as u64;
            if let Ok(RecordCheck::Message(_)) = check_stored(bytes, phy, true) {
                return Ok(phy);
            }
        }
        Ok(segment.end_offset())
    }

    /// A corruption error for the record at `phy_offset`, naming its segment file.
    fn corrupt_at(&self, phy_offset: u64, reason: &str) -> Error {
        match self.files.segment_for(phy_offset) {
            Some(segment) => Error::corrupt(
                segment.file.path(),
                format!(
                    "record at commit log offset {phy_offset} (file position {}) {reason}",
                    phy_offset - segment.from_offset
                ),
            ),
            None => Error::corrupt(
                self.files.dir(),
                format!("record at commit log offset {phy_offset} {reason}"),
            ),
        }
    }

    /// Everything written from `phy_offset` to the end of its segment's written part (what a
    /// master streams to a slave).
    pub(crate) fn data_from(&self, phy_offset: u64) -> Result<Option<Bytes>> {
        let end = self.max_offset();
        let Some(segment) = self.files.segment_for(phy_offset).filter(|_| phy_offset < end) else {
            return Ok(None);
        };
        let upto = end.min(segment.end_offset());
        self.view(phy_offset, (upto - phy_offset) as usize)
    }

    /// Scans records from `from` (a segment start or record start) up to `end`, calling
    /// `on_record` for each valid one, following BLANKs to the next segment, and stopping at
    /// the first invalid record, at `end` or at the end of the last segment. Records must
    /// carry their own physical offset, so a stale record left behind an earlier truncation
    /// is invalid. Bytes at or past `end` are never read (a writer may be writing them).
    pub(crate) fn scan(
        &self,
        from: u64,
        end: u64,
        check_crc: bool,
        mut on_record: impl FnMut(&ScannedRecord<'_>) -> Result<()>,
    ) -> Result<ScanEnd> {
        let mut at = from;
        loop {
            let Some(segment) = self.files.segment_for(at).filter(|_| at < end) else {
                return Ok(ScanEnd { valid_end: at, stop_reason: None });
            };
            let path = segment.file.path();
            let limit = (end.min(segment.end_offset()) - segment.from_offset) as usize;
            let whole = segment.file.clone().view(0, limit);
            let whole = whole.map_err(|e| Error::io("read", path, e))?;
            let mut pos = (at - segment.from_offset) as usize;
            loop {
                if pos == whole.len() {
                    return Ok(ScanEnd {
                        valid_end: segment.from_offset + pos as u64,
                        stop_reason: None,
                    });
                }
                let phy_offset = segment.from_offset + pos as u64;
                match check_stored(&whole[pos..], phy_offset, check_crc) {
                    Ok(RecordCheck::Message(rec)) => {
                        let size = rec.encoded_len() as u64;
                        on_record(&ScannedRecord { phy_offset, size, record: rec })?;
                        pos += size as usize;
                    }
                    Ok(RecordCheck::Blank { size }) => {
                        // A BLANK must close its segment exactly, and nothing was ever
                        // written after its 8 bytes: data there means a BLANK was written
                        // over a record (damage), hiding the records after it.
                        let after = &whole[(pos + record::BLANK_RECORD_SIZE).min(whole.len())..];
                        let problem = if phy_offset + size as u64 != segment.end_offset() {
                            Some(format!("of {size} bytes does not end its segment"))
                        } else if after.iter().take(record::BLANK_RECORD_SIZE).any(|&b| b != 0) {
                            Some("is followed by data, not zeros".to_owned())
                        } else {
                            None
                        };
                        if let Some(problem) = problem {
                            let reason =
                                format!("BLANK at {phy_offset} in {} {problem}", path.display());
                            return Ok(ScanEnd {
                                valid_end: phy_offset,
                                stop_reason: Some(reason),
                            });
                        }
                        at = segment.end_offset();
                        break;
                    }
                    Err(problem) => {
                        let reason = format!(
                            "record at {phy_offset} (position {pos} of {}) {problem}",
                            path.display()
                        );
                        return Ok(ScanEnd { valid_end: phy_offset, stop_reason: Some(reason) });
                    }
                }
            }
        }
    }
}

/// Whether `bytes` start like a message record: a positive size and a message magic code.
fn has_message_magic(bytes: &[u8]) -> bool {
    let (Some(size), Some(magic)) = (bytes.get(..4), bytes.get(4..8)) else {
        return false;
    };
    let magic = i32::from_be_bytes([magic[0], magic[1], magic[2], magic[3]]);
    size[0] & 0x80 == 0 && (magic == record::MAGIC_V1 || magic == record::MAGIC_V2)
}

/// Checks the record at the start of `bytes`, stored at `phy_offset`: its structure and
/// lengths (`check_record`), the physical offset it claims (a stale record left behind an
/// earlier truncation claims another), its topic and properties (which the body CRC does not
/// cover), and with `check_crc` its record CRC (the `__CRC32#` property) when it carries
/// one, its body CRC otherwise. `Err` says what is wrong, as a phrase ("has ...").
pub(crate) fn check_stored(
    bytes: &[u8],
    phy_offset: u64,
    check_crc: bool,
) -> std::result::Result<RecordCheck<'_>, String> {
    let rec = match record::check_record(bytes, false) {
        Ok(RecordCheck::Message(rec)) => rec,
        Ok(blank @ RecordCheck::Blank { .. }) => return Ok(blank),
        Err(err) => return Err(format!("does not parse: {err}")),
    };
    if rec.physical_offset != phy_offset as i64 {
        return Err(format!("claims physical offset {}", rec.physical_offset));
    }
    if !is_valid_topic(rec.topic) {
        // The body CRC does not cover the topic: a torn tail can leave zeros or garbage.
        return Err(format!("has an invalid topic {:?}", rec.topic));
    }
    if !is_well_formed_properties(rec.properties) {
        return Err("has torn properties".to_owned());
    }
    if check_crc && let Some(problem) = crc_problem(&bytes[..rec.encoded_len()], &rec) {
        return Err(problem);
    }
    Ok(RecordCheck::Message(rec))
}

/// Whether a whole record's record-CRC property matches it; `None` if it has none.
fn record_crc_matches(record: &[u8]) -> Option<bool> {
    let stored = stored_record_crc(record)?;
    Some(compute_record_crc(record) == Some(stored))
}

/// `N` bytes of `bytes` at `pos`, if there are that many.
fn read_be<const N: usize>(bytes: &[u8], pos: usize) -> Option<[u8; N]> {
    bytes.get(pos..pos.checked_add(N)?)?.try_into().ok()
}

/// What is wrong with a parsed record's CRC: the record CRC when it carries one (it covers
/// every byte before it, the body CRC field included), the body CRC otherwise.
fn crc_problem(record: &[u8], rec: &RecordRef<'_>) -> Option<String> {
    if let Some(stored) = stored_record_crc(record) {
        let computed = compute_record_crc(record)?;
        return (stored != computed)
            .then(|| format!("has record CRC {stored}, computed {computed}"));
    }
    if rec.property(property::CRC32).is_some() {
        return Some("has a __CRC32# property that is not a well-formed last property".into());
    }
    let computed = rocketmq_crc32(rec.body);
    (computed != rec.body_crc)
        .then(|| format!("has body CRC {}, computed {computed}", rec.body_crc))
}

/// Properties as every RocketMQ client writes them: empty, or `name 0x01 value 0x02` pairs
/// with non-empty names, free of NUL bytes. Neither CRC covers them unless the record has
/// the record-CRC property, so this is what tells a torn record's properties (zeros or
/// garbage past the tear) from whole ones. Puts are held to the same rule.
pub(crate) fn is_well_formed_properties(properties: &[u8]) -> bool {
    let pairs_named = || {
        properties.split_inclusive(|&b| b == PROPERTY_SEPARATOR).all(|pair| {
            pair.iter().position(|&b| b == NAME_VALUE_SEPARATOR).is_some_and(|at| at > 0)
        })
    };
    properties.is_empty()
        || (properties.last() == Some(&PROPERTY_SEPARATOR)
            && !properties.contains(&0)
            && pairs_named())
}

/// RocketMQ's topic rule: non-empty, only `[%|a-zA-Z0-9_-]`.
pub(crate) fn is_valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'|' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::FsStorage;

    #[test]
    fn reserve_rolls_with_a_blank_when_the_record_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let log =
            CommitLog::load(Arc::new(FsStorage), dir.path().join("commitlog"), 64 * 1024, false)
                .unwrap();
        let mut appender = Appender::default();
        let (at, segment) = log.reserve(&mut appender, 60 * 1024).unwrap();
        assert_eq!(at, 0);
        log.write(&segment, at, &vec![1u8; 60 * 1024]).unwrap();
        log.publish(60 * 1024, 1);
        // 4 KiB remain: 4088 bytes fit (8 to spare), 4089 do not.
        let (at, _) = log.reserve(&mut appender, 4089).unwrap();
        assert_eq!(at, 64 * 1024);
        assert_eq!(log.files().segment_count(), 2);
        let blank = log.view(60 * 1024, 8).unwrap().unwrap();
        assert_eq!(&blank[..], &record::encode_blank(4096));
        let next_next = dir.path().join("commitlog/00000000000000131072");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !next_next.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(next_next.exists(), "the segment after the new one is pre-allocated");
    }
}
