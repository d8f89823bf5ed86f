//! The accept loop: connection limit, graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{Connection, Handler, TransportConfig};

/// What [`serve`] reports when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerHandle {
    /// Connections accepted over the server's life.
    pub accepted: u64,
    /// Connections refused because `max_connections` were open.
    pub refused: u64,
}

/// Serves `listener` until `shutdown` resolves, then stops accepting, lets every
/// connection finish the requests it is serving (up to `config.shutdown_drain`), flushes
/// their answers and closes them.
///
/// Each accepted connection gets its own reader and writer tasks; requests go to
/// `handler`. Beyond `config.max_connections` open connections a new one is closed at
/// once. Accept errors (out of file descriptors, say) are logged and retried after a pause.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    config: TransportConfig,
    shutdown: impl Future<Output = ()>,
) -> ServerHandle {
    let (stop, stopped) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut report = ServerHandle::default();
    let loops = match EventLoops::start(config.event_loops) {
        Ok(loops) => loops,
        Err(error) => {
            tracing::warn!(%error, "cannot start event-loop threads; serving on this runtime");
            None
        }
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed; retrying in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    report.refused += 1;
                    tracing::warn!(%peer, limit = config.max_connections, "connection limit reached; closing new connection");
                    drop(stream);
                    continue;
                };
                let spawned = match &loops {
                    Some(loops) => loops.spawn(stream, handler.clone(), config.clone(), stopped.clone()).await,
                    None => Connection::spawn(stream, handler.clone(), config.clone(), Some(stopped.clone())),
                };
                match spawned {
                    Ok((connection, task)) => {
                        report.accepted += 1;
                        tracing::debug!(peer = %connection.peer_addr(), id = connection.id(), "connection accepted");
                        connections.spawn(async move {
                            drop(task.await);
                            drop(slot);
                        });
                    }
                    Err(error) => tracing::warn!(%peer, %error, "cannot set up accepted connection"),
                }
            }
        }
    }
    drop(listener);
    stop.send_replace(true);
    let drain = config.shutdown_drain + Duration::from_secs(6);
    let all_closed = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(drain, all_closed).await.is_err() {
        tracing::warn!("connections still open after the shutdown drain; aborting them");
        connections.abort_all();
    }
    report
}

/// Work sent to an event loop: runs inside its runtime.
type Job = Box<dyn FnOnce() + Send>;

/// Threads each running a single-threaded runtime, that connections are spread over (see
/// [`TransportConfig::event_loops`]). They end when the server drops this and their last
/// connection has closed.
struct EventLoops {
    loops: Vec<tokio::sync::mpsc::UnboundedSender<Job>>,
    next: std::sync::atomic::AtomicUsize,
}

impl EventLoops {
    fn start(count: usize) -> std::io::Result<Option<EventLoops>> {
        if count == 0 {
            return Ok(None);
        }
        let mut loops = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
            std::thread::Builder::new().name(format!("ferromq-net-{index}")).spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = queue.recv().await {
                        job();
                    }
                });
                // The server has returned, so its connections have closed; dropping the
                // runtime here cancels whatever task is left.
            })?;
            loops.push(jobs);
        }
        Ok(Some(EventLoops { loops, next: std::sync::atomic::AtomicUsize::new(0) }))
    }

    /// Moves `stream` to the next event loop and starts serving it there.
    async fn spawn<H: Handler>(
        &self,
        stream: tokio::net::TcpStream,
        handler: Arc<H>,
        config: TransportConfig,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<(Connection, tokio::task::JoinHandle<()>)> {
        let stream = stream.into_std()?;
        let index = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.loops.len();
        let (done, spawned) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let spawned = tokio::net::TcpStream::from_std(stream)
                .and_then(|stream| Connection::spawn(stream, handler, config, Some(stop)));
            drop(done.send(spawned));
        });
        let gone = || std::io::Error::other("event loop thread is gone");
        self.loops[index].send(job).map_err(|_| gone())?;
        spawned.await.map_err(|_| gone())?
    }
}
