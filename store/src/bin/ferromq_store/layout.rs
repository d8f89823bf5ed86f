//! The store directory as files (storage.md §1–§2): directory names, segment names, file
//! sizes detected from what is on disk, and a positional reader for scanning them.
//!
//! The tool reads these files itself instead of through the engine, so that `verify` checks
//! them with code that shares nothing with the engine's own reader.

use std::error::Error;
use std::fmt::Display;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ferromq_store::StoreConfig;

/// Errors of the tool: a sentence naming what failed and where.
pub(crate) type CliResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

pub(crate) const COMMIT_LOG_DIR: &str = "commitlog";
pub(crate) const CONSUME_QUEUE_DIR: &str = "consumequeue";
pub(crate) const INDEX_DIR: &str = "index";
pub(crate) const CHECKPOINT_FILE: &str = "checkpoint";

/// Length of a CommitLog or ConsumeQueue file name: the start offset in 20 digits.
const SEGMENT_NAME_LEN: usize = 20;
/// Length of an IndexFile name: `yyyyMMddHHmmssSSS`.
const INDEX_NAME_LEN: usize = 17;
/// IndexFile header bytes; a slot is 4 bytes and an entry 20.
pub(crate) const INDEX_HEADER_LEN: u64 = 40;
const INDEX_SLOT_LEN: u64 = 4;
const INDEX_ENTRY_LEN: u64 = 20;
/// RocketMQ's default geometry: 5,000,000 slots, 20,000,000 entries (4 entries per slot).
const DEFAULT_HASH_SLOT_NUM: u32 = 5_000_000;
const DEFAULT_INDEX_NUM: u32 = 20_000_000;
const ENTRIES_PER_SLOT: u64 = 4;

/// File sizes of a store, as found on disk or given on the command line.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub root: PathBuf,
    pub commit_log_segment_bytes: u64,
    pub consume_queue_file_bytes: u64,
    pub hash_slot_num: u32,
    pub index_num: u32,
}

/// Sizes the user can force when they cannot be told from the files.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub(crate) struct SizeArgs {
    /// CommitLog segment size in bytes [default: length of the first segment, else 1 GiB].
    #[arg(long, value_name = "BYTES")]
    pub commit_log_segment_bytes: Option<u64>,
    /// ConsumeQueue file size in bytes [default: length of the first file, else 6,000,000].
    #[arg(long, value_name = "BYTES")]
    pub consume_queue_file_bytes: Option<u64>,
    /// IndexFile hash slots [default: from the first file's length, else 5,000,000].
    #[arg(long, value_name = "COUNT")]
    pub hash_slot_num: Option<u32>,
    /// IndexFile entries [default: from the first file's length, else 20,000,000].
    #[arg(long, value_name = "COUNT")]
    pub index_num: Option<u32>,
}

/// A file named by a start offset (CommitLog segment, ConsumeQueue file).
#[derive(Debug, Clone)]
pub(crate) struct SegmentFile {
    pub from_offset: u64,
    pub path: PathBuf,
    pub len: u64,
}

/// A directory entry: name, path, length, whether it is a directory.
pub(crate) type Listed = (String, PathBuf, u64, bool);

impl Layout {
    /// Reads the sizes from the files under `root`, unless `sizes` forces them.
    ///
    /// # Errors
    /// When `root` is not a directory or a directory cannot be listed, or when the IndexFile
    /// length fits no geometry and none was given.
    pub(crate) fn detect(root: &Path, sizes: &SizeArgs) -> CliResult<Layout> {
        if !root.is_dir() {
            return Err(format!("{} is not a store directory", root.display()).into());
        }
        let commit_log = segment_files(&root.join(COMMIT_LOG_DIR))?.files;
        let segment = commit_log.iter().map(|f| f.len).find(|&len| len > 0);
        let cq_file = first_consume_queue_file_len(&root.join(CONSUME_QUEUE_DIR))?;
        let (hash_slot_num, index_num) = match (sizes.hash_slot_num, sizes.index_num) {
            (Some(slots), Some(entries)) => (slots, entries),
            (slots, entries) => {
                let (found_slots, found_entries) = index_geometry(&root.join(INDEX_DIR))?;
                (slots.unwrap_or(found_slots), entries.unwrap_or(found_entries))
            }
        };
        Ok(Layout {
            root: root.to_path_buf(),
            commit_log_segment_bytes: sizes.commit_log_segment_bytes.or(segment).unwrap_or(1 << 30),
            consume_queue_file_bytes: sizes
                .consume_queue_file_bytes
                .or(cq_file)
                .unwrap_or(6_000_000),
            hash_slot_num,
            index_num,
        })
    }

