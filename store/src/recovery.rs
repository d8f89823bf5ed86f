//! Opening a store: the directory lock, loading every file, and recovery as RocketMQ decides
//! it (storage.md §13). Also the slave's append of replicated bytes, which dispatches records
//! the same way recovery does.
//!
//! Recovery order: recover each ConsumeQueue's end (§13.2); scan the CommitLog from a start
//! segment (the third-last after a clean exit; after a crash, the newest segment whose first
//! record is older than the checkpoint says is safe), re-dispatching every valid record
//! (idempotent), and cut the CommitLog at the first invalid record; then cut ConsumeQueues
//! and IndexFiles that point past the cut.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ferromq_message::properties::find_property;
use ferromq_message::property;
use ferromq_message::record::{self, RecordCheck};

use crate::checkpoint::Checkpoint;
use crate::commit_log::{CommitLog, ScannedRecord, check_stored};
use crate::config::{CQ_UNIT_SIZE_BYTES, RecoveryMode, StoreConfig};
use crate::consume_queue::{ConsumeQueue, CqUnit};
use crate::error::{Error, Result};
use crate::index_file::IndexService;
use crate::io::{DirLock, Storage};
use crate::store::{Inner, SCHEDULE_TOPIC, dispatches, tags_code_of};

pub(crate) const ABORT_FILE: &str = "abort";
pub(crate) const LOCK_FILE: &str = "lock";
pub(crate) const CHECKPOINT_FILE: &str = "checkpoint";
pub(crate) const COMMIT_LOG_DIR: &str = "commitlog";
pub(crate) const CONSUME_QUEUE_DIR: &str = "consumequeue";
pub(crate) const INDEX_DIR: &str = "index";

/// Segments a normal recovery scans from the end (RocketMQ 4.9: the last three).
const NORMAL_RECOVERY_SEGMENTS: usize = 3;

type Queues = HashMap<String, HashMap<i32, Arc<ConsumeQueue>>>;

/// Loads and recovers the store at `config.store_path_root_dir`.
pub(crate) fn open(config: StoreConfig, storage: Arc<dyn Storage>) -> Result<Inner> {
    let root = config.store_path_root_dir.clone();
    storage.create_dir_all(&root).map_err(|e| Error::io("create", &root, e))?;
    // The root's own entry (and its parent's) may never have been synced by whoever made it.
    crate::file_queue::sync_dir_chain(&*storage, &root)?;
    let dir_lock = lock_dir(&*storage, &root)?;
    let abort = root.join(ABORT_FILE);
    let mode = if storage.exists(&abort) { RecoveryMode::Abnormal } else { RecoveryMode::Normal };

    let commit_log = CommitLog::load(
        storage.clone(),
        root.join(COMMIT_LOG_DIR),
        config.mapped_file_size_commit_log,
        config.prefault_segments,
    )?;
    let mut queues =
        load_consume_queues(&*storage, &storage, &root, config.consume_queue_file_size())?;
    let checkpoint = Checkpoint::open(&*storage, &root.join(CHECKPOINT_FILE))?;
    let index = IndexService::load(
        storage.clone(),
        root.join(INDEX_DIR),
        config.max_hash_slot_num,
        config.max_index_num,
        mode == RecoveryMode::Normal,
        checkpoint.index_msg_timestamp.load(Ordering::Acquire),
    )?;

    // After a clean exit every unit is durable and points at its record: anything else is
    // damage. A damaged queue is cut after its last sound unit, and the CommitLog scan
    // starts early enough to rebuild what it lost.
    let mut damaged_queues = Vec::new();
    for cq in queues.values().flat_map(|m| m.values()) {
        let cut = cq.recover()?;
        if mode == RecoveryMode::Abnormal {
            continue;
        }
        let tail_cut = cut_invalid_tail(cq, &commit_log, &[])?;
        // A resized (truncated) file was warned about when it was loaded.
        if (cut || tail_cut > 0) && !cq.resized_at_load() {
            let offset = cq.max_offset().max(0) as u64 * CQ_UNIT_SIZE_BYTES;
            tracing::warn!(
                file = %cq.file_of(offset).display(),
                offset,
                "consume queue is damaged there: units from it on are rebuilt from the commit log"
            );
        }
        if cut || tail_cut > 0 || cq.resized_at_load() {
            damaged_queues.push(cq.max_phy_end());
        }
    }
    let recovery = Recovery { config: &config, storage: &storage, commit_log: &commit_log };
    recovery.run(&mut queues, &checkpoint, &index, mode, &damaged_queues)?;
    let min = commit_log.min_offset() as i64;
    for cq in queues.values().flat_map(|m| m.values()) {
        cq.correct_min_offset(min)?;
    }

    let index_start = index.last_indexed_phy_offset().map_or(0, |o| o.max(0) as u64);
    let index_start = index_start.max(commit_log.min_offset());
    let inner =
        Inner::new(config, storage.clone(), commit_log, queues, checkpoint, index, mode, dir_lock)?;
    inner.index_reput.store(index_start, Ordering::Release);
    {
        let mut writer = inner.writer.lock();
        let end = inner.commit_log.max_offset();
        writer.replica_dispatched = end;
        // The segment the next roll will need: after the one holding `end`, or the one
        // starting at `end` when recovery cut back to a segment boundary (or the store is
        // empty), so no gap can appear between segments.
        let next_segment = match inner.commit_log.files().segment_for(end) {
            Some(segment) => segment.end_offset(),
            None => end - end % inner.commit_log.file_size(),
        };
        inner.commit_log.preallocate(&mut writer.appender, next_segment);
    }
    storage.create_marker(&abort).map_err(|e| Error::io("create", &abort, e))?;
    if mode == RecoveryMode::Abnormal {
        tracing::warn!(path = %abort.display(), "store was not closed cleanly; abnormal recovery ran");
    }
    Ok(inner)
}

