//! Expiry (storage.md §17): deletes the oldest CommitLog segments once they are older than
//! `file_reserved_time_hours` at the `delete_when` hour, or at once when the disk is too
//! full; then the ConsumeQueue and IndexFile files that only point at deleted data.
//!
//! Readers holding a view of a deleted segment keep it: the file is unlinked, not unmapped,
//! and its pages live until the last view is dropped.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::store::Inner;

/// The expiry thread: a cleaning pass every `clean_resource_interval_ms`.
pub(crate) fn run(inner: &Inner) {
    let interval = Duration::from_millis(inner.config.clean_resource_interval_ms);
    while !inner.shutdown.sleep(interval) {
        if let Err(err) = clean(inner, false) {
            tracing::warn!(%err, "expiry pass failed");
        }
    }
}

/// One cleaning pass; `manual` acts as if the delete hour had come. Returns how many
/// CommitLog segments were deleted. A failed sync (of a directory after a deletion, or of
/// the queues before it) poisons the store.
pub(crate) fn clean(inner: &Inner, manual: bool) -> Result<usize> {
    clean_once(inner, manual).inspect_err(|err| inner.poison_if_sync_failed(err))
}

fn clean_once(inner: &Inner, manual: bool) -> Result<usize> {
    let config = &inner.config;
    let dir = inner.commit_log.files().dir().to_path_buf();
    let probe = if inner.storage.exists(&dir) { dir.clone() } else { inner.root().to_path_buf() };
    let usage = inner.storage.disk_usage(&probe).map_err(|e| Error::io("statvfs", &probe, e))?;
    let used = usage.used_percent();
    let warning = u64::from(config.disk_space_warning_level_ratio);
    let forcibly = u64::from(config.disk_space_clean_forcibly_ratio);
    let full = used > warning;
    if full != inner.disk_full.swap(full, Ordering::AcqRel) {
        tracing::warn!(used_percent = used, full, "disk usage crossed the warning level");
    }
    let immediately = used > forcibly;
    let by_space = used > u64::from(config.disk_max_used_space_ratio);
    let hour = ((now_secs() / 3600) % 24) as u32;
    let by_time = config.delete_hours()?.contains(&hour);
    if !(manual || by_time || by_space || immediately) {
        return Ok(0);
    }
    let force = immediately && config.clean_file_forcibly_enable;
    let reserved = Duration::from_secs(config.file_reserved_time_hours * 3600);
    let files = inner.commit_log.files();
    let mut deleted = 0;
    let mut queues_durable = false;
    while deleted < config.delete_file_batch_max as usize && files.segment_count() > 1 {
        let Some(first) = files.first() else { break };
        let path = files.segment_path(first.from_offset);
        let modified = inner.storage.modified(&path).map_err(|e| Error::io("stat", &path, e))?;
        let expired = SystemTime::now().duration_since(modified).unwrap_or_default() >= reserved;
        if !(expired || force) {
            break;
        }
        if !queues_durable {
            // The ConsumeQueue units of the records about to go must be durable first:
            // once their records are deleted, recovery cannot rebuild a unit that a power
            // cut tore, and a torn unit would point at garbage forever.
            inner.guarded_flush(|| {
                crate::dispatch::flush_consume_queues(inner, 0)?;
                inner.checkpoint.flush()
            })?;
            queues_durable = true;
        }
        crate::crash_point::hit(crate::crash_point::EXPIRY_BEFORE_REMOVE);
        files.remove_first()?;
        crate::crash_point::hit(crate::crash_point::EXPIRY_AFTER_REMOVE);
        deleted += 1;
        tracing::info!(path = %path.display(), "deleted expired commit log segment");
    }
    if deleted > 0 {
        let min = inner.commit_log.min_offset() as i64;
        let queues: Vec<_> =
            inner.queues.read().values().flat_map(|m| m.values().cloned()).collect();
        for cq in queues {
            cq.delete_expired(min)?;
            cq.correct_min_offset(min)?;
        }
        inner.index.delete_expired(min)?;
    }
    Ok(deleted)
}

/// Seconds since the Unix epoch. `deleteWhen` hours are read in UTC (RocketMQ uses local
/// time; the store has no time-zone database).
fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
