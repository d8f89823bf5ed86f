//! ConsumeQueue: per (topic, queue id), a dense array of 20-byte units pointing into the
//! CommitLog (storage.md §8). Unit `n` is the message with queue offset `n`.
//!
//! ```text
//! offset  size  field
//!      0     8  physical offset of the record in the CommitLog (i64)
//!      8     4  record size, TOTALSIZE (i32)
//!     12     8  tags code (i64): Java hashCode of TAGS, or the delivery time on the schedule topic
//! ```
//! Units are only written by the store's single writer; readers see units below the
//! published write position.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::config::{CQ_UNIT_SIZE_BYTES, PAGE_SIZE_BYTES};
use crate::error::{Error, Result};
use crate::file_queue::{FileQueue, Segment};
use crate::io::{SegmentFile, Storage};

const PHY_OFFSET_POS: usize = 0;
const SIZE_POS: usize = PHY_OFFSET_POS + 8;
const TAGS_CODE_POS: usize = SIZE_POS + 4;
const UNIT_LEN: usize = TAGS_CODE_POS + 8;
const _: () = assert!(UNIT_LEN as u64 == CQ_UNIT_SIZE_BYTES);

/// How many files from the end recovery scans (RocketMQ: the last three).
const RECOVER_FILES: usize = 3;
/// The writer asks the warm thread to fault in a queue's file this many bytes at a time
/// (3,276 units), two chunks ahead of the unit it writes.
pub(crate) const WARM_CHUNK_BYTES: u64 = 64 << 10;

/// Work the writer hands to the warm thread so that a put never waits for it.
#[derive(Debug)]
pub(crate) enum WarmRequest {
    /// Fault in a range of a queue's file: a first write to a page of a preallocated file
    /// costs a page fault (microseconds on this kind of machine), once every 204 units.
    Range {
        segment: Arc<Segment>,
        /// Start, relative to the file.
        pos: u64,
        len: u64,
    },
    /// Create the queue's next file: `fallocate`, `mmap` and three directory syncs, which
    /// under heavy write-back can take hundreds of milliseconds.
    NextFile(Weak<ConsumeQueue>),
}

/// Where the writer sends [`WarmRequest`]s; bounded, and a full queue drops the request (the
/// writer then takes the faults itself).
pub(crate) type WarmSender = crossbeam_channel::Sender<WarmRequest>;

/// One ConsumeQueue unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CqUnit {
    pub phy_offset: i64,
    pub size: i32,
    pub tags_code: i64,
}

impl CqUnit {
    /// The filler RocketMQ writes before the first unit of a queue that starts past 0.
    pub(crate) const BLANK: CqUnit = CqUnit { phy_offset: 0, size: i32::MAX, tags_code: 0 };

    pub(crate) fn encode(&self) -> [u8; UNIT_LEN] {
        let mut buf = [0u8; UNIT_LEN];
        buf[PHY_OFFSET_POS..SIZE_POS].copy_from_slice(&self.phy_offset.to_be_bytes());
        buf[SIZE_POS..TAGS_CODE_POS].copy_from_slice(&self.size.to_be_bytes());
        buf[TAGS_CODE_POS..UNIT_LEN].copy_from_slice(&self.tags_code.to_be_bytes());
        buf
    }

    pub(crate) fn decode(buf: &[u8; UNIT_LEN]) -> CqUnit {
        let i64_at = |pos: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[pos..pos + 8]);
            i64::from_be_bytes(b)
        };
        let mut size = [0u8; 4];
        size.copy_from_slice(&buf[SIZE_POS..TAGS_CODE_POS]);
        CqUnit {
            phy_offset: i64_at(PHY_OFFSET_POS),
            size: i32::from_be_bytes(size),
            tags_code: i64_at(TAGS_CODE_POS),
        }
    }

    /// RocketMQ's recovery validity rule: `offset >= 0 && size > 0` (blanks count).
    pub(crate) fn is_valid(&self) -> bool {
        self.phy_offset >= 0 && self.size > 0
    }

    pub(crate) fn is_blank(&self) -> bool {
        *self == CqUnit::BLANK
    }

    /// Physical end offset of the record.
    pub(crate) fn phy_end(&self) -> i64 {
        self.phy_offset.saturating_add(i64::from(self.size))
    }
}

/// The ConsumeQueue of one (topic, queue id).
#[derive(Debug)]
pub(crate) struct ConsumeQueue {
    topic: String,
    queue_id: i32,
    files: FileQueue,
    /// Byte position of the first unit whose record is still in the CommitLog.
    min_logic_offset: AtomicU64,
    /// End offset (`phy_offset + size`) of the last real unit written; -1 if none.
    max_phy_end: AtomicI64,
    /// The file after the last one, created ahead of need by the warm thread, with its
    /// start offset; taken by [`ConsumeQueue::ensure_capacity`] if it is still the next.
    next_file: Mutex<Option<(u64, Arc<dyn SegmentFile>)>>,
}

