//! ConsumeQueue checks of `verify` (storage.md §8): records against units, then units against
//! records.
//!
//! Record side (during the CommitLog scan): each dispatched record's queue offset follows
//! the previous one of its queue, and the unit at that offset holds the record's physical
//! offset, size and tags code. Unit side (afterwards): every file has the right name and
//! size, the queue has no holes, pre-filled BLANK units only lead, and every other unit lies
//! in the range of queue offsets the records covered, or points below the CommitLog's start
//! (expired).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ferromq_message::{hash, property};

use super::layout::{self, CliResult, Layout, WindowReader, be_i32, be_i64, segment_files};
use super::verify::{Found, Gaps, Problems, dispatches};

/// A unit: physical offset i64, size i32, tags code i64.
const UNIT_LEN: u64 = 20;
/// The unit RocketMQ pre-fills a queue with when its first offset is not 0.
const BLANK_UNIT_SIZE: i32 = i32::MAX;
/// Delayed messages wait in this topic; their tags code is the delivery time.
const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// Window of the per-queue readers: records of a queue arrive in offset order.
const QUEUE_WINDOW_BYTES: usize = 64 * 1024;
/// Window of the sequential unit scan.
const SCAN_WINDOW_BYTES: usize = 1 << 20;

/// ConsumeQueue state built while the CommitLog is scanned.
#[derive(Debug)]
pub(crate) struct ConsumeQueueCheck {
    root: PathBuf,
    file_bytes: u64,
    log_min: u64,
    queues: HashMap<String, HashMap<i32, QueueState>>,
    gaps: Gaps,
    records_checked: u64,
    records_uncovered: u64,
    units: u64,
    blank_units: u64,
    expired_units: u64,
    unverifiable_units: u64,
    queue_dirs: u64,
}

/// One queue as its records showed it.
#[derive(Debug)]
struct QueueState {
    dir: PathBuf,
    first_offset: i64,
    last_offset: i64,
    /// The gap count when `last_offset` was seen: offsets restart after a gap.
    generation: usize,
    /// Start (bytes) of the queue's first file, if it has any.
    first_file: Option<u64>,
    reader: Option<(u64, WindowReader)>,
    missing_reported: bool,
}

/// Progress of the unit scan of one queue.
#[derive(Debug)]
struct QueueScan<'a> {
    topic: &'a str,
    queue_id: i32,
    /// Queue offsets whose units the record side checked.
    checked: Option<std::ops::RangeInclusive<i64>>,
    /// Logical byte where the queue ended (its first invalid unit).
    end: Option<u64>,
    /// Whether a unit other than a pre-filled BLANK was seen.
    seen_real: bool,
}

/// A decoded unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unit {
    phy_offset: i64,
    size: i32,
    tags_code: i64,
}

impl Unit {
    fn decode(bytes: &[u8]) -> Unit {
        Unit { phy_offset: be_i64(bytes, 0), size: be_i32(bytes, 8), tags_code: be_i64(bytes, 12) }
    }

    /// RocketMQ's recovery rule: `offset >= 0 && size > 0`; the first invalid unit ends the
    /// queue.
    fn is_valid(&self) -> bool {
        self.phy_offset >= 0 && self.size > 0
    }

    fn is_blank(&self) -> bool {
        self.phy_offset == 0 && self.size == BLANK_UNIT_SIZE && self.tags_code == 0
    }
}

impl ConsumeQueueCheck {
    pub(crate) fn new(layout: &Layout, log_min: u64) -> Self {
        ConsumeQueueCheck {
            root: layout.root.join(layout::CONSUME_QUEUE_DIR),
            file_bytes: layout.consume_queue_file_bytes.div_ceil(UNIT_LEN) * UNIT_LEN,
            log_min,
            queues: HashMap::new(),
            gaps: Gaps::default(),
            records_checked: 0,
            records_uncovered: 0,
            units: 0,
            blank_units: 0,
            expired_units: 0,
            unverifiable_units: 0,
            queue_dirs: 0,
        }
    }

