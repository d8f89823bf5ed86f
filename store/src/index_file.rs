//! IndexFile: a hash index from message keys to CommitLog offsets (storage.md §9), so that a
//! message can be found by `KEYS` or `UNIQ_KEY` without reading the CommitLog.
//!
//! ```text
//! [ header 40 B ][ hash slots: hash_slot_num × 4 B ][ entries: index_num × 20 B ]
//!
//! header
//! offset  size  field
//!      0     8  beginTimestamp   store time of the first entry, ms (i64)
//!      8     8  endTimestamp     store time of the last entry, ms (i64)
//!     16     8  beginPhyOffset   CommitLog offset of the first entry's record (i64)
//!     24     8  endPhyOffset     CommitLog offset of the last entry's record (i64)
//!     32     4  hashSlotCount    slots that became non-empty (i32)
//!     36     4  indexCount       next entry number; starts at 1, entry 0 is never used (i32)
//!
//! slot (i32) at 40 + slot × 4: number of the newest entry hashed here; 0 = empty
//!
//! entry at 40 + hash_slot_num × 4 + entry_no × 20
//!      0     4  keyHash          abs(Java hashCode of "topic#key"), MIN → 0 (i32)
//!      4     8  phyOffset        CommitLog offset of the record (i64)
//!     12     4  timeDiff         (storeTimestamp − beginTimestamp) / 1000, seconds (i32)
//!     16     4  prevIndex        previous entry number in the slot's chain; 0 = end (i32)
//! ```
//!
//! Only the key's hash is stored: a query returns every offset whose hash matches, and the
//! reader of the records (in RocketMQ, the client) must compare the actual keys.
//!
//! Files are named by creation time `yyyyMMddHHmmssSSS`. RocketMQ uses the local time zone;
//! without a time-zone dependency we use UTC, and a new name is always made later than the
//! newest existing one, so names keep sorting in creation order whatever the clock does.
//!
//! Concurrency: one writer (the index thread; expiry and recovery also write) and many readers.
//! Each file's mapped bytes are guarded by its header lock: a put writes entry, slot and
//! header under the write lock, and a query walks a chain under the read lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ferromq_message::hash::topic_key_hash;
use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::io::{SegmentFile, Storage};

const BEGIN_TIMESTAMP_POS: usize = 0;
const END_TIMESTAMP_POS: usize = BEGIN_TIMESTAMP_POS + 8;
const BEGIN_PHY_OFFSET_POS: usize = END_TIMESTAMP_POS + 8;
const END_PHY_OFFSET_POS: usize = BEGIN_PHY_OFFSET_POS + 8;
const HASH_SLOT_COUNT_POS: usize = END_PHY_OFFSET_POS + 8;
const INDEX_COUNT_POS: usize = HASH_SLOT_COUNT_POS + 4;
const HEADER_LEN: usize = INDEX_COUNT_POS + 4;
const _: () = assert!(HEADER_LEN == 40);

const SLOT_LEN: usize = 4;

const ENTRY_KEY_HASH_POS: usize = 0;
const ENTRY_PHY_OFFSET_POS: usize = ENTRY_KEY_HASH_POS + 4;
const ENTRY_TIME_DIFF_POS: usize = ENTRY_PHY_OFFSET_POS + 8;
const ENTRY_PREV_POS: usize = ENTRY_TIME_DIFF_POS + 4;
const ENTRY_LEN: usize = ENTRY_PREV_POS + 4;
const _: () = assert!(ENTRY_LEN == 20);

/// Length of a file name: `yyyyMMddHHmmssSSS`.
const FILE_NAME_LEN: usize = 17;

/// The physical offsets a key query found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QueryOffsets {
    /// CommitLog offsets whose key hash and store time matched, ascending, no duplicates.
    pub phy_offsets: Vec<i64>,
    /// End timestamp of the newest index file; 0 without files.
    pub index_last_update_timestamp: i64,
    /// End physical offset of the newest index file; 0 without files.
    pub index_last_update_phy_offset: i64,
}

/// Slot and entry counts of an index file, which fix its size and every position in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexGeometry {
    /// `maxHashSlotNum`.
    pub hash_slot_num: u32,
    /// `maxIndexNum`: entry numbers run `0..index_num`, so a file holds `index_num - 1`.
    pub index_num: u32,
}

impl IndexGeometry {
    /// # Panics
    /// If `hash_slot_num` is 0 or `index_num` < 2 (the config is validated before this).
    pub(crate) fn new(hash_slot_num: u32, index_num: u32) -> Self {
        assert!(hash_slot_num > 0, "hash_slot_num must be positive");
        assert!(index_num >= 2, "index_num={index_num} leaves no room for entry 1");
        assert!(i32::try_from(index_num).is_ok(), "index_num={index_num} overflows indexCount");
        IndexGeometry { hash_slot_num, index_num }
    }

    /// Size of one file in bytes (420,000,040 by default).
    pub(crate) fn file_size(&self) -> u64 {
        HEADER_LEN as u64
            + u64::from(self.hash_slot_num) * SLOT_LEN as u64
            + u64::from(self.index_num) * ENTRY_LEN as u64
    }

    /// `keyHash % hashSlotNum`. Stored hashes are never negative; a corrupt negative one
    /// still maps inside the table.
    pub(crate) fn slot_of(&self, key_hash: i32) -> u32 {
        key_hash.unsigned_abs() % self.hash_slot_num
    }

    /// Byte position of the slot `key_hash` falls in.
    pub(crate) fn slot_pos(&self, key_hash: i32) -> u64 {
        HEADER_LEN as u64 + u64::from(self.slot_of(key_hash)) * SLOT_LEN as u64
    }

    /// Byte position of entry number `entry_no`.
    pub(crate) fn entry_pos(&self, entry_no: u32) -> u64 {
        assert!(entry_no < self.index_num, "entry {entry_no} past index_num {}", self.index_num);
        HEADER_LEN as u64
            + u64::from(self.hash_slot_num) * SLOT_LEN as u64
            + u64::from(entry_no) * ENTRY_LEN as u64
    }
}

/// The 40-byte file header, mirrored in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct IndexHeader {
    begin_timestamp: i64,
    end_timestamp: i64,
    begin_phy_offset: i64,
    end_phy_offset: i64,
    hash_slot_count: i32,
    index_count: i32,
}

impl IndexHeader {
    /// Header of a new file, continuing from the previous file's end values (storage.md §9.3).
    fn continuing(prev: Option<&IndexHeader>) -> Self {
        let (phy, timestamp) = prev.map_or((0, 0), |p| (p.end_phy_offset, p.end_timestamp));
        let (phy, timestamp) = (phy.max(0), timestamp.max(0));
        IndexHeader {
            begin_timestamp: timestamp,
            end_timestamp: timestamp,
            begin_phy_offset: phy,
            end_phy_offset: phy,
            hash_slot_count: 0,
            index_count: 1,
        }
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut buf = [0u8; HEADER_LEN];
        buf[BEGIN_TIMESTAMP_POS..END_TIMESTAMP_POS]
            .copy_from_slice(&self.begin_timestamp.to_be_bytes());
        buf[END_TIMESTAMP_POS..BEGIN_PHY_OFFSET_POS]
            .copy_from_slice(&self.end_timestamp.to_be_bytes());
        buf[BEGIN_PHY_OFFSET_POS..END_PHY_OFFSET_POS]
            .copy_from_slice(&self.begin_phy_offset.to_be_bytes());
        buf[END_PHY_OFFSET_POS..HASH_SLOT_COUNT_POS]
            .copy_from_slice(&self.end_phy_offset.to_be_bytes());
        buf[HASH_SLOT_COUNT_POS..INDEX_COUNT_POS]
            .copy_from_slice(&self.hash_slot_count.to_be_bytes());
        buf[INDEX_COUNT_POS..HEADER_LEN].copy_from_slice(&self.index_count.to_be_bytes());
        buf
    }

