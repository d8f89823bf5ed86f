//! Background work: the flush thread (CommitLog async flush, ConsumeQueue flush, checkpoint)
//! and the index thread, which follows the CommitLog and feeds every record's keys to the
//! IndexFile (RocketMQ's reput service, for the index only: ConsumeQueue units are written
//! by the put itself so that a message is readable the moment `put` returns).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::thread::Thread;
use std::time::{Duration, Instant};

use ferromq_message::properties::find_property;
use ferromq_message::{property, sysflag};
use parking_lot::{Condvar, Mutex};

use crate::commit_log::PREFAULT_WINDOW_BYTES;
use crate::config::{FlushMode, PAGE_SIZE_BYTES};
use crate::consume_queue::WarmRequest;
use crate::error::Result;
use crate::store::Inner;

/// Longest the index thread sleeps between checks when nobody wakes it.
const INDEX_IDLE_PARK: Duration = Duration::from_millis(10);

/// Wakes a parked worker thread cheaply: a put pays for `unpark` only when the worker is
/// actually asleep.
#[derive(Debug, Default)]
pub(crate) struct Waker {
    sleeping: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Waker {
    pub(crate) fn register(&self, thread: Thread) {
        let _ = self.thread.set(thread);
    }

    pub(crate) fn wake(&self) {
        // Pairs with the fence in `sleep`: either the worker sees the new work, or we see it
        // asleep and unpark it.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed)
            && self.sleeping.swap(false, Ordering::AcqRel)
            && let Some(thread) = self.thread.get()
        {
            thread.unpark();
        }
    }

    /// Parks unless `has_work` turns true after announcing sleep.
    fn sleep(&self, has_work: impl Fn() -> bool, timeout: Duration) {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if !has_work() {
            std::thread::park_timeout(timeout);
        }
        self.sleeping.store(false, Ordering::Relaxed);
    }
}

/// Stop signal for the background threads, with an interruptible sleep.
#[derive(Debug, Default)]
pub(crate) struct Shutdown {
    stopped: Mutex<bool>,
    condvar: Condvar,
}

impl Shutdown {
    pub(crate) fn signal(&self) {
        *self.stopped.lock() = true;
        self.condvar.notify_all();
    }

    pub(crate) fn is_signalled(&self) -> bool {
        *self.stopped.lock()
    }

    /// Sleeps up to `timeout`; returns true if shutdown was signalled.
    pub(crate) fn sleep(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut stopped = self.stopped.lock();
        while !*stopped {
            if self.condvar.wait_until(&mut stopped, deadline).timed_out() {
                break;
            }
        }
        *stopped
    }
}

/// The flush thread: CommitLog every `flush_interval_commit_log_ms` when enough pages are
/// dirty (thoroughly every `flush_commit_log_thorough_interval_ms`), ConsumeQueues every
/// `flush_interval_consume_queue_ms`, then the checkpoint.
pub(crate) fn run_flush(inner: &Inner) {
    let config = &inner.config;
    let tick = Duration::from_millis(
        config.flush_interval_commit_log_ms.min(config.flush_interval_consume_queue_ms),
    );
    let (mut last_thorough, mut last_cq, mut last_cq_thorough) =
        (Instant::now(), Instant::now(), Instant::now());
    while !inner.shutdown.sleep(tick) {
        if inner.poison.get().is_some() {
            continue;
        }
        let now = Instant::now();
        let thorough = now - last_thorough
            >= Duration::from_millis(config.flush_commit_log_thorough_interval_ms);
        let least_pages = if thorough { 0 } else { config.flush_commit_log_least_pages };
        let log = &inner.commit_log;
        let dirty_pages =
            log.max_offset() / PAGE_SIZE_BYTES - log.flushed_offset() / PAGE_SIZE_BYTES;
        let dirty = log.max_offset() > log.flushed_offset();
        // Under sync flush the puts flush for themselves; this catches puts with WAIT=false.
        if dirty && (dirty_pages >= least_pages.max(1) || thorough) {
            if let Err(err) = inner.flush_commit_log() {
                tracing::error!(%err, "commit log flush failed");
                continue;
            }
            if thorough {
                last_thorough = now;
            }
        }
        if now - last_cq >= Duration::from_millis(config.flush_interval_consume_queue_ms) {
            last_cq = now;
            let cq_thorough = now - last_cq_thorough
                >= Duration::from_millis(config.flush_consume_queue_thorough_interval_ms);
            if cq_thorough {
                last_cq_thorough = now;
            }
            let least = if cq_thorough { 0 } else { config.flush_consume_queue_least_pages };
            let flushed = inner.guarded_flush(|| {
                flush_consume_queues(inner, least).and_then(|()| inner.checkpoint.flush())
            });
            if let Err(err) = flushed {
                tracing::error!(%err, "consume queue or checkpoint flush failed");
            }
        }
    }
}

/// Flushes every ConsumeQueue with at least `least_pages` dirty pages, then records in the
/// checkpoint the store time up to which ConsumeQueues are durable.
pub(crate) fn flush_consume_queues(inner: &Inner, least_pages: u64) -> Result<()> {
    // Units are written inside the put, before `publish`: every unit of a record stored at
    // or before this time is in the files we are about to flush.
    let covered = inner.commit_log.last_store_timestamp();
    let queues: Vec<_> = inner.queues.read().values().flat_map(|m| m.values().cloned()).collect();
    for cq in queues {
        cq.flush(least_pages)?;
    }
    if least_pages == 0 && covered > 0 {
        inner.checkpoint.logics_msg_timestamp.store(covered, Ordering::Release);
    }
    Ok(())
}

/// The index thread: indexes every record from where the IndexFile left off.
pub(crate) fn run_index(inner: &Inner) {
    loop {
        if let Err(err) = index_catch_up(inner) {
            tracing::error!(%err, "building the index failed; retrying in 1 s");
            if inner.shutdown.sleep(Duration::from_secs(1)) {
                return;
            }
        }
        if inner.shutdown.is_signalled() {
            return;
        }
        let has_work = || inner.index_reput_offset() < inner.readable_end_for_index();
        inner.index_waker.sleep(has_work, INDEX_IDLE_PARK);
    }
}

impl Inner {
    /// Where the index thread resumes.
    fn index_reput_offset(&self) -> u64 {
        self.index_reput.load(Ordering::Acquire)
    }

