//! The slave side of HA (Java's `HAClient`): one session at a time with the master's HA
//! port — report the CommitLog end, append the frames that come back, report the new end —
//! on a blocking-pool thread, reconnecting after `haSendHeartbeatInterval` when it ends.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use ferromq_message::hash::java_bytes_hash;
use ferromq_message::properties::find_property;
use ferromq_message::record::{RecordCheck, check_record_at};
use ferromq_message::{property, sysflag};
use ferromq_store::MessageStore;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::master::POLL;
use super::protocol::{self, FrameReader};
use crate::hold::PullHold;

/// Where the slave's master is, as configured or learnt from the name server.
#[derive(Debug, Default)]
pub(crate) struct SlaveState {
    /// `haMasterAddress`, which wins over the name server's answer.
    configured_ha_addr: Option<String>,
    /// The master's HA address from the last registration result that had one.
    learnt_ha_addr: Mutex<Option<String>>,
    /// The master's remoting address from the last registration result (`None` when the
    /// name server did not name a live master).
    master_addr: Mutex<Option<String>>,
    /// Rung when either address changes.
    pub(crate) changed: Notify,
    /// The slave's newest report to its master, −1 while not connected.
    pub(crate) reported: AtomicI64,
}

impl SlaveState {
    pub(crate) fn new(configured_ha_addr: Option<String>) -> Self {
        Self { configured_ha_addr, reported: AtomicI64::new(-1), ..Self::default() }
    }

    /// The HA address to connect to.
    pub(crate) fn ha_addr(&self) -> Option<String> {
        self.configured_ha_addr.clone().or_else(|| self.learnt_ha_addr.lock().clone())
    }

    /// The master's remoting address (metadata sync, the agreement check).
    pub(crate) fn master_addr(&self) -> Option<String> {
        self.master_addr.lock().clone()
    }

    /// Applies a registration result (broker.md §11): the HA address only when one is given
    /// (a dead master's address is kept and retried), the master address always.
    pub(crate) fn on_register_result(&self, master_addr: Option<String>, ha_addr: Option<String>) {
        let master_addr = master_addr.filter(|addr| !addr.is_empty());
        let ha_addr = ha_addr.filter(|addr| !addr.is_empty());
        let mut changed = false;
        if let Some(ha_addr) = ha_addr {
            let mut learnt = self.learnt_ha_addr.lock();
            if learnt.as_deref() != Some(ha_addr.as_str()) {
                tracing::info!(%ha_addr, "master HA address learnt from the name server");
                *learnt = Some(ha_addr);
                changed = true;
            }
        }
        {
            let mut current = self.master_addr.lock();
            if *current != master_addr {
                tracing::info!(master = ?master_addr, "master address from the name server");
                *current = master_addr;
                changed = true;
            }
        }
        if changed {
            self.changed.notify_waiters();
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// The broker is stopping.
    Stopped,
    /// The master (or its address) went away, or the connection failed.
    Disconnected(String),
    /// The master sent data for an offset that is not this slave's end: the logs may
    /// disagree (a master change) and must be checked before streaming again.
    OffsetMismatch {
        /// The master's offset.
        master: i64,
        /// This slave's end.
        slave: i64,
    },
    /// The store refused the master's bytes.
    StoreError(String),
}

/// Settings of the slave's session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlaveSettings {
    pub heartbeat: Duration,
    pub housekeeping: Duration,
}

/// One session with the master at `addr`, until it ends. Blocking: runs on its own thread.
pub(crate) fn run_session(
    addr: &str,
    store: &MessageStore,
    hold: &PullHold,
    state: &SlaveState,
    settings: SlaveSettings,
    stop: &AtomicBool,
) -> SessionEnd {
    let mut socket = match connect(addr) {
        Ok(socket) => socket,
        Err(error) => {
            return SessionEnd::Disconnected(format!("cannot connect to {addr}: {error}"));
        }
    };
    tracing::info!(master = addr, "HA connected to the master");
    let end = session_loop(addr, &mut socket, store, hold, state, settings, stop);
    state.reported.store(-1, Ordering::Release);
    end
}

fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let target: SocketAddr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let socket = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
    socket.set_nodelay(true)?;
    socket.set_read_timeout(Some(POLL))?;
    socket.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(socket)
}