impl ConsumeQueue {
    /// Opens (or prepares to create) the queue under `root/consumequeue/<topic>/<queue_id>`.
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        cq_root: &Path,
        topic: &str,
        queue_id: i32,
        file_size: u64,
    ) -> Result<Self> {
        assert_eq!(file_size % CQ_UNIT_SIZE_BYTES, 0, "cq file size must hold whole units");
        let dir = cq_root.join(topic).join(queue_id.to_string());
        let files = FileQueue::load(storage, dir, file_size)?;
        let min = files.min_offset();
        Ok(ConsumeQueue {
            topic: topic.to_owned(),
            queue_id,
            files,
            min_logic_offset: AtomicU64::new(min),
            max_phy_end: AtomicI64::new(-1),
            next_file: Mutex::new(None),
        })
    }

    /// Creates the file after the last one (unless it is already prepared), for
    /// [`ConsumeQueue::ensure_capacity`] to take. Runs on the warm thread.
    pub(crate) fn prepare_next_file(&self) -> Result<()> {
        // Held while creating: a cut or the writer waits rather than race with it.
        let mut prepared = self.next_file.lock();
        let Some(last) = self.files.last() else { return Ok(()) };
        let next = last.end_offset();
        if prepared.as_ref().is_some_and(|(offset, _)| *offset == next) {
            return Ok(());
        }
        *prepared = Some((next, self.files.create_segment_file(next)?));
        Ok(())
    }

    /// Deletes the prepared next file, if any: after a cut it may lie past a gap, which
    /// would break the queue at the next open.
    fn discard_next_file(&self) -> Result<()> {
        let prepared = self.next_file.lock().take();
        prepared.map_or(Ok(()), |(offset, _)| self.files.remove_unlisted_file(offset))
    }

    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    pub(crate) fn queue_id(&self) -> i32 {
        self.queue_id
    }

    /// Next queue offset to be written (number of units, counting blanks and expired ones).
    pub(crate) fn max_offset(&self) -> i64 {
        (self.files.write_end() / CQ_UNIT_SIZE_BYTES) as i64
    }

    /// First queue offset whose message is still stored.
    pub(crate) fn min_offset(&self) -> i64 {
        // Never below the first file: expiry deletes a file before it corrects the minimum.
        let min = self.min_logic_offset.load(Ordering::Acquire).max(self.files.min_offset());
        (min / CQ_UNIT_SIZE_BYTES) as i64
    }

    /// End offset of the last real unit's record, -1 if none.
    pub(crate) fn max_phy_end(&self) -> i64 {
        self.max_phy_end.load(Ordering::Acquire)
    }

    /// Recovers the write position (storage.md §13.2): scans units from the third-last file
    /// and stops at the first invalid one; everything after it is cut. Returns whether
    /// anything but zeros was cut: after a clean exit that is damage, and the units lost with
    /// it must be rebuilt from the CommitLog.
    pub(crate) fn recover(&self) -> Result<bool> {
        let segments = self.files.segments();
        let start = segments.len().saturating_sub(RECOVER_FILES);
        let mut end = segments.get(start).map_or(0, |s| s.from_offset);
        let mut max_phy_end = -1;
        let mut buf = vec![0u8; 64 * 1024 - (64 * 1024) % UNIT_LEN];
        'files: for segment in &segments[start..] {
            let size = segment.file.size();
            let mut pos = 0u64;
            while pos < size {
                let len = (buf.len() as u64).min(size - pos) as usize;
                segment
                    .file
                    .read_at(pos, &mut buf[..len])
                    .map_err(|e| Error::io("read", segment.file.path(), e))?;
                for chunk in buf[..len].chunks_exact(UNIT_LEN) {
                    let unit = decode_chunk(chunk);
                    if !unit.is_valid() {
                        break 'files;
                    }
                    if !unit.is_blank() {
                        max_phy_end = unit.phy_end();
                    }
                    end += CQ_UNIT_SIZE_BYTES;
                }
                pos += len as u64;
            }
        }
        let cut = self.files.truncate_to(end)?;
        self.max_phy_end.store(max_phy_end, Ordering::Release);
        Ok(cut)
    }

    /// Whether a file of the queue had the wrong size at load (and was resized).
    pub(crate) fn resized_at_load(&self) -> bool {
        self.files.resized_at_load()
    }

    /// The file that holds (or would hold) logical byte offset `logic`, for messages.
    pub(crate) fn file_of(&self, logic: u64) -> PathBuf {
        let file_size = self.files.file_size();
        self.files.segment_path(logic - logic % file_size)
    }

    /// Appends `unit` as the queue's next unit through the writer's `cursor`: when the unit
    /// is the next one and the cursor's file holds it, no lock is taken; anything else (a
    /// gap, a rewrite, a new file) goes through [`ConsumeQueue::put_unit`]. Writer only.
    pub(crate) fn append_unit(
        &self,
        cursor: &mut UnitCursor,
        queue_offset: i64,
        unit: CqUnit,
    ) -> Result<()> {
        let expect =
            u64::try_from(queue_offset).ok().and_then(|q| q.checked_mul(CQ_UNIT_SIZE_BYTES));
        if let Some(expect) = expect
            && unit.is_valid()
            && !unit.is_blank()
            && expect == self.files.write_end()
            && let Some(segment) = cursor.holding(&self.files, expect, expect + CQ_UNIT_SIZE_BYTES)
        {
            segment
                .file
                .write_at(expect - segment.from_offset, &unit.encode())
                .map_err(|e| Error::io("write", segment.file.path(), e))?;
            self.max_phy_end.store(unit.phy_end(), Ordering::Release);
            self.files.set_write_end(expect + CQ_UNIT_SIZE_BYTES);
            cursor.warm_ahead(expect);
            return Ok(());
        }
        self.put_unit(queue_offset, unit)?;
        let expect = expect.unwrap_or(0);
        cursor.refresh(&self.files, expect);
        cursor.warm_ahead(expect);
        Ok(())
    }

    /// [`ConsumeQueue::ensure_capacity`], skipped when the cursor's file already has room.
    pub(crate) fn ensure_capacity_with(
        &self,
        cursor: &mut UnitCursor,
        last_queue_offset: i64,
    ) -> Result<()> {
        let need_end = (last_queue_offset.max(0) as u64 + 1) * CQ_UNIT_SIZE_BYTES;
        // Files are contiguous: if the cursor's (current) file reaches `need_end`, every
        // file up to it exists.
        if cursor.reaches(&self.files, need_end) {
            return Ok(());
        }
        self.ensure_capacity(last_queue_offset)
    }

    /// Writes the unit for `queue_offset` (storage.md §8.3). Idempotent: a unit whose
    /// record is already covered, or whose slot is already written, is skipped. Only the
    /// store's writer calls this.
    pub(crate) fn put_unit(&self, queue_offset: i64, unit: CqUnit) -> Result<()> {
        assert!(unit.is_valid() && !unit.is_blank(), "bad unit {unit:?}");
        // Queue offsets come from records on disk, which the body CRC does not cover.
        let Some(expect) =
            u64::try_from(queue_offset).ok().and_then(|q| q.checked_mul(CQ_UNIT_SIZE_BYTES))
        else {
            return Err(Error::corrupt(
                self.files.dir(),
                format!("record at {} has queue offset {queue_offset}", unit.phy_offset),
            ));
        };
        let mut end = self.files.write_end();
        if expect < end {
            // Re-dispatch during recovery: the same unit is already there (idempotent); a
            // different one is a dirty unit a crash left behind, so the tail is rebuilt.
            if expect < self.files.min_offset() {
                return Ok(());
            }
            if self.unit(queue_offset)? == Some(unit) {
                return Ok(());
            }
            tracing::warn!(
                file = %self.file_of(expect).display(),
                offset = expect,
                queue_offset,
                "consume queue unit does not match its record; rebuilding the queue's tail"
            );
            self.truncate_to_offset(queue_offset)?;
            end = self.files.write_end();
        }
        let empty = self.max_phy_end() < 0 && end == self.files.min_offset();
        if empty && expect > end {
            // The queue starts past 0 (its earlier messages expired): RocketMQ pre-fills the
            // first file with blank units up to the first real one.
            self.ensure_capacity(queue_offset)?;
            let from = self.files.min_offset();
            self.files.set_write_end(from);
            self.fill_blanks(from, expect)?;
            self.min_logic_offset.store(expect, Ordering::Release);
        } else if expect > end && expect - end > self.files.file_size() {
            // RocketMQ logs "logic queue order maybe wrong" here; filling a gap this large
            // would allocate files for nothing, so the unit is left out instead.
            tracing::warn!(
                topic = %self.topic, queue_id = self.queue_id, expected = expect, end,
                "record's queue offset is far past the consume queue's end; not indexed"
            );
            return Ok(());
        } else if expect > end {
            tracing::warn!(
                topic = %self.topic, queue_id = self.queue_id, expected = expect, end,
                "consume queue has a gap before this unit; filling it with blank units"
            );
            self.fill_blanks(end, expect)?;
        }
        self.write_unit(expect, &unit.encode())?;
        self.max_phy_end.store(unit.phy_end(), Ordering::Release);
        self.files.set_write_end(expect + CQ_UNIT_SIZE_BYTES);
        Ok(())
    }

    /// Creates the files needed to write units up to `last_queue_offset`, so that the store
    /// can fail a put cleanly (a full disk) before it writes anything to the CommitLog.
    pub(crate) fn ensure_capacity(&self, last_queue_offset: i64) -> Result<()> {
        let need_end = (last_queue_offset.max(0) as u64 + 1) * CQ_UNIT_SIZE_BYTES;
        let file_size = self.files.file_size();
        loop {
            let next = match self.files.last() {
                None => {
                    let first = self.files.write_end().max(need_end - CQ_UNIT_SIZE_BYTES);
                    first - first % file_size
                }
                Some(last) if last.end_offset() < need_end => last.end_offset(),
                Some(_) => return Ok(()),
            };
            let prepared = self.next_file.lock().take();
            let prepared = prepared.filter(|(offset, _)| *offset == next).map(|(_, file)| file);
            self.files.push_segment(next, prepared)?;
        }
    }

    fn fill_blanks(&self, from: u64, to: u64) -> Result<()> {
        let blank = CqUnit::BLANK.encode();
        let mut at = from;
        while at < to {
            self.write_unit(at, &blank)?;
            at += CQ_UNIT_SIZE_BYTES;
        }
        self.files.set_write_end(to.max(self.files.write_end()));
        Ok(())
    }

    fn write_unit(&self, logic: u64, bytes: &[u8; UNIT_LEN]) -> Result<()> {
        let segment = match self.files.segment_for(logic) {
            Some(segment) => segment,
            None => {
                let file_size = self.files.file_size();
                let next = self.files.last().map_or(logic - logic % file_size, |s| s.end_offset());
                assert_eq!(next, logic - logic % file_size, "unit {logic} skips a file");
                self.files.push_segment(next, None)?
            }
        };
        segment
            .file
            .write_at(logic - segment.from_offset, bytes)
            .map_err(|e| Error::io("write", segment.file.path(), e))
    }

    /// Up to `max_count` units starting at `queue_offset`, all from one file (a pull never
    /// crosses a file, as in RocketMQ). Empty if the offset is not written.
    pub(crate) fn units_from(&self, queue_offset: i64, max_count: usize) -> Result<Vec<CqUnit>> {
        let logic = (queue_offset.max(0) as u64).saturating_mul(CQ_UNIT_SIZE_BYTES);
        let end = self.files.write_end();
        let Some(segment) = self.files.segment_for(logic).filter(|_| logic < end) else {
            return Ok(Vec::new());
        };
        let upto = end.min(segment.end_offset());
        let count = (((upto - logic) / CQ_UNIT_SIZE_BYTES) as usize).min(max_count);
        let mut buf = vec![0u8; count * UNIT_LEN];
        segment
            .file
            .read_at(logic - segment.from_offset, &mut buf)
            .map_err(|e| Error::io("read", segment.file.path(), e))?;
        Ok(buf.chunks_exact(UNIT_LEN).map(decode_chunk).collect())
    }

    /// The unit at `queue_offset`, if written.
    pub(crate) fn unit(&self, queue_offset: i64) -> Result<Option<CqUnit>> {
        Ok(self.units_from(queue_offset, 1)?.pop())
    }

    /// The highest queue offset `o` such that every unit below `o` ends at or before
    /// `phy_limit` — what readers may see when only `[0, phy_limit)` of the CommitLog is
    /// readable (sync flush shows flushed data only).
    pub(crate) fn max_offset_within(&self, phy_limit: i64) -> Result<i64> {
        let max = self.max_offset();
        if self.max_phy_end() <= phy_limit {
            return Ok(max);
        }
        let (mut low, mut high) = (self.min_offset(), max);
        while low < high {
            let mid = low + (high - low) / 2;
            match self.unit(mid)? {
                Some(unit) if unit.is_blank() || unit.phy_end() <= phy_limit => low = mid + 1,
                _ => high = mid,
            }
        }
        Ok(low)
    }

    /// Cuts every unit whose record starts at or beyond `phy_offset` (storage.md §13.7).
    pub(crate) fn truncate_dirty(&self, phy_offset: i64) -> Result<()> {
        let min = self.min_offset();
        let (mut low, mut high) = (min, self.max_offset());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.unit(mid)? {
                Some(unit) if unit.is_blank() || unit.phy_offset < phy_offset => low = mid + 1,
                _ => high = mid,
            }
        }
        self.truncate_to_offset(low)
    }

    /// Cuts every unit at or after `queue_offset` (abnormal recovery rebuilds them from the
    /// CommitLog, so torn or garbage units written after the last flush cannot survive).
    pub(crate) fn truncate_to_offset(&self, queue_offset: i64) -> Result<()> {
        self.discard_next_file()?;
        // Saturating: a hostile queue offset (from a damaged record) cuts nothing.
        let end = (queue_offset.max(0) as u64)
            .saturating_mul(CQ_UNIT_SIZE_BYTES)
            .max(self.files.min_offset());
        if end < self.files.write_end() {
            self.files.truncate_to(end)?;
        }
        let low = self.max_offset();
        let first = (self.files.min_offset() / CQ_UNIT_SIZE_BYTES) as i64;
        let last_real = (first..low).rev().find_map(|o| match self.unit(o) {
            Ok(Some(unit)) if !unit.is_blank() => Some(unit.phy_end()),
            _ => None,
        });
        self.max_phy_end.store(last_real.unwrap_or(-1), Ordering::Release);
        Ok(())
    }

    /// Makes every file of the queue durable (after abnormal recovery).
    pub(crate) fn flush_all(&self) -> Result<()> {
        self.files.flush_all().map(|_| ())
    }

    /// Moves the minimum to the first unit whose record is at or after `commit_log_min`.
    pub(crate) fn correct_min_offset(&self, commit_log_min: i64) -> Result<()> {
        let first = self.files.min_offset() / CQ_UNIT_SIZE_BYTES;
        let (mut low, mut high) = (self.min_offset().max(first as i64), self.max_offset());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.unit(mid)? {
                Some(unit) if unit.is_blank() || unit.phy_offset < commit_log_min => low = mid + 1,
                _ => high = mid,
            }
        }
        let min = (low as u64).saturating_mul(CQ_UNIT_SIZE_BYTES);
        self.min_logic_offset.fetch_max(min, Ordering::AcqRel);
        Ok(())
    }

    /// Flushes when at least `least_pages` pages are dirty (0: whenever anything is).
    pub(crate) fn flush(&self, least_pages: u64) -> Result<bool> {
        let (written, flushed) = (self.files.write_end(), self.files.flushed_end());
        let dirty_pages = written / PAGE_SIZE_BYTES - flushed / PAGE_SIZE_BYTES;
        if written <= flushed || (least_pages > 0 && dirty_pages < least_pages) {
            return Ok(false);
        }
        self.files.flush()?;
        Ok(true)
    }

    /// Deletes files whose every unit points below `commit_log_min`, never the last file.
    /// Returns how many were deleted.
    pub(crate) fn delete_expired(&self, commit_log_min: i64) -> Result<usize> {
        let mut deleted = 0;
        while self.files.segment_count() > 1 {
            let Some(first) = self.files.first() else {
                break;
            };
            let last_unit_pos = first.file.size() - CQ_UNIT_SIZE_BYTES;
            let mut buf = [0u8; UNIT_LEN];
            first
                .file
                .read_at(last_unit_pos, &mut buf)
                .map_err(|e| Error::io("read", first.file.path(), e))?;
            let last = CqUnit::decode(&buf);
            if last.is_blank() || !last.is_valid() || last.phy_offset >= commit_log_min {
                break;
            }
            self.files.remove_first()?;
            deleted += 1;
        }
        if deleted > 0 {
            self.correct_min_offset(commit_log_min)?;
        }
        Ok(deleted)
    }

    /// Removes every file of this queue.
    pub(crate) fn destroy(&self) -> Result<()> {
        self.discard_next_file()?;
        self.files.destroy()?;
        self.min_logic_offset.store(0, Ordering::Release);
        self.max_phy_end.store(-1, Ordering::Release);
        Ok(())
    }
}