/// Takes the exclusive lock on `root/lock` (RocketMQ's "MQ already started" check).
fn lock_dir(storage: &dyn Storage, root: &Path) -> Result<DirLock> {
    storage.lock_dir(root).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock => Error::Locked { path: root.to_path_buf() },
        _ => Error::io("lock", root.join(LOCK_FILE), e),
    })
}

fn load_consume_queues(
    storage: &dyn Storage,
    shared: &Arc<dyn Storage>,
    root: &Path,
    file_size: u64,
) -> Result<Queues> {
    let cq_root = root.join(CONSUME_QUEUE_DIR);
    let mut queues = Queues::new();
    for topic in storage.list(&cq_root).map_err(|e| Error::io("list", &cq_root, e))? {
        if !topic.is_dir {
            continue;
        }
        let topic_dir = cq_root.join(&topic.name);
        for queue in storage.list(&topic_dir).map_err(|e| Error::io("list", &topic_dir, e))? {
            let Ok(queue_id) = queue.name.parse::<i32>() else {
                continue;
            };
            if !queue.is_dir {
                continue;
            }
            let cq =
                ConsumeQueue::open(shared.clone(), &cq_root, &topic.name, queue_id, file_size)?;
            queues.entry(topic.name.clone()).or_default().insert(queue_id, Arc::new(cq));
        }
    }
    Ok(queues)
}

/// What recovering the CommitLog needs besides the files it changes.
struct Recovery<'a> {
    config: &'a StoreConfig,
    storage: &'a Arc<dyn Storage>,
    commit_log: &'a CommitLog,
}

