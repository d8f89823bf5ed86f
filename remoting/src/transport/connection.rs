//! One full-duplex connection: reader, writer, pending requests.

use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Handler, Reply, TransportConfig, TransportError, TransportResult};
use crate::command::RemotingCommand;
use crate::frame::FrameDecoder;

/// Opaques of requests this process sends, unique across its connections (Java's
/// `RemotingCommand.requestId`).
static NEXT_OPAQUE: AtomicI32 = AtomicI32::new(1);
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// Frames the writer gathers into one vectored write at most.
const WRITE_BATCH_FRAMES: usize = 64;
/// Bytes the writer gathers into one vectored write at most (more only for a single frame).
const WRITE_BATCH_BYTES: usize = 1 << 20;
/// Read buffer capacity reserved before each read.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// A handle to a live (or closed) connection. Cheap to clone; every clone is the same
/// connection. Sending on a closed connection fails with [`TransportError::Closed`].
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    writes: mpsc::Sender<Outgoing>,
    pending: Mutex<HashMap<i32, oneshot::Sender<RemotingCommand>>>,
    closed: watch::Sender<bool>,
    /// Milliseconds since `epoch` of the last read or write.
    last_activity_ms: AtomicU64,
    epoch: Instant,
    /// Reader and writer run on one thread (a current-thread runtime), so the reader may
    /// write its answers itself while the writer is idle: see [`Connection::writer_idle`].
    inline_writes: bool,
    /// The writer holds frames it has not finished writing.
    writer_busy: AtomicBool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.inner.id)
            .field("peer", &self.inner.peer)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Connection {
    fn eq(&self, other: &Self) -> bool {
        self.inner.id == other.inner.id
    }
}

impl Eq for Connection {}

impl std::hash::Hash for Connection {
    fn hash<S: std::hash::Hasher>(&self, state: &mut S) {
        self.inner.id.hash(state);
    }
}

impl Connection {
    /// Starts serving `stream`: spawns its reader and writer tasks on the current runtime.
    /// Requests arriving on it go to `handler`. When `stop` turns true the reader stops
    /// taking requests, waits (up to `config.shutdown_drain`) for those in flight, then
    /// closes. The returned task ends when the connection is closed and its writer flushed.
    pub(crate) fn spawn<H: Handler>(
        stream: TcpStream,
        handler: Arc<H>,
        config: TransportConfig,
        stop: Option<watch::Receiver<bool>>,
    ) -> std::io::Result<(Connection, JoinHandle<()>)> {
        let peer = stream.peer_addr()?;
        let local = stream.local_addr()?;
        // Small frames (acks, heartbeats) must not wait for Nagle's algorithm.
        stream.set_nodelay(true)?;
        let (read_half, write_half) = stream.into_split();
        let (writes, queue) = mpsc::channel(config.write_queue_frames.max(1));
        let (closed, _) = watch::channel(false);
        let epoch = Instant::now();
        let inline_writes = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::CurrentThread;
        let connection = Connection {
            inner: Arc::new(Inner {
                id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
                peer,
                local,
                writes,
                pending: Mutex::new(HashMap::new()),
                closed,
                last_activity_ms: AtomicU64::new(0),
                epoch,
                inline_writes,
                writer_busy: AtomicBool::new(false),
            }),
        };
        let writer = tokio::spawn(write_loop(connection.clone(), write_half, queue));
        let reader =
            tokio::spawn(read_loop(connection.clone(), read_half, handler, config, stop, writer));
        Ok((connection, reader))
    }

    /// A number unique to this connection within the process.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The remote address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    /// The local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// True once the connection is closed; nothing more is sent or received.
    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    /// Resolves when the connection closes.
    pub async fn closed(&self) {
        let mut closed = self.inner.closed.subscribe();
        // The sender lives in `self.inner`, so waiting cannot fail.
        let _ = closed.wait_for(|closed| *closed).await;
    }

