//! The master side of HA (Java's `DefaultHAService` accept loop and `HAConnection`): every
//! slave connection gets a reader thread (offset reports → acknowledgements) and a writer
//! thread (CommitLog bytes → transfer frames), and SYNC_MASTER puts wait here for an
//! acknowledgement covering them.
//!
//! Threads, not tasks: the writer reads the store (mapped pages that may fault) and both
//! block on their socket, as Java's do. A put wakes sleeping writers through [`DataSignal`];
//! an acknowledgement wakes waiting puts through a `watch` channel.

use std::io::{IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferromq_store::MessageStore;
use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::protocol::{self, ReportReader};

/// How often a blocked HA thread looks at the stop flag and its timers.
pub(crate) const POLL: Duration = Duration::from_millis(100);
/// Slave connections a master serves at once (each costs two threads); more are closed.
pub(crate) const SLAVE_CONNECTIONS_MAX: usize = 64;

/// What a SYNC_MASTER put learnt from its slaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaveAck {
    /// A slave acknowledged the put's end offset.
    Acked,
    /// No slave is connected, or the best one is too far behind (`haSlaveFallbehindMax`).
    NotAvailable,
    /// No acknowledgement within `slaveTimeout`.
    Timeout,
}

/// Settings of the master's HA threads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MasterSettings {
    pub batch_size: usize,
    pub heartbeat: Duration,
    pub housekeeping: Duration,
    pub segment_size: i64,
}

/// "New CommitLog data": writers sleep on it, puts ring it. Ringing costs one atomic add
/// (and a lock only while a writer sleeps).
#[derive(Debug, Default)]
pub(crate) struct DataSignal {
    generation: AtomicU64,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
}