    fn readable_end_for_index(&self) -> u64 {
        match self.config.flush_disk_type {
            FlushMode::Sync => self.commit_log.flushed_offset(),
            FlushMode::Async => self.commit_log.max_offset(),
        }
    }
}

/// Indexes every record between the reput offset and the readable end.
pub(crate) fn index_catch_up(inner: &Inner) -> Result<()> {
    if !inner.config.message_index_enable {
        inner.index_reput.store(inner.commit_log.max_offset(), Ordering::Release);
        return Ok(());
    }
    let end = inner.readable_end_for_index();
    let from = inner.index_reput_offset().max(inner.commit_log.min_offset());
    if from >= end {
        return Ok(());
    }
    let scan = inner.commit_log.scan(from, end, false, |found| {
        let rec = &found.record;
        if sysflag::transaction_type(rec.sysflag) == sysflag::TRANSACTION_ROLLBACK_TYPE {
            return Ok(());
        }
        let keys =
            find_property(rec.properties, property::KEYS).and_then(|k| std::str::from_utf8(k).ok());
        let uniq = find_property(rec.properties, property::UNIQ_KEY)
            .and_then(|k| std::str::from_utf8(k).ok());
        if keys.is_none() && uniq.is_none() {
            return Ok(());
        }
        let sealed = inner.index.build_index(
            rec.topic,
            keys,
            uniq,
            found.phy_offset as i64,
            rec.store_timestamp,
        );
        // Sealing flushes the full file: a failure there poisons the store like any flush.
        let sealed = sealed.inspect_err(|err| inner.poison_if_sync_failed(err))?;
        if let Some(end_timestamp) = sealed {
            inner.checkpoint.index_msg_timestamp.store(end_timestamp, Ordering::Release);
            inner.guarded_flush(|| inner.checkpoint.flush())?;
        }
        Ok(())
    })?;
    let mut resume = scan.valid_end.max(from);
    if let Some(reason) = &scan.stop_reason
        && resume < end
    {
        // A damaged record on a live store: skip the rest of its segment, as RocketMQ's
        // reput does, rather than stall the index forever.
        tracing::warn!(reason, "index skips the rest of a segment after an unreadable record");
        resume = inner.commit_log.roll_next_file(resume).min(end);
    }
    inner.index_reput.store(resume, Ordering::Release);
    Ok(())
}

/// How often the warm thread looks at the write position.
const WARM_TICK: Duration = Duration::from_millis(2);
/// Pages faulted in per call, so the thread yields often.
const WARM_CHUNK_BYTES: u64 = 1 << 20;

/// The warm thread: keeps the `PREFAULT_WINDOW_BYTES` ahead of the CommitLog's write
/// position faulted in, so appends land on warm pages (a cold page costs microseconds to
/// fault) without dirtying a whole segment of zeros at once, and faults in the ConsumeQueue
/// chunks the writer asks for (`consume_queue::WarmRequest`). The head of each new segment is
/// warmed by the thread that allocates it.
pub(crate) fn run_warm(inner: &Inner) {
    let log = &inner.commit_log;
    // The channel exists exactly when pre-faulting is on, which is when this thread runs.
    let Some((_, requests)) = &inner.queue_warm else { return };
    let mut warmed_to = 0u64;
    loop {
        // Wait for a queue's request, or a tick to look at the CommitLog.
        if let Ok(request) = requests.recv_timeout(WARM_TICK) {
            serve_queue_request(&request);
            requests.try_iter().for_each(|request| serve_queue_request(&request));
        }
        if inner.shutdown.is_signalled() {
            return;
        }
        let end = log.max_offset();
        let Some(segment) = log.files().segment_for(end) else { continue };
        let target = (end + PREFAULT_WINDOW_BYTES).min(segment.end_offset());
        warmed_to = warmed_to.max(end);
        while warmed_to < target && !inner.shutdown.is_signalled() {
            // Queues first: their chunks are small and needed sooner.
            for request in requests.try_iter() {
                serve_queue_request(&request);
            }
            let len = WARM_CHUNK_BYTES.min(target - warmed_to);
            if let Err(err) = segment.file.prefault_range(warmed_to - segment.from_offset, len) {
                tracing::warn!(%err, "pre-faulting the commit log failed; appends may stall");
                break;
            }
            warmed_to += len;
        }
    }
}

fn serve_queue_request(request: &WarmRequest) {
    match request {
        WarmRequest::Range { segment, pos, len } => {
            if let Err(err) = segment.file.prefault_range(*pos, *len) {
                let path = segment.file.path().display();
                tracing::debug!(%err, %path, "pre-faulting a consume queue failed");
            }
        }
        WarmRequest::NextFile(queue) => {
            if let Some(queue) = queue.upgrade()
                && let Err(err) = queue.prepare_next_file()
            {
                // The writer will create the file itself, and meet the error there.
                tracing::debug!(%err, "creating a consume queue's next file ahead failed");
            }
        }
    }
}