    /// The header as stored, without any correction (see `check`).
    fn decode(buf: &[u8; HEADER_LEN]) -> Self {
        IndexHeader {
            begin_timestamp: i64_at(buf, BEGIN_TIMESTAMP_POS),
            end_timestamp: i64_at(buf, END_TIMESTAMP_POS),
            begin_phy_offset: i64_at(buf, BEGIN_PHY_OFFSET_POS),
            end_phy_offset: i64_at(buf, END_PHY_OFFSET_POS),
            hash_slot_count: i32_at(buf, HASH_SLOT_COUNT_POS),
            index_count: i32_at(buf, INDEX_COUNT_POS),
        }
    }

    /// Checks a loaded header's values against each other and the file's geometry, and
    /// makes an `indexCount` of 0 (an all-zero header: a file never flushed) read as 1, as
    /// Java's `IndexHeader.load` does. `Err` describes the first insane value: such a header
    /// is not one this code wrote (torn or garbage bytes), and must not be trusted.
    fn check(mut self, geometry: IndexGeometry) -> std::result::Result<Self, String> {
        if self.index_count < 0 || self.index_count.unsigned_abs() > geometry.index_num {
            return Err(format!(
                "indexCount {} outside 0..={}",
                self.index_count, geometry.index_num
            ));
        }
        if self.hash_slot_count < 0 {
            return Err(format!("hashSlotCount {} is negative", self.hash_slot_count));
        }
        if self.begin_timestamp < 0 || self.end_timestamp < 0 {
            return Err(format!(
                "negative timestamps: begin {} end {}",
                self.begin_timestamp, self.end_timestamp
            ));
        }
        if self.begin_phy_offset < 0 || self.end_phy_offset < self.begin_phy_offset {
            return Err(format!(
                "physical offsets out of order: begin {} end {}",
                self.begin_phy_offset, self.end_phy_offset
            ));
        }
        self.index_count = self.index_count.max(1);
        Ok(self)
    }

    /// Valid entry numbers are `1..entry_limit`: written entries, clamped to the file so a
    /// corrupt count cannot send a read past the end.
    fn entry_limit(&self, geometry: IndexGeometry) -> u32 {
        u32::try_from(self.index_count).unwrap_or(1).clamp(1, geometry.index_num)
    }

    /// The offset of the last record indexed, if any record was: this file's last entry, or
    /// for an empty file that continues a previous one, that file's last entry.
    fn indexed_end(&self) -> Option<i64> {
        (self.index_count > 1 || self.end_phy_offset > 0).then_some(self.end_phy_offset)
    }

    /// Java's `isTimeMatched`: `[begin, end]` overlaps the file's time span.
    fn time_matched(&self, begin: i64, end: i64) -> bool {
        let (first, last) = (self.begin_timestamp, self.end_timestamp);
        (begin < first && end > last)
            || (begin >= first && begin <= last)
            || (end >= first && end <= last)
    }
}

/// One 20-byte entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexEntry {
    key_hash: i32,
    phy_offset: i64,
    time_diff_s: i32,
    prev_entry_no: i32,
}

impl IndexEntry {
    fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut buf = [0u8; ENTRY_LEN];
        buf[ENTRY_KEY_HASH_POS..ENTRY_PHY_OFFSET_POS].copy_from_slice(&self.key_hash.to_be_bytes());
        buf[ENTRY_PHY_OFFSET_POS..ENTRY_TIME_DIFF_POS]
            .copy_from_slice(&self.phy_offset.to_be_bytes());
        buf[ENTRY_TIME_DIFF_POS..ENTRY_PREV_POS].copy_from_slice(&self.time_diff_s.to_be_bytes());
        buf[ENTRY_PREV_POS..ENTRY_LEN].copy_from_slice(&self.prev_entry_no.to_be_bytes());
        buf
    }

    fn decode(buf: &[u8; ENTRY_LEN]) -> Self {
        IndexEntry {
            key_hash: i32_at(buf, ENTRY_KEY_HASH_POS),
            phy_offset: i64_at(buf, ENTRY_PHY_OFFSET_POS),
            time_diff_s: i32_at(buf, ENTRY_TIME_DIFF_POS),
            prev_entry_no: i32_at(buf, ENTRY_PREV_POS),
        }
    }
}

/// One index file (storage.md §9.1).
#[derive(Debug)]
pub(crate) struct IndexFile {
    /// Creation time the name encodes, Unix ms (UTC).
    name_ms: i64,
    file: Arc<dyn SegmentFile>,
    geometry: IndexGeometry,
    /// The header as last written; its lock also guards the file's slots and entries.
    header: RwLock<IndexHeader>,
}

impl IndexFile {
    /// Creates `dir/<name of name_ms>` continuing from `prev`'s end values.
    fn create(
        storage: &dyn Storage,
        dir: &Path,
        name_ms: i64,
        geometry: IndexGeometry,
        prev: Option<&IndexHeader>,
    ) -> Result<Self> {
        let path = dir.join(file_name(name_ms));
        let size = geometry.file_size();
        let file = storage.create_segment(&path, size).map_err(|e| {
            if e.kind() == std::io::ErrorKind::StorageFull {
                Error::DiskFull { path: path.clone(), size_bytes: size }
            } else {
                Error::io("create index file", &path, e)
            }
        })?;
        let header = IndexHeader::continuing(prev);
        let index_file = IndexFile { name_ms, file, geometry, header: RwLock::new(header) };
        index_file.write(0, &header.encode())?;
        Ok(index_file)
    }

    /// Opens an existing file of the right size and reads its header. The inner `Err`
    /// says why the header is not sane (`IndexHeader::check`); the file is not opened then.
    fn open(
        storage: &dyn Storage,
        path: &Path,
        name_ms: i64,
        geometry: IndexGeometry,
    ) -> Result<std::result::Result<Self, String>> {
        let file = storage.open_segment(path).map_err(|e| Error::io("open", path, e))?;
        if file.size() != geometry.file_size() {
            return Err(wrong_size(path, file.size(), geometry));
        }
        let mut buf = [0u8; HEADER_LEN];
        file.read_at(0, &mut buf).map_err(|e| Error::io("read", path, e))?;
        Ok(IndexHeader::decode(&buf).check(geometry).map(|header| IndexFile {
            name_ms,
            file,
            geometry,
            header: RwLock::new(header),
        }))
    }

    /// The position of an entry that disagrees with the header, if one does: the first and
    /// last entries must hold the header's begin and end offsets. A flushed file agrees.
    fn entry_disagreeing_with_header(&self) -> Result<Option<u64>> {
        let header = self.header();
        let count = header.entry_limit(self.geometry);
        if count <= 1 {
            return Ok(None);
        }
        if self.read_entry(1)?.phy_offset != header.begin_phy_offset {
            return Ok(Some(self.geometry.entry_pos(1)));
        }
        if self.read_entry(count - 1)?.phy_offset != header.end_phy_offset {
            return Ok(Some(self.geometry.entry_pos(count - 1)));
        }
        Ok(None)
    }

    /// Whether `keys` more entries fit in this file.
    fn has_room_for(&self, keys: usize) -> bool {
        let count = u64::try_from(self.header().index_count).unwrap_or(u64::MAX);
        count.saturating_add(keys as u64) <= u64::from(self.geometry.index_num)
    }

    fn path(&self) -> &Path {
        self.file.path()
    }

    fn header(&self) -> IndexHeader {
        *self.header.read()
    }