fn session_loop(
    addr: &str,
    socket: &mut TcpStream,
    store: &MessageStore,
    hold: &PullHold,
    state: &SlaveState,
    settings: SlaveSettings,
    stop: &AtomicBool,
) -> SessionEnd {
    let mut reported = store.max_phy_offset();
    if let Err(error) = report(socket, state, reported) {
        return SessionEnd::Disconnected(format!("first report failed: {error}"));
    }
    let mut last_write = Instant::now();
    let mut last_read = Instant::now();
    let mut frames = FrameReader::default();
    let mut records = RecordAssembler::new(reported);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if stop.load(Ordering::Acquire) {
            return SessionEnd::Stopped;
        }
        if state.ha_addr().as_deref() != Some(addr) {
            return SessionEnd::Disconnected("the master's HA address changed".to_owned());
        }
        match socket.read(&mut buf) {
            Ok(0) => {
                return SessionEnd::Disconnected("the master closed the connection".to_owned());
            }
            Ok(n) => {
                last_read = Instant::now();
                frames.extend(&buf[..n]);
                if let Some(end) = apply_frames(&mut frames, &mut records, store, hold) {
                    return end;
                }
            }
            Err(error) if is_timeout(&error) => {
                if last_read.elapsed() > settings.housekeeping {
                    let silent = last_read.elapsed();
                    return SessionEnd::Disconnected(format!(
                        "nothing from the master for {silent:?}"
                    ));
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return SessionEnd::Disconnected(error.to_string()),
        }
        let end = store.max_phy_offset();
        let due = end > reported || last_write.elapsed() >= settings.heartbeat;
        debug_assert!(end >= reported, "the store end went back: {end} < {reported}");
        if due {
            if let Err(error) = report(socket, state, end) {
                return SessionEnd::Disconnected(format!("report failed: {error}"));
            }
            reported = end;
            last_write = Instant::now();
        }
    }
}

/// Appends every complete frame; `Some` when the session must end.
fn apply_frames(
    frames: &mut FrameReader,
    records: &mut RecordAssembler,
    store: &MessageStore,
    hold: &PullHold,
) -> Option<SessionEnd> {
    loop {
        let frame = match frames.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return None,
            Err(error) => return Some(SessionEnd::Disconnected(error.to_string())),
        };
        // RocketMQ's rule: an empty slave takes any offset, any other only its own end.
        let slave = records.received_end();
        if slave != 0 && slave != frame.offset {
            return Some(SessionEnd::OffsetMismatch { master: frame.offset, slave });
        }
        if frame.body.is_empty() {
            continue;
        }
        if let Err(end) = records.append(frame.offset, frame.body, store, hold) {
            return Some(end);
        }
    }
}

/// Largest record (or BLANK) the slave buffers while its bytes arrive.
const RECORD_SIZE_MAX: usize = protocol::BODY_SIZE_MAX;

/// Frames cut records anywhere; the store takes whole records only (its readers — the
/// index thread among them — must never meet a half-written record below its end). The
/// bytes of a cut record wait here until the rest arrives.
#[derive(Debug)]
struct RecordAssembler {
    /// CommitLog offset of `pending[0]`.
    start: i64,
    pending: Vec<u8>,
}

impl RecordAssembler {
    fn new(store_end: i64) -> Self {
        Self { start: store_end, pending: Vec::new() }
    }

    /// The end of everything received: the store's end plus the buffered part record.
    fn received_end(&self) -> i64 {
        self.start + i64::try_from(self.pending.len()).unwrap_or(i64::MAX)
    }