    /// A configuration that opens this store: its sizes, and no pre-faulting (the tool only
    /// reads).
    pub(crate) fn config(&self) -> StoreConfig {
        let mut config = StoreConfig::new(&self.root);
        config.mapped_file_size_commit_log = self.commit_log_segment_bytes;
        config.mapped_file_size_consume_queue = self.consume_queue_file_bytes;
        config.max_hash_slot_num = self.hash_slot_num;
        config.max_index_num = self.index_num;
        config.prefault_segments = false;
        config
    }

    /// Bytes of one IndexFile.
    pub(crate) fn index_file_bytes(&self) -> u64 {
        INDEX_HEADER_LEN
            + u64::from(self.hash_slot_num) * INDEX_SLOT_LEN
            + u64::from(self.index_num) * INDEX_ENTRY_LEN
    }
}

/// The files of a directory that follow a naming scheme, and the names of every other entry.
#[derive(Debug, Clone)]
pub(crate) struct Listing<T> {
    /// Matching files, in order.
    pub files: Vec<T>,
    /// Names of the other entries.
    pub strangers: Vec<String>,
}

/// An IndexFile: path and length.
#[derive(Debug, Clone)]
pub(crate) struct IndexFileName {
    pub path: PathBuf,
    pub len: u64,
}

/// The files of `dir` named by 20-digit offsets, sorted by offset. A missing directory has
/// no files.
///
/// # Errors
/// When `dir` exists but cannot be listed.
pub(crate) fn segment_files(dir: &Path) -> CliResult<Listing<SegmentFile>> {
    let mut listing = Listing { files: Vec::new(), strangers: Vec::new() };
    for (name, path, len, is_dir) in list(dir)? {
        match parse_segment_name(&name) {
            Some(from_offset) if !is_dir => {
                listing.files.push(SegmentFile { from_offset, path, len });
            }
            _ => listing.strangers.push(name),
        }
    }
    listing.files.sort_by_key(|f| f.from_offset);
    Ok(listing)
}

/// The IndexFiles of `dir` (17-digit names), sorted by name, i.e. in creation order.
///
/// # Errors
/// When `dir` exists but cannot be listed.
pub(crate) fn index_files(dir: &Path) -> CliResult<Listing<IndexFileName>> {
    let mut listing = Listing { files: Vec::new(), strangers: Vec::new() };
    for (name, path, len, is_dir) in list(dir)? {
        let digits = name.len() == INDEX_NAME_LEN && name.bytes().all(|b| b.is_ascii_digit());
        if digits && !is_dir {
            listing.files.push(IndexFileName { path, len });
        } else {
            listing.strangers.push(name);
        }
    }
    Ok(listing)
}

/// Every entry of `dir`, sorted by name; empty when `dir` does not exist.
///
/// # Errors
/// I/O errors other than "not found".
pub(crate) fn list(dir: &Path) -> CliResult<Vec<Listed>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(context(e, "list", dir)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| context(e, "list", dir))?;
        let path = entry.path();
        let meta = entry.metadata().map_err(|e| context(e, "stat", &path))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, path, meta.len(), meta.is_dir()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The start offset a segment name encodes, if it is 20 decimal digits.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    if name.len() != SEGMENT_NAME_LEN || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// Wraps an I/O error with what was done to which path.
pub(crate) fn context(err: io::Error, op: &str, path: &Path) -> Box<dyn Error + Send + Sync> {
    format!("{op} {}: {err}", path.display()).into()
}

/// Wraps any displayable error with a prefix.
pub(crate) fn describe(prefix: impl Display, err: impl Display) -> Box<dyn Error + Send + Sync> {
    format!("{prefix}: {err}").into()
}

fn first_consume_queue_file_len(cq_root: &Path) -> CliResult<Option<u64>> {
    for (_, topic_dir, _, is_dir) in list(cq_root)? {
        if !is_dir {
            continue;
        }
        for (_, queue_dir, _, is_dir) in list(&topic_dir)? {
            if !is_dir {
                continue;
            }
            if let Some(file) = segment_files(&queue_dir)?.files.iter().find(|f| f.len > 0) {
                return Ok(Some(file.len));
            }
        }
    }
    Ok(None)
}

