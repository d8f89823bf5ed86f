//! `FileQueue`: a directory of fixed-size segment files that together form one logical byte
//! stream (RocketMQ's `MappedFileQueue`). The CommitLog and every ConsumeQueue are one each.
//!
//! A segment's name is its starting logical offset as 20 zero-padded decimal digits
//! (storage.md §2.1). Every segment file is exactly `file_size` bytes on disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::io::{SegmentFile, Storage};

/// Digits in a segment file name.
pub(crate) const SEGMENT_NAME_LEN: usize = 20;

/// One segment: a file and the logical offset of its first byte.
#[derive(Debug)]
pub(crate) struct Segment {
    pub from_offset: u64,
    pub file: Arc<dyn SegmentFile>,
}

impl Segment {
    /// Logical offset one past the segment's last byte.
    pub(crate) fn end_offset(&self) -> u64 {
        self.from_offset + self.file.size()
    }
}

/// Formats a segment file name: the start offset, 20 digits, zero-padded.
pub(crate) fn segment_name(from_offset: u64) -> String {
    format!("{from_offset:020}")
}

/// Parses a segment file name; `None` unless it is exactly 20 ASCII digits.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    if name.len() != SEGMENT_NAME_LEN || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// An ordered run of equally sized segments.
#[derive(Debug)]
pub(crate) struct FileQueue {
    dir: PathBuf,
    file_size: u64,
    storage: Arc<dyn Storage>,
    segments: RwLock<Vec<Arc<Segment>>>,
    /// Logical end of the written bytes; readers see everything below it.
    write_end: AtomicU64,
    /// Logical end of the bytes known durable.
    flushed_end: AtomicU64,
    /// A segment was created since the last flush: its directory entry (and, for a new
    /// queue, its parents') must be made durable too, or a power cut could lose a whole
    /// segment whose data was synced.
    dir_dirty: AtomicBool,
    /// Start offsets of the segments that had the wrong size at load (damage; resized).
    resized_at_load: Vec<u64>,
    /// Bumped whenever a segment leaves the queue: a writer's cached segment (see
    /// [`FileQueue::generation`]) is stale once this moved.
    generation: AtomicU64,
}