    /// Buffers `body` (sent for `offset`, the received end — or anything, for an empty
    /// slave) and appends the whole records it completes.
    fn append(
        &mut self,
        offset: i64,
        body: &[u8],
        store: &MessageStore,
        hold: &PullHold,
    ) -> Result<(), SessionEnd> {
        if self.pending.is_empty() && self.start != offset {
            assert_eq!(self.start, 0, "only an empty slave takes another offset");
            self.start = offset;
        }
        self.pending.extend_from_slice(body);
        let whole = match whole_records_len(&self.pending) {
            Ok(whole) => whole,
            Err(reason) => {
                return Err(SessionEnd::StoreError(format!("bytes at {}: {reason}", self.start)));
            }
        };
        if whole == 0 {
            return Ok(());
        }
        if let Err(error) = store.append_replicated(self.start, &self.pending[..whole]) {
            return Err(SessionEnd::StoreError(error.to_string()));
        }
        if hold.waiting() > 0 {
            wake_held_pulls(&self.pending[..whole], hold);
        }
        self.pending.drain(..whole);
        self.start += i64::try_from(whole).unwrap_or(i64::MAX);
        debug_assert_eq!(store.max_phy_offset(), self.start, "store end follows the records");
        Ok(())
    }
}

/// Pulls held on this slave wait for new messages in their queue: the store's arrival hook
/// fires for local puts only, so the replicated records wake them here.
fn wake_held_pulls(records: &[u8], hold: &PullHold) {
    let mut pos = 0;
    while pos < records.len() {
        let Ok(RecordCheck::Message(record)) = check_record_at(records, pos, false) else {
            return; // a BLANK closes the segment; nothing follows it in this run
        };
        pos += record.encoded_len();
        let transaction = sysflag::transaction_type(record.sysflag);
        if transaction != sysflag::TRANSACTION_NOT_TYPE
            && transaction != sysflag::TRANSACTION_COMMIT_TYPE
        {
            continue;
        }
        let tags = find_property(record.properties, property::TAGS)
            .filter(|tags| !tags.is_empty())
            .map_or(0, |tags| i64::from(java_bytes_hash(tags)));
        hold.on_arrival(record.topic, record.queue_id, record.queue_offset + 1, tags);
    }
}

/// Length of the longest run of whole records at the start of `bytes` (by their size
/// fields; the store checks the records themselves).
fn whole_records_len(bytes: &[u8]) -> Result<usize, String> {
    let mut pos = 0usize;
    while let Some(size) = bytes.get(pos..pos + 4) {
        let size = i32::from_be_bytes([size[0], size[1], size[2], size[3]]);
        let size = match usize::try_from(size) {
            Ok(size) if (1..=RECORD_SIZE_MAX).contains(&size) => size,
            _ => {
                return Err(format!(
                    "record at +{pos} has size {size}, expected 1..={RECORD_SIZE_MAX}"
                ));
            }
        };
        if pos + size > bytes.len() {
            break;
        }
        pos += size;
    }
    Ok(pos)
}

fn report(socket: &mut TcpStream, state: &SlaveState, offset: i64) -> std::io::Result<()> {
    socket.write_all(&protocol::encode_report(offset))?;
    state.reported.store(offset, Ordering::Release);
    Ok(())
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(size: u32) -> Vec<u8> {
        let mut record = vec![7u8; size as usize];
        record[..4].copy_from_slice(&size.to_be_bytes());
        record
    }

    #[test]
    fn whole_records_stop_before_a_cut_one() {
        let mut bytes = record(20);
        bytes.extend(record(30));
        assert_eq!(whole_records_len(&bytes), Ok(50));
        assert_eq!(whole_records_len(&bytes[..49]), Ok(20));
        assert_eq!(whole_records_len(&bytes[..22]), Ok(20), "a cut size field");
        assert_eq!(whole_records_len(&[]), Ok(0));
        assert!(whole_records_len(&[0, 0, 0, 0]).is_err(), "zeros are no record");
        assert!(whole_records_len(&[0xff, 0, 0, 0]).is_err(), "negative size");
    }
}