    /// Adds one entry (storage.md §9.3 steps 2–6). `Ok(false)` when the file is full.
    fn put_key(&self, key_hash: i32, phy_offset: i64, store_timestamp: i64) -> Result<bool> {
        let mut header = self.header.write();
        assert!(header.index_count >= 1, "index count {} below 1", header.index_count);
        // The new entry's number is the count; a file holds at most index_num - 1 entries.
        let entry_no = header.index_count.unsigned_abs();
        if entry_no >= self.geometry.index_num {
            return Ok(false);
        }
        let slot_pos = self.geometry.slot_pos(key_hash);
        let slot_value = self.read_i32(slot_pos)?;
        // Only an entry already written can start the chain; anything else is empty or junk.
        let prev_entry_no =
            if slot_value <= 0 || slot_value >= header.index_count { 0 } else { slot_value };
        let entry = IndexEntry {
            key_hash,
            phy_offset,
            time_diff_s: time_diff_seconds(header.begin_timestamp, store_timestamp),
            prev_entry_no,
        };
        self.write(self.geometry.entry_pos(entry_no), &entry.encode())?;
        self.write(slot_pos, &header.index_count.to_be_bytes())?;

        let mut next = *header;
        if next.index_count <= 1 {
            // The first entry's timeDiff above was taken against the inherited begin time;
            // RocketMQ keeps that quirk and so do we.
            next.begin_phy_offset = phy_offset;
            next.begin_timestamp = store_timestamp;
        }
        if prev_entry_no == 0 {
            next.hash_slot_count = next.hash_slot_count.saturating_add(1);
        }
        next.index_count += 1;
        next.end_phy_offset = phy_offset;
        next.end_timestamp = store_timestamp;
        self.write(0, &next.encode())?;
        *header = next;
        assert!(header.index_count >= 2, "a put leaves at least one entry");
        Ok(true)
    }

    /// Walks the chain of `key_hash`'s slot (storage.md §9.4), appending matches to `out`
    /// until it holds `max_count`. Bounded by the entry count even if the chain is corrupt.
    fn select(
        &self,
        key_hash: i32,
        max_count: usize,
        begin: i64,
        end: i64,
        out: &mut Vec<i64>,
    ) -> Result<()> {
        let header = self.header.read();
        let limit = header.entry_limit(self.geometry);
        let valid = |entry_no: i32| u32::try_from(entry_no).is_ok_and(|n| n >= 1 && n < limit);
        let slot_value = self.read_i32(self.geometry.slot_pos(key_hash))?;
        if !valid(slot_value) || out.len() >= max_count {
            return Ok(());
        }
        let mut entry_no = slot_value;
        for _ in 1..limit {
            let entry = self.read_entry(entry_no.unsigned_abs())?;
            if entry.time_diff_s < 0 {
                break;
            }
            let time = header.begin_timestamp.wrapping_add(i64::from(entry.time_diff_s) * 1000);
            if entry.key_hash == key_hash && begin <= time && time <= end {
                out.push(entry.phy_offset);
                if out.len() >= max_count {
                    break;
                }
            }
            let prev = entry.prev_entry_no;
            if !valid(prev) || prev == entry_no || time < begin {
                break;
            }
            entry_no = prev;
        }
        Ok(())
    }

    /// Removes the newest entries whose record is at or past `phy_offset`, restoring each
    /// slot to the entry it pointed at before (undoing puts in reverse order is exact).
    /// The end timestamp is left as is: a little late, never early. Returns how many.
    fn remove_entries_from(&self, phy_offset: i64) -> Result<u32> {
        let mut header = self.header.write();
        let mut next = *header;
        let mut removed = 0;
        while next.index_count > 1 && next.index_count.unsigned_abs() <= self.geometry.index_num {
            let entry_no = next.index_count.unsigned_abs() - 1;
            let entry = self.read_entry(entry_no)?;
            if entry.phy_offset < phy_offset {
                break;
            }
            let slot_pos = self.geometry.slot_pos(entry.key_hash);
            if i64::from(self.read_i32(slot_pos)?) == i64::from(entry_no) {
                self.write(slot_pos, &entry.prev_entry_no.max(0).to_be_bytes())?;
            }
            if entry.prev_entry_no <= 0 {
                next.hash_slot_count = next.hash_slot_count.saturating_sub(1).max(0);
            }
            next.index_count -= 1;
            removed += 1;
        }
        if removed == 0 {
            return Ok(0);
        }
        next.end_phy_offset = match next.index_count.unsigned_abs() {
            0 | 1 => next.begin_phy_offset,
            count => self.read_entry(count - 1)?.phy_offset,
        };
        self.write(0, &next.encode())?;
        *header = next;
        drop(header);
        self.flush()?;
        Ok(removed)
    }

    /// Makes the whole file durable (header, slots and entries).
    fn flush(&self) -> Result<()> {
        self.file.sync_range(0, self.file.size()).map_err(|e| Error::io("flush", self.path(), e))
    }

    fn read_entry(&self, entry_no: u32) -> Result<IndexEntry> {
        let mut buf = [0u8; ENTRY_LEN];
        let pos = self.geometry.entry_pos(entry_no);
        self.file.read_at(pos, &mut buf).map_err(|e| Error::io("read", self.path(), e))?;
        Ok(IndexEntry::decode(&buf))
    }

    fn read_i32(&self, pos: u64) -> Result<i32> {
        let mut buf = [0u8; 4];
        self.file.read_at(pos, &mut buf).map_err(|e| Error::io("read", self.path(), e))?;
        Ok(i32::from_be_bytes(buf))
    }

    fn write(&self, pos: u64, bytes: &[u8]) -> Result<()> {
        self.file.write_at(pos, bytes).map_err(|e| Error::io("write", self.path(), e))
    }
}

/// All index files of a store (`<root>/index/`), oldest first.
#[derive(Debug)]
pub(crate) struct IndexService {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    geometry: IndexGeometry,
    /// Oldest first; readers clone the list and walk it without the lock.
    files: RwLock<Vec<Arc<IndexFile>>>,
    /// Serialises the operations that change files: indexing, expiry and recovery cuts.
    writer: Mutex<()>,
    /// Whether `dir` was created and its entry in the parent made durable.
    dir_durable: AtomicBool,
}

