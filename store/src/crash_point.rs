//! Named kill points: places inside a CommitLog roll, between a put's write and its flush,
//! inside a checkpoint write and inside expiry where a test can make the process `kill -9`
//! itself, to crash it at exactly that moment rather than at a random one.
//!
//! Only test builds (`cfg(test)` or the `internals` feature) have them; elsewhere
//! [`hit`] is an empty inline function. A process started with `FERROMQ_KILL_AT=<name>` (or
//! `<name>@<n>`) sends itself `SIGKILL` the first (or `n`-th) time execution reaches the
//! point `<name>`: no destructor, flush or `close` runs, exactly as under `kill -9`.

/// Inside a CommitLog roll: the BLANK closing the full segment is written, the next
/// segment is not in the queue yet.
pub(crate) const ROLL_AFTER_BLANK: &str = "roll-after-blank";
/// Inside a CommitLog roll: the next segment is in the queue, no record is in it yet.
pub(crate) const ROLL_AFTER_NEW_SEGMENT: &str = "roll-after-new-segment";
/// A put's records and units are written and published, not flushed (a sync-flush put
/// has not been acknowledged).
pub(crate) const PUT_BEFORE_FLUSH: &str = "put-before-flush";
/// A CommitLog flush completed; the puts waiting for it are not acknowledged yet.
pub(crate) const FLUSH_BEFORE_ACK: &str = "flush-before-ack";
/// The checkpoint's new values are written, not synced.
pub(crate) const CHECKPOINT_BEFORE_SYNC: &str = "checkpoint-before-sync";
/// Expiry made the queues and the checkpoint durable and is about to delete a segment.
pub(crate) const EXPIRY_BEFORE_REMOVE: &str = "expiry-before-remove";
/// Expiry deleted a CommitLog segment and has not cleaned the ConsumeQueues and
/// IndexFiles that point into it.
pub(crate) const EXPIRY_AFTER_REMOVE: &str = "expiry-after-remove";

/// Every named point, for the tests that visit them.
#[cfg(any(test, feature = "internals"))]
pub const ALL: [&str; 7] = [
    ROLL_AFTER_BLANK,
    ROLL_AFTER_NEW_SEGMENT,
    PUT_BEFORE_FLUSH,
    FLUSH_BEFORE_ACK,
    CHECKPOINT_BEFORE_SYNC,
    EXPIRY_BEFORE_REMOVE,
    EXPIRY_AFTER_REMOVE,
];

/// The environment variable naming the point to die at.
#[cfg(any(test, feature = "internals"))]
pub const ENV: &str = "FERROMQ_KILL_AT";

#[cfg(any(test, feature = "internals"))]
mod armed {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// The point and the hit to die at, from the environment (read once).
    static PLAN: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);

    fn plan() -> Option<&'static (String, u64)> {
        PLAN.get_or_init(|| {
            let value = std::env::var(super::ENV).ok()?;
            let (name, nth) = match value.split_once('@') {
                Some((name, nth)) => (name, nth.trim().parse().ok()?),
                None => (value.as_str(), 1),
            };
            Some((name.trim().to_owned(), nth))
        })
        .as_ref()
    }

    pub(crate) fn hit(name: &'static str) {
        let Some((planned, nth)) = plan() else { return };
        if planned != name || HITS.fetch_add(1, Ordering::AcqRel) + 1 != *nth {
            return;
        }
        let me = rustix::process::getpid();
        // If the signal cannot be sent, abort: the process must not go on past the point.
        let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
        std::process::abort();
    }
}

/// Marks the named point `name`: kills the process here if the environment asks for it.
#[cfg(any(test, feature = "internals"))]
pub(crate) fn hit(name: &'static str) {
    armed::hit(name);
}

/// Marks the named point `name` (nothing happens outside test builds).
#[cfg(not(any(test, feature = "internals")))]
#[inline(always)]
pub(crate) fn hit(name: &'static str) {
    let _ = name;
}