    /// Closes the connection: frames already queued are still written, pending requests
    /// fail with [`TransportError::Closed`]. Idempotent.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
        let pending = std::mem::take(&mut *self.inner.pending.lock());
        // Dropping the senders wakes every waiter with an error.
        drop(pending);
    }

    /// Queues a frame (a response, or a request whose answer nobody awaits), waiting while
    /// the write queue is full.
    ///
    /// # Errors
    ///
    /// [`TransportError::Closed`] when the connection is closed.
    pub async fn send(&self, reply: impl Into<Reply>) -> TransportResult<()> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        self.inner.writes.send(Outgoing::One(reply.into())).await.map_err(|_| self.closed_error())
    }

    /// Whether the reader may write to the socket itself now: reader and writer share one
    /// thread (so neither runs while the other does), the writer holds no unfinished frames
    /// and nothing waits in the write queue. Then nothing can come between the reader's
    /// frames, and a response skips the hand-off to the writer task and its wake-up.
    fn writer_idle(&self) -> bool {
        let inner = &self.inner;
        inner.inline_writes
            && !inner.writer_busy.load(Ordering::Relaxed)
            && inner.writes.capacity() == inner.writes.max_capacity()
            && !self.is_closed()
    }

    /// Queues several frames as one entry of the write queue (they are written together).
    async fn send_all(&self, replies: Vec<Reply>) -> TransportResult<()> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        self.inner.writes.send(Outgoing::Many(replies)).await.map_err(|_| self.closed_error())
    }

    /// Sends `request` as a oneway request (no answer expected), with a fresh opaque.
    ///
    /// # Errors
    ///
    /// [`TransportError::Closed`] when the connection is closed.
    pub async fn send_oneway(&self, mut request: RemotingCommand) -> TransportResult<()> {
        request.opaque = next_opaque();
        request.flag &= !crate::FLAG_RESPONSE;
        request.mark_oneway();
        self.send(request).await
    }

    /// Sends `request` with a fresh opaque and waits up to `timeout` for its response.
    ///
    /// # Errors
    ///
    /// [`TransportError::Timeout`], or [`TransportError::Closed`] when the connection
    /// closes first.
    pub async fn request(
        &self,
        request: RemotingCommand,
        timeout: Duration,
    ) -> TransportResult<RemotingCommand> {
        self.request_reply(Reply::new(request), timeout).await
    }

    /// [`Connection::request`] for a request whose body is made of chunks.
    ///
    /// # Errors
    ///
    /// As [`Connection::request`].
    pub async fn request_reply(
        &self,
        mut request: Reply,
        timeout: Duration,
    ) -> TransportResult<RemotingCommand> {
        let opaque = next_opaque();
        let code = request.command.code;
        request.command.opaque = opaque;
        request.command.flag &= !(crate::FLAG_RESPONSE | crate::FLAG_ONEWAY);
        let (done, response) = oneshot::channel();
        self.inner.pending.lock().insert(opaque, done);
        // `close` takes the map after setting the flag: checking the flag after inserting
        // means either `close` sees our entry or we see the flag.
        if self.is_closed() {
            self.inner.pending.lock().remove(&opaque);
            return Err(self.closed_error());
        }
        let exchange = async {
            self.send(request).await?;
            response.await.map_err(|_| self.closed_error())
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => {
                self.inner.pending.lock().remove(&opaque);
                Err(TransportError::Timeout { code, peer: self.inner.peer.to_string(), timeout })
            }
        }
    }

    fn closed_error(&self) -> TransportError {
        TransportError::Closed { peer: self.inner.peer.to_string() }
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.inner.last_activity_ms.store(elapsed, Ordering::Relaxed);
    }

    fn last_activity(&self) -> Instant {
        self.inner.epoch
            + Duration::from_millis(self.inner.last_activity_ms.load(Ordering::Relaxed))
    }

    fn complete(&self, response: RemotingCommand) {
        let waiter = self.inner.pending.lock().remove(&response.opaque);
        match waiter {
            // The requester may have timed out and gone; that is fine.
            Some(waiter) => drop(waiter.send(response)),
            None => tracing::debug!(
                peer = %self.inner.peer,
                opaque = response.opaque,
                code = response.code,
                "response to no pending request (timed out?), dropped"
            ),
        }
    }
}

fn next_opaque() -> i32 {
    // Wrapping is fine: an opaque only has to be unique among requests in flight.
    NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed)
}

