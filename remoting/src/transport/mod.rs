//! The tokio transport (feature `tokio`): connections, a server and a client.
//!
//! One [`Connection`] type serves both ends, because RocketMQ's TCP connections are
//! full-duplex: either side sends requests and matches responses by `opaque` (spec §1).
//! A connection is three parts:
//! - a **reader** that splits frames, completes this side's pending requests when their
//!   responses arrive, and hands each incoming request to the [`Handler`] in its own task
//!   (Java runs processors on executor pools too, so responses may overtake each other;
//!   clients match them by opaque);
//! - a **writer** task fed by a bounded queue, that writes whole frames with vectored
//!   writes: a [`Reply`]'s body chunks (for a pull response, views of the store's mapped
//!   segments) go to the socket without being copied into a heap buffer;
//! - a table of pending requests, each with its own timeout.
//!
//! Bad input closes that one connection after logging why; nothing here panics on it.
//! [`serve`] runs a listener with a connection limit, an idle timeout and a graceful
//! shutdown that drains in-flight requests; [`RemotingClient`] keeps one connection per
//! address, reconnects when it dies and serves requests the server pushes.

mod client;
mod connection;
mod server;

use std::time::Duration;

use bytes::Bytes;

use crate::command::RemotingCommand;
use crate::frame::DEFAULT_MAX_FRAME_SIZE_BYTES;
use crate::{ResponseCode, error};

pub use client::RemotingClient;
pub use connection::Connection;
pub use server::{ServerHandle, serve};

/// Errors of the transport: the peer, the socket or the clock, never bad input of ours.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The connection closed (or was never opened) before the response arrived.
    #[error("connection to {peer} is closed")]
    Closed {
        /// The peer's address.
        peer: String,
    },
    /// No response within the request's timeout.
    #[error("request {code} to {peer} timed out after {timeout:?}")]
    Timeout {
        /// Request code.
        code: i32,
        /// The peer's address.
        peer: String,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// Connecting failed.
    #[error("cannot connect to {peer}: {source}")]
    Connect {
        /// The address dialled.
        peer: String,
        /// Why.
        source: std::io::Error,
    },
    /// The command could not be encoded.
    #[error("cannot encode command: {0}")]
    Encode(#[from] error::Error),
}

/// Result alias of the transport.
pub type TransportResult<T> = std::result::Result<T, TransportError>;

/// A command to write, with an optional body made of several chunks written in order
/// after `command.body`, each without a copy (zero-copy pull responses).
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// The command; its `body`, if any, is written first.
    pub command: RemotingCommand,
    /// More body bytes, written after `command.body`.
    pub body_chunks: Vec<Bytes>,
}

impl Reply {
    /// A reply whose body is `command.body` alone.
    pub fn new(command: RemotingCommand) -> Self {
        Self { command, body_chunks: Vec::new() }
    }

    /// A reply whose body is the concatenation of `chunks`.
    pub fn with_chunks(command: RemotingCommand, chunks: Vec<Bytes>) -> Self {
        Self { command, body_chunks: chunks }
    }

    /// The answer to a request code nobody serves: `REQUEST_CODE_NOT_SUPPORTED` with Java's
    /// remark.
    pub fn code_not_supported(request: &RemotingCommand) -> Self {
        Self::new(RemotingCommand::response_to(
            request,
            ResponseCode::REQUEST_CODE_NOT_SUPPORTED.code(),
            Some(format!(" request type {} not supported", request.code)),
        ))
    }

    /// `SYSTEM_BUSY` with Java's flow-control remark.
    pub fn system_busy(request: &RemotingCommand) -> Self {
        Self::new(RemotingCommand::response_to(
            request,
            ResponseCode::SYSTEM_BUSY.code(),
            Some("[OVERLOAD]system busy, start flow control for a while".to_owned()),
        ))
    }

    /// Total body length: `command.body` plus every chunk.
    pub fn body_len(&self) -> usize {
        self.command.body.len() + self.body_chunks.iter().map(Bytes::len).sum::<usize>()
    }
}

impl From<RemotingCommand> for Reply {
    fn from(command: RemotingCommand) -> Self {
        Self::new(command)
    }
}

/// What serves the requests arriving on a connection: a broker's or name server's
/// processors, or a client's handler of pushed requests.
///
/// Each request runs in its own task. Returning `None` sends nothing (a oneway request, or a
/// handler that answers later with [`Connection::send`]); a reply to a oneway request is
/// dropped. The reply's opaque must be the request's (use [`RemotingCommand::response_to`]).
pub trait Handler: Send + Sync + 'static {
    /// Serves one request.
    fn handle(
        &self,
        connection: Connection,
        request: RemotingCommand,
    ) -> impl Future<Output = Option<Reply>> + Send;

    /// Called once when a connection closes, for whatever reason (a name server drops the
    /// routes of a broker whose connection closed; a broker drops its clients).
    fn on_close(&self, _connection: &Connection) {}
}

/// A handler that answers every request with `REQUEST_CODE_NOT_SUPPORTED`: what a client
/// that serves no pushed requests uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotSupported;

impl Handler for NotSupported {
    async fn handle(&self, _connection: Connection, request: RemotingCommand) -> Option<Reply> {
        Some(Reply::code_not_supported(&request))
    }
}

/// Limits and timeouts of connections, with RocketMQ's defaults.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Largest frame accepted, length field included. Default 16 MiB.
    pub max_frame_size_bytes: usize,
    /// A connection with no read and no write for this long is closed (Java's
    /// `serverChannelMaxIdleTimeSeconds` / `clientChannelMaxIdleTimeSeconds`). Default 120 s.
    pub idle_timeout: Duration,
    /// Requests of one connection being served at once; beyond it a request is answered
    /// `SYSTEM_BUSY` (a oneway one is dropped). Default 1024.
    pub max_in_flight_per_connection: usize,
    /// Frames queued for a connection's writer before senders wait. Default 1024.
    pub write_queue_frames: usize,
    /// Connections a server keeps at once; more are accepted and closed at once. Default
    /// 10,000.
    pub max_connections: usize,
    /// How long a graceful shutdown waits for in-flight requests. Default 10 s.
    pub shutdown_drain: Duration,
    /// Timeout of a client's TCP connect. Default 3 s (Java's `connectTimeoutMillis`).
    pub connect_timeout: Duration,
    /// Threads a server runs its connections on, each a single-threaded runtime; a
    /// connection stays on one of them for its whole life, as a Netty channel stays on its
    /// event loop, so that its reader, its writer and the requests it answers at once never
    /// wait for another thread to wake up. 0 runs connections on the caller's runtime.
    /// Default: one per CPU.
    pub event_loops: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            max_frame_size_bytes: DEFAULT_MAX_FRAME_SIZE_BYTES,
            idle_timeout: Duration::from_secs(120),
            max_in_flight_per_connection: 1024,
            write_queue_frames: 1024,
            max_connections: 10_000,
            shutdown_drain: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            event_loops: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}