impl Recovery<'_> {
    /// Scans the CommitLog from the start segment of `mode`, re-dispatching every valid
    /// record, and cuts it (and the ConsumeQueues and IndexFiles) after the last valid
    /// record. `damaged_queues` holds the end offset of the last valid unit of each queue
    /// found damaged: the scan starts early enough to rebuild what they lost.
    fn run(
        &self,
        queues: &mut Queues,
        checkpoint: &Checkpoint,
        index: &IndexService,
        mode: RecoveryMode,
        damaged_queues: &[i64],
    ) -> Result<()> {
        let commit_log = self.commit_log;
        let segments = commit_log.files().segments();
        if segments.is_empty() {
            for cq in queues.values().flat_map(|m| m.values()) {
                cq.destroy()?;
            }
            queues.clear();
            index.destroy_all()?;
            return Ok(());
        }
        let start = match mode {
            RecoveryMode::Normal => segments.len().saturating_sub(NORMAL_RECOVERY_SEGMENTS),
            RecoveryMode::Abnormal => {
                abnormal_start(commit_log, &segments, checkpoint.min_timestamp())?
            }
        };
        let mut from = segments[start].from_offset;
        for &phy_end in damaged_queues {
            let at = u64::try_from(phy_end).unwrap_or(0).max(commit_log.min_offset());
            from = from.min(at - at % commit_log.file_size());
        }
        let ScanOutcome { end, damaged, warned } = self.scan(queues, from, mode, checkpoint)?;
        let units_end = queues.values().flat_map(|m| m.values()).map(|cq| cq.max_phy_end()).max();
        // A resized (truncated) segment was warned about when it was loaded.
        let warned = warned || commit_log.files().resized_at_load();
        if mode == RecoveryMode::Normal && !warned && units_end.is_some_and(|u| u > end as i64) {
            // The data ends at zeros, yet after a clean exit the queues point past them.
            let file = commit_log.files().segment_for(end).map(|s| s.file.path().to_owned());
            tracing::warn!(
                file = %file.unwrap_or_default().display(),
                offset = end,
                units_end,
                "commit log data ends early (zeros where records were): the records after it are lost"
            );
        }
        commit_log.files().truncate_to(end)?;
        for cq in queues.values().flat_map(|m| m.values()) {
            if cq.max_phy_end() > end as i64 || cq.max_phy_end() < 0 {
                cq.truncate_dirty(end as i64)?;
            }
            // Cheap when the tail is sound (one record check per queue), and it catches
            // units that point into data recovery just cut or found damaged.
            let cut = cut_invalid_tail(cq, commit_log, &damaged)?;
            if cut > 0 {
                let offset = cq.max_offset().max(0) as u64 * CQ_UNIT_SIZE_BYTES;
                tracing::warn!(
                    file = %cq.file_of(offset).display(),
                    offset,
                    units = cut,
                    "recovery cut consume queue units that point at no matching record"
                );
            }
        }
        index.truncate_after(end as i64)?;
        if mode == RecoveryMode::Abnormal {
            // The page cache of the crashed process may still hold recovered bytes that
            // never reached the disk: make everything durable before trusting it as flushed.
            commit_log.files().flush_all()?;
            for cq in queues.values().flat_map(|m| m.values()) {
                cq.flush_all()?;
            }
        }
        Ok(())
    }

    /// Scans from `from` to the end of the data, re-dispatching every valid record. Damage
    /// inside a sealed segment is stepped over (the segment is kept whole: its other records
    /// stay readable, and reads of the damaged ones fail with their CRC error); anywhere
    /// else the first invalid record ends the data.
    fn scan(
        &self,
        queues: &mut Queues,
        mut from: u64,
        mode: RecoveryMode,
        checkpoint: &Checkpoint,
    ) -> Result<ScanOutcome> {
        let commit_log = self.commit_log;
        let mut dispatcher = Dispatcher {
            recovery: self,
            mode,
            cq_root: self.config.store_path_root_dir.join(CONSUME_QUEUE_DIR),
            delays_ms: self.config.delay_levels_ms()?,
            rebuilt: HashSet::new(),
            last_timestamp: 0,
        };
        let mut damaged = Vec::new();
        let mut warned = false;
        let check_crc = self.config.check_crc_on_recover;
        let end = loop {
            let scan = commit_log
                .scan(from, u64::MAX, check_crc, |found| dispatcher.dispatch(queues, found))?;
            let Some(reason) = scan.stop_reason else { break scan.valid_end };
            let at = scan.valid_end;
            // A resized (truncated) segment was warned about when it was loaded.
            let resized = commit_log.files().was_resized(at);
            if is_sealed(commit_log, at, mode, checkpoint)? {
                dispatcher.dispatch_damaged(queues, at)?;
                // Go on at the next record that checks out, so that the records after the
                // damage are dispatched too.
                let resume = commit_log.resync(at)?;
                if !resized {
                    tracing::warn!(
                        reason,
                        resume,
                        "damaged record inside a sealed commit log segment: the segment is \
                         kept, reads of the damaged records fail, recovery goes on after them"
                    );
                }
                damaged.push((at, resume));
                warned = true;
                from = resume;
                continue;
            }
            if !is_clean_end(commit_log, at)? && !resized {
                tracing::warn!(reason, "recovery cut the commit log after its last valid record");
                warned = true;
            }
            break at;
        };
        commit_log.set_last_store_timestamp(dispatcher.last_timestamp);
        Ok(ScanOutcome { end, damaged, warned })
    }
}

