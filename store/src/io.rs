//! The I/O seam: every byte the store reads or writes goes through these two traits.
//!
//! [`Storage`] is the file system (create, open, list and remove files); [`SegmentFile`] is
//! one fixed-size file addressed by position: a CommitLog segment, a ConsumeQueue file, an
//! IndexFile or the checkpoint. The real backend ([`FsStorage`]) maps every segment with
//! `mmap` (`crate::mmap`); a simulated backend that keeps a written and a durable image can
//! plug in here to cut power at any write or sync.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::mmap::MappedSegment;

/// One fixed-size file, addressed by byte position.
///
/// Concurrency contract: one writer appends while many readers read. A caller never writes a
/// range that a reader may be reading: readers only look below a published write position,
/// and writers only write at or above it.
pub(crate) trait SegmentFile: Send + Sync + fmt::Debug {
    /// The file's path, for error messages.
    fn path(&self) -> &Path;
    /// The fixed size in bytes.
    fn size(&self) -> u64;
    /// Copies `data` into the file at `pos`.
    fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()>;
    /// Fills `buf` from the file at `pos`.
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()>;
    /// `len` bytes at `pos` as `Bytes` that keep the file mapped while they live: zero-copy
    /// on the mmap backend.
    fn view(self: Arc<Self>, pos: u64, len: usize) -> io::Result<Bytes>;
    /// Makes `[pos, pos + len)` durable (`msync(MS_SYNC)`, i.e. `fdatasync` of the range).
    fn sync_range(&self, pos: u64, len: u64) -> io::Result<()>;
    /// Faults the pages of `[pos, pos + len)` in for writing, without changing a byte (it may
    /// run while the writer appends in that range). A no-op where unsupported.
    fn prefault_range(&self, pos: u64, len: u64) -> io::Result<()> {
        let _ = (pos, len);
        Ok(())
    }
    /// A hint that `[pos, pos + len)` is written next: its cache lines are fetched for
    /// writing now, so the next append copies into cache instead of waiting for memory.
    /// Changes no byte; out-of-range parts are ignored. A no-op where unsupported.
    fn prefetch_for_write(&self, pos: u64, len: usize) {
        let _ = (pos, len);
    }
}

/// Directory entry as [`Storage::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirEntry {
    pub name: String,
    pub len: u64,
    pub is_dir: bool,
}

/// The file system under the store.
pub(crate) trait Storage: Send + Sync + fmt::Debug {
    /// Creates (or reuses) `path` with exactly `size` bytes reserved on disk (`fallocate`):
    /// a full disk fails here with `StorageFull`, never later with `SIGBUS`.
    fn create_segment(&self, path: &Path, size: u64) -> io::Result<Arc<dyn SegmentFile>>;
    /// Opens an existing file with its current length.
    fn open_segment(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>>;
    /// Lists `dir`; a missing directory lists as empty.
    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>>;
    /// Creates `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Removes a file; a missing file is not an error.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty directory; a missing or non-empty one is not an error.
    fn remove_dir(&self, dir: &Path) -> io::Result<()>;
    /// Makes the directory's entries (created, removed files) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
    /// Creates an empty file and makes it durable together with its directory entry.
    fn create_marker(&self, path: &Path) -> io::Result<()>;
    /// Bytes used and available on the file system holding `dir`.
    fn disk_usage(&self, dir: &Path) -> io::Result<DiskUsage>;
    /// When the file was last modified.
    fn modified(&self, path: &Path) -> io::Result<std::time::SystemTime>;
    /// Takes the exclusive lock on `root/lock` (RocketMQ's "MQ already started" check),
    /// held until the returned guard is dropped; `WouldBlock` if another store holds it.
    fn lock_dir(&self, root: &Path) -> io::Result<DirLock>;
}

/// An exclusive lock on a store directory, released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// The locked file; `None` for backends without a real file system.
    _file: Option<File>,
}

impl DirLock {
    /// A guard that locks nothing (an in-memory file system has no other processes).
    #[cfg(any(test, feature = "internals"))]
    pub(crate) fn unlocked() -> Self {
        DirLock { _file: None }
    }
}

/// Space on one file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DiskUsage {
    pub used_bytes: u64,
    pub available_bytes: u64,
}

impl DiskUsage {
    /// RocketMQ's usage ratio: `ceil(used * 100 / (used + usable)) / 100`, as a percentage.
    pub(crate) fn used_percent(&self) -> u64 {
        let total = self.used_bytes.saturating_add(self.available_bytes);
        if total == 0 {
            0
        } else {
            (u128::from(self.used_bytes) * 100).div_ceil(u128::from(total)) as u64
        }
    }
}

/// The real file system, with every segment memory-mapped.
#[derive(Debug, Default)]
pub(crate) struct FsStorage;

impl Storage for FsStorage {
    fn create_segment(&self, path: &Path, size: u64) -> io::Result<Arc<dyn SegmentFile>> {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        // Reserve every block now: writing through the mapping into a hole on a full disk
        // would raise SIGBUS instead of returning an error.
        rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, size)?;
        Ok(Arc::new(MappedSegment::map(path.to_path_buf(), file, size)?))
    }

    fn open_segment(&self, path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Arc::new(MappedSegment::map(path.to_path_buf(), file, size)?))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut listed = Vec::new();
        for entry in entries {
            let entry = entry?;
            let metadata = entry.metadata()?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            listed.push(DirEntry { name, len: metadata.len(), is_dir: metadata.is_dir() });
        }
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listed)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        match fs::remove_file(path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        match fs::remove_dir(dir) {
            Err(err)
                if !matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty
                ) =>
            {
                Err(err)
            }
            _ => Ok(()),
        }
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn create_marker(&self, path: &Path) -> io::Result<()> {
        File::create(path)?.sync_all()?;
        match path.parent() {
            Some(parent) => self.sync_dir(parent),
            None => Ok(()),
        }
    }

    fn disk_usage(&self, dir: &Path) -> io::Result<DiskUsage> {
        let stat = rustix::fs::statvfs(dir)?;
        let fragment = stat.f_frsize;
        let used = stat.f_blocks.saturating_sub(stat.f_bfree).saturating_mul(fragment);
        Ok(DiskUsage { used_bytes: used, available_bytes: stat.f_bavail.saturating_mul(fragment) })
    }

    fn modified(&self, path: &Path) -> io::Result<std::time::SystemTime> {
        fs::metadata(path)?.modified()
    }

    fn lock_dir(&self, root: &Path) -> io::Result<DirLock> {
        let path = root.join(crate::recovery::LOCK_FILE);
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(io::ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        io::Write::write_all(&mut &file, b"lock")?;
        Ok(DirLock { _file: Some(file) })
    }
}