    /// Checks one record against its queue's unit.
    pub(crate) fn on_record(
        &mut self,
        found: &Found<'_>,
        problems: &mut Problems,
    ) -> CliResult<()> {
        let rec = found.rec;
        if !dispatches(rec.sysflag) {
            return Ok(());
        }
        let known = self.queues.get(rec.topic).is_some_and(|m| m.contains_key(&rec.queue_id));
        if !known {
            let dir = self.root.join(rec.topic).join(rec.queue_id.to_string());
            let state = QueueState::new(dir, rec.queue_offset, self.gaps.generation())?;
            self.queues.entry(rec.topic.to_owned()).or_default().insert(rec.queue_id, state);
        }
        let Some(state) = self.queues.get_mut(rec.topic).and_then(|m| m.get_mut(&rec.queue_id))
        else {
            return Ok(());
        };
        let offset = rec.queue_offset;
        let after_gap = state.generation != self.gaps.generation();
        state.generation = self.gaps.generation();
        if known && !after_gap && offset != state.last_offset + 1 {
            let what = format!(
                "QUEUEOFFSET {offset} of {}/{} does not follow the previous record's {}",
                rec.topic, rec.queue_id, state.last_offset
            );
            problems.report(found.path, found.pos, what);
        }
        state.last_offset = offset;
        let Ok(logic) = u64::try_from(offset).map(|o| o * UNIT_LEN) else {
            problems.report(found.path, found.pos, format!("negative QUEUEOFFSET {offset}"));
            return Ok(());
        };
        match state.first_file {
            Some(first) if logic >= first => {}
            Some(_) => {
                self.records_uncovered += 1; // its ConsumeQueue file expired
                return Ok(());
            }
            None => {
                if !state.missing_reported {
                    state.missing_reported = true;
                    problems.report(
                        &state.dir,
                        0,
                        "records of this queue exist but it has no files",
                    );
                }
                return Ok(());
            }
        }
        if state.check_unit(logic, self.file_bytes, found, problems)? {
            self.records_checked += 1;
        }
        Ok(())
    }

    /// Notes a CommitLog range the scan could not read.
    pub(crate) fn on_gap(&mut self, start: u64, end: u64) {
        self.gaps.add(start, end);
    }

    /// Scans every queue's files, checking units that no record accounted for.
    pub(crate) fn check_files(&mut self, problems: &mut Problems) -> CliResult<()> {
        for (topic, topic_dir, _, is_dir) in layout::list(&self.root)? {
            if !is_dir {
                problems.report(&topic_dir, 0, "not a topic directory");
                continue;
            }
            for (queue, queue_dir, _, is_dir) in layout::list(&topic_dir)? {
                // The engine, like RocketMQ, skips non-numeric queue directories.
                let Ok(queue_id) = queue.parse::<i32>() else { continue };
                if is_dir {
                    self.queue_dirs += 1;
                    self.check_queue_files(&topic, queue_id, &queue_dir, problems)?;
                }
            }
        }
        Ok(())
    }

    fn check_queue_files(
        &mut self,
        topic: &str,
        queue_id: i32,
        dir: &Path,
        problems: &mut Problems,
    ) -> CliResult<()> {
        let layout::Listing { files, strangers } = segment_files(dir)?;
        for name in strangers {
            problems.report(&dir.join(name), 0, "not a consume queue file (name is not 20 digits)");
        }
        let mut scan = QueueScan {
            topic,
            queue_id,
            checked: self
                .queues
                .get(topic)
                .and_then(|m| m.get(&queue_id))
                .map(|s| s.first_offset..=s.last_offset),
            end: None,
            seen_real: false,
        };
        let mut expected_from = None;
        for file in &files {
            if file.from_offset % self.file_bytes != 0 {
                let what = format!("name is not a multiple of {}", self.file_bytes);
                problems.report(&file.path, 0, what);
            }
            if expected_from.is_some_and(|from| from != file.from_offset) {
                problems.report(&file.path, 0, "a file is missing before this one");
            }
            expected_from = Some(file.from_offset + self.file_bytes);
            if file.len != self.file_bytes {
                let what = format!("length {}, expected {}", file.len, self.file_bytes);
                problems.report(&file.path, 0, what);
                continue;
            }
            let mut reader = WindowReader::open(&file.path, SCAN_WINDOW_BYTES)?;
            match scan.end {
                Some(end) => {
                    if Unit::decode(reader.read(0, UNIT_LEN as usize)?).is_valid() {
                        let what = format!("units after the end of the queue at byte {end}");
                        problems.report(&file.path, 0, what);
                    }
                }
                None => self.scan_file(&mut scan, &mut reader, file.from_offset, problems)?,
            }
        }
        Ok(())
    }

