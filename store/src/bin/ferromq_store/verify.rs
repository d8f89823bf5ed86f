//! `ferromq-store verify DIR`: opens the store through the engine (so recovery runs, as in
//! the broker), closes it, then checks the files with its own reader:
//!
//! - CommitLog: segment names and sizes, every record's size, magic, field layout and body
//!   CRC, its PHYSICALOFFSET, BLANK records that fill their segment exactly, each queue's
//!   offsets following one another, and the data end agreeing with the engine's;
//! - ConsumeQueue: every dispatched record has the unit its queue offset names, pointing back
//!   at it with its size and tags code, and every unit points at such a record;
//! - IndexFile: header ranges, every hash chain (slot heads and `prev` links), and the
//!   entries of each record equal to the hashes of its `UNIQ_KEY` and `KEYS`.
//!
//! Each inconsistency is printed with its file and byte offset; the exit status is non-zero
//! if there was any.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use ferromq_message::record::crc_property::{compute_record_crc, stored_record_crc};
use ferromq_message::record::{self, RecordCheck, RecordRef};
use ferromq_store::{MessageStore, RecoveryMode};

use super::layout::{
    self, CliResult, Layout, SizeArgs, WindowReader, be_i32, be_i64, segment_files,
};
use super::verify_cq::ConsumeQueueCheck;
use super::verify_index::IndexCheck;

/// Bytes read at once while scanning CommitLog segments.
const SCAN_CHUNK_BYTES: usize = 8 << 20;

/// `verify` arguments.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The store's root directory (`storePathRootDir`).
    pub dir: PathBuf,
    /// Check the files as they are, without opening the store first (no recovery, nothing
    /// written; a crashed store's index may then lag behind its CommitLog).
    #[arg(long)]
    pub no_recover: bool,
    /// Print at most this many inconsistencies (all are counted).
    #[arg(long, default_value_t = 50)]
    pub max_problems: u64,
    #[command(flatten)]
    pub sizes: SizeArgs,
}

/// Counts inconsistencies and prints the first few.
#[derive(Debug)]
pub(crate) struct Problems {
    count: u64,
    print_max: u64,
}

impl Problems {
    pub(crate) fn new(print_max: u64) -> Self {
        Problems { count: 0, print_max }
    }

    /// Records one inconsistency at byte `offset` of `path`.
    pub(crate) fn report(&mut self, path: &Path, offset: u64, what: impl Display) {
        self.count += 1;
        if self.count <= self.print_max {
            println!("INCONSISTENT {} at offset {offset}: {what}", path.display());
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }
}

/// A record found by the CommitLog scan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found<'a> {
    /// Physical offset.
    pub phy: u64,
    /// `TOTALSIZE`.
    pub size: u32,
    pub rec: &'a RecordRef<'a>,
    /// The segment and the record's position in it, for reports.
    pub path: &'a Path,
    pub pos: u64,
}

/// What the engine said while it had the store open.
#[derive(Debug, Clone, Copy)]
struct EngineView {
    mode: RecoveryMode,
    min_phy: i64,
    max_phy: i64,
}

/// Totals of the CommitLog scan.
#[derive(Debug, Default)]
struct LogSummary {
    segments: u64,
    messages: u64,
    not_dispatched: u64,
    blanks: u64,
    record_bytes: u64,
    min_offset: Option<u64>,
    /// Where the records end: inside the last segment with data, or at the end of the last
    /// full segment.
    data_end: Option<u64>,
}

/// Runs `verify`; `Ok(true)` when everything is consistent.
///
/// # Errors
/// When the directory cannot be read at all.
pub(crate) fn run(args: &VerifyArgs) -> CliResult<bool> {
    let layout = Layout::detect(&args.dir, &args.sizes)?;
    println!(
        "verify {}: commit log segments of {} bytes, consume queue files of {} bytes, index \
         files of {} slots x {} entries",
        layout.root.display(),
        layout.commit_log_segment_bytes,
        layout.consume_queue_file_bytes,
        layout.hash_slot_num,
        layout.index_num
    );
    let mut problems = Problems::new(args.max_problems);
    let engine = if args.no_recover { None } else { open_and_close(&layout, &mut problems) };
    // Recovery may have truncated or deleted files: look again.
    let layout = Layout::detect(&args.dir, &args.sizes)?;
    let log_min = segment_files(&layout.root.join(layout::COMMIT_LOG_DIR))?
        .files
        .first()
        .map_or(0, |f| f.from_offset);

    let mut checks = Checks {
        consume_queues: ConsumeQueueCheck::new(&layout, log_min),
        index: IndexCheck::open(&layout, log_min, engine.is_some(), &mut problems)?,
    };
    let summary = scan_commit_log(&layout, &mut problems, &mut checks)?;
    checks.consume_queues.check_files(&mut problems)?;
    checks.index.finish(&mut problems)?;
    compare_with_engine(&layout, engine, &summary, &mut problems);

    print_summary(&summary);
    checks.consume_queues.print_summary();
    checks.index.print_summary();
    print_checkpoint(&layout.root)?;
    if problems.count() == 0 {
        println!("OK: no inconsistencies");
    } else {
        println!("FAILED: {} inconsistencies", problems.count());
    }
    Ok(problems.count() == 0)
}