async fn read_loop<H: Handler>(
    connection: Connection,
    mut read_half: OwnedReadHalf,
    handler: Arc<H>,
    config: TransportConfig,
    mut stop: Option<watch::Receiver<bool>>,
    writer: JoinHandle<()>,
) {
    let decoder = match FrameDecoder::new(config.max_frame_size_bytes) {
        Ok(decoder) => decoder,
        Err(error) => {
            tracing::error!(%error, "invalid transport configuration; closing connection");
            connection.close();
            return;
        }
    };
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight_per_connection.max(1)));
    let mut closed = connection.inner.closed.subscribe();
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut answered: Vec<Reply> = Vec::new();
    let peer = connection.peer_addr();
    connection.touch();
    let graceful = 'read: loop {
        let idle_deadline = connection.last_activity() + config.idle_timeout;
        let read = tokio::select! {
            read = read_half.read_buf(&mut buf) => read,
            () = tokio::time::sleep_until(idle_deadline) => {
                if connection.last_activity() + config.idle_timeout <= Instant::now() {
                    tracing::info!(%peer, idle = ?config.idle_timeout, "idle connection closed");
                    break 'read false;
                }
                continue 'read;
            }
            _ = closed.wait_for(|closed| *closed) => break 'read false,
            _ = wait_stop(&mut stop) => break 'read true,
        };
        match read {
            Ok(0) => {
                tracing::debug!(%peer, "peer closed the connection");
                break 'read false;
            }
            Ok(_) => connection.touch(),
            Err(error) => {
                tracing::debug!(%peer, %error, "read failed; closing connection");
                break 'read false;
            }
        }
        loop {
            let frame = match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%peer, %error, "malformed frame; closing connection");
                    break 'read false;
                }
            };
            let command = match RemotingCommand::from_frame(frame) {
                Ok(command) => command,
                Err(error) => {
                    tracing::warn!(%peer, %error, "undecodable header; closing connection");
                    break 'read false;
                }
            };
            if command.is_response() {
                connection.complete(command);
            } else if let Some(reply) = dispatch(&connection, &handler, &in_flight, command).await {
                answered.push(reply);
            }
        }
        // Everything answered at once is written together: by the reader itself when the
        // writer is idle, else handed to the writer as one entry.
        if !answered.is_empty() {
            let replies = std::mem::take(&mut answered);
            if connection.writer_idle() {
                if let Err(error) = write_inline(&connection, read_half.as_ref(), replies) {
                    tracing::debug!(%peer, %error, "write failed; closing connection");
                    break 'read false;
                }
            } else if connection.send_all(replies).await.is_err() {
                tracing::debug!(%peer, "connection closed before the responses were sent");
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK_BYTES / 4 {
            buf.reserve(READ_CHUNK_BYTES);
        }
    };
    if graceful {
        // Graceful shutdown: take no more requests, let the ones in flight answer.
        let all = u32::try_from(config.max_in_flight_per_connection.max(1)).unwrap_or(u32::MAX);
        if tokio::time::timeout(config.shutdown_drain, in_flight.acquire_many(all)).await.is_err() {
            tracing::warn!(%peer, "requests still in flight after the drain timeout");
        }
    }
    connection.close();
    handler.on_close(&connection);
    if tokio::time::timeout(Duration::from_secs(5), writer).await.is_err() {
        tracing::warn!(%peer, "writer did not finish within 5 s of close");
    }
}