    /// Reads a file's units up to the first invalid one (the end of the queue).
    fn scan_file(
        &mut self,
        scan: &mut QueueScan<'_>,
        reader: &mut WindowReader,
        from_offset: u64,
        problems: &mut Problems,
    ) -> CliResult<()> {
        let mut pos = 0;
        while pos < reader.len() {
            let unit = Unit::decode(reader.read(pos, UNIT_LEN as usize)?);
            if !unit.is_valid() {
                scan.end = Some(from_offset + pos);
                return Ok(());
            }
            let queue_offset = ((from_offset + pos) / UNIT_LEN) as i64;
            if unit.is_blank() {
                self.blank_units += 1;
                if scan.seen_real {
                    problems.report(reader.path(), pos, "BLANK unit after real units");
                }
            } else {
                scan.seen_real = true;
                self.units += 1;
                if !scan.checked.as_ref().is_some_and(|r| r.contains(&queue_offset)) {
                    self.unaccounted_unit(scan, unit, queue_offset, reader.path(), pos, problems);
                }
            }
            pos += UNIT_LEN;
        }
        Ok(())
    }

    /// A unit outside the queue offsets the records covered: expired, pointing into an
    /// unreadable range, or dangling.
    fn unaccounted_unit(
        &mut self,
        scan: &QueueScan<'_>,
        unit: Unit,
        queue_offset: i64,
        path: &Path,
        pos: u64,
        problems: &mut Problems,
    ) {
        if u64::try_from(unit.phy_offset).is_ok_and(|phy| phy < self.log_min) {
            self.expired_units += 1;
        } else if self.gaps.contains(unit.phy_offset) {
            self.unverifiable_units += 1;
        } else {
            let what = format!(
                "unit for queue offset {queue_offset} points at phy {} size {}, but no record of \
                 {}/{} has this queue offset",
                unit.phy_offset, unit.size, scan.topic, scan.queue_id
            );
            problems.report(path, pos, what);
        }
    }

    pub(crate) fn print_summary(&self) {
        let topics = self.queues.len();
        println!(
            "consume queues: {} queue directories ({topics} topics with records), {} units \
             ({} checked against records, {} pre-filled BLANK, {} pointing at expired \
             records, {} into unreadable records), {} records whose queue file expired",
            self.queue_dirs,
            self.units,
            self.records_checked,
            self.blank_units,
            self.expired_units,
            self.unverifiable_units,
            self.records_uncovered
        );
    }
}

impl QueueState {
    fn new(dir: PathBuf, first_offset: i64, generation: usize) -> CliResult<Self> {
        let first_file = segment_files(&dir)?.files.first().map(|f| f.from_offset);
        Ok(QueueState {
            dir,
            first_offset,
            last_offset: first_offset,
            generation,
            first_file,
            reader: None,
            missing_reported: false,
        })
    }

    /// Compares the unit at byte `logic` with the record; `Ok(true)` when it could be read.
    fn check_unit(
        &mut self,
        logic: u64,
        file_bytes: u64,
        found: &Found<'_>,
        problems: &mut Problems,
    ) -> CliResult<bool> {
        let file_from = logic - logic % file_bytes;
        let pos = logic % file_bytes;
        if self.reader.as_ref().is_none_or(|(from, _)| *from != file_from) {
            let path = self.dir.join(format!("{file_from:020}"));
            if !path.exists() {
                let what = format!("no file holds the unit of the record at phy {}", found.phy);
                problems.report(&path, pos, what);
                return Ok(false);
            }
            self.reader = Some((file_from, WindowReader::open(&path, QUEUE_WINDOW_BYTES)?));
        }
        let Some((_, reader)) = self.reader.as_mut() else { return Ok(false) };
        if pos + UNIT_LEN > reader.len() {
            let what = format!("file too short for the unit of the record at phy {}", found.phy);
            problems.report(reader.path(), pos, what);
            return Ok(false);
        }
        let unit = Unit::decode(reader.read(pos, UNIT_LEN as usize)?);
        let expected = expected_unit(found);
        let tags_ok = if found.rec.topic == SCHEDULE_TOPIC {
            unit.tags_code >= found.rec.store_timestamp // the delivery time
        } else {
            unit.tags_code == expected.tags_code
        };
        if unit.phy_offset != expected.phy_offset || unit.size != expected.size || !tags_ok {
            let what = format!(
                "unit for queue offset {} is (phy {}, size {}, tags code {}), but the record is \
                 (phy {}, size {}, tags code {})",
                found.rec.queue_offset,
                unit.phy_offset,
                unit.size,
                unit.tags_code,
                expected.phy_offset,
                expected.size,
                expected.tags_code
            );
            problems.report(reader.path(), pos, what);
        }
        Ok(true)
    }
}

/// The unit a record should have (the tags code of a normal topic: Java hash of `TAGS`).
fn expected_unit(found: &Found<'_>) -> Unit {
    let tags_code = match found.rec.property(property::TAGS) {
        Some(tags) if !tags.is_empty() => i64::from(hash::java_bytes_hash(tags)),
        _ => 0,
    };
    Unit { phy_offset: found.phy as i64, size: found.size as i32, tags_code }
}