/// Opens the store as the broker would (running recovery) and closes it cleanly.
fn open_and_close(layout: &Layout, problems: &mut Problems) -> Option<EngineView> {
    let store = match MessageStore::open(layout.config()) {
        Ok(store) => store,
        Err(err) => {
            problems.report(&layout.root, 0, format!("the engine cannot open the store: {err}"));
            return None;
        }
    };
    let view = EngineView {
        mode: store.recovery_mode(),
        min_phy: store.min_phy_offset(),
        max_phy: store.max_phy_offset(),
    };
    println!(
        "recovery: {:?}; engine reports commit log offsets {}..{}",
        view.mode, view.min_phy, view.max_phy
    );
    if let Err(err) = store.close() {
        problems.report(&layout.root, 0, format!("the engine cannot close the store: {err}"));
    }
    Some(view)
}

/// The checks that follow the CommitLog scan.
#[derive(Debug)]
struct Checks {
    consume_queues: ConsumeQueueCheck,
    index: IndexCheck,
}

impl Checks {
    fn on_record(&mut self, found: &Found<'_>, problems: &mut Problems) -> CliResult<()> {
        self.consume_queues.on_record(found, problems)?;
        self.index.on_record(found, problems)
    }

    /// `start..end` of the CommitLog could not be scanned (reported once): units and
    /// entries pointing there cannot be checked, and queue offsets restart after it.
    fn on_gap(&mut self, start: u64, end: u64) {
        self.consume_queues.on_gap(start, end);
        self.index.on_gap(start, end);
    }
}

/// CommitLog ranges that could not be scanned.
#[derive(Debug, Default)]
pub(crate) struct Gaps {
    ranges: Vec<(u64, u64)>,
}

impl Gaps {
    pub(crate) fn add(&mut self, start: u64, end: u64) {
        self.ranges.push((start, end));
    }

    pub(crate) fn contains(&self, phy: i64) -> bool {
        u64::try_from(phy).is_ok_and(|phy| self.ranges.iter().any(|&(s, e)| (s..e).contains(&phy)))
    }

    /// How many gaps there were: a queue's offsets restart after each.
    pub(crate) fn generation(&self) -> usize {
        self.ranges.len()
    }
}

/// Scans every segment in offset order, handing each valid record to `checks`.
fn scan_commit_log(
    layout: &Layout,
    problems: &mut Problems,
    checks: &mut Checks,
) -> CliResult<LogSummary> {
    let dir = layout.root.join(layout::COMMIT_LOG_DIR);
    let layout::Listing { files, strangers } = segment_files(&dir)?;
    for name in strangers {
        problems.report(&dir.join(&name), 0, "not a commit log segment (name is not 20 digits)");
    }
    let size = layout.commit_log_segment_bytes;
    let mut summary = LogSummary::default();
    let mut expected_from: Option<u64> = None;
    for file in &files {
        summary.segments += 1;
        summary.min_offset.get_or_insert(file.from_offset);
        if file.from_offset % size != 0 {
            problems.report(
                &file.path,
                0,
                format!("name is not a multiple of the segment size {size}"),
            );
        }
        if let Some(expected) = expected_from
            && expected != file.from_offset
        {
            problems.report(
                &file.path,
                0,
                format!("expected the next segment to start at {expected}"),
            );
        }
        expected_from = Some(file.from_offset + size);
        if file.len != size {
            // A zero-length file past the data is a segment still being pre-allocated.
            if !(file.len == 0 && summary.data_end.is_some()) {
                problems.report(
                    &file.path,
                    0,
                    format!("length {} but segments are {size} bytes", file.len),
                );
            }
            continue;
        }
        let mut reader = WindowReader::open(&file.path, SCAN_CHUNK_BYTES)?;
        if let Some(end) = summary.data_end {
            if reader.read(0, 8)?.iter().any(|&b| b != 0) {
                problems.report(&file.path, 0, format!("records after the end of data at {end}"));
            }
            continue;
        }
        match scan_segment(&mut reader, file.from_offset, &mut summary, problems, checks)? {
            SegmentEnd::Full => {}
            SegmentEnd::DataEnd(pos) => summary.data_end = Some(file.from_offset + pos),
            SegmentEnd::Damaged(pos) => {
                checks.on_gap(file.from_offset + pos, file.from_offset + size)
            }
        }
    }
    if summary.data_end.is_none() {
        summary.data_end = expected_from;
    }
    Ok(summary)
}

