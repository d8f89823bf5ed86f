//! The consume thread pool: listeners are user code that may block, so they run on plain
//! threads (Java's `consumeExecutor`, `consumeThreadMin` threads), never on the runtime's
//! workers. A job that needs the network (sending a message back) blocks on the runtime
//! handle it captured.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A unit of consumption.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of threads taking jobs from one queue.
#[derive(Debug)]
pub(crate) struct ConsumePool {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Jobs queued or running.
    busy: Arc<AtomicUsize>,
}

impl ConsumePool {
    /// Starts `threads` threads named `<name>-<n>`.
    pub(crate) fn new(name: &str, threads: usize) -> Self {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let busy = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(threads);
        for n in 0..threads.max(1) {
            let receiver = receiver.clone();
            let busy = busy.clone();
            let spawned =
                std::thread::Builder::new().name(format!("{name}-{n}")).spawn(move || {
                    loop {
                        let next = receiver.lock().recv();
                        let Ok(job) = next else { return };
                        job();
                        busy.fetch_sub(1, Ordering::AcqRel);
                    }
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(error) => tracing::error!(%error, "cannot start a consume thread"),
            }
        }
        Self { jobs: Mutex::new(Some(sender)), threads: Mutex::new(handles), busy }
    }

    /// Queues `job`; false when the pool is shut down (the job is dropped).
    pub(crate) fn submit(&self, job: Job) -> bool {
        let jobs = self.jobs.lock();
        let Some(sender) = jobs.as_ref() else { return false };
        self.busy.fetch_add(1, Ordering::AcqRel);
        if sender.send(job).is_err() {
            self.busy.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Jobs queued or running.
    pub(crate) fn busy(&self) -> usize {
        self.busy.load(Ordering::Acquire)
    }

    /// Waits (polling, blocking the caller) up to `timeout` for the queue to empty.
    pub(crate) fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.busy() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Stops taking jobs; threads exit once the queue is drained. Does not wait.
    pub(crate) fn shutdown(&self) {
        self.jobs.lock().take();
        // Threads end on their own when the channel is empty and closed; detach them.
        self.threads.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_jobs_on_its_threads_and_drains() {
        let pool = ConsumePool::new("test-consume", 3);
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let done = done.clone();
            assert!(pool.submit(Box::new(move || {
                let name = std::thread::current().name().unwrap_or_default().to_owned();
                assert!(name.starts_with("test-consume-"));
                done.fetch_add(1, Ordering::SeqCst);
            })));
        }
        assert!(pool.wait_idle(Duration::from_secs(10)));
        assert_eq!(done.load(Ordering::SeqCst), 100);
        pool.shutdown();
        assert!(!pool.submit(Box::new(|| {})));
    }
}
