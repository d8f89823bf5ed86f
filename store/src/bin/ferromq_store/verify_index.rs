//! IndexFile checks of `verify` (storage.md §9).
//!
//! The entries of all files, oldest file first, form one stream in CommitLog order. While the
//! CommitLog is scanned, the stream is advanced to each record: the entries at its offset
//! must be exactly the hashes of `topic#UNIQ_KEY` and `topic#k` for each of its `KEYS`, and
//! no entry may point between records. As each entry passes, its `prev` link must name the
//! previous entry of its slot; when a file is done, every slot must name its newest entry
//! and `hashSlotCount` must count the non-empty slots.

use std::path::PathBuf;

use ferromq_message::hash::topic_key_hash;
use ferromq_message::record::RecordRef;
use ferromq_message::{property, sysflag};

use super::layout::{self, CliResult, INDEX_HEADER_LEN, Layout, WindowReader, be_i32, be_i64};
use super::verify::{Found, Gaps, Problems};

const SLOT_LEN: u64 = 4;
const ENTRY_LEN: u64 = 20;
/// Window of the index readers.
const WINDOW_BYTES: usize = 1 << 20;
/// Slots compared per read of the slot table.
const SLOTS_PER_READ: u64 = 16 * 1024;

/// One index file's header (storage.md §9.1).
#[derive(Debug, Clone)]
struct IndexFile {
    path: PathBuf,
    begin_timestamp: i64,
    begin_phy_offset: i64,
    end_phy_offset: i64,
    hash_slot_count: i32,
    /// `indexCount` clamped to `1..=index_num`: entries `1..index_count` are in use.
    index_count: u32,
}

/// One entry, with where it was read.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key_hash: i32,
    phy_offset: i64,
    time_diff: i32,
    number: u32,
    file: usize,
    pos: u64,
}

/// The file whose entries the stream is reading.
#[derive(Debug)]
struct Current {
    file: usize,
    reader: WindowReader,
    next_number: u32,
}

/// Index state built while the CommitLog is scanned.
#[derive(Debug)]
pub(crate) struct IndexCheck {
    files: Vec<IndexFile>,
    hash_slot_num: u32,
    log_min: u64,
    /// The store was recovered and closed, so the index must reach the CommitLog's end.
    recovered: bool,
    current: Option<Current>,
    next_file: usize,
    peeked: Option<Entry>,
    /// For each slot, the newest entry of the current file seen so far (0: none).
    last_in_slot: Vec<u32>,
    last_phy_offset: i64,
    /// Whether an entry at or past the CommitLog's start has been seen: records before the
    /// first such entry are older than the index.
    started: bool,
    expected: Vec<i32>,
    got: Vec<i32>,
    gaps: Gaps,
    entries: u64,
    expired_entries: u64,
    unverifiable_entries: u64,
    records_checked: u64,
    records_uncovered: u64,
    records_unindexed: u64,
}

impl IndexCheck {
    /// Lists the index files and checks their names, sizes and headers.
    ///
    /// # Errors
    /// When the index directory or a header cannot be read.
    pub(crate) fn open(
        layout: &Layout,
        log_min: u64,
        recovered: bool,
        problems: &mut Problems,
    ) -> CliResult<Self> {
        let dir = layout.root.join(layout::INDEX_DIR);
        let layout::Listing { files: names, strangers } = layout::index_files(&dir)?;
        for name in strangers {
            problems.report(&dir.join(name), 0, "not an index file (name is not 17 digits)");
        }
        let mut files: Vec<IndexFile> = Vec::new();
        for layout::IndexFileName { path, len } in names {
            if len != layout.index_file_bytes() {
                let what = format!("length {len}, expected {}", layout.index_file_bytes());
                problems.report(&path, 0, what);
                continue;
            }
            let file = read_header(path, layout.index_num, problems)?;
            if let Some(previous) = files.last()
                && file.index_count > 1
                && file.begin_phy_offset < previous.end_phy_offset
            {
                let what = format!(
                    "beginPhyOffset {} is before the previous file's endPhyOffset {}",
                    file.begin_phy_offset, previous.end_phy_offset
                );
                problems.report(&file.path, 16, what);
            }
            files.push(file);
        }
        Ok(IndexCheck {
            files,
            hash_slot_num: layout.hash_slot_num,
            log_min,
            recovered,
            current: None,
            next_file: 0,
            peeked: None,
            last_in_slot: vec![0; layout.hash_slot_num as usize],
            last_phy_offset: i64::MIN,
            started: false,
            expected: Vec::new(),
            got: Vec::new(),
            gaps: Gaps::default(),
            entries: 0,
            expired_entries: 0,
            unverifiable_entries: 0,
            records_checked: 0,
            records_uncovered: 0,
            records_unindexed: 0,
        })
    }