fn decode_chunk(chunk: &[u8]) -> CqUnit {
    let mut unit = [0u8; UNIT_LEN];
    unit.copy_from_slice(chunk);
    CqUnit::decode(&unit)
}

/// The range to warm when the writer starts the chunk holding `pos`: the two chunks after
/// it, cut at the file's end; `None` past the end.
fn warm_range(pos: u64, file_size: u64) -> Option<(u64, u64)> {
    let start = (pos / WARM_CHUNK_BYTES + 1) * WARM_CHUNK_BYTES;
    let end = (start + 2 * WARM_CHUNK_BYTES).min(file_size);
    (start < end).then(|| (start, end - start))
}

/// The store writer's cached handle on a queue's current file, so that appending a unit
/// takes no lock (the segment list's lock and reference count would otherwise be the
/// costliest part of a put). Valid while the queue's [`FileQueue::generation`] is unchanged.
#[derive(Debug, Default)]
pub(crate) struct UnitCursor {
    segment: Option<Arc<Segment>>,
    generation: u64,
    /// The warm thread (when the store runs one) and the queue this cursor writes.
    warm: Option<(WarmSender, Weak<ConsumeQueue>)>,
}

impl UnitCursor {
    /// A cursor that asks `warm` (if any) to fault `queue`'s files in ahead of the writer
    /// and to create its next file before it is needed.
    pub(crate) fn new(warm: Option<(WarmSender, Weak<ConsumeQueue>)>) -> UnitCursor {
        UnitCursor { segment: None, generation: 0, warm }
    }