/// How a recovery scan ended.
struct ScanOutcome {
    /// The end of the data: the CommitLog is cut there.
    end: u64,
    /// Damaged ranges of sealed segments that were stepped over.
    damaged: Vec<(u64, u64)>,
    /// Whether a warning already named damage.
    warned: bool,
}

/// Re-dispatches the records a recovery scan finds to their ConsumeQueues.
struct Dispatcher<'a> {
    recovery: &'a Recovery<'a>,
    mode: RecoveryMode,
    cq_root: PathBuf,
    delays_ms: Vec<u64>,
    /// After a crash, each queue met in the scan is cut back to its first re-dispatched
    /// offset and rebuilt from the CommitLog: units written since the last ConsumeQueue
    /// flush may be torn or garbage.
    rebuilt: HashSet<(String, i32)>,
    last_timestamp: i64,
}

impl Dispatcher<'_> {
    fn dispatch(&mut self, queues: &mut Queues, found: &ScannedRecord<'_>) -> Result<()> {
        self.last_timestamp = found.record.store_timestamp;
        let rec = &found.record;
        if self.mode == RecoveryMode::Abnormal
            && dispatches(rec.sysflag)
            && !self.rebuilt.contains(&(rec.topic.to_owned(), rec.queue_id))
        {
            self.rebuilt.insert((rec.topic.to_owned(), rec.queue_id));
            if let Some(cq) = queues.get(rec.topic).and_then(|m| m.get(&rec.queue_id)) {
                cq.truncate_to_offset(rec.queue_offset)?;
            }
        }
        let cq_size = self.recovery.config.consume_queue_file_size();
        let storage = self.recovery.storage;
        dispatch_recovered(storage, queues, &self.cq_root, cq_size, &self.delays_ms, found)
    }

    /// Keeps the unit of the damaged record at `at` in a sealed segment when its fields
    /// still parse (only its CRC fails) and it is the next unit of its queue, so that a read
    /// of it reports the damage instead of skipping the message. A queue this scan rebuilds
    /// would otherwise get a blank unit in its place.
    fn dispatch_damaged(&mut self, queues: &mut Queues, at: u64) -> Result<()> {
        let Some(bytes) = self.recovery.commit_log.record_at(at)? else {
            return Ok(());
        };
        let Ok(RecordCheck::Message(rec)) = check_stored(&bytes, at, false) else {
            return Ok(());
        };
        let next =
            queues.get(rec.topic).and_then(|m| m.get(&rec.queue_id)).map(|cq| cq.max_offset());
        if !dispatches(rec.sysflag) || next != Some(rec.queue_offset) {
            return Ok(());
        }
        let size = rec.encoded_len() as u64;
        self.dispatch(queues, &ScannedRecord { phy_offset: at, size, record: rec })
    }
}

/// Whether the segment holding `at` is sealed. A segment is sealed when the next one
/// starts with a valid record (after a clean exit every segment before the last one with
/// data is complete); after a crash that record must also be older than the checkpoint's
/// flushed time, which proves the segment was flushed whole: damage in a segment that was
/// not is a torn tail, and the data ends there.
fn is_sealed(
    commit_log: &CommitLog,
    at: u64,
    mode: RecoveryMode,
    checkpoint: &Checkpoint,
) -> Result<bool> {
    let Some(segment) = commit_log.files().segment_for(at) else {
        return Ok(false);
    };
    let next = segment.end_offset();
    let Some(first) = commit_log.record_at(next)? else {
        return Ok(false);
    };
    let Ok(RecordCheck::Message(rec)) = check_stored(&first, next, true) else {
        return Ok(false);
    };
    let flushed = checkpoint.physic_msg_timestamp.load(Ordering::Acquire);
    let sealed = match mode {
        RecoveryMode::Normal => true,
        // Strictly older: a record stored in the same millisecond as the last flushed one
        // may have been written after that flush.
        RecoveryMode::Abnormal => rec.store_timestamp < flushed,
    };
    Ok(sealed)
}