/// Resolves when the server asks connections to stop; never without a stop signal.
async fn wait_stop(stop: &mut Option<watch::Receiver<bool>>) {
    match stop {
        Some(stop) => {
            if stop.wait_for(|stop| *stop).await.is_err() {
                // The server is gone without saying stop: keep serving.
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Serves one request. The handler's future is polled once right here: a request it can
/// answer without waiting (a send under async flush, most queries) is answered without a
/// task of its own, and its reply is returned for the reader to queue with the others of
/// the same read. Only a request that has to wait (a held pull, a blocking store call, a
/// sync flush) gets a task, which queues its own reply.
async fn dispatch<H: Handler>(
    connection: &Connection,
    handler: &Arc<H>,
    in_flight: &Arc<Semaphore>,
    request: RemotingCommand,
) -> Option<Reply> {
    let Ok(permit) = in_flight.clone().try_acquire_owned() else {
        tracing::warn!(
            peer = %connection.peer_addr(),
            code = request.code,
            "too many requests in flight on this connection; answering SYSTEM_BUSY"
        );
        return (!request.is_oneway()).then(|| Reply::system_busy(&request));
    };
    let oneway = request.is_oneway();
    let opaque = request.opaque;
    let code = request.code;
    let handler = handler.clone();
    let for_handler = connection.clone();
    let mut serving = Box::pin(async move { handler.handle(for_handler, request).await });
    // A future polled once here and then moved into a task is polled again by the task with
    // the task's waker before it waits, so no wake-up is lost.
    match std::future::poll_fn(|cx| Poll::Ready(serving.as_mut().poll(cx))).await {
        Poll::Ready(reply) => {
            drop(permit);
            (!oneway).then(|| reply.map(|reply| into_response(reply, opaque))).flatten()
        }
        Poll::Pending => {
            let connection = connection.clone();
            tokio::spawn(async move {
                let reply = serving.await;
                if let Some(reply) = reply.filter(|_| !oneway)
                    && connection.send(into_response(reply, opaque)).await.is_err()
                {
                    tracing::debug!(
                        peer = %connection.peer_addr(),
                        code,
                        "connection closed before the response was sent"
                    );
                }
                // Released once the answer is queued: a graceful stop waits for every
                // permit, then closes, and the writer still writes what was queued.
                drop(permit);
            });
            None
        }
    }
}

fn into_response(mut reply: Reply, opaque: i32) -> Reply {
    reply.command.mark_response();
    reply.command.opaque = opaque;
    reply
}

/// Writes `replies` from the reader (see [`Connection::writer_idle`]) as far as the socket
/// takes them without waiting; the rest goes to the writer, first in its queue (the queue
/// is empty and nothing runs in between), to finish.
fn write_inline(
    connection: &Connection,
    stream: &TcpStream,
    replies: Vec<Reply>,
) -> std::io::Result<()> {
    let mut chunks = Chunks::default();
    encode_replies(connection, &mut chunks, replies, &mut 0);
    while chunks.has_remaining() {
        let mut slices = [IoSlice::new(&[]); 64];
        let filled = chunks.chunks_vectored(&mut slices);
        match stream.try_write_vectored(&slices[..filled]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(written) => chunks.advance(written),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(error) => return Err(error),
        }
    }
    connection.touch();
    // Queued, the rest keeps `writer_idle` false until the writer has written it.
    if chunks.has_remaining()
        && connection.inner.writes.try_send(Outgoing::Written(chunks)).is_err()
    {
        return Err(std::io::Error::other("the write queue is gone"));
    }
    Ok(())
}

/// What the writer is handed: one frame, the frames answered from one read, or the rest of
/// frames the reader began writing.
enum Outgoing {
    One(Reply),
    Many(Vec<Reply>),
    Written(Chunks),
}

async fn write_loop(
    connection: Connection,
    mut write_half: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Outgoing>,
) {
    let mut closed = connection.inner.closed.subscribe();
    let mut batch = Chunks::default();
    loop {
        let first = tokio::select! {
            biased;
            reply = queue.recv() => reply,
            _ = closed.wait_for(|closed| *closed) => None,
        };
        let Some(first) = first else { break };
        connection.inner.writer_busy.store(true, Ordering::Relaxed);
        if fill_batch(&connection, &mut batch, first, &mut queue)
            && let Err(error) = write_half.write_all_buf(&mut batch).await
        {
            tracing::debug!(peer = %connection.peer_addr(), %error, "write failed; closing connection");
            batch.clear();
            connection.close();
            break;
        }
        connection.inner.writer_busy.store(false, Ordering::Relaxed);
        connection.touch();
    }
    // Closed: write what was queued before the close (a last response, say), briefly.
    let flush = async {
        while let Ok(reply) = queue.try_recv() {
            if fill_batch(&connection, &mut batch, reply, &mut queue) {
                write_half.write_all_buf(&mut batch).await?;
            }
        }
        write_half.shutdown().await
    };
    drop(tokio::time::timeout(Duration::from_secs(2), flush).await);
}

/// Encodes `first` and whatever else is queued (up to the batch limits) into `batch`.
/// Returns false when nothing could be encoded.
fn fill_batch(
    connection: &Connection,
    batch: &mut Chunks,
    first: Outgoing,
    queue: &mut mpsc::Receiver<Outgoing>,
) -> bool {
    let mut frames = 0;
    let mut next = Some(first);
    while let Some(outgoing) = next.take() {
        match outgoing {
            Outgoing::One(reply) => encode_replies(connection, batch, [reply], &mut frames),
            Outgoing::Many(replies) => encode_replies(connection, batch, replies, &mut frames),
            Outgoing::Written(rest) => {
                for chunk in rest.chunks {
                    batch.push(chunk);
                }
                frames += 1;
            }
        }
        if frames < WRITE_BATCH_FRAMES && batch.remaining() < WRITE_BATCH_BYTES {
            next = queue.try_recv().ok();
        }
    }
    batch.has_remaining()
}

/// Encodes `replies` onto `batch`, counting them in `frames`; one that cannot be encoded is
/// logged and dropped.
fn encode_replies(
    connection: &Connection,
    batch: &mut Chunks,
    replies: impl IntoIterator<Item = Reply>,
    frames: &mut usize,
) {
    for reply in replies {
        match encode_reply(reply) {
            Ok(chunks) => {
                for chunk in chunks {
                    batch.push(chunk);
                }
                *frames += 1;
            }
            Err(error) => tracing::error!(
                peer = %connection.peer_addr(),
                %error,
                "cannot encode an outgoing command; dropped"
            ),
        }
    }
}

fn encode_reply(reply: Reply) -> crate::Result<Vec<Bytes>> {
    let Reply { command, body_chunks } = reply;
    let body_len = command.body.len() + body_chunks.iter().map(Bytes::len).sum::<usize>();
    let mut prefix = BytesMut::new();
    command.encode_header_prefix(body_len, &mut prefix)?;
    let mut chunks = Vec::with_capacity(2 + body_chunks.len());
    chunks.push(prefix.freeze());
    if !command.body.is_empty() {
        chunks.push(command.body);
    }
    chunks.extend(body_chunks.into_iter().filter(|chunk| !chunk.is_empty()));
    Ok(chunks)
}

/// A queue of byte chunks read as one [`Buf`], so that tokio writes it with `writev`.
#[derive(Default)]
struct Chunks {
    chunks: VecDeque<Bytes>,
    remaining: usize,
}

impl Chunks {
    fn push(&mut self, chunk: Bytes) {
        self.remaining += chunk.len();
        self.chunks.push_back(chunk);
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.remaining = 0;
    }
}

impl Buf for Chunks {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.chunks.front().map_or(&[], |chunk| chunk.as_ref())
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance past the end of the chunks");
        self.remaining -= cnt;
        while cnt > 0 {
            let Some(front) = self.chunks.front_mut() else { break };
            if cnt < front.len() {
                front.advance(cnt);
                break;
            }
            cnt -= front.len();
            self.chunks.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for (slot, chunk) in dst.iter_mut().zip(&self.chunks) {
            *slot = IoSlice::new(chunk);
            filled += 1;
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_advance_across_boundaries() {
        let mut chunks = Chunks::default();
        chunks.push(Bytes::from_static(b"abc"));
        chunks.push(Bytes::from_static(b"de"));
        chunks.push(Bytes::from_static(b"fghi"));
        assert_eq!(chunks.remaining(), 9);
        let mut slices = [IoSlice::new(&[]); 2];
        assert_eq!(chunks.chunks_vectored(&mut slices), 2);
        assert_eq!(&*slices[1], b"de");
        chunks.advance(4);
        assert_eq!(chunks.chunk(), b"e");
        chunks.advance(1);
        assert_eq!(chunks.chunk(), b"fghi");
        let mut rest = vec![0; 4];
        chunks.copy_to_slice(&mut rest);
        assert_eq!(rest, b"fghi");
        assert!(!chunks.has_remaining());
        assert_eq!(chunks.chunk(), b"");
    }
}
