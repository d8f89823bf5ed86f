//! `ProcessQueue` (client.md §4.5): the messages of one queue that were pulled and are not
//! yet consumed, bounding the pull by count, bytes and offset span, and giving the offset
//! that is safe to commit: the smallest offset still in flight.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use ferromq_message::MessageExt;
use parking_lot::Mutex;

use crate::util::now_ms;

/// How long a broker lock is trusted on the client side (30 s, shorter than the broker's
/// 60 s so a client stops before another can take the queue).
pub(crate) const LOCK_MAX_LIVE_MS: i64 = 30_000;

/// The pulled-but-unconsumed messages of one queue, and the queue's flags.
#[derive(Debug)]
pub(crate) struct ProcessQueue {
    state: Mutex<State>,
    dropped: AtomicBool,
    locked: AtomicBool,
    last_pull_ms: AtomicI64,
    last_lock_ms: AtomicI64,
    /// Serialises orderly consumption of the queue; held while the listener runs, so an
    /// unlock can wait for the consumer to finish.
    pub(crate) consume_lock: Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    /// Queue offset → cached entry.
    messages: BTreeMap<i64, Cached>,
    count: usize,
    size_bytes: usize,
    /// Offset of the last message added.
    queue_offset_max: i64,
    /// A consume task is running (orderly dispatch).
    consuming: bool,
    /// Orderly: offsets (and body sizes) taken by the running task, not yet committed.
    consuming_orderly: BTreeMap<i64, usize>,
}

/// Concurrent mode only needs sizes (the consume tasks own the messages); orderly mode
/// keeps the messages here until a task takes them.
#[derive(Debug)]
enum Cached {
    Pending { body_len: usize },
    Held(Box<MessageExt>),
}

impl Cached {
    fn body_len(&self) -> usize {
        match self {
            Self::Pending { body_len } => *body_len,
            Self::Held(message) => message.message.body.len(),
        }
    }
}

impl Default for ProcessQueue {
    fn default() -> Self {
        Self {
            state: Mutex::new(State { queue_offset_max: -1, ..State::default() }),
            dropped: AtomicBool::new(false),
            locked: AtomicBool::new(false),
            last_pull_ms: AtomicI64::new(now_ms()),
            last_lock_ms: AtomicI64::new(now_ms()),
            consume_lock: Mutex::new(()),
        }
    }
}

impl ProcessQueue {
    /// Records `messages` (concurrent mode: sizes only). Returns Java's "dispatch" flag.
    pub(crate) fn put_pending(&self, messages: &[MessageExt]) -> bool {
        let mut state = self.state.lock();
        for message in messages {
            let body_len = message.message.body.len();
            if state.messages.insert(message.queue_offset, Cached::Pending { body_len }).is_none() {
                state.count += 1;
                state.size_bytes += body_len;
            }
            state.queue_offset_max = state.queue_offset_max.max(message.queue_offset);
        }
        state.dispatch()
    }

    /// Keeps `messages` for orderly consumption. Returns true when a consume task should
    /// be started (none is running and there is something to consume).
    pub(crate) fn put_held(&self, messages: Vec<MessageExt>) -> bool {
        let mut state = self.state.lock();
        for message in messages {
            let offset = message.queue_offset;
            let body_len = message.message.body.len();
            if state.messages.insert(offset, Cached::Held(Box::new(message))).is_none() {
                state.count += 1;
                state.size_bytes += body_len;
            }
            state.queue_offset_max = state.queue_offset_max.max(offset);
        }
        state.dispatch()
    }

    /// Concurrent mode: forgets `offsets` and returns the offset to commit — the smallest
    /// offset still cached, else the last offset added plus one; −1 when nothing was cached.
    pub(crate) fn remove(&self, offsets: &[i64]) -> i64 {
        let mut state = self.state.lock();
        if state.messages.is_empty() {
            return -1;
        }
        for offset in offsets {
            if let Some(cached) = state.messages.remove(offset) {
                state.count -= 1;
                state.size_bytes -= cached.body_len();
            }
        }
        match state.messages.keys().next() {
            Some(first) => *first,
            None => state.queue_offset_max + 1,
        }
    }

    /// Orderly mode: takes up to `max` messages from the front. Nothing left clears the
    /// consuming flag.
    pub(crate) fn take(&self, max: usize) -> Vec<MessageExt> {
        let mut state = self.state.lock();
        let mut taken = Vec::new();
        while taken.len() < max {
            let Some((offset, cached)) = state.messages.pop_first() else { break };
            match cached {
                Cached::Held(message) => {
                    state.consuming_orderly.insert(offset, message.message.body.len());
                    taken.push(*message);
                }
                pending @ Cached::Pending { .. } => {
                    // Concurrent entries never meet orderly takes; keep the entry anyway.
                    state.messages.insert(offset, pending);
                    break;
                }
            }
        }
        if taken.is_empty() {
            state.consuming = false;
        }
        taken
    }

    /// Orderly mode: the taken messages are done. Returns the offset to commit (last taken
    /// plus one), or −1 when nothing was taken.
    pub(crate) fn commit(&self) -> i64 {
        let mut state = self.state.lock();
        let taken = std::mem::take(&mut state.consuming_orderly);
        let Some(last) = taken.keys().next_back().copied() else { return -1 };
        state.count -= taken.len();
        state.size_bytes -= taken.values().sum::<usize>();
        last + 1
    }