/// Cuts trailing units that do not point at a record of their own queue and offset (torn or
/// garbage units of a queue with no record left in the re-dispatched range), and returns how
/// many. Units that point into `damaged` ranges of sealed segments stay: their records are
/// damaged, not gone, and reads of them say so.
fn cut_invalid_tail(
    cq: &ConsumeQueue,
    commit_log: &CommitLog,
    damaged: &[(u64, u64)],
) -> Result<i64> {
    let floor = cq.min_offset();
    let mut max = cq.max_offset();
    while max > floor {
        let Some(unit) = cq.unit(max - 1)? else { break };
        // A unit below the CommitLog's minimum points at expired data, not at damage.
        let phy = u64::try_from(unit.phy_offset).ok();
        let expired = phy.is_some_and(|phy| phy < commit_log.min_offset());
        let in_damage = phy.is_some_and(|phy| damaged.iter().any(|r| (r.0..r.1).contains(&phy)));
        if unit.is_blank()
            || expired
            || in_damage
            || unit_matches_record(cq, commit_log, max - 1, &unit)?
        {
            break;
        }
        max -= 1;
    }
    let cut = cq.max_offset() - max;
    if cut > 0 {
        cq.truncate_to_offset(max)?;
    }
    Ok(cut)
}

fn unit_matches_record(
    cq: &ConsumeQueue,
    commit_log: &CommitLog,
    queue_offset: i64,
    unit: &CqUnit,
) -> Result<bool> {
    let (Ok(phy), Ok(size)) = (u64::try_from(unit.phy_offset), usize::try_from(unit.size)) else {
        return Ok(false);
    };
    let Some(bytes) = commit_log.view(phy, size)? else { return Ok(false) };
    Ok(match record::check_record(&bytes, false) {
        Ok(RecordCheck::Message(rec)) => {
            rec.encoded_len() == size
                && rec.queue_offset == queue_offset
                && rec.queue_id == cq.queue_id()
                && rec.topic == cq.topic()
        }
        _ => false,
    })
}