    /// Matches the entries at the record's offset with its keys.
    pub(crate) fn on_record(
        &mut self,
        found: &Found<'_>,
        problems: &mut Problems,
    ) -> CliResult<()> {
        if self.files.is_empty() {
            return Ok(());
        }
        let phy = found.phy as i64;
        while let Some(entry) = self.peek(problems)?
            && entry.phy_offset < phy
        {
            self.peeked = None;
            self.stray_entry(&entry, "no record with keys starts there", problems);
        }
        self.got.clear();
        while let Some(entry) = self.peek(problems)?
            && entry.phy_offset == phy
        {
            self.peeked = None;
            self.started = true;
            self.got.push(entry.key_hash);
            self.check_time(&entry, found.rec.store_timestamp, problems);
        }
        expected_hashes(found.rec, &mut self.expected);
        if self.expected.is_empty() && self.got.is_empty() {
            return Ok(());
        }
        if self.got.is_empty() {
            return self.unindexed(found, problems);
        }
        self.got.sort_unstable();
        self.records_checked += 1;
        if self.got != self.expected {
            let what = format!(
                "the index holds key hashes {:?} for the record at phy {}, its UNIQ_KEY and KEYS \
                 hash to {:?}",
                self.got, found.phy, self.expected
            );
            problems.report(found.path, found.pos, what);
        }
        Ok(())
    }

    /// Notes a CommitLog range the scan could not read.
    pub(crate) fn on_gap(&mut self, start: u64, end: u64) {
        self.gaps.add(start, end);
    }

    /// Reads the rest of the stream: entries past the last record point at nothing.
    ///
    /// # Errors
    /// When a file cannot be read.
    pub(crate) fn finish(&mut self, problems: &mut Problems) -> CliResult<()> {
        while let Some(entry) = self.peek(problems)? {
            self.peeked = None;
            self.stray_entry(&entry, "it is past the last record", problems);
        }
        Ok(())
    }

    pub(crate) fn print_summary(&self) {
        println!(
            "index: {} files, {} entries ({} pointing at expired records, {} into unreadable \
             records), {} records with keys checked, {} older than the index, {} not yet indexed",
            self.files.len(),
            self.entries,
            self.expired_entries,
            self.unverifiable_entries,
            self.records_checked,
            self.records_uncovered,
            self.records_unindexed
        );
    }

    /// A record with keys and no entries: older than the index, past its end, or missing.
    fn unindexed(&mut self, found: &Found<'_>, problems: &mut Problems) -> CliResult<()> {
        if !self.started {
            self.records_uncovered += 1;
            return Ok(());
        }
        if self.peek(problems)?.is_none() {
            self.records_unindexed += 1;
            if !self.recovered {
                return Ok(()); // without recovery the index may lag behind
            }
        }
        let what = format!("the record at phy {} has keys but no index entries", found.phy);
        problems.report(found.path, found.pos, what);
        Ok(())
    }

    fn stray_entry(&mut self, entry: &Entry, why: &str, problems: &mut Problems) {
        if u64::try_from(entry.phy_offset).is_ok_and(|phy| phy < self.log_min) {
            self.expired_entries += 1;
            return;
        }
        self.started = true;
        if self.gaps.contains(entry.phy_offset) {
            self.unverifiable_entries += 1;
            return;
        }
        let what = format!("entry #{} points at phy {}, but {why}", entry.number, entry.phy_offset);
        problems.report(&self.files[entry.file].path, entry.pos, what);
    }