    /// Called after a unit was written at logical offset `offset`: on the first unit of a
    /// chunk of the cached file, asks for the next two chunks (`WARM_CHUNK_BYTES` each) to be
    /// faulted in.
    fn warm_ahead(&self, offset: u64) {
        let (Some((warm, queue)), Some(segment)) = (&self.warm, &self.segment) else { return };
        let Some(pos) = offset.checked_sub(segment.from_offset) else { return };
        if pos % WARM_CHUNK_BYTES >= CQ_UNIT_SIZE_BYTES {
            return;
        }
        // Full or gone: the writer takes the page faults, or creates the file, itself.
        let size = segment.file.size();
        if let Some((pos, len)) = warm_range(pos, size) {
            let _ = warm.try_send(WarmRequest::Range { segment: segment.clone(), pos, len });
        }
        if pos / WARM_CHUNK_BYTES == size / 2 / WARM_CHUNK_BYTES {
            // Half way through the file: time enough to create the next one.
            let _ = warm.try_send(WarmRequest::NextFile(queue.clone()));
        }
    }

    /// The cached segment if it still belongs to `files` and holds `[from, to)`.
    fn holding(&self, files: &FileQueue, from: u64, to: u64) -> Option<&Arc<Segment>> {
        let segment = self.segment.as_ref()?;
        (self.generation == files.generation()
            && segment.from_offset <= from
            && to <= segment.end_offset())
        .then_some(segment)
    }

