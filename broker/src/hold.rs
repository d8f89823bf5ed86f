//! Long polling (spec remoting.md §10, broker.md §8.1): a pull that finds nothing waits here
//! until a matching message arrives on its queue or its suspend timeout passes.
//!
//! The store calls [`PullHold::on_arrival`] from the put path for every append, so the
//! common case (nobody waiting) is one relaxed atomic load.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::filter::TagFilter;

struct Waiter {
    offset: i64,
    filter: Arc<TagFilter>,
    wake: oneshot::Sender<()>,
}

/// Held pulls by (topic, queue id).
#[derive(Default)]
pub struct PullHold {
    /// Set at shutdown: nothing is held any more, held pulls are answered at once.
    closing: std::sync::atomic::AtomicBool,
    waiting: AtomicUsize,
    table: Mutex<HashMap<(String, i32), Vec<Waiter>>>,
}

impl std::fmt::Debug for PullHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullHold").field("waiting", &self.waiting.load(Ordering::Relaxed)).finish()
    }
}

impl PullHold {
    /// Waits until a message past `offset` matching `filter` arrives on the queue, or
    /// `timeout` passes. `current_max` is re-read after registering, so an arrival between
    /// the caller's read and the registration is not missed. Returns true when woken by an
    /// arrival.
    pub async fn wait(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        filter: Arc<TagFilter>,
        timeout: Duration,
        current_max: impl FnOnce() -> i64,
    ) -> bool {
        if self.closing.load(Ordering::Acquire) {
            return false;
        }
        let (wake, woken) = oneshot::channel();
        {
            let mut table = self.table.lock();
            table.entry((topic.to_owned(), queue_id)).or_default().push(Waiter {
                offset,
                filter,
                wake,
            });
            self.waiting.fetch_add(1, Ordering::Relaxed);
        }
        if current_max() > offset || self.closing.load(Ordering::Acquire) {
            self.wake_queue(topic, queue_id, i64::MAX, None);
        }
        let arrived = matches!(tokio::time::timeout(timeout, woken).await, Ok(Ok(())));
        if !arrived {
            self.forget_dead(topic, queue_id);
        }
        arrived
    }

    /// Wakes the waiters of a queue whose offset is below `max_offset` and whose filter
    /// accepts `tags_code` (`None`: accept all).
    pub fn on_arrival(&self, topic: &str, queue_id: i32, max_offset: i64, tags_code: i64) {
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.wake_queue(topic, queue_id, max_offset, Some(tags_code));
    }

    fn wake_queue(&self, topic: &str, queue_id: i32, max_offset: i64, tags_code: Option<i64>) {
        let mut table = self.table.lock();
        let key = (topic.to_owned(), queue_id);
        let Some(waiters) = table.get_mut(&key) else { return };
        let before = waiters.len();
        let mut kept = Vec::with_capacity(waiters.len());
        for waiter in waiters.drain(..) {
            let due = waiter.offset < max_offset
                && tags_code.is_none_or(|code| waiter.filter.matches(code));
            if due {
                // The waiter may have timed out already; nothing to do then.
                let _ = waiter.wake.send(());
            } else if !waiter.wake.is_closed() {
                kept.push(waiter);
            }
        }
        let removed = before - kept.len();
        if kept.is_empty() {
            table.remove(&key);
        } else {
            *waiters = kept;
        }
        self.waiting.fetch_sub(removed, Ordering::Relaxed);
    }

    fn forget_dead(&self, topic: &str, queue_id: i32) {
        let mut table = self.table.lock();
        let key = (topic.to_owned(), queue_id);
        let Some(waiters) = table.get_mut(&key) else { return };
        let before = waiters.len();
        waiters.retain(|waiter| !waiter.wake.is_closed());
        let removed = before - waiters.len();
        if waiters.is_empty() {
            table.remove(&key);
        }
        self.waiting.fetch_sub(removed, Ordering::Relaxed);
    }

    /// Stops holding: every held pull is woken (and answered with whatever it finds) and
    /// later ones are not held. Called when the broker shuts down, so that draining the
    /// connections does not wait out long-poll timeouts.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        let keys: Vec<(String, i32)> = self.table.lock().keys().cloned().collect();
        for (topic, queue_id) in keys {
            self.wake_queue(&topic, queue_id, i64::MAX, None);
        }
    }

    /// Pulls being held.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn arrival_wakes_matching_waiters_only() {
        let hold = Arc::new(PullHold::default());
        let tag_a = Arc::new(TagFilter::parse("A").unwrap());
        let waiter = {
            let hold = hold.clone();
            tokio::spawn(
                async move { hold.wait("T", 0, 5, tag_a, Duration::from_secs(5), || 5).await },
            )
        };
        while hold.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        hold.on_arrival("T", 1, 6, ferromq_message::hash::tags_code("A"));
        hold.on_arrival("T", 0, 6, ferromq_message::hash::tags_code("B"));
        assert_eq!(hold.waiting(), 1, "other queue and other tag keep it held");
        hold.on_arrival("T", 0, 7, ferromq_message::hash::tags_code("A"));
        assert!(waiter.await.unwrap());
        assert_eq!(hold.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_and_race_with_registration() {
        let hold = PullHold::default();
        let all = Arc::new(TagFilter::all());
        assert!(!hold.wait("T", 0, 5, all.clone(), Duration::from_secs(15), || 5).await);
        assert_eq!(hold.waiting(), 0);
        // A message that landed before registration wakes at once.
        assert!(hold.wait("T", 0, 5, all, Duration::from_secs(15), || 6).await);
        assert_eq!(hold.waiting(), 0);
    }

    #[tokio::test]
    async fn close_answers_held_pulls_and_holds_no_more() {
        let hold = Arc::new(PullHold::default());
        let all = Arc::new(TagFilter::all());
        let held = {
            let (hold, all) = (hold.clone(), all.clone());
            tokio::spawn(
                async move { hold.wait("T", 0, 5, all, Duration::from_secs(60), || 5).await },
            )
        };
        while hold.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        hold.close();
        tokio::time::timeout(Duration::from_secs(5), held).await.unwrap().unwrap();
        let started = std::time::Instant::now();
        hold.wait("T", 0, 5, all, Duration::from_secs(60), || 5).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(hold.waiting(), 0);
    }
}