    /// Entry 1 of a file is exempt: its time was measured from the previous file's end.
    fn check_time(&self, entry: &Entry, store_timestamp: i64, problems: &mut Problems) {
        let begin = self.files[entry.file].begin_timestamp;
        if entry.number < 2 || begin <= 0 {
            return;
        }
        let time = begin.saturating_add(i64::from(entry.time_diff) * 1000);
        if time > store_timestamp.max(begin) || time <= store_timestamp - 1000 {
            let what = format!(
                "entry #{} has timeDiff {} s, i.e. time {time}, but the record was stored at \
                 {store_timestamp}",
                entry.number, entry.time_diff
            );
            problems.report(&self.files[entry.file].path, entry.pos, what);
        }
    }

    fn peek(&mut self, problems: &mut Problems) -> CliResult<Option<Entry>> {
        if self.peeked.is_none() {
            self.peeked = self.next_entry(problems)?;
        }
        Ok(self.peeked)
    }

    /// The next entry of the stream, checking its chain link; finishing a file checks its
    /// slot table.
    fn next_entry(&mut self, problems: &mut Problems) -> CliResult<Option<Entry>> {
        loop {
            let Some(current) = self.current.as_mut() else {
                let Some(file) = self.files.get(self.next_file) else { return Ok(None) };
                let reader = WindowReader::open(&file.path, WINDOW_BYTES)?;
                self.current = Some(Current { file: self.next_file, reader, next_number: 1 });
                self.next_file += 1;
                self.last_in_slot.fill(0);
                continue;
            };
            let file = &self.files[current.file];
            if current.next_number >= file.index_count {
                let Some(done) = self.current.take() else { continue };
                self.check_slots(done, problems)?;
                continue;
            }
            let number = current.next_number;
            current.next_number += 1;
            let pos = INDEX_HEADER_LEN
                + u64::from(self.hash_slot_num) * SLOT_LEN
                + u64::from(number) * ENTRY_LEN;
            let bytes = current.reader.read(pos, ENTRY_LEN as usize)?;
            let (key_hash, phy_offset) = (be_i32(bytes, 0), be_i64(bytes, 4));
            let (time_diff, prev) = (be_i32(bytes, 12), be_i32(bytes, 16));
            let entry = Entry { key_hash, phy_offset, time_diff, number, file: current.file, pos };
            self.check_entry(&entry, prev, problems);
            self.entries += 1;
            return Ok(Some(entry));
        }
    }

    fn check_entry(&mut self, entry: &Entry, prev: i32, problems: &mut Problems) {
        let file = &self.files[entry.file];
        let slot = (entry.key_hash.unsigned_abs() % self.hash_slot_num) as usize;
        let expected_prev = self.last_in_slot[slot];
        if i64::from(prev) != i64::from(expected_prev) {
            let what = format!(
                "entry #{} links to entry #{prev}, but the previous entry of slot {slot} is #{expected_prev}",
                entry.number
            );
            problems.report(&file.path, entry.pos + 16, what);
        }
        self.last_in_slot[slot] = entry.number;
        if entry.key_hash < 0 {
            problems.report(&file.path, entry.pos, format!("negative key hash {}", entry.key_hash));
        }
        if entry.phy_offset < file.begin_phy_offset || entry.phy_offset > file.end_phy_offset {
            let what = format!(
                "entry #{} points at phy {} outside the header's {}..={}",
                entry.number, entry.phy_offset, file.begin_phy_offset, file.end_phy_offset
            );
            problems.report(&file.path, entry.pos, what);
        }
        if entry.phy_offset < self.last_phy_offset {
            let what = format!(
                "entry #{} points at phy {}, before the previous entry's {}",
                entry.number, entry.phy_offset, self.last_phy_offset
            );
            problems.report(&file.path, entry.pos, what);
        }
        self.last_phy_offset = entry.phy_offset;
    }