impl DataSignal {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(crate) fn ring(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock();
            self.cond.notify_all();
        }
    }

    /// Sleeps until the generation moves past `seen` or `timeout` passes.
    pub(crate) fn wait(&self, seen: u64, timeout: Duration) {
        let mut guard = self.lock.lock();
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        if self.generation.load(Ordering::SeqCst) == seen {
            let _ = self.cond.wait_for(&mut guard, timeout);
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One connected slave.
#[derive(Debug)]
pub(crate) struct SlaveConnection {
    id: u64,
    peer: SocketAddr,
    /// The first report: where the slave asked the stream to start (−1 until it arrives).
    request: AtomicI64,
    /// The newest report this master counts as an acknowledgement (−1: none yet).
    ack: AtomicI64,
    closed: AtomicBool,
    socket: TcpStream,
}

impl SlaveConnection {
    fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.socket.shutdown(Shutdown::Both);
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A slave as reported by [`super::Ha::slaves`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaveInfo {
    /// The slave's address on the HA connection.
    pub peer: SocketAddr,
    /// Its newest acknowledged CommitLog offset (−1: none yet).
    pub ack_offset: i64,
}

/// Everything the master knows about its slaves.
#[derive(Debug)]
pub(crate) struct MasterState {
    connections: Mutex<Vec<Arc<SlaveConnection>>>,
    /// The best acknowledgement of a live connection (−1: none).
    best_ack: watch::Sender<i64>,
    pub(crate) data: DataSignal,
    next_id: AtomicU64,
}

impl Default for MasterState {
    fn default() -> Self {
        Self {
            connections: Mutex::new(Vec::new()),
            best_ack: watch::Sender::new(-1),
            data: DataSignal::default(),
            next_id: AtomicU64::new(1),
        }
    }
}

impl MasterState {
    /// The connected slaves.
    pub(crate) fn slaves(&self) -> Vec<SlaveInfo> {
        self.connections
            .lock()
            .iter()
            .map(|c| SlaveInfo { peer: c.peer, ack_offset: c.ack.load(Ordering::Acquire) })
            .collect()
    }

    /// Java 4.9's `handleHA`: waits until a slave acknowledged `end`, for up to `timeout`.
    /// A slave counts as available when one is connected and the best is less than
    /// `fallbehind_max` bytes behind `end`.
    pub(crate) async fn wait_for_slave(
        &self,
        end: i64,
        fallbehind_max: u64,
        timeout: Duration,
    ) -> SlaveAck {
        let best = *self.best_ack.borrow();
        let connected = !self.connections.lock().is_empty();
        let behind = u64::try_from(end.saturating_sub(best.max(0))).unwrap_or(0);
        if !connected || behind >= fallbehind_max {
            return SlaveAck::NotAvailable;
        }
        if best >= end {
            return SlaveAck::Acked;
        }
        self.data.ring();
        let mut acks = self.best_ack.subscribe();
        match tokio::time::timeout(timeout, acks.wait_for(|ack| *ack >= end)).await {
            Ok(Ok(_)) => SlaveAck::Acked,
            _ => SlaveAck::Timeout,
        }
    }

    fn add(&self, peer: SocketAddr, socket: TcpStream) -> Arc<SlaveConnection> {
        let connection = Arc::new(SlaveConnection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            peer,
            request: AtomicI64::new(-1),
            ack: AtomicI64::new(-1),
            closed: AtomicBool::new(false),
            socket,
        });
        self.connections.lock().push(connection.clone());
        connection
    }

    fn remove(&self, id: u64) {
        let mut connections = self.connections.lock();
        connections.retain(|c| c.id != id);
        let best = connections.iter().map(|c| c.ack.load(Ordering::Acquire)).max().unwrap_or(-1);
        drop(connections);
        self.best_ack.send_replace(best);
    }

    fn acknowledge(&self, connection: &SlaveConnection, offset: i64) {
        connection.ack.fetch_max(offset, Ordering::AcqRel);
        self.best_ack.send_if_modified(|best| {
            let newer = offset > *best;
            if newer {
                *best = offset;
            }
            newer
        });
    }

    /// How many slaves are connected.
    pub(crate) fn connection_count(&self) -> usize {
        self.connections.lock().len()
    }

    /// Closes every connection (their threads then end).
    pub(crate) fn close_all(&self) {
        for connection in self.connections.lock().iter() {
            connection.close();
        }
    }
}

/// Starts the two threads of a new slave connection; their handles go to `threads`.
pub(crate) fn serve_connection(
    socket: TcpStream,
    peer: SocketAddr,
    state: &Arc<MasterState>,
    store: &Arc<MessageStore>,
    settings: MasterSettings,
    threads: &Mutex<Vec<std::thread::JoinHandle<()>>>,
) -> std::io::Result<()> {
    socket.set_nonblocking(false)?;
    socket.set_nodelay(true)?;
    socket.set_read_timeout(Some(POLL))?;
    socket.set_write_timeout(Some(settings.housekeeping))?;
    let reader_socket = socket.try_clone()?;
    let writer_socket = socket.try_clone()?;
    let connection = state.add(peer, socket);
    tracing::info!(slave = %peer, "HA slave connected");
    let spawn = |name: &str, run: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new().name(name.to_owned()).spawn(run)
    };
    let reader = {
        let (connection, state, store) = (connection.clone(), state.clone(), store.clone());
        spawn(
            "ferromq-ha-read",
            Box::new(move || read_reports(&connection, reader_socket, &state, &store, settings)),
        )
    };
    let writer = {
        let (connection, state, store) = (connection.clone(), state.clone(), store.clone());
        spawn(
            "ferromq-ha-write",
            Box::new(move || write_frames(&connection, writer_socket, &state, &store, settings)),
        )
    };
    let mut handles = threads.lock();
    handles.retain(|handle| !handle.is_finished());
    for spawned in [reader, writer] {
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                connection.close();
                state.remove(connection.id);
                return Err(error);
            }
        }
    }
    Ok(())
}