/// How a segment's scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SegmentEnd {
    /// A BLANK record filled the rest of it.
    Full,
    /// Zeros follow the last record at this position: the end of the CommitLog's data.
    DataEnd(u64),
    /// A damaged record at this position stopped the scan (reported).
    Damaged(u64),
}

fn scan_segment(
    reader: &mut WindowReader,
    from_offset: u64,
    summary: &mut LogSummary,
    problems: &mut Problems,
    checks: &mut Checks,
) -> CliResult<SegmentEnd> {
    let size = reader.len();
    let path = reader.path().to_path_buf();
    let mut pos = 0u64;
    loop {
        let remaining = size - pos;
        if remaining < record::BLANK_RECORD_SIZE as u64 {
            problems.report(
                &path,
                pos,
                format!("only {remaining} bytes left, no room for a BLANK record"),
            );
            return Ok(SegmentEnd::Damaged(pos));
        }
        let head = reader.read(pos, 8)?;
        let (total, magic) = (be_i32(head, 0), be_i32(head, 4));
        if total == 0 && magic == 0 {
            return Ok(SegmentEnd::DataEnd(pos));
        }
        if magic == record::BLANK_MAGIC {
            summary.blanks += 1;
            if u64::try_from(total).ok() != Some(remaining) {
                problems.report(
                    &path,
                    pos,
                    format!("BLANK record of {total} bytes but {remaining} remain"),
                );
            }
            return Ok(SegmentEnd::Full);
        }
        let Some(len) = u64::try_from(total).ok().filter(|&len| len > 8 && len <= remaining) else {
            problems.report(
                &path,
                pos,
                format!("record TOTALSIZE {total}, expected 9..={remaining}"),
            );
            return Ok(SegmentEnd::Damaged(pos));
        };
        let bytes = reader.read(pos, len as usize)?;
        let rec = match record::check_record(bytes, true) {
            Ok(RecordCheck::Message(rec)) => rec,
            Ok(RecordCheck::Blank { .. }) => return Ok(SegmentEnd::Full),
            Err(err) => {
                problems.report(
                    &path,
                    pos,
                    format!("bad record: {err} (offsets within the record)"),
                );
                return Ok(SegmentEnd::Damaged(pos));
            }
        };
        if let Some(stored) = stored_record_crc(bytes)
            && compute_record_crc(bytes) != Some(stored)
        {
            let computed = compute_record_crc(bytes).unwrap_or_default();
            problems.report(
                &path,
                pos,
                format!("record CRC property is {stored}, the record's CRC is {computed}"),
            );
            return Ok(SegmentEnd::Damaged(pos));
        }
        let phy = from_offset + pos;
        if u64::try_from(rec.physical_offset).ok() != Some(phy) {
            problems.report(
                &path,
                pos,
                format!("PHYSICALOFFSET is {}, expected {phy}", rec.physical_offset),
            );
        }
        summary.messages += 1;
        summary.record_bytes += len;
        if !dispatches(rec.sysflag) {
            summary.not_dispatched += 1;
        }
        let found = Found { phy, size: total as u32, rec: &rec, path: &path, pos };
        checks.on_record(&found, problems)?;
        pos += len;
    }
}

/// Whether a record gets a ConsumeQueue unit: transaction types NOT and COMMIT.
pub(crate) fn dispatches(sysflag: i32) -> bool {
    use ferromq_message::sysflag::{
        TRANSACTION_COMMIT_TYPE, TRANSACTION_NOT_TYPE, transaction_type,
    };
    matches!(transaction_type(sysflag), TRANSACTION_NOT_TYPE | TRANSACTION_COMMIT_TYPE)
}

fn compare_with_engine(
    layout: &Layout,
    engine: Option<EngineView>,
    summary: &LogSummary,
    problems: &mut Problems,
) {
    let Some(engine) = engine else { return };
    let dir = layout.root.join(layout::COMMIT_LOG_DIR);
    let scanned_end = summary.data_end.unwrap_or(0);
    if u64::try_from(engine.max_phy).ok() != Some(scanned_end) {
        problems.report(
            &dir,
            scanned_end,
            format!("the scan ends the data at {scanned_end}, the engine at {}", engine.max_phy),
        );
    }
    let scanned_min = summary.min_offset.unwrap_or(0);
    if u64::try_from(engine.min_phy).ok() != Some(scanned_min) {
        problems.report(
            &dir,
            scanned_min,
            format!(
                "the first segment starts at {scanned_min}, the engine's min offset is {}",
                engine.min_phy
            ),
        );
    }
}

