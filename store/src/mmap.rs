//! `MappedSegment`: a file mapped read-write into memory. The only `unsafe` in the workspace.
//!
//! The map is created with `memmap2::MmapRaw` (mapping itself is safe: no reference to the
//! memory exists yet). The unsafe parts are the copies into and out of the mapping and the
//! byte slices handed out by [`SegmentFile::view`]. They are sound because:
//! 1. the file is ours alone: the store holds its directory lock for its whole life, and no
//!    code path truncates a mapped file (recovery and expiry only move positions or unlink;
//!    an unlinked file stays mapped until the last view is dropped), so every page of the
//!    mapping stays backed and no access can raise `SIGBUS`;
//! 2. every access is bounds-checked against the mapped length below;
//! 3. writers and readers never touch the same range at the same time (the contract of
//!    [`SegmentFile`]): records are written once, above the published write position, and
//!    only read below it. A view therefore aliases memory nobody mutates while it lives.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{Advice, MmapOptions, MmapRaw};

use crate::io::SegmentFile;

/// A whole file mapped read-write.
#[derive(Debug)]
pub(crate) struct MappedSegment {
    path: PathBuf,
    map: MmapRaw,
    size: u64,
    // Keeps the descriptor open for the mapping's lifetime (not needed by Linux, but clear).
    _file: File,
}

impl MappedSegment {
    /// Maps `[0, size)` of `file`, which must already be `size` bytes long.
    pub(crate) fn map(path: PathBuf, file: File, size: u64) -> io::Result<Self> {
        let len = usize::try_from(size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
        if size == 0 || file.metadata()?.len() < size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cannot map {size} bytes of {}: file is shorter or empty", path.display()),
            ));
        }
        let map = MmapOptions::new().len(len).map_raw(&file)?;
        Ok(MappedSegment { path, map, size, _file: file })
    }

    fn check_range(&self, pos: u64, len: usize) -> io::Result<usize> {
        let end = pos.checked_add(len as u64);
        match end {
            Some(end) if end <= self.size => Ok(pos as usize),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "access [{pos}, +{len}) outside {} of {} bytes",
                    self.path.display(),
                    self.size
                ),
            )),
        }
    }
}

impl SegmentFile for MappedSegment {
    fn path(&self) -> &Path {
        &self.path
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()> {
        let start = self.check_range(pos, data.len())?;
        let dst = self.map.as_mut_ptr().wrapping_add(start);
        // SAFETY: `check_range` proved [start, start + len) lies inside the mapping, which
        // stays mapped while `self` lives; by the SegmentFile contract no reader holds a view
        // of this range, and `data` is a separate allocation, so the ranges do not overlap.
        #[expect(unsafe_code, reason = "copying into a mapped segment this store owns")]
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len());
        }
        Ok(())
    }

    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = self.check_range(pos, buf.len())?;
        let src = self.map.as_ptr().wrapping_add(start);
        // SAFETY: the range is inside the live mapping (checked above) and no writer touches
        // it concurrently (SegmentFile contract); `buf` is a distinct, exclusive allocation.
        #[expect(unsafe_code, reason = "copying out of a mapped segment this store owns")]
        unsafe {
            std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len());
        }
        Ok(())
    }

    fn view(self: Arc<Self>, pos: u64, len: usize) -> io::Result<Bytes> {
        let start = self.check_range(pos, len)?;
        Ok(Bytes::from_owner(SegmentSlice { segment: self, start, len }))
    }

    fn sync_range(&self, pos: u64, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let start = self.check_range(pos, len)?;
        if len == 0 {
            return Ok(());
        }
        self.map.flush_range(start, len)
    }

    fn prefetch_for_write(&self, pos: u64, len: usize) {
        let Ok(start) = usize::try_from(pos) else { return };
        let end = start.saturating_add(len).min(self.map.len());
        let base = self.map.as_ptr();
        for line in (start..end).step_by(CACHE_LINE_BYTES) {
            prefetch_line_for_write(base.wrapping_add(line));
        }
    }

    fn prefault_range(&self, pos: u64, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).unwrap_or(usize::MAX).min(self.size as usize);
        let start = self.check_range(pos, len)?;
        if len == 0 {
            return Ok(());
        }
        match self.map.advise_range(Advice::PopulateWrite, start, len) {
            // Kernels before 5.14 lack MADV_POPULATE_WRITE; touching pages by writing would
            // race with the appender, so there the first appends simply take the faults.
            Err(err) if err.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                Ok(())
            }
            other => other,
        }
    }
}

/// The unit `prefetch_for_write` steps by.
const CACHE_LINE_BYTES: usize = 64;

/// Asks the CPU to bring the cache line at `line` in, owned for writing (`prefetchw`).
#[cfg(target_arch = "x86_64")]
fn prefetch_line_for_write(line: *const u8) {
    use std::arch::x86_64::{_MM_HINT_ET0, _mm_prefetch};
    // SAFETY: a prefetch is a hint: it never faults and changes no memory, whatever the
    // address; `line` is inside the mapping anyway.
    #[expect(unsafe_code, reason = "a prefetch hint into a mapped segment this store owns")]
    unsafe {
        _mm_prefetch::<_MM_HINT_ET0>(line.cast::<i8>());
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch_line_for_write(_line: *const u8) {}

/// Bytes of a mapped segment, keeping the mapping alive.
#[derive(Debug)]
struct SegmentSlice {
    segment: Arc<MappedSegment>,
    start: usize,
    len: usize,
}

impl AsRef<[u8]> for SegmentSlice {
    fn as_ref(&self) -> &[u8] {
        let ptr = self.segment.map.as_ptr().wrapping_add(self.start);
        // SAFETY: `view` checked the range against the mapping, which `self.segment` keeps
        // alive; the bytes were published before the view was made and are never written
        // again while they are readable (SegmentFile contract).
        #[expect(unsafe_code, reason = "a zero-copy view of published, immutable record bytes")]
        unsafe {
            std::slice::from_raw_parts(ptr, self.len)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::io::{FsStorage, Storage};

    #[test]
    fn write_read_view_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let segment = FsStorage.create_segment(&path, 8192).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
        segment.write_at(4090, b"hello world").unwrap();
        let mut buf = [0u8; 11];
        segment.read_at(4090, &mut buf).unwrap();
        assert_eq!(&buf, b"hello world");
        let view = segment.clone().view(4096, 5).unwrap();
        assert_eq!(&view[..], b"world");
        segment.sync_range(4090, 11).unwrap();
        segment.prefault_range(0, 8192).unwrap();
        assert_eq!(&segment.clone().view(4090, 5).unwrap()[..], b"hello");

        assert!(segment.write_at(8190, b"abc").is_err());
        assert!(segment.read_at(u64::MAX, &mut buf).is_err());
        assert!(segment.clone().view(8192, 1).is_err());

        // A view outlives both the segment handle and the file's name.
        drop(segment);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&view[..], b"world");
    }

    #[test]
    fn reopened_segment_keeps_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        FsStorage.create_segment(&path, 4096).unwrap().write_at(0, b"abc").unwrap();
        let segment = FsStorage.open_segment(&path).unwrap();
        assert_eq!(segment.size(), 4096);
        assert_eq!(&segment.view(0, 3).unwrap()[..], b"abc");
    }
}