/// Reader thread: each report acknowledges the slave's CommitLog end; the first one is also
/// where the stream starts. Closes the connection on EOF, error, a negative offset, or
/// `haHousekeepingInterval` of silence.
fn read_reports(
    connection: &SlaveConnection,
    mut socket: TcpStream,
    state: &MasterState,
    store: &MessageStore,
    settings: MasterSettings,
) {
    let mut reports = ReportReader::default();
    let mut buf = [0u8; 4096];
    let mut last_read = Instant::now();
    let reason = loop {
        if connection.is_closed() {
            break "closed".to_owned();
        }
        match socket.read(&mut buf) {
            Ok(0) => break "the slave closed the connection".to_owned(),
            Ok(n) => {
                last_read = Instant::now();
                let mut bad = None;
                reports.feed(&buf[..n], |offset| {
                    if bad.is_none() && !on_report(connection, state, store, offset) {
                        bad = Some(offset);
                    }
                });
                if let Some(offset) = bad {
                    break format!("the slave reported offset {offset}, expected >= 0");
                }
            }
            Err(error) if is_timeout(&error) => {
                if last_read.elapsed() > settings.housekeeping {
                    break format!("nothing read for {:?}", last_read.elapsed());
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => break error.to_string(),
        }
    };
    tracing::info!(slave = %connection.peer, reason, "HA slave connection closed");
    connection.close();
    state.remove(connection.id);
    state.data.ring();
}

/// One report; false when it is not an offset at all.
fn on_report(
    connection: &SlaveConnection,
    state: &MasterState,
    store: &MessageStore,
    offset: i64,
) -> bool {
    if offset < 0 {
        return false;
    }
    let first =
        connection.request.compare_exchange(-1, offset, Ordering::AcqRel, Ordering::Acquire);
    if first.is_ok() {
        tracing::info!(slave = %connection.peer, offset, "HA slave asks for data from here");
        state.data.ring();
    }
    // A slave cannot hold more than this master wrote: a larger report (a slave ahead of
    // its master after a master change) never counts as an acknowledgement.
    if offset <= store.max_phy_offset() {
        state.acknowledge(connection, offset);
    }
    true
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// Writer thread: waits for the slave's first report, then streams the CommitLog from
/// there in frames of at most `haTransferBatchSize` bytes, with a heartbeat frame after
/// `haSendHeartbeatInterval` without data.
fn write_frames(
    connection: &SlaveConnection,
    mut socket: TcpStream,
    state: &MasterState,
    store: &MessageStore,
    settings: MasterSettings,
) {
    let request = loop {
        if connection.is_closed() {
            return;
        }
        let seen = state.data.generation();
        let request = connection.request.load(Ordering::Acquire);
        if request >= 0 {
            break request;
        }
        state.data.wait(seen, POLL);
    };
    let max = store.max_phy_offset();
    let mut next = if request == 0 { max - max % settings.segment_size.max(1) } else { request };
    if request > max {
        // The slave has data this master never wrote (it was ahead when the master changed).
        // A heartbeat at this master's end tells it so: RocketMQ slaves close the connection
        // on an offset that is not theirs, and a ferromq slave then cuts its tail.
        tracing::warn!(slave = %connection.peer, slave_offset = request, master_offset = max,
            "HA slave is ahead of this master");
        next = max;
        if let Err(error) = write_frame(&mut socket, next, &[]) {
            tracing::info!(slave = %connection.peer, %error, "HA write failed");
            connection.close();
            return;
        }
    }
    tracing::info!(slave = %connection.peer, from = next, "HA transfer starts");
    let mut last_write = Instant::now();
    while !connection.is_closed() {
        let seen = state.data.generation();
        let data = match store.commit_log_data(next) {
            Ok(data) => data.filter(|data| !data.is_empty()),
            Err(error) => {
                tracing::error!(%error, offset = next, "reading the commit log for HA failed");
                break;
            }
        };
        let result = match data {
            Some(data) => {
                let size = data.len().min(settings.batch_size);
                let sent = write_frame(&mut socket, next, &data[..size]);
                next += i64::try_from(size).unwrap_or(0);
                last_write = Instant::now();
                sent
            }
            None if last_write.elapsed() >= settings.heartbeat => {
                last_write = Instant::now();
                write_frame(&mut socket, next, &[])
            }
            None => {
                let until_heartbeat = settings.heartbeat.saturating_sub(last_write.elapsed());
                state.data.wait(seen, until_heartbeat.min(POLL));
                Ok(())
            }
        };
        if let Err(error) = result {
            if !connection.is_closed() {
                tracing::info!(slave = %connection.peer, %error, "HA write failed");
            }
            break;
        }
    }
    connection.close();
}

/// Writes one frame with as few system calls as the socket allows.
fn write_frame(socket: &mut TcpStream, offset: i64, body: &[u8]) -> std::io::Result<()> {
    let size = u32::try_from(body.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let header = protocol::encode_header(offset, size);
    let mut slices = [IoSlice::new(&header), IoSlice::new(body)];
    let mut pending: &mut [IoSlice<'_>] = &mut slices;
    while !pending.is_empty() {
        match socket.write_vectored(pending) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut pending, written),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_signal_wakes_a_sleeper_and_never_misses_a_ring() {
        let signal = Arc::new(DataSignal::default());
        let seen = signal.generation();
        signal.ring();
        let started = Instant::now();
        signal.wait(seen, Duration::from_secs(5));
        assert!(started.elapsed() < Duration::from_secs(1), "a ring before the wait counts");
        let seen = signal.generation();
        let sleeper = {
            let signal = signal.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                signal.wait(seen, Duration::from_secs(5));
                started.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        signal.ring();
        assert!(sleeper.join().unwrap() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn no_slave_means_not_available() {
        let state = MasterState::default();
        let ack = state.wait_for_slave(100, 1 << 20, Duration::from_millis(10)).await;
        assert_eq!(ack, SlaveAck::NotAvailable);
    }
}