    /// Every slot must hold its newest entry; `hashSlotCount` counts the non-empty ones.
    fn check_slots(&self, done: Current, problems: &mut Problems) -> CliResult<()> {
        let Current { file, mut reader, .. } = done;
        let file = &self.files[file];
        let slots = u64::from(self.hash_slot_num);
        let mut non_empty = 0u64;
        let mut first = 0;
        while first < slots {
            let count = SLOTS_PER_READ.min(slots - first);
            let bytes =
                reader.read(INDEX_HEADER_LEN + first * SLOT_LEN, (count * SLOT_LEN) as usize)?;
            for (i, chunk) in bytes.chunks_exact(SLOT_LEN as usize).enumerate() {
                let slot = first as usize + i;
                let value = be_i32(chunk, 0);
                let expected = self.last_in_slot[slot];
                if value != 0 {
                    non_empty += 1;
                }
                if i64::from(value) != i64::from(expected) {
                    let pos = INDEX_HEADER_LEN + slot as u64 * SLOT_LEN;
                    let what = format!(
                        "slot {slot} holds entry #{value}, its newest entry is #{expected}"
                    );
                    problems.report(&file.path, pos, what);
                }
            }
            first += count;
        }
        if i64::from(file.hash_slot_count) != non_empty as i64 {
            let what = format!(
                "hashSlotCount is {}, but {non_empty} slots are in use",
                file.hash_slot_count
            );
            problems.report(&file.path, 32, what);
        }
        Ok(())
    }
}

fn read_header(path: PathBuf, index_num: u32, problems: &mut Problems) -> CliResult<IndexFile> {
    let mut reader = WindowReader::open(&path, INDEX_HEADER_LEN as usize)?;
    let header = reader.read(0, INDEX_HEADER_LEN as usize)?;
    let (begin_timestamp, end_timestamp) = (be_i64(header, 0), be_i64(header, 8));
    let (begin_phy_offset, end_phy_offset) = (be_i64(header, 16), be_i64(header, 24));
    let (hash_slot_count, index_count) = (be_i32(header, 32), be_i32(header, 36));
    let count = match u32::try_from(index_count) {
        Ok(count) if (1..=index_num).contains(&count) => count,
        _ => {
            problems.report(
                &path,
                36,
                format!("indexCount {index_count}, expected 1..={index_num}"),
            );
            u32::try_from(index_count).map_or(1, |count| count.clamp(1, index_num))
        }
    };
    if count > 1 && begin_phy_offset > end_phy_offset {
        let what = format!("beginPhyOffset {begin_phy_offset} > endPhyOffset {end_phy_offset}");
        problems.report(&path, 16, what);
    }
    if count > 1 && begin_timestamp > end_timestamp {
        let what = format!("beginTimestamp {begin_timestamp} > endTimestamp {end_timestamp}");
        problems.report(&path, 0, what);
    }
    Ok(IndexFile {
        path,
        begin_timestamp,
        begin_phy_offset,
        end_phy_offset,
        hash_slot_count,
        index_count: count,
    })
}

/// The sorted key hashes the store indexes a record under (rolled-back records: none).
fn expected_hashes(rec: &RecordRef<'_>, out: &mut Vec<i32>) {
    out.clear();
    if sysflag::transaction_type(rec.sysflag) == sysflag::TRANSACTION_ROLLBACK_TYPE {
        return;
    }
    let text = |name| rec.property(name).and_then(|v| std::str::from_utf8(v).ok());
    if let Some(uniq) = text(property::UNIQ_KEY).filter(|k| !k.is_empty()) {
        out.push(topic_key_hash(rec.topic, uniq));
    }
    for key in text(property::KEYS).into_iter().flat_map(|k| k.split(' ')).filter(|k| !k.is_empty())
    {
        out.push(topic_key_hash(rec.topic, key));
    }
    out.sort_unstable();
}