/// The newest segment whose first record is valid, was stored, and is no newer than `safe`.
fn abnormal_start(
    commit_log: &CommitLog,
    segments: &[Arc<crate::file_queue::Segment>],
    safe: i64,
) -> Result<usize> {
    for (index, segment) in segments.iter().enumerate().rev() {
        let Some(head) =
            commit_log.view(segment.from_offset, 4096.min(segment.file.size() as usize))?
        else {
            continue;
        };
        let Some(total) = head.get(..4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        else {
            continue;
        };
        let record = match commit_log.view(segment.from_offset, total.max(0) as usize)? {
            Some(bytes) if total > 0 => bytes,
            _ => continue,
        };
        if let Ok(RecordCheck::Message(rec)) = record::check_record(&record, false)
            && rec.store_timestamp != 0
            && rec.store_timestamp <= safe
        {
            return Ok(index);
        }
    }
    Ok(0)
}

/// Whether the scan stopped at zeros (the normal end of data) rather than at damage.
fn is_clean_end(commit_log: &CommitLog, end: u64) -> Result<bool> {
    let Some(segment) = commit_log.files().segment_for(end) else {
        return Ok(true);
    };
    let len = 8.min(segment.end_offset() - end) as usize;
    let mut buf = [0u8; 8];
    segment
        .file
        .read_at(end - segment.from_offset, &mut buf[..len])
        .map_err(|e| Error::io("read", segment.file.path(), e))?;
    Ok(buf[..len].iter().all(|&b| b == 0))
}

/// The ConsumeQueue unit of a stored record, `None` for prepared and rolled-back records.
pub(crate) fn unit_of(found: &ScannedRecord<'_>, delays_ms: &[u64]) -> Option<(i64, CqUnit)> {
    let rec = &found.record;
    if !dispatches(rec.sysflag) {
        return None;
    }
    if rec.queue_offset < 0 {
        tracing::warn!(
            phy_offset = found.phy_offset,
            rec.queue_offset,
            "record has a negative queue offset; not dispatched"
        );
        return None;
    }
    let tags_code = if rec.topic == SCHEDULE_TOPIC {
        let level = find_property(rec.properties, property::DELAY)
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        let delay = match level {
            0 => 1000,
            level => delays_ms.get(level.min(delays_ms.len()) - 1).map_or(1000, |&d| d as i64),
        };
        rec.store_timestamp + delay
    } else {
        tags_code_of(rec.properties)
    };
    let unit = CqUnit { phy_offset: found.phy_offset as i64, size: found.size as i32, tags_code };
    Some((rec.queue_offset, unit))
}

fn dispatch_recovered(
    storage: &Arc<dyn Storage>,
    queues: &mut Queues,
    cq_root: &Path,
    cq_size: u64,
    delays_ms: &[u64],
    found: &ScannedRecord<'_>,
) -> Result<()> {
    let Some((queue_offset, unit)) = unit_of(found, delays_ms) else {
        return Ok(());
    };
    let rec = &found.record;
    let by_id = queues.entry(rec.topic.to_owned()).or_default();
    let cq = match by_id.get(&rec.queue_id) {
        Some(cq) => cq.clone(),
        None => {
            let cq = Arc::new(ConsumeQueue::open(
                storage.clone(),
                cq_root,
                rec.topic,
                rec.queue_id,
                cq_size,
            )?);
            by_id.insert(rec.queue_id, cq.clone());
            cq
        }
    };
    cq.put_unit(queue_offset, unit)
}

/// A slave appends bytes streamed from its master at `phy_offset` (the current end). The
/// bytes may end inside a record; only whole records are dispatched and become readable.
pub(crate) fn append_replicated(inner: &Inner, phy_offset: i64, data: &[u8]) -> Result<()> {
    let log = &inner.commit_log;
    let mut writer = inner.writer.lock();
    let end = log.max_offset();
    if u64::try_from(phy_offset).ok() != Some(end) {
        return Err(Error::InvalidArgument(format!(
            "replicated data starts at {phy_offset} but the commit log ends at {end}"
        )));
    }
    let mut at = end;
    let mut rest = data;
    while !rest.is_empty() {
        let segment = match log.files().segment_for(at) {
            Some(segment) => segment,
            None => log.roll_to(&mut writer.appender, at)?,
        };
        let len = rest.len().min((segment.end_offset() - at) as usize);
        log.write(&segment, at, &rest[..len])?;
        at += len as u64;
        rest = &rest[len..];
    }
    let delays = inner.delay_levels_ms.clone();
    let from = writer.replica_dispatched.max(log.min_offset());
    let mut last_timestamp = log.last_store_timestamp();
    let scan = log.scan(from, at, true, |found| {
        last_timestamp = found.record.store_timestamp;
        let Some((queue_offset, unit)) = unit_of(found, &delays) else {
            return Ok(());
        };
        let rec = &found.record;
        let queue = inner.queue_for_write(&mut writer.queues, rec.topic, rec.queue_id)?;
        queue.cq.append_unit(&mut queue.cursor, queue_offset, unit)?;
        queue.next_offset = queue.next_offset.max(queue_offset + 1);
        Ok(())
    })?;
    if let Some(reason) = scan.stop_reason {
        // A record cut by the end of this chunk is fine: the next chunk completes it.
        if !is_incomplete_tail(log, scan.valid_end, at)? {
            return Err(Error::InvalidArgument(format!("replicated data is not valid: {reason}")));
        }
    }
    writer.replica_dispatched = scan.valid_end;
    log.publish(at, last_timestamp);
    drop(writer);
    inner.index_waker.wake();
    Ok(())
}

/// Whether the bytes `[from, end)` are the start of a record longer than they are.
fn is_incomplete_tail(log: &CommitLog, from: u64, end: u64) -> Result<bool> {
    let available = end - from;
    if available < 4 {
        return Ok(true);
    }
    let Some(segment) = log.files().segment_for(from) else {
        return Ok(false);
    };
    let mut size = [0u8; 4];
    segment
        .file
        .read_at(from - segment.from_offset, &mut size)
        .map_err(|e| Error::io("read", segment.file.path(), e))?;
    let declared = i32::from_be_bytes(size);
    Ok(declared > 0 && declared as u64 > available)
}