impl IndexService {
    /// Loads every index file in `dir`, oldest first (storage.md §9.5). Names that are not
    /// `yyyyMMddHHmmssSSS` and directories are skipped with a warning; an empty newest file
    /// (a crash while creating it) is removed.
    ///
    /// After an abnormal exit (`last_exit_ok == false`) only files known to be durable are
    /// kept: those sealed and flushed no later than the checkpoint's `indexMsgTimestamp`
    /// was written. RocketMQ destroys files whose end timestamp is past the checkpoint; that
    /// keeps an unsynced newest file whose end time ties the checkpoint's millisecond, or
    /// reads as zero or garbage, and then trusts its header. So here a file is kept only if
    ///
    /// * it is not the newest: a file is created only after the previous one was sealed and
    ///   flushed, so every file but the newest is durable, and the newest never is;
    /// * its end timestamp is not after the checkpoint's;
    /// * its header is sane and agrees with its first and last entries;
    ///
    /// and every older file was kept, so the kept files are a prefix of the index. The rest
    /// are destroyed; the index thread re-indexes the CommitLog from the last kept file's
    /// end (or from the CommitLog's start when none is kept), which rebuilds them.
    ///
    /// After a normal exit the same prefix rule applies to damage: a file with the wrong
    /// size, an insane header or entries that disagree with it is warned about and
    /// destroyed with every newer file, where RocketMQ refuses to start.
    ///
    /// # Errors
    /// I/O errors.
    ///
    /// # Panics
    /// If `hash_slot_num` is 0 or `index_num` < 2 (the config is validated before this).
    pub(crate) fn load(
        storage: Arc<dyn Storage>,
        dir: PathBuf,
        hash_slot_num: u32,
        index_num: u32,
        last_exit_ok: bool,
        checkpoint_index_timestamp: i64,
    ) -> Result<Self> {
        let geometry = IndexGeometry::new(hash_slot_num, index_num);
        let mut entries = storage.list(&dir).map_err(|e| Error::io("list", &dir, e))?;
        entries.retain(|entry| {
            let is_index = !entry.is_dir && parse_file_name(&entry.name).is_some();
            if !is_index {
                let path = dir.join(&entry.name);
                tracing::warn!(path = %path.display(), "ignoring a file that is not an index file");
            }
            is_index
        });
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let count = entries.len();
        let mut files: Vec<Arc<IndexFile>> = Vec::new();
        let mut destroyed = Vec::new();
        // After an abnormal exit: whether every file so far was kept.
        let mut keeping = true;
        for (position, entry) in entries.into_iter().enumerate() {
            let path = dir.join(&entry.name);
            let Some(name_ms) = parse_file_name(&entry.name) else {
                continue;
            };
            let newest = position + 1 == count;
            if entry.len == 0 && newest {
                tracing::warn!(path = %path.display(), "removing an empty newest index file");
                destroyed.push(path);
                continue;
            }
            let opened = if entry.len == geometry.file_size() {
                IndexFile::open(&*storage, &path, name_ms, geometry)?
            } else {
                Err(format!("it is {} bytes, expected {}", entry.len, geometry.file_size()))
            };
            // Damage (a wrong size, an insane header, entries that disagree with it) is
            // warned about whatever the last exit was, with where it is; the file is rebuilt
            // like any other.
            let damage = match &opened {
                _ if !keeping => None,
                Err(reason) if entry.len != geometry.file_size() => {
                    Some((reason.clone(), entry.len))
                }
                Err(reason) => Some((format!("its header is not sane: {reason}"), 0)),
                Ok(file) => file
                    .entry_disagreeing_with_header()?
                    .map(|pos| ("its entries do not match its header".to_owned(), pos)),
            };
            let why_not = match &opened {
                _ if !keeping => Some("an older index file was destroyed".to_owned()),
                _ if damage.is_some() => damage.as_ref().map(|(why, _)| why.clone()),
                _ if last_exit_ok => None,
                _ if newest => Some("it is the newest, never sealed".to_owned()),
                Ok(file) => {
                    let header = file.header();
                    let prev_end = files.last().map_or(0, |prev| prev.header().end_phy_offset);
                    if header.end_timestamp > checkpoint_index_timestamp {
                        Some(format!(
                            "it ends at {} after the checkpoint's {checkpoint_index_timestamp}",
                            header.end_timestamp
                        ))
                    } else if header.begin_phy_offset < prev_end {
                        Some(format!(
                            "it begins at offset {} before the previous file's end {prev_end}",
                            header.begin_phy_offset
                        ))
                    } else {
                        None
                    }
                }
                Err(_) => None,
            };
            match (why_not, opened) {
                (None, Ok(file)) => files.push(Arc::new(file)),
                (why_not, opened) => {
                    let why_not = why_not.unwrap_or_default();
                    if let Some((damage, offset)) = damage {
                        tracing::warn!(path = %path.display(), offset, damage, "index file is damaged; destroying it and every newer one, the index is rebuilt from the commit log");
                    } else {
                        tracing::info!(path = %path.display(), why_not, "destroying an index file after an abnormal exit");
                    }
                    drop(opened);
                    destroyed.push(path);
                    keeping = false;
                }
            }
        }
        remove_newest_first(&*storage, &dir, &destroyed)?;
        assert!(files.windows(2).all(|w| w[0].name_ms < w[1].name_ms), "files not in name order");
        Ok(IndexService {
            storage,
            dir,
            geometry,
            files: RwLock::new(files),
            writer: Mutex::new(()),
            dir_durable: AtomicBool::new(false),
        })
    }

    /// Indexes one dispatched record under `topic#UNIQ_KEY` (when `uniq_key` is non-empty)
    /// and `topic#k` for each non-empty `k` of `keys.split(' ')`. A record at or before the
    /// last one indexed is skipped, so re-dispatch is idempotent. The caller filters
    /// rollback records and `messageIndexEnable`.
    ///
    /// Returns `Some(end_timestamp)` when a full file was sealed (flushed) on the way: the
    /// caller then sets the checkpoint's `indexMsgTimestamp` to it and flushes the checkpoint.
    ///
    /// # Errors
    /// I/O errors, `DiskFull` when a new file cannot be allocated.
    pub(crate) fn build_index(
        &self,
        topic: &str,
        keys: Option<&str>,
        uniq_key: Option<&str>,
        phy_offset: i64,
        store_timestamp: i64,
    ) -> Result<Option<i64>> {
        let _writer = self.writer.lock();
        if self.newest().is_some_and(|file| covers(&file.header(), phy_offset)) {
            return Ok(None);
        }
        let uniq = uniq_key.filter(|key| !key.is_empty());
        let keys = keys.into_iter().flat_map(|keys| keys.split(' ')).filter(|key| !key.is_empty());
        let keys: Vec<&str> = uniq.into_iter().chain(keys).collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let mut sealed = None;
        // The index resumes after the newest file's last record, so a record's keys must not
        // straddle a seal: if the new file were lost, the keys put there would never be
        // indexed again. Seal first when the newest file cannot take them all. (A record
        // with more keys than a whole file holds has to straddle.)
        if let Some(newest) = self.newest()
            && !newest.has_room_for(keys.len())
            && newest.header().index_count > 1
        {
            sealed = Some(self.seal_and_roll(&newest)?.0);
        }
        for key in keys {
            let key_hash = topic_key_hash(topic, key);
            if let Some(end_timestamp) = self.put_key(key_hash, phy_offset, store_timestamp)? {
                sealed = Some(end_timestamp);
            }
        }
        Ok(sealed)
    }

    /// Looks `topic#key` up in every file whose time span overlaps `[begin, end]`, newest
    /// first (storage.md §9.4), collecting at most `max_count` offsets. The caller caps
    /// `max_count` with `maxMsgsNumBatch` and must check the records' real keys: only hashes
    /// are stored.
    ///
    /// # Errors
    /// I/O errors reading a file.
    pub(crate) fn query(
        &self,
        topic: &str,
        key: &str,
        max_count: usize,
        begin: i64,
        end: i64,
    ) -> Result<QueryOffsets> {
        let files = self.files.read().clone();
        let key_hash = topic_key_hash(topic, key);
        let mut result = QueryOffsets::default();
        if let Some(newest) = files.last() {
            let header = newest.header();
            result.index_last_update_timestamp = header.end_timestamp;
            result.index_last_update_phy_offset = header.end_phy_offset;
        }
        for file in files.iter().rev() {
            let header = file.header();
            if header.time_matched(begin, end) {
                file.select(key_hash, max_count, begin, end, &mut result.phy_offsets)?;
            }
            if header.begin_timestamp < begin || result.phy_offsets.len() >= max_count {
                break;
            }
        }
        assert!(result.phy_offsets.len() <= max_count, "query collected past max_count");
        result.phy_offsets.sort_unstable();
        result.phy_offsets.dedup();
        Ok(result)
    }

    /// Offset of the last record indexed, where the index thread resumes; `None` if nothing
    /// was ever indexed.
    pub(crate) fn last_indexed_phy_offset(&self) -> Option<i64> {
        self.newest().and_then(|file| file.header().indexed_end())
    }

    /// Makes the newest file durable (older ones were flushed when they filled up).
    ///
    /// # Errors
    /// I/O errors from `msync`.
    pub(crate) fn flush(&self) -> Result<()> {
        self.newest().map_or(Ok(()), |file| file.flush())
    }

    /// Deletes, oldest first and never the newest, files whose end offset is below
    /// `commit_log_min_offset` (storage.md §9.5). Returns how many were deleted.
    ///
    /// # Errors
    /// I/O errors removing a file; files deleted before it stay deleted.
    pub(crate) fn delete_expired(&self, commit_log_min_offset: i64) -> Result<usize> {
        let _writer = self.writer.lock();
        let expired = {
            let files = self.files.read();
            let older = &files[..files.len().saturating_sub(1)];
            older.iter().take_while(|f| f.header().end_phy_offset < commit_log_min_offset).count()
        };
        for _ in 0..expired {
            self.remove_oldest()?;
        }
        Ok(expired)
    }