fn print_summary(summary: &LogSummary) {
    println!(
        "commit log: {} segments, {} records ({} prepared/rolled back), {} BLANK records, {} \
         record bytes, offsets {}..{}",
        summary.segments,
        summary.messages,
        summary.not_dispatched,
        summary.blanks,
        summary.record_bytes,
        summary.min_offset.unwrap_or(0),
        summary.data_end.unwrap_or(0)
    );
}

/// Prints the checkpoint's timestamps (storage.md §10) and what its check field (ferromq's
/// magic and CRC at bytes 40..48) says; recovery tolerates whatever it finds.
fn print_checkpoint(root: &Path) -> CliResult<()> {
    let path = root.join(layout::CHECKPOINT_FILE);
    if !path.exists() {
        println!("checkpoint: absent");
        return Ok(());
    }
    let mut reader = WindowReader::open(&path, 4096)?;
    let fields = reader.read(0, 48.min(reader.len() as usize))?;
    if fields.len() < 48 {
        println!("checkpoint: only {} bytes (recovery ignores it)", fields.len());
        return Ok(());
    }
    let check = match (&fields[40..44], &fields[44..48]) {
        ([0, 0, 0, 0], [0, 0, 0, 0]) => "none (written by RocketMQ)",
        (b"FMQC", crc) if crc == crc32fast::hash(&fields[..44]).to_be_bytes() => "sound",
        _ => "DAMAGED (recovery ignores the values)",
    };
    println!(
        "checkpoint: physicMsgTimestamp={} logicsMsgTimestamp={} indexMsgTimestamp={} check={check}",
        be_i64(fields, 0),
        be_i64(fields, 8),
        be_i64(fields, 16)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use ferromq_store::{PutMessage, StoreConfig};

    use super::*;

    /// A closed store of 300 keyed messages over 3 queues, rolling several 64 KiB segments,
    /// 100-unit ConsumeQueue files and 256-entry IndexFiles.
    fn small_store(dir: &Path) {
        let store = MessageStore::open(StoreConfig::small_for_tests(dir)).unwrap();
        for i in 0..300 {
            let properties =
                format!("KEYS\x01k{i} shared\x02UNIQ_KEY\x01U{i:031}\x02TAGS\x01t{}\x02", i % 2);
            let body = vec![b'x'; 300 + i % 17];
            let message = PutMessage {
                properties: properties.as_bytes(),
                ..PutMessage::new("TopicA", (i % 3) as i32, &body)
            };
            assert!(store.put(&message).unwrap().status.is_ok());
        }
        store.close().unwrap();
    }

    fn verify(dir: &Path, no_recover: bool) -> bool {
        let args = VerifyArgs {
            dir: dir.to_path_buf(),
            no_recover,
            max_problems: 10,
            sizes: SizeArgs::default(),
        };
        run(&args).unwrap()
    }

    fn flip(path: &Path, pos: u64) {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, pos).unwrap();
        file.write_all_at(&[byte[0] ^ 0x55], pos).unwrap();
    }

    #[test]
    fn a_clean_store_verifies_and_each_kind_of_damage_is_found() {
        let dir = tempfile::tempdir().unwrap();
        small_store(dir.path());
        assert!(verify(dir.path(), false), "fresh store");
        assert!(verify(dir.path(), true), "fresh store without recovery");

        // A body byte of the first record: its CRC no longer matches.
        let first_segment = dir.path().join("commitlog/00000000000000000000");
        flip(&first_segment, 200);
        assert!(!verify(dir.path(), true), "damaged body");
        flip(&first_segment, 200);
        assert!(verify(dir.path(), true), "repaired body");

        // The size field of a ConsumeQueue unit.
        let unit_file = dir.path().join("consumequeue/TopicA/1/00000000000000000000");
        flip(&unit_file, 5 * 20 + 11);
        assert!(!verify(dir.path(), true), "damaged unit");
        flip(&unit_file, 5 * 20 + 11);

        // The key hash of an index entry: its slot chain and its record's keys disagree.
        let index_dir = dir.path().join("index");
        let index_file = layout::index_files(&index_dir).unwrap().files.remove(0).path;
        flip(&index_file, 40 + 64 * 4 + 3 * 20 + 3);
        assert!(!verify(dir.path(), true), "damaged index entry");
        flip(&index_file, 40 + 64 * 4 + 3 * 20 + 3);
        assert!(verify(dir.path(), false), "all repaired");
    }
}