    /// Orderly mode: puts taken messages back to be consumed again.
    pub(crate) fn put_back(&self, messages: Vec<MessageExt>) {
        let mut state = self.state.lock();
        for message in messages {
            let offset = message.queue_offset;
            state.consuming_orderly.remove(&offset);
            state.messages.insert(offset, Cached::Held(Box::new(message)));
        }
    }

    /// Drops every cached message (a reset or a seek).
    pub(crate) fn clear(&self) {
        let mut state = self.state.lock();
        state.messages.clear();
        state.consuming_orderly.clear();
        state.count = 0;
        state.size_bytes = 0;
        state.queue_offset_max = -1;
        state.consuming = false;
    }

    /// Cached message count.
    pub(crate) fn count(&self) -> usize {
        self.state.lock().count
    }

    /// Cached body bytes.
    pub(crate) fn size_bytes(&self) -> usize {
        self.state.lock().size_bytes
    }

    /// Last cached offset minus the first (concurrent flow control).
    pub(crate) fn span(&self) -> i64 {
        let state = self.state.lock();
        match (state.messages.keys().next(), state.messages.keys().next_back()) {
            (Some(first), Some(last)) => last - first,
            _ => 0,
        }
    }

    /// True when nothing is cached or being consumed.
    pub(crate) fn is_empty(&self) -> bool {
        let state = self.state.lock();
        state.messages.is_empty() && state.consuming_orderly.is_empty()
    }

    pub(crate) fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    pub(crate) fn set_dropped(&self) {
        self.dropped.store(true, Ordering::Release);
    }

    pub(crate) fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Acquire)
    }

    pub(crate) fn set_locked(&self, locked: bool) {
        if locked {
            self.last_lock_ms.store(now_ms(), Ordering::Release);
        }
        self.locked.store(locked, Ordering::Release);
    }

    /// The client-side lock view is stale (no successful lock for 30 s).
    pub(crate) fn is_lock_expired(&self) -> bool {
        now_ms() - self.last_lock_ms.load(Ordering::Acquire) > LOCK_MAX_LIVE_MS
    }

    pub(crate) fn touch_pull(&self) {
        self.last_pull_ms.store(now_ms(), Ordering::Release);
    }

    /// No pull for `idle_ms`.
    pub(crate) fn is_pull_expired(&self, idle_ms: i64) -> bool {
        now_ms() - self.last_pull_ms.load(Ordering::Acquire) > idle_ms
    }
}

impl State {
    fn dispatch(&mut self) -> bool {
        if !self.messages.is_empty() && !self.consuming {
            self.consuming = true;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use ferromq_message::Message;

    use super::*;

    pub(crate) fn message(offset: i64, body: &str) -> MessageExt {
        let host: SocketAddr = "127.0.0.1:10911".parse().unwrap();
        MessageExt {
            message: Message::new("T", body.as_bytes().to_vec()),
            queue_id: 0,
            store_size: 0,
            queue_offset: offset,
            sysflag: 0,
            born_timestamp: 0,
            born_host: host,
            store_timestamp: 0,
            store_host: host,
            msg_id: String::new(),
            commit_log_offset: 0,
            body_crc: 0,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
        }
    }

    #[test]
    fn committed_offset_never_passes_a_message_in_flight() {
        let queue = ProcessQueue::default();
        assert_eq!(queue.remove(&[1]), -1, "nothing cached");
        let batch: Vec<MessageExt> = (10..15).map(|o| message(o, "ab")).collect();
        queue.put_pending(&batch);
        assert_eq!((queue.count(), queue.size_bytes(), queue.span()), (5, 10, 4));
        // 12 done while 10 and 11 are still being consumed: commit 10.
        assert_eq!(queue.remove(&[12]), 10);
        assert_eq!(queue.remove(&[10, 11]), 13);
        assert_eq!(queue.remove(&[13, 14]), 15, "empty: last offset plus one");
        assert_eq!((queue.count(), queue.size_bytes()), (0, 0));
        assert!(queue.is_empty());
    }

    #[test]
    fn orderly_take_commit_and_put_back() {
        let queue = ProcessQueue::default();
        assert!(queue.put_held((0..4).map(|o| message(o, "x")).collect()));
        assert!(!queue.put_held(vec![message(4, "x")]), "a task is already dispatched");
        let first = queue.take(2);
        assert_eq!(first.iter().map(|m| m.queue_offset).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(queue.commit(), 2);
        assert_eq!(queue.count(), 3);
        let again = queue.take(2);
        queue.put_back(again);
        assert_eq!(queue.commit(), -1, "put back: nothing to commit");
        assert_eq!(queue.take(10).len(), 3);
        assert_eq!(queue.commit(), 5);
        assert!(queue.take(1).is_empty());
        assert!(queue.put_held(vec![message(5, "x")]), "consuming flag cleared by an empty take");
    }

    #[test]
    fn flags() {
        let queue = ProcessQueue::default();
        assert!(!queue.is_dropped() && !queue.is_locked() && !queue.is_lock_expired());
        queue.set_locked(true);
        queue.set_dropped();
        assert!(queue.is_dropped() && queue.is_locked());
        assert!(!queue.is_pull_expired(120_000));
        queue.put_pending(&[message(3, "abc")]);
        queue.clear();
        assert_eq!(queue.count(), 0);
    }
}