    /// Forgets what the index knows at or past `phy_offset`, after CommitLog recovery cut its
    /// tail there: files whose begin offset is at or past it are destroyed, and the entries
    /// at or past it are removed from the file that remains newest, so those offsets are
    /// indexed again when new records reuse them.
    ///
    /// # Errors
    /// I/O errors.
    pub(crate) fn truncate_after(&self, phy_offset: i64) -> Result<()> {
        let _writer = self.writer.lock();
        let mut destroyed = 0;
        while let Some(newest) = self.newest() {
            if newest.header().begin_phy_offset < phy_offset {
                let removed = newest.remove_entries_from(phy_offset)?;
                if removed > 0 {
                    tracing::info!(removed, phy_offset, "removed index entries past the cut");
                }
                break;
            }
            self.files.write().pop();
            let path = newest.path().to_path_buf();
            drop(newest);
            remove_newest_first(&*self.storage, &self.dir, &[path])?;
            destroyed += 1;
        }
        if destroyed > 0 {
            tracing::info!(destroyed, phy_offset, "destroyed index files past the cut");
        }
        Ok(())
    }

    /// Deletes every index file.
    ///
    /// # Errors
    /// I/O errors removing a file.
    pub(crate) fn destroy_all(&self) -> Result<()> {
        let _writer = self.writer.lock();
        let files = std::mem::take(&mut *self.files.write());
        let paths: Vec<PathBuf> = files.iter().map(|file| file.path().to_path_buf()).collect();
        drop(files);
        remove_newest_first(&*self.storage, &self.dir, &paths)
    }

    fn newest(&self) -> Option<Arc<IndexFile>> {
        self.files.read().last().cloned()
    }

    /// Puts one key into the newest file, first sealing it and starting a new one if it is
    /// full. Returns the sealed file's end timestamp.
    fn put_key(&self, key_hash: i32, phy_offset: i64, store_timestamp: i64) -> Result<Option<i64>> {
        let newest = match self.newest() {
            Some(file) => file,
            None => self.roll(None)?,
        };
        if newest.put_key(key_hash, phy_offset, store_timestamp)? {
            return Ok(None);
        }
        let (sealed, next) = self.seal_and_roll(&newest)?;
        let put = next.put_key(key_hash, phy_offset, store_timestamp)?;
        assert!(put, "a new index file refused its first entry");
        Ok(Some(sealed))
    }

    /// Seals the newest file: flushes it before the checkpoint can point past it, then
    /// continues in a new file. Returns the sealed file's end timestamp and the new file.
    fn seal_and_roll(&self, newest: &IndexFile) -> Result<(i64, Arc<IndexFile>)> {
        newest.flush()?;
        let sealed = newest.header();
        let next = self.roll(Some(newest))?;
        Ok((sealed.end_timestamp, next))
    }

    /// Creates a new newest file continuing from `prev`, and makes its directory entry
    /// durable: a file is created only once the previous one is sealed and flushed, which
    /// load relies on, and a sealed file must not vanish while a newer one survives.
    fn roll(&self, prev: Option<&IndexFile>) -> Result<Arc<IndexFile>> {
        if !self.dir_durable.load(Ordering::Acquire) {
            self.storage.create_dir_all(&self.dir).map_err(|e| Error::io("mkdir", &self.dir, e))?;
            if let Some(parent) = self.dir.parent() {
                self.storage.sync_dir(parent).map_err(|e| Error::io("sync dir", parent, e))?;
            }
            self.dir_durable.store(true, Ordering::Release);
        }
        let after = self.newest().map_or(i64::MIN, |file| file.name_ms.saturating_add(1));
        let name_ms = now_ms().max(after);
        let prev_header = prev.map(IndexFile::header);
        let file = IndexFile::create(
            &*self.storage,
            &self.dir,
            name_ms,
            self.geometry,
            prev_header.as_ref(),
        )?;
        self.storage.sync_dir(&self.dir).map_err(|e| Error::io("sync dir", &self.dir, e))?;
        let file = Arc::new(file);
        self.files.write().push(file.clone());
        tracing::info!(path = %file.path().display(), "created index file");
        Ok(file)
    }

    /// Removes the oldest file from the list and the disk, durably; `false` if there was none.
    fn remove_oldest(&self) -> Result<bool> {
        let oldest = {
            let mut files = self.files.write();
            if files.is_empty() {
                return Ok(false);
            }
            files.remove(0)
        };
        let path = oldest.path().to_path_buf();
        drop(oldest);
        self.storage.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        // Without this a deleted file could come back after a power cut.
        self.storage.sync_dir(&self.dir).map_err(|e| Error::io("sync dir", &self.dir, e))?;
        Ok(true)
    }
}

/// Removes `paths` (oldest first in the slice) newest first, each removal durable before the
/// next: a power cut in between leaves the older files, never a newer one without them.
fn remove_newest_first(storage: &dyn Storage, dir: &Path, paths: &[PathBuf]) -> Result<()> {
    for path in paths.iter().rev() {
        storage.remove_file(path).map_err(|e| Error::io("remove", path, e))?;
        storage.sync_dir(dir).map_err(|e| Error::io("sync dir", dir, e))?;
    }
    Ok(())
}

/// Whether the record at `phy_offset` is already indexed: it is at or before the last
/// record indexed. (RocketMQ skips only `<`, re-indexing the last record after a restart.)
fn covers(header: &IndexHeader, phy_offset: i64) -> bool {
    phy_offset < header.end_phy_offset || header.indexed_end() == Some(phy_offset)
}

/// `(store − begin) / 1000` clamped to `[0, i32::MAX]`, 0 when `begin` is unset (§9.3 step 3).
fn time_diff_seconds(begin_timestamp: i64, store_timestamp: i64) -> i32 {
    if begin_timestamp <= 0 {
        return 0;
    }
    let seconds = store_timestamp.wrapping_sub(begin_timestamp) / 1000;
    i32::try_from(seconds.max(0)).unwrap_or(i32::MAX)
}

fn wrong_size(path: &Path, len: u64, geometry: IndexGeometry) -> Error {
    Error::corrupt(
        path,
        format!(
            "index file is {len} bytes, expected {} ({} hash slots, {} entries)",
            geometry.file_size(),
            geometry.hash_slot_num,
            geometry.index_num
        ),
    )
}

fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

const MS_PER_DAY: i64 = 86_400_000;

/// Formats Unix ms as `yyyyMMddHHmmssSSS` (UTC; RocketMQ uses local time).
fn file_name(unix_ms: i64) -> String {
    let (days, ms_of_day) = (unix_ms.div_euclid(MS_PER_DAY), unix_ms.rem_euclid(MS_PER_DAY));
    let (year, month, day) = ferromq_message::msg_id::civil_from_days(days);
    let (hour, minute) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60);
    let (second, milli) = (ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}{milli:03}")
}

/// Parses a `yyyyMMddHHmmssSSS` name back to Unix ms; `None` unless it is a real time.
fn parse_file_name(name: &str) -> Option<i64> {
    if name.len() != FILE_NAME_LEN || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |from: usize, to: usize| name[from..to].parse::<i64>().ok();
    let (year, month, day) = (field(0, 4)?, field(4, 6)?, field(6, 8)?);
    let (hour, minute, second, milli) =
        (field(8, 10)?, field(10, 12)?, field(12, 14)?, field(14, 17)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let ms = days_from_civil(year, month, day) * MS_PER_DAY
        + ((hour * 60 + minute) * 60 + second) * 1000
        + milli;
    // February 30th and the like do not survive the round trip.
    (file_name(ms) == name).then_some(ms)
}

/// (year, month, day) → days since 1970-01-01, the inverse of `ferromq_message::msg_id::civil_from_days`.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn i64_at<const N: usize>(buf: &[u8; N], pos: usize) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[pos..pos + 8]);
    i64::from_be_bytes(bytes)
}