    /// Whether the cached segment is still the queue's and ends at or after `end`.
    fn reaches(&self, files: &FileQueue, end: u64) -> bool {
        self.segment.as_ref().is_some_and(|segment| {
            self.generation == files.generation() && end <= segment.end_offset()
        })
    }

    /// Caches the segment holding `logic` (or forgets, when there is none).
    fn refresh(&mut self, files: &FileQueue, logic: u64) {
        // The generation is read first: a removal racing with the lookup leaves the cursor
        // stale, never wrong.
        self.generation = files.generation();
        self.segment = files.segment_for(logic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::FsStorage;

    fn open(dir: &Path) -> ConsumeQueue {
        ConsumeQueue::open(Arc::new(FsStorage), dir, "TopicTest", 1, 100).unwrap()
    }

    fn unit(phy: i64) -> CqUnit {
        CqUnit { phy_offset: phy, size: 100, tags_code: 7 }
    }

    #[test]
    fn unit_golden_bytes_from_vector_a() {
        let unit = CqUnit { phy_offset: 1234, size: 115, tags_code: 2_598_919 };
        let expected = [0, 0, 0, 0, 0, 0, 4, 0xd2, 0, 0, 0, 0x73, 0, 0, 0, 0, 0, 0x27, 0xa8, 0x07];
        assert_eq!(unit.encode(), expected);
        assert_eq!(CqUnit::decode(&expected), unit);
    }

    #[test]
    fn hostile_units_and_offsets_are_errors_not_panics() {
        // Found by the `consume_queue_unit` and `segment_recovery` fuzz targets.
        let unit = CqUnit { phy_offset: i64::MAX, size: 1, tags_code: 0 };
        assert_eq!(unit.phy_end(), i64::MAX);
        let dir = tempfile::tempdir().unwrap();
        let cq = open(dir.path());
        assert!(cq.put_unit(-1, CqUnit { phy_offset: 0, size: 10, tags_code: 0 }).is_err());
        assert!(cq.put_unit(i64::MAX, CqUnit { phy_offset: 0, size: 10, tags_code: 0 }).is_err());
        cq.put_unit(0, CqUnit { phy_offset: 0, size: 10, tags_code: 0 }).unwrap();
        // A queue offset far past the end is left out rather than filled with blanks.
        cq.put_unit(50_000_000, CqUnit { phy_offset: 10, size: 10, tags_code: 0 }).unwrap();
        assert_eq!(cq.max_offset(), 1);
        // Found by `segment_recovery` in CI: a damaged record's huge queue offset overflowed
        // the byte position of a cut; a pull's offset is hostile input too.
        assert!(cq.units_from(i64::MAX, 1).unwrap().is_empty());
        cq.truncate_to_offset(i64::MAX).unwrap();
        assert_eq!(cq.max_offset(), 1);
    }

    #[test]
    fn put_read_roll_and_recover() {
        let dir = tempfile::tempdir().unwrap();
        let cq = open(dir.path());
        for i in 0..12 {
            cq.put_unit(i, unit(i * 100)).unwrap();
        }
        // Duplicates are skipped.
        cq.put_unit(3, unit(300)).unwrap();
        assert_eq!(cq.max_offset(), 12);
        assert_eq!(cq.max_phy_end(), 1200);
        // 100-byte files hold 5 units: reads stop at a file end.
        assert_eq!(cq.units_from(3, 10).unwrap(), vec![unit(300), unit(400)]);
        assert_eq!(cq.unit(11).unwrap(), Some(unit(1100)));
        assert_eq!(cq.unit(12).unwrap(), None);
        drop(cq);

        let cq = open(dir.path());
        cq.recover().unwrap();
        assert_eq!(cq.max_offset(), 12);
        assert_eq!(cq.max_phy_end(), 1200);
        cq.truncate_dirty(650).unwrap();
        assert_eq!(cq.max_offset(), 7);
        assert_eq!(cq.max_phy_end(), 700);
        cq.truncate_dirty(0).unwrap();
        assert_eq!(cq.max_offset(), 0);
        assert_eq!(cq.max_phy_end(), -1);
    }

    #[test]
    fn the_writers_cursor_follows_rolls_and_never_writes_to_a_removed_file() {
        let dir = tempfile::tempdir().unwrap();
        let cq = open(dir.path());
        let mut cursor = UnitCursor::default();
        // 100-byte files hold 5 units: 12 units span three files, the cursor follows.
        for i in 0..12 {
            cq.ensure_capacity_with(&mut cursor, i).unwrap();
            cq.append_unit(&mut cursor, i, unit(i * 100)).unwrap();
        }
        assert_eq!(cq.files.segment_count(), 3);
        assert_eq!(cq.units_from(10, 5).unwrap(), vec![unit(1000), unit(1100)]);
        // A rewrite of an existing slot goes the checked way (idempotent).
        cq.append_unit(&mut cursor, 3, unit(300)).unwrap();
        assert_eq!(cq.max_offset(), 12);

        // Truncation removes the cursor's file; appending again must create a new file
        // rather than write into the unlinked one.
        cq.truncate_dirty(650).unwrap();
        assert_eq!(cq.max_offset(), 7);
        for i in 7..12 {
            cq.ensure_capacity_with(&mut cursor, i).unwrap();
            cq.append_unit(&mut cursor, i, unit(i * 100 + 1)).unwrap();
        }
        drop(cq);
        let cq = open(dir.path());
        cq.recover().unwrap();
        assert_eq!(cq.max_offset(), 12);
        assert_eq!(cq.unit(6).unwrap(), Some(unit(600)));
        assert_eq!(cq.units_from(10, 5).unwrap(), vec![unit(1001), unit(1101)]);
    }

    #[test]
    fn the_writers_cursor_asks_for_each_chunk_two_ahead_once() {
        let dir = tempfile::tempdir().unwrap();
        // 20,000 units: 400,000 bytes, six chunks and a bit.
        let file_size = 20_000 * CQ_UNIT_SIZE_BYTES;
        let cq = Arc::new(
            ConsumeQueue::open(Arc::new(FsStorage), dir.path(), "T", 0, file_size).unwrap(),
        );
        let (sender, requests) = crossbeam_channel::bounded(64);
        let mut cursor = UnitCursor::new(Some((sender, Arc::downgrade(&cq))));
        let mut next_files = Vec::new();
        let mut got = Vec::new();
        let mut prepared = None;
        for i in 0..30_000 {
            if i == 20_000 {
                let next = cq.next_file.lock().as_ref().map(|(at, file)| (*at, file.clone()));
                prepared = Some(next.expect("the second file is prepared before it is needed"));
            }
            cq.ensure_capacity_with(&mut cursor, i).unwrap();
            cq.append_unit(&mut cursor, i, unit(i * 100)).unwrap();
            for request in requests.try_iter() {
                match request {
                    WarmRequest::Range { segment, pos, len } => {
                        got.push((segment.from_offset, pos, len));
                    }
                    WarmRequest::NextFile(queue) => {
                        // As the warm thread does: the file exists before the writer needs it.
                        queue.upgrade().unwrap().prepare_next_file().unwrap();
                        next_files.push(i);
                    }
                }
            }
        }
        let chunk = WARM_CHUNK_BYTES;
        let mut want = Vec::new();
        for (file, units) in [(0, 20_000u64), (file_size, 10_000)] {
            let size = units * CQ_UNIT_SIZE_BYTES;
            // The first unit of each chunk asks for the two after it, cut at the file end
            // (the file is preallocated whole, so the second file's range reaches its end).
            for k in (0..).take_while(|k| k * chunk < size) {
                if (k + 1) * chunk < file_size {
                    want.push((
                        file,
                        (k + 1) * chunk,
                        ((k + 3) * chunk).min(file_size) - (k + 1) * chunk,
                    ));
                }
            }
        }
        assert_eq!(got, want);
        // Asked once per file, in the chunk holding its middle (byte 200,000: chunk 3).
        // The writer took the prepared file rather than creating one.
        let (at, file) = prepared.unwrap();
        assert_eq!(at, file_size);
        assert!(Arc::ptr_eq(&cq.files.segment_for(file_size).unwrap().file, &file));
        let middle = (3 * chunk / CQ_UNIT_SIZE_BYTES + 1) as i64;
        assert_eq!(next_files, vec![middle, 20_000 + middle]);
        assert!(dir.path().join("T/0/00000000000000800000").exists(), "the third file is ready");
        assert_eq!(cq.files.segment_count(), 2, "prepared, not yet part of the queue");
        assert_eq!(cq.units_from(19_999, 2).unwrap(), vec![unit(1_999_900)]);
        assert_eq!(cq.unit(29_999).unwrap(), Some(unit(2_999_900)));
        // A reopen finds the prepared file empty and recovers the same queue.
        drop(cursor);
        drop(cq);
        let cq = ConsumeQueue::open(Arc::new(FsStorage), dir.path(), "T", 0, file_size).unwrap();
        cq.recover().unwrap();
        assert_eq!(cq.max_offset(), 30_000);
        assert_eq!(cq.unit(29_999).unwrap(), Some(unit(2_999_900)));
    }

    #[test]
    fn a_cut_deletes_the_prepared_next_file_so_no_gap_is_left_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let cq = open(dir.path());
        for i in 0..7 {
            cq.put_unit(i, unit(i * 100)).unwrap();
        }
        // 100-byte files: units 0-4 in the first, 5-6 in the second; the third is prepared.
        cq.prepare_next_file().unwrap();
        let queue_dir = dir.path().join("TopicTest/1");
        let third = queue_dir.join("00000000000000000200");
        assert!(third.exists());
        cq.prepare_next_file().unwrap();
        assert_eq!(cq.files.segment_count(), 2, "preparing twice adds nothing");
        cq.truncate_to_offset(2).unwrap();
        assert!(!third.exists(), "a prepared file past the cut would leave a gap");
        assert!(!queue_dir.join("00000000000000000100").exists());
        drop(cq);
        let cq = open(dir.path());
        cq.recover().unwrap();
        assert_eq!((cq.min_offset(), cq.max_offset()), (0, 2));
        assert_eq!(cq.unit(1).unwrap(), Some(unit(100)));
    }

    #[test]
    fn queue_starting_past_zero_is_prefilled_with_blanks() {
        let dir = tempfile::tempdir().unwrap();
        let cq = open(dir.path());
        cq.put_unit(7, unit(5000)).unwrap();
        assert_eq!(cq.min_offset(), 7);
        assert_eq!(cq.max_offset(), 8);
        assert_eq!(cq.unit(5).unwrap(), Some(CqUnit::BLANK));
        drop(cq);
        let cq = open(dir.path());
        cq.recover().unwrap();
        assert_eq!(cq.max_offset(), 8);
        assert_eq!(cq.max_phy_end(), 5100);
        cq.correct_min_offset(0).unwrap();
        assert_eq!(cq.min_offset(), 7);
    }

    #[test]
    fn visible_max_offset_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let cq = open(dir.path());
        for i in 0..12 {
            cq.put_unit(i, unit(i * 100)).unwrap();
        }
        assert_eq!(cq.max_offset_within(1200).unwrap(), 12);
        assert_eq!(cq.max_offset_within(650).unwrap(), 6);
        assert_eq!(cq.max_offset_within(0).unwrap(), 0);
        assert_eq!(cq.delete_expired(600).unwrap(), 1);
        assert_eq!(cq.min_offset(), 6);
        assert_eq!(cq.delete_expired(5000).unwrap(), 1, "the last file is never deleted");
        assert_eq!(cq.min_offset(), 12, "every remaining unit points below the minimum");
    }
}