/// Slots and entries of the IndexFiles in `dir`, from the first file's length assuming
/// RocketMQ's ratio of 4 entries per slot; the defaults when there is no file.
fn index_geometry(dir: &Path) -> CliResult<(u32, u32)> {
    let Some(IndexFileName { path, len }) = index_files(dir)?.files.into_iter().next() else {
        return Ok((DEFAULT_HASH_SLOT_NUM, DEFAULT_INDEX_NUM));
    };
    let per_slot = INDEX_SLOT_LEN + ENTRIES_PER_SLOT * INDEX_ENTRY_LEN;
    let body = len.checked_sub(INDEX_HEADER_LEN).filter(|body| body % per_slot == 0);
    let slots = body.and_then(|body| u32::try_from(body / per_slot).ok()).filter(|&s| s > 0);
    let entries = slots.and_then(|s| s.checked_mul(ENTRIES_PER_SLOT as u32));
    match slots.zip(entries) {
        Some(geometry) => Ok(geometry),
        None => Err(format!(
            "cannot tell the geometry of index file {} ({len} bytes): pass --hash-slot-num and \
             --index-num",
            path.display()
        )
        .into()),
    }
}

/// Reads a file by position through a window, so that sequential scans cost one `pread` per
/// window and reads of nearby positions reuse it.
#[derive(Debug)]
pub(crate) struct WindowReader {
    file: File,
    path: PathBuf,
    len: u64,
    window: Vec<u8>,
    window_start: u64,
    window_len: usize,
    chunk_bytes: usize,
}

impl WindowReader {
    /// Opens `path` for reading through windows of `chunk_bytes`.
    ///
    /// # Errors
    /// When the file cannot be opened or its length read.
    pub(crate) fn open(path: &Path, chunk_bytes: usize) -> CliResult<Self> {
        let file = File::open(path).map_err(|e| context(e, "open", path))?;
        let len = file.metadata().map_err(|e| context(e, "stat", path))?.len();
        Ok(WindowReader {
            file,
            path: path.to_path_buf(),
            len,
            window: Vec::new(),
            window_start: 0,
            window_len: 0,
            chunk_bytes,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The `len` bytes at `pos`.
    ///
    /// # Errors
    /// When they run past the end of the file, or the read fails.
    pub(crate) fn read(&mut self, pos: u64, len: usize) -> CliResult<&[u8]> {
        let end = pos.checked_add(len as u64).filter(|&end| end <= self.len).ok_or_else(|| {
            let path = self.path.display();
            format!("{path}: {len} bytes at offset {pos} run past the file end {}", self.len)
        })?;
        let inside = pos >= self.window_start && end <= self.window_start + self.window_len as u64;
        if !inside {
            let want = len.max(self.chunk_bytes).min((self.len - pos) as usize);
            if self.window.len() < want {
                self.window.resize(want, 0);
            }
            self.file
                .read_exact_at(&mut self.window[..want], pos)
                .map_err(|e| context(e, "read", &self.path))?;
            self.window_start = pos;
            self.window_len = want;
        }
        let from = (pos - self.window_start) as usize;
        Ok(&self.window[from..from + len])
    }
}

/// Big-endian i32 at `pos` of `buf`; `buf` must hold it.
pub(crate) fn be_i32(buf: &[u8], pos: usize) -> i32 {
    let mut bytes = [0; 4];
    bytes.copy_from_slice(&buf[pos..pos + 4]);
    i32::from_be_bytes(bytes)
}

/// Big-endian i64 at `pos` of `buf`; `buf` must hold it.
pub(crate) fn be_i64(buf: &[u8], pos: usize) -> i64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&buf[pos..pos + 8]);
    i64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_are_twenty_digits() {
        assert_eq!(parse_segment_name("00000000001073741824"), Some(1 << 30));
        assert_eq!(parse_segment_name("0000000000107374182"), None);
        assert_eq!(parse_segment_name("0000000000107374182x"), None);
    }

    #[test]
    fn index_geometry_follows_from_the_length() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(index_geometry(dir.path()).unwrap(), (5_000_000, 20_000_000));
        let file = std::fs::File::create(dir.path().join("20250101000000000")).unwrap();
        file.set_len(40 + 64 * 4 + 256 * 20).unwrap();
        assert_eq!(index_geometry(dir.path()).unwrap(), (64, 256));
        file.set_len(41).unwrap();
        assert!(index_geometry(dir.path()).is_err());
    }

    #[test]
    fn window_reader_serves_sequential_and_straddling_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut reader = WindowReader::open(&path, 1000).unwrap();
        assert_eq!(reader.read(0, 10).unwrap(), &data[..10]);
        assert_eq!(reader.read(995, 10).unwrap(), &data[995..1005]);
        assert_eq!(reader.read(3000, 2500).unwrap(), &data[3000..5500]);
        assert_eq!(reader.read(9990, 10).unwrap(), &data[9990..]);
        assert!(reader.read(9995, 10).is_err());
    }
}