impl FileQueue {
    /// Opens the queue in `dir`, loading every segment. Positions are set to the end of the
    /// last segment; recovery then moves them back with [`FileQueue::truncate_to`].
    ///
    /// A segment whose length differs from `file_size` (RocketMQ refuses to start) is warned
    /// about and resized: zeros past a truncation, the excess of a longer file ignored.
    ///
    /// # Errors
    /// `Corrupt` if segments do not follow each other (one is missing); I/O errors.
    pub(crate) fn load(storage: Arc<dyn Storage>, dir: PathBuf, file_size: u64) -> Result<Self> {
        assert!(file_size > 0, "segment size must be positive");
        let entries = storage.list(&dir).map_err(|e| Error::io("list", &dir, e))?;
        let mut segments: Vec<Arc<Segment>> = Vec::new();
        let mut resized = Vec::new();
        let count = entries.len();
        for (index, entry) in entries.into_iter().enumerate() {
            let path = dir.join(&entry.name);
            let Some(from_offset) = parse_segment_name(&entry.name).filter(|_| !entry.is_dir)
            else {
                tracing::warn!(path = %path.display(), "ignoring a file that is not a segment");
                continue;
            };
            if entry.len == 0 && index + 1 == count {
                // A crash between creating and sizing the newest file leaves it empty.
                tracing::warn!(path = %path.display(), "removing an empty last segment");
                storage.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
                continue;
            }
            if from_offset % file_size != 0 {
                return Err(Error::corrupt(
                    &path,
                    format!("segment start {from_offset} is not a multiple of {file_size}"),
                ));
            }
            if let Some(prev) = segments.last()
                && prev.end_offset() != from_offset
            {
                return Err(Error::corrupt(
                    &path,
                    format!("segment starts at {from_offset}, expected {}", prev.end_offset()),
                ));
            }
            let file = if entry.len == file_size {
                storage.open_segment(&path).map_err(|e| Error::io("open", &path, e))?
            } else {
                // Truncated (or grown) by damage: RocketMQ refuses to start. Here the file
                // gets its size back (zeros past the damage, or the excess ignored) and
                // recovery keeps what checks out.
                tracing::warn!(
                    path = %path.display(),
                    offset = entry.len.min(file_size),
                    len = entry.len,
                    expected = file_size,
                    "segment has the wrong size; resized, its data past the offset is lost"
                );
                resized.push(from_offset);
                FileQueue::create_file(&*storage, &path, file_size)?
            };
            segments.push(Arc::new(Segment { from_offset, file }));
        }
        let end = segments.last().map_or(0, |s| s.end_offset());
        Ok(FileQueue {
            dir,
            file_size,
            storage,
            segments: RwLock::new(segments),
            write_end: AtomicU64::new(end),
            flushed_end: AtomicU64::new(end),
            dir_dirty: AtomicBool::new(false),
            resized_at_load: resized,
            generation: AtomicU64::new(0),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn file_size(&self) -> u64 {
        self.file_size
    }

    /// A snapshot of the segments, oldest first.
    pub(crate) fn segments(&self) -> Vec<Arc<Segment>> {
        self.segments.read().clone()
    }

    pub(crate) fn segment_count(&self) -> usize {
        self.segments.read().len()
    }

    pub(crate) fn first(&self) -> Option<Arc<Segment>> {
        self.segments.read().first().cloned()
    }

    pub(crate) fn last(&self) -> Option<Arc<Segment>> {
        self.segments.read().last().cloned()
    }

    /// The segment holding logical offset `offset`, if any.
    pub(crate) fn segment_for(&self, offset: u64) -> Option<Arc<Segment>> {
        let segments = self.segments.read();
        let first = segments.first()?;
        if offset < first.from_offset {
            return None;
        }
        let index = usize::try_from((offset - first.from_offset) / self.file_size).ok()?;
        let segment = segments.get(index)?;
        debug_assert!(segment.from_offset <= offset && offset < segment.end_offset());
        Some(segment.clone())
    }

    /// Changes whenever a segment is removed or truncated: a segment looked up while the
    /// generation was `g` is still the queue's segment for its range while it is `g`.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Logical offset of the first byte still on disk.
    pub(crate) fn min_offset(&self) -> u64 {
        self.first().map_or(0, |s| s.from_offset)
    }

    /// Logical end of the written data.
    pub(crate) fn write_end(&self) -> u64 {
        self.write_end.load(Ordering::Acquire)
    }

    /// Publishes that everything below `end` is written (and readable).
    pub(crate) fn set_write_end(&self, end: u64) {
        self.write_end.store(end, Ordering::Release);
    }

    pub(crate) fn flushed_end(&self) -> u64 {
        self.flushed_end.load(Ordering::Acquire)
    }

    pub(crate) fn set_flushed_end(&self, end: u64) {
        self.flushed_end.store(end, Ordering::Release);
    }

    /// Path of the segment starting at `from_offset`.
    pub(crate) fn segment_path(&self, from_offset: u64) -> PathBuf {
        self.dir.join(segment_name(from_offset))
    }

    /// Creates the file of the segment starting at `from_offset` without adding it to the
    /// queue (the CommitLog pre-allocates in the background this way).
    pub(crate) fn create_file(
        storage: &dyn Storage,
        path: &Path,
        file_size: u64,
    ) -> Result<Arc<dyn SegmentFile>> {
        let file = storage.create_segment(path, file_size).map_err(|e| {
            if e.kind() == std::io::ErrorKind::StorageFull {
                Error::DiskFull { path: path.to_path_buf(), size_bytes: file_size }
            } else {
                Error::io("create segment", path, e)
            }
        })?;
        // The new entry (and, for a new queue, its directories) must be durable before any
        // later segment's: otherwise a power cut could keep a newer segment and lose this one.
        if let Some(dir) = path.parent() {
            sync_dir_chain(storage, dir)?;
        }
        Ok(file)
    }

    /// Creates (or reuses) the file of the segment at `from_offset`, directories included and
    /// synced, without adding it to the queue: see [`FileQueue::push_segment`].
    pub(crate) fn create_segment_file(&self, from_offset: u64) -> Result<Arc<dyn SegmentFile>> {
        self.storage.create_dir_all(&self.dir).map_err(|e| Error::io("mkdir", &self.dir, e))?;
        Self::create_file(&*self.storage, &self.segment_path(from_offset), self.file_size)
    }

    /// Deletes the file of a segment at `from_offset` that was created but never added to the
    /// queue (a listed segment is left alone).
    pub(crate) fn remove_unlisted_file(&self, from_offset: u64) -> Result<()> {
        if self.segment_for(from_offset).is_some() {
            return Ok(());
        }
        let path = self.segment_path(from_offset);
        self.storage.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        self.dir_dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Makes every segment durable from the first (after a crash the page cache may hold
    /// recovered bytes that were never written back).
    pub(crate) fn flush_all(&self) -> Result<u64> {
        self.set_flushed_end(self.min_offset());
        self.flush()
    }

    /// Appends a segment starting at `from_offset`, creating its file unless `file` is given.
    pub(crate) fn push_segment(
        &self,
        from_offset: u64,
        file: Option<Arc<dyn SegmentFile>>,
    ) -> Result<Arc<Segment>> {
        assert_eq!(from_offset % self.file_size, 0, "unaligned segment {from_offset}");
        if let Some(last) = self.last() {
            assert_eq!(last.end_offset(), from_offset, "segments must be contiguous");
        }
        let file = match file {
            Some(file) => file,
            None => self.create_segment_file(from_offset)?,
        };
        assert_eq!(file.size(), self.file_size, "pre-allocated segment has the wrong size");
        let segment = Arc::new(Segment { from_offset, file });
        self.segments.write().push(segment.clone());
        self.dir_dirty.store(true, Ordering::Release);
        Ok(segment)
    }

    /// Cuts the queue at logical offset `end`: segments starting after `end` are deleted
    /// (one starting exactly at `end` stays, emptied, as RocketMQ keeps it, so the files on
    /// disk still say where the queue ends), bytes of the segment holding `end` are zeroed
    /// from `end` to the last non-zero page (so a stale record can never be mistaken for a
    /// valid one later), and the write and flush positions move to `end`. Returns whether
    /// anything was cut: a later segment, or a non-zero byte past `end`. Only recovery calls
    /// this, before any reader exists.
    pub(crate) fn truncate_to(&self, end: u64) -> Result<bool> {
        let removed: Vec<Arc<Segment>> = {
            let mut segments = self.segments.write();
            let keep = segments.iter().take_while(|s| s.from_offset <= end).count();
            self.generation.fetch_add(1, Ordering::AcqRel);
            segments.split_off(keep)
        };
        // Newest first, each removal durable before the next: a power cut in between leaves
        // a run of segments without a gap (unsynced removals may each survive or not).
        for segment in removed.iter().rev() {
            let path = self.segment_path(segment.from_offset);
            self.storage.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            self.storage.sync_dir(&self.dir).map_err(|e| Error::io("sync dir", &self.dir, e))?;
        }
        let mut zeroed = false;
        if let Some(last) = self.last()
            && end < last.end_offset()
        {
            zeroed = zero_dirty_tail(&*last.file, end - last.from_offset)?;
        }
        self.set_write_end(end);
        self.set_flushed_end(end.min(self.flushed_end()));
        Ok(zeroed || !removed.is_empty())
    }

    /// Whether a segment had the wrong size when the queue was loaded (and was resized).
    pub(crate) fn resized_at_load(&self) -> bool {
        !self.resized_at_load.is_empty()
    }

    /// Whether the segment holding `offset` had the wrong size at load (it was warned about).
    pub(crate) fn was_resized(&self, offset: u64) -> bool {
        self.resized_at_load.contains(&(offset - offset % self.file_size))
    }

    /// Removes the oldest segment from the queue and deletes its file. Readers holding views
    /// of it keep them (an unlinked file stays mapped).
    pub(crate) fn remove_first(&self) -> Result<Option<Arc<Segment>>> {
        let removed = {
            let mut segments = self.segments.write();
            if segments.is_empty() {
                return Ok(None);
            }
            self.generation.fetch_add(1, Ordering::AcqRel);
            segments.remove(0)
        };
        let path = self.segment_path(removed.from_offset);
        self.storage.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        // Without this a deleted segment could reappear after a power cut.
        self.storage.sync_dir(&self.dir).map_err(|e| Error::io("sync dir", &self.dir, e))?;
        Ok(Some(removed))
    }

    /// Deletes every segment (a ConsumeQueue whose CommitLog is gone).
    pub(crate) fn destroy(&self) -> Result<()> {
        while self.remove_first()?.is_some() {}
        self.set_write_end(0);
        self.set_flushed_end(0);
        self.storage.remove_dir(&self.dir).map_err(|e| Error::io("remove dir", &self.dir, e))
    }

    /// Makes `[flushed_end, write_end)` durable, and the directory entries of segments
    /// created since the last flush; returns the new flushed end.
    pub(crate) fn flush(&self) -> Result<u64> {
        if self.dir_dirty.swap(false, Ordering::AcqRel)
            && let Err(err) = self.sync_dirs()
        {
            self.dir_dirty.store(true, Ordering::Release);
            return Err(err);
        }
        let target = self.write_end();
        // Segments below the minimum were expired: nothing there needs flushing.
        let mut from = self.flushed_end().max(self.min_offset());
        while from < target {
            let Some(segment) = self.segment_for(from) else {
                break;
            };
            let upto = target.min(segment.end_offset());
            let pos = from - segment.from_offset;
            segment
                .file
                .sync_range(pos, upto - from)
                .map_err(|e| Error::io("flush", segment.file.path(), e))?;
            from = upto;
        }
        self.set_flushed_end(from.max(self.flushed_end()));
        Ok(from)
    }
}

impl FileQueue {
    fn sync_dirs(&self) -> Result<()> {
        sync_dir_chain(&*self.storage, &self.dir)
    }
}

/// Syncs `dir` and its two parents (a new ConsumeQueue creates
/// `consumequeue/<topic>/<queue id>/`).
pub(crate) fn sync_dir_chain(storage: &dyn Storage, dir: &Path) -> Result<()> {
    for dir in dir.ancestors().take(3) {
        if storage.exists(dir) {
            storage.sync_dir(dir).map_err(|e| Error::io("sync dir", dir, e))?;
        }
    }
    Ok(())
}

/// Zeroes `file` from `pos` up to the end of the last page that holds a non-zero byte;
/// returns whether there was any.
fn zero_dirty_tail(file: &dyn SegmentFile, pos: u64) -> Result<bool> {
    const CHUNK: u64 = 64 * 1024;
    let size = file.size();
    let mut buf = vec![0u8; CHUNK as usize];
    let zeros = vec![0u8; CHUNK as usize];
    let mut at = pos;
    while at < size {
        let len = CHUNK.min(size - at) as usize;
        file.read_at(at, &mut buf[..len]).map_err(|e| Error::io("read", file.path(), e))?;
        if buf[..len].iter().all(|&b| b == 0) {
            break;
        }
        file.write_at(at, &zeros[..len]).map_err(|e| Error::io("zero", file.path(), e))?;
        at += len as u64;
    }
    if at > pos {
        file.sync_range(pos, at - pos).map_err(|e| Error::io("flush", file.path(), e))?;
    }
    Ok(at > pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::FsStorage;

    #[test]
    fn segment_names_round_trip() {
        for offset in [0, 1, 1_073_741_824, 6_000_000, u64::MAX / 2] {
            let name = segment_name(offset);
            assert_eq!(name.len(), 20);
            assert_eq!(parse_segment_name(&name), Some(offset));
        }
        assert_eq!(segment_name(1_073_741_824), "00000000001073741824");
        assert_eq!(parse_segment_name("0000000000000000000"), None);
        assert_eq!(parse_segment_name("0000000000000000000x"), None);
        assert_eq!(parse_segment_name("+0000000000000000000"), None);
    }

    #[test]
    fn push_lookup_truncate_reload() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(FsStorage);
        let queue = FileQueue::load(storage.clone(), dir.path().join("q"), 4096).unwrap();
        assert!(queue.segment_for(0).is_none());
        for i in 0..3 {
            queue.push_segment(i * 4096, None).unwrap();
        }
        assert_eq!(queue.segment_for(4095).unwrap().from_offset, 0);
        assert_eq!(queue.segment_for(8192).unwrap().from_offset, 8192);
        assert!(queue.segment_for(3 * 4096).is_none());
        queue.segment_for(4096).unwrap().file.write_at(100, &[7; 300]).unwrap();
        assert!(queue.truncate_to(4096 + 200).unwrap(), "non-zero bytes were cut");
        assert_eq!(queue.segment_count(), 2);
        assert_eq!(queue.write_end(), 4296);
        let mut buf = [1u8; 300];
        queue.segment_for(4096).unwrap().file.read_at(100, &mut buf).unwrap();
        assert!(buf[..100].iter().all(|&b| b == 7), "bytes before the cut are kept");
        assert!(buf[100..].iter().all(|&b| b == 0), "bytes after the cut are zeroed");

        let reloaded = FileQueue::load(storage, dir.path().join("q"), 4096).unwrap();
        assert_eq!(reloaded.segment_count(), 2);
        assert_eq!(reloaded.write_end(), 8192);
    }

    #[test]
    fn load_resizes_wrong_sizes_and_rejects_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(FsStorage);
        std::fs::write(dir.path().join(segment_name(0)), vec![7u8; 100]).unwrap();
        std::fs::write(dir.path().join(segment_name(4096)), vec![0u8; 4096]).unwrap();
        let queue = FileQueue::load(storage.clone(), dir.path().into(), 4096).unwrap();
        assert_eq!(queue.segment_count(), 2, "a truncated segment is kept");
        let resized = std::fs::read(dir.path().join(segment_name(0))).unwrap();
        assert_eq!(resized.len(), 4096, "and gets its size back");
        assert!(resized[..100].iter().all(|&b| b == 7) && resized[100..].iter().all(|&b| b == 0));
        drop(queue);

        std::fs::write(dir.path().join(segment_name(0)), vec![0u8; 4096]).unwrap();
        std::fs::write(dir.path().join(segment_name(12288)), vec![0u8; 4096]).unwrap();
        let err = FileQueue::load(storage.clone(), dir.path().into(), 4096).unwrap_err();
        assert!(err.to_string().contains("expected 8192"), "{err}");

        std::fs::remove_file(dir.path().join(segment_name(12288))).unwrap();
        std::fs::write(dir.path().join(segment_name(8192)), b"").unwrap();
        let queue = FileQueue::load(storage, dir.path().into(), 4096).unwrap();
        assert_eq!(queue.segment_count(), 2, "an empty last file is removed");
        assert!(!dir.path().join(segment_name(8192)).exists());
    }
}