fn i32_at<const N: usize>(buf: &[u8; N], pos: usize) -> i32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&buf[pos..pos + 4]);
    i32::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::FsStorage;
    use ferromq_message::hash::index_key_hash;

    const T0: i64 = 1_700_000_000_123;

    fn service(dir: &Path, slots: u32, entries: u32) -> IndexService {
        let storage: Arc<dyn Storage> = Arc::new(FsStorage);
        IndexService::load(storage, dir.join("index"), slots, entries, true, 0).unwrap()
    }

    fn reload(
        dir: &Path,
        slots: u32,
        entries: u32,
        exit_ok: bool,
        checkpoint: i64,
    ) -> IndexService {
        let storage: Arc<dyn Storage> = Arc::new(FsStorage);
        IndexService::load(storage, dir.join("index"), slots, entries, exit_ok, checkpoint).unwrap()
    }

    fn files(service: &IndexService) -> Vec<Arc<IndexFile>> {
        service.files.read().clone()
    }

    fn raw(file: &IndexFile, pos: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        file.file.read_at(pos, &mut buf).unwrap();
        buf
    }

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    fn query_all(service: &IndexService, key: &str) -> Vec<i64> {
        service.query("T", key, usize::MAX, 0, i64::MAX).unwrap().phy_offsets
    }

    #[test]
    fn golden_default_geometry_and_vector_a_entry() {
        let geometry = IndexGeometry::new(5_000_000, 20_000_000);
        assert_eq!(geometry.file_size(), 420_000_040);
        let key_hash = index_key_hash("TopicTest#KEY1");
        assert_eq!(key_hash, 1_656_969_516);
        assert_eq!(topic_key_hash("TopicTest", "KEY1"), key_hash);
        assert_eq!(geometry.slot_of(key_hash), 1_969_516);
        assert_eq!(geometry.slot_pos(key_hash), 40 + 1_969_516 * 4);
        assert_eq!(geometry.entry_pos(1), 40 + 20_000_000 + 20);
        assert_eq!(geometry.entry_pos(19_999_999), 420_000_040 - 20);
        // storage.md §22: vector A's record at 1234, first entry of a fresh file.
        let entry = IndexEntry {
            key_hash,
            phy_offset: 1234,
            time_diff_s: time_diff_seconds(0, T0),
            prev_entry_no: 0,
        };
        assert_eq!(entry.encode().to_vec(), hex("62c3592c 00000000000004d2 00000000 00000000"));
        assert_eq!(IndexEntry::decode(&entry.encode()), entry);
    }

    #[test]
    fn golden_raw_bytes_of_a_small_file() {
        let dir = tempfile::tempdir().unwrap();
        let index = service(dir.path(), 8, 16);
        assert_eq!(index.last_indexed_phy_offset(), None);
        assert_eq!(index.build_index("TopicTest", Some("KEY1"), None, 1234, T0).unwrap(), None);
        let files = files(&index);
        assert_eq!(files.len(), 1);
        let file = &files[0];
        assert_eq!(file.file.size(), 40 + 8 * 4 + 16 * 20);
        let name = file.path().file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(parse_file_name(&name), Some(file.name_ms));

        let mut header = Vec::new();
        header.extend_from_slice(&T0.to_be_bytes()); // begin timestamp
        header.extend_from_slice(&T0.to_be_bytes()); // end timestamp
        header.extend_from_slice(&1234i64.to_be_bytes()); // begin phy offset
        header.extend_from_slice(&1234i64.to_be_bytes()); // end phy offset
        header.extend_from_slice(&1i32.to_be_bytes()); // hash slot count
        header.extend_from_slice(&2i32.to_be_bytes()); // index count
        assert_eq!(raw(file, 0, 40), header);
        let slot = 1_656_969_516 % 8;
        assert_eq!(slot, 4);
        let mut slots = vec![0u8; 32];
        slots[16..20].copy_from_slice(&1i32.to_be_bytes());
        assert_eq!(raw(file, 40, 32), slots);
        assert_eq!(raw(file, 72, 20), vec![0u8; 20], "entry 0 is never used");
        assert_eq!(raw(file, 92, 20), hex("62c3592c 00000000000004d2 00000000 00000000"));
        assert_eq!(index.query("TopicTest", "KEY1", 64, 0, i64::MAX).unwrap().phy_offsets, [1234]);
        assert_eq!(index.last_indexed_phy_offset(), Some(1234));
        index.flush().unwrap();
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(file_name(0), "19700101000000000");
        assert_eq!(file_name(T0), "20231114221320123");
        assert_eq!(file_name(951_782_400_000 - 1), "20000228235959999");
        assert_eq!(file_name(951_782_400_000 + 86_400_000), "20000301000000000"); // leap day
        for ms in [0, T0, 951_782_400_000, 4_102_444_799_999, 1_234_567_890_987] {
            assert_eq!(parse_file_name(&file_name(ms)), Some(ms));
        }
        for bad in [
            "2023111422132012",
            "2023111422132012x",
            "20231314221320123",
            "20230230000000000",
            "20231114241320123",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn uniq_key_and_every_non_empty_key_are_indexed_once() {
        let dir = tempfile::tempdir().unwrap();
        let index = service(dir.path(), 8, 16);
        index.build_index("T", Some(" K1  K2 "), Some("U1"), 100, T0).unwrap();
        index.build_index("T", Some(""), Some(""), 200, T0).unwrap();
        assert_eq!(files(&index)[0].header().index_count, 4);
        for key in ["U1", "K1", "K2"] {
            assert_eq!(query_all(&index, key), [100], "{key}");
        }
        // Re-dispatching the last record, or an older one, adds nothing.
        index.build_index("T", Some("K1"), Some("U1"), 100, T0).unwrap();
        index.build_index("T", Some("K3"), None, 50, T0).unwrap();
        assert_eq!(files(&index)[0].header().index_count, 4);
        assert_eq!(index.last_indexed_phy_offset(), Some(100));
    }

    /// Writes `count` records with key `k{i % distinct}`, one per second, two slots, several
    /// files; returns (key, phy offset) in write order.
    fn fill(index: &IndexService, count: i64, distinct: i64) -> Vec<(String, i64)> {
        let mut written = Vec::new();
        for i in 0..count {
            let key = format!("k{}", i % distinct);
            index.build_index("T", Some(&key), None, i * 100, T0 + i * 1000).unwrap();
            written.push((key, i * 100));
        }
        written
    }

    fn expected(written: &[(String, i64)], key: &str) -> Vec<i64> {
        let hash = topic_key_hash("T", key);
        written.iter().filter(|(k, _)| topic_key_hash("T", k) == hash).map(|&(_, o)| o).collect()
    }

    #[test]
    fn colliding_keys_chain_across_rolled_files() {
        let dir = tempfile::tempdir().unwrap();
        let index = service(dir.path(), 2, 8);
        let written = fill(&index, 40, 5);
        assert_eq!(files(&index).len(), 6, "7 entries per file");
        for i in 0..5 {
            let key = format!("k{i}");
            let found = query_all(&index, &key);
            assert_eq!(found, expected(&written, &key), "{key}");
            assert_eq!(found.len(), 8);
        }
        assert_eq!(query_all(&index, "absent"), expected(&written, "absent"));
        let result = index.query("T", "k0", 64, 0, i64::MAX).unwrap();
        assert_eq!(result.index_last_update_phy_offset, 3900);
        assert_eq!(result.index_last_update_timestamp, T0 + 39_000);
    }

    #[test]
    fn only_the_hash_is_compared_so_java_collisions_match() {
        // "Aa" and "BB" have the same Java hash, and so do "T#Aa" and "T#BB".
        assert_eq!(topic_key_hash("T", "Aa"), topic_key_hash("T", "BB"));
        let dir = tempfile::tempdir().unwrap();
        let index = service(dir.path(), 1024, 16);
        index.build_index("T", Some("Aa"), None, 10, T0).unwrap();
        index.build_index("T", Some("BB"), None, 20, T0).unwrap();
        index.build_index("T", Some("Ab"), None, 30, T0).unwrap();
        assert_eq!(query_all(&index, "Aa"), [10, 20]);
        assert_eq!(query_all(&index, "BB"), [10, 20]);
        assert_eq!(query_all(&index, "Ab"), [30]);
    }

    #[test]
    fn max_count_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let index = service(dir.path(), 4, 8);
        let written = fill(&index, 30, 1);
        let all = expected(&written, "k0");
        assert_eq!(query_all(&index, "k0"), all);
        let newest3 = index.query("T", "k0", 3, 0, i64::MAX).unwrap().phy_offsets;
        assert_eq!(newest3, all[all.len() - 3..]);
        let newest10 = index.query("T", "k0", 10, 0, i64::MAX).unwrap().phy_offsets;
        assert_eq!(newest10, all[all.len() - 10..], "spans files");
        assert!(index.query("T", "k0", 0, 0, i64::MAX).unwrap().phy_offsets.is_empty());
    }

    #[test]
    fn time_range_filters_entries() {
        let dir = tempfile::tempdir().unwrap();
        let index = service(dir.path(), 4, 64);
        fill(&index, 20, 2); // one file: entry i stored at T0 + i s, exact to the second
        let range =
            |begin: i64, end: i64| index.query("T", "k0", 64, begin, end).unwrap().phy_offsets;
        assert_eq!(range(T0 + 4_000, T0 + 10_000), [400, 600, 800, 1000]);
        assert_eq!(range(T0 + 4_001, T0 + 9_999), [600, 800]);
        assert_eq!(range(T0 + 19_001, i64::MAX), Vec::<i64>::new());
        assert_eq!(range(0, T0 - 1), Vec::<i64>::new());
        assert_eq!(range(0, i64::MAX).len(), 10);
    }

    #[test]
    fn rolling_seals_the_full_file_and_inherits_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let index = service(dir.path(), 4, 4); // 3 entries per file
        for i in 0..3 {
            assert_eq!(index.build_index("T", Some("a"), None, i, T0 + i * 1000).unwrap(), None);
        }
        // The 4th key fills a new file: the sealed one ended at T0 + 2 s.
        assert_eq!(
            index.build_index("T", Some("a"), None, 3, T0 + 5_500).unwrap(),
            Some(T0 + 2000)
        );
        let files = files(&index);
        assert_eq!(files.len(), 2);
        assert!(files[0].name_ms < files[1].name_ms);
        let (first, second) = (files[0].header(), files[1].header());
        assert_eq!(first.index_count, 4);
        assert_eq!(second.begin_phy_offset, 3);
        assert_eq!(second.begin_timestamp, T0 + 5_500);
        // Quirk (§9.3 step 5): the first entry's timeDiff is against the inherited begin.
        assert_eq!(files[1].read_entry(1).unwrap().time_diff_s, 3);
        // A record with more keys than the newest file has room for seals it first, so the
        // record's keys never straddle two files: the second file keeps its one entry.
        let sealed = index.build_index("T", Some("b c d"), None, 4, T0 + 6_000).unwrap();
        assert_eq!(sealed, Some(T0 + 5_500));
        let files = self::files(&index);
        assert_eq!(files.len(), 3);
        assert_eq!(files[1].header().index_count, 2);
        assert_eq!(files[1].header().end_phy_offset, 3);
        assert_eq!(files[2].header().index_count, 4);
        assert_eq!(files[2].header().begin_phy_offset, 4);
        assert_eq!(query_all(&index, "d"), [4]);
        assert_eq!(index.last_indexed_phy_offset(), Some(4));
        // Only a record with more keys than a whole file holds has to straddle.
        let sealed = index.build_index("T", Some("e f g h"), None, 5, T0 + 7_000).unwrap();
        assert_eq!(sealed, Some(T0 + 7_000));
        assert_eq!(index.files.read().len(), 5);
        assert_eq!(query_all(&index, "e"), [5]);
        assert_eq!(query_all(&index, "h"), [5]);
        assert_eq!(index.last_indexed_phy_offset(), Some(5));
    }

    #[test]
    fn reload_keeps_results_and_abnormal_exit_destroys_newer_files() {
        let dir = tempfile::tempdir().unwrap();
        let index = service(dir.path(), 2, 8);
        let mut sealed = Vec::new();
        let mut written = Vec::new();
        for i in 0..30 {
            let key = format!("k{}", i % 3);
            if let Some(ts) =
                index.build_index("T", Some(&key), None, i * 100, T0 + i * 1000).unwrap()
            {
                sealed.push(ts);
            }
            written.push((key, i * 100));
        }
        assert_eq!(sealed, [T0 + 6_000, T0 + 13_000, T0 + 20_000, T0 + 27_000]);
        let before: Vec<_> = (0..3).map(|i| query_all(&index, &format!("k{i}"))).collect();
        index.flush().unwrap();
        drop(index);

        let index = reload(dir.path(), 2, 8, true, 0);
        assert_eq!(index.files.read().len(), 5);
        for (i, offsets) in before.iter().enumerate() {
            assert_eq!(&query_all(&index, &format!("k{i}")), offsets);
        }
        assert_eq!(index.last_indexed_phy_offset(), Some(2900));
        drop(index);

        // Checkpoint at the second sealed file: the files after it go.
        let index = reload(dir.path(), 2, 8, false, T0 + 13_000);
        assert_eq!(index.files.read().len(), 2);
        assert_eq!(std::fs::read_dir(dir.path().join("index")).unwrap().count(), 2);
        assert_eq!(index.last_indexed_phy_offset(), Some(1300));
        let kept: Vec<_> = written[..14].to_vec();
        for i in 0..3 {
            let key = format!("k{i}");
            assert_eq!(query_all(&index, &key), expected(&kept, &key));
        }
        // Re-dispatch continues after the last indexed record.
        assert_eq!(index.build_index("T", Some("k2"), None, 1300, T0 + 13_000).unwrap(), None);
        index.build_index("T", Some("k2"), None, 1400, T0 + 14_000).unwrap();
        assert_eq!(index.last_indexed_phy_offset(), Some(1400));
    }

    #[test]
    fn abnormal_exit_keeps_only_a_prefix_of_sealed_sane_files() {
        let dir = tempfile::tempdir().unwrap();
        let index = service(dir.path(), 2, 4);
        let written = fill(&index, 12, 2); // files end at 200, 500, 800, 1100 (newest)
        index.flush().unwrap();
        drop(index);
        let names = || {
            let mut names: Vec<_> = std::fs::read_dir(dir.path().join("index"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names().len(), 4);

        // The newest file is never sealed: destroyed even though its end time ties the
        // checkpoint's millisecond.
        let index = reload(dir.path(), 2, 4, false, T0 + 11_000);
        assert_eq!(index.files.read().len(), 3);
        assert_eq!(index.last_indexed_phy_offset(), Some(800));
        for key in ["k0", "k1"] {
            assert_eq!(query_all(&index, key), expected(&written[..9], key));
        }
        // Re-dispatch rebuilds what the destroyed file held.
        for i in 9..12 {
            index
                .build_index("T", Some(&format!("k{}", i % 2)), None, i * 100, T0 + i * 1000)
                .unwrap();
        }
        for key in ["k0", "k1"] {
            assert_eq!(query_all(&index, key), expected(&written, key));
        }
        index.flush().unwrap();
        drop(index);

        // A sealed file past the checkpoint goes, and so does every later one.
        let index = reload(dir.path(), 2, 4, false, T0 + 5_000);
        assert_eq!(index.files.read().len(), 2);
        assert_eq!(index.last_indexed_phy_offset(), Some(500));
        drop(index);

        // An insane header: after a normal exit as after an abnormal one, that file and
        // every later one are destroyed (the index is rebuilt from the commit log).
        let mut bytes = std::fs::read(&names()[1]).unwrap();
        bytes[INDEX_COUNT_POS..HEADER_LEN].copy_from_slice(&(-5i32).to_be_bytes());
        let damaged = names()[1].clone();
        std::fs::write(&damaged, &bytes).unwrap();
        let index = reload(dir.path(), 2, 4, true, 0);
        assert_eq!(index.files.read().len(), 1);
        assert_eq!(index.last_indexed_phy_offset(), Some(200));
        assert_eq!(names().len(), 1);
        drop(index);
        std::fs::write(&damaged, &bytes).unwrap();
        let index = reload(dir.path(), 2, 4, false, i64::MAX);
        assert_eq!(index.files.read().len(), 1);
        assert_eq!(index.last_indexed_phy_offset(), Some(200));
        assert_eq!(names().len(), 1);
        drop(index);

        // A newest file whose header never reached the disk (all zero) is destroyed too,
        // and with nothing kept the index starts over.
        std::fs::write(&names()[0], vec![0u8; 40 + 2 * 4 + 4 * 20]).unwrap();
        let index = reload(dir.path(), 2, 4, false, i64::MAX);
        assert_eq!(index.files.read().len(), 0);
        assert_eq!(index.last_indexed_phy_offset(), None);
    }

    #[test]
    fn load_destroys_wrong_sizes_and_skips_strangers() {
        let dir = tempfile::tempdir().unwrap();
        let index_dir = dir.path().join("index");
        std::fs::create_dir_all(index_dir.join("20231114221320999")).unwrap();
        std::fs::write(index_dir.join("README"), b"not an index file").unwrap();
        std::fs::write(index_dir.join("20231114221320123"), vec![0u8; 40 + 8 * 4 + 16 * 20])
            .unwrap();
        std::fs::write(index_dir.join("20231114221320124"), b"").unwrap();
        let index = reload(dir.path(), 8, 16, true, 0);
        assert_eq!(index.files.read().len(), 1);
        assert!(!index_dir.join("20231114221320124").exists(), "an empty newest file is removed");
        assert_eq!(index.last_indexed_phy_offset(), None, "an all-zero file has no entries");
        drop(index);

        // A file of the wrong size is damage: it goes, with every newer file.
        std::fs::write(index_dir.join("20231114221320125"), vec![0u8; 100]).unwrap();
        std::fs::write(index_dir.join("20231114221320126"), vec![0u8; 40 + 8 * 4 + 16 * 20])
            .unwrap();
        let index = reload(dir.path(), 8, 16, true, 0);
        assert_eq!(index.files.read().len(), 1);
        assert!(index_dir.join("20231114221320123").exists());
        assert!(!index_dir.join("20231114221320125").exists());
        assert!(!index_dir.join("20231114221320126").exists());
    }

    #[test]
    fn delete_expired_removes_old_files_but_never_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let index = service(dir.path(), 2, 4);
        fill(&index, 12, 2); // files end at 200, 500, 800, 1100
        assert_eq!(index.files.read().len(), 4);
        assert_eq!(index.delete_expired(200).unwrap(), 0, "end 200 is not below 200");
        assert_eq!(index.delete_expired(501).unwrap(), 2);
        assert_eq!(files(&index)[0].header().end_phy_offset, 800);
        assert_eq!(index.delete_expired(i64::MAX).unwrap(), 1);
        assert_eq!(index.files.read().len(), 1);
        assert_eq!(std::fs::read_dir(dir.path().join("index")).unwrap().count(), 1);
        assert_eq!(query_all(&index, "k1"), [900, 1100]);
        index.destroy_all().unwrap();
        assert_eq!(index.files.read().len(), 0);
        assert_eq!(std::fs::read_dir(dir.path().join("index")).unwrap().count(), 0);
        assert_eq!(index.query("T", "k1", 64, 0, i64::MAX).unwrap(), QueryOffsets::default());
    }

    #[test]
    fn truncate_after_destroys_later_files_and_unlinks_cut_entries() {
        let dir = tempfile::tempdir().unwrap();
        let index = service(dir.path(), 2, 8);
        let written = fill(&index, 20, 3); // files of 7: [0..=600] [700..=1300] [1400..=1900]
        assert_eq!(index.files.read().len(), 3);
        index.truncate_after(1000).unwrap();
        assert_eq!(index.files.read().len(), 2);
        let newest = files(&index)[1].header();
        assert_eq!(newest.index_count, 4);
        assert_eq!(newest.end_phy_offset, 900);
        assert_eq!(index.last_indexed_phy_offset(), Some(900));
        let kept: Vec<_> = written[..10].to_vec();
        for i in 0..3 {
            let key = format!("k{i}");
            assert_eq!(query_all(&index, &key), expected(&kept, &key), "{key}");
        }
        // New records reuse the cut offsets and are indexed again.
        index.build_index("T", Some("new"), None, 1000, T0 + 50_000).unwrap();
        assert_eq!(query_all(&index, "new"), [1000]);
        assert_eq!(query_all(&index, "k1"), expected(&kept, "k1"));
        drop(index);
        let index = reload(dir.path(), 2, 8, true, 0);
        assert_eq!(query_all(&index, "new"), [1000]);
        index.truncate_after(0).unwrap();
        assert_eq!(index.files.read().len(), 0);
        assert_eq!(index.last_indexed_phy_offset(), None);
    }

    /// xorshift64*: deterministic noise without a dependency.
    fn noise(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn corrupt_files_never_panic() {
        for seed in 1..=20u64 {
            let dir = tempfile::tempdir().unwrap();
            let index = service(dir.path(), 4, 32);
            fill(&index, 40, 5);
            index.flush().unwrap();
            drop(index);
            let mut state = seed;
            for entry in std::fs::read_dir(dir.path().join("index")).unwrap() {
                let path = entry.unwrap().path();
                let mut bytes = std::fs::read(&path).unwrap();
                // Seeds 1..=5 also scramble the header, the rest only slots and entries.
                let from = if seed <= 5 { 0 } else { HEADER_LEN };
                for byte in &mut bytes[from..] {
                    if noise(&mut state).is_multiple_of(3) {
                        *byte = noise(&mut state) as u8;
                    }
                }
                std::fs::write(&path, bytes).unwrap();
            }
            // An insane header is an error after a normal exit; after an abnormal one, that
            // file and every later one are destroyed.
            let storage: Arc<dyn Storage> = Arc::new(FsStorage);
            let index = match IndexService::load(storage, dir.path().join("index"), 4, 32, true, 0)
            {
                Ok(index) => index,
                Err(Error::Corrupt { reason, .. }) if seed <= 5 => {
                    assert!(reason.contains("not sane"), "{reason}");
                    reload(dir.path(), 4, 32, false, i64::MAX)
                }
                Err(err) => panic!("seed {seed}: {err}"),
            };
            for key in ["k0", "k1", "k2", "k3", "k4", "other"] {
                for (begin, end) in [(0, i64::MAX), (T0, T0 + 10_000), (i64::MIN, 0)] {
                    let found = index.query("T", key, 64, begin, end).unwrap();
                    assert!(found.phy_offsets.len() <= 64);
                }
            }
            let phy = index.last_indexed_phy_offset().unwrap_or(0).saturating_add(1);
            for i in 0..40 {
                index.build_index("T", Some("fresh"), None, phy.saturating_add(i), T0).unwrap();
            }
            assert!(!query_all(&index, "fresh").is_empty(), "seed {seed}");
            index.truncate_after(phy).unwrap();
            index.delete_expired(i64::MAX).unwrap();
        }
    }

    #[test]
    fn readers_run_while_the_writer_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let index = Arc::new(service(dir.path(), 16, 64));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (index, done) = (index.clone(), done.clone());
                std::thread::spawn(move || {
                    while !done.load(std::sync::atomic::Ordering::Acquire) {
                        let found = index.query("T", "k1", 64, 0, i64::MAX).unwrap();
                        assert!(found.phy_offsets.iter().all(|o| o % 100 == 0));
                    }
                })
            })
            .collect();
        let written = fill(&index, 500, 7);
        done.store(true, std::sync::atomic::Ordering::Release);
        for reader in readers {
            reader.join().unwrap();
        }
        let all = expected(&written, "k1");
        assert_eq!(query_all(&index, "k1"), all);
        let newest = index.query("T", "k1", 64, 0, i64::MAX).unwrap().phy_offsets;
        assert_eq!(newest, all[all.len() - 64..]);
    }
}
