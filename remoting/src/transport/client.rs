//! A client: one connection per address, reused and re-dialled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::TcpStream;

use super::{Connection, Handler, NotSupported, TransportConfig, TransportError, TransportResult};
use crate::command::RemotingCommand;

/// Connections to brokers and name servers, keyed by `host:port`.
///
/// A connection is opened on first use and reused while it lives; a closed one is replaced
/// on the next call. Requests the server pushes on any of them (`NOTIFY_CONSUMER_IDS_CHANGED`,
/// `CHECK_TRANSACTION_STATE`) go to the handler.
pub struct RemotingClient<H: Handler = NotSupported> {
    handler: Arc<H>,
    config: TransportConfig,
    connections: Mutex<HashMap<String, Connection>>,
    /// Serialises dialling so concurrent first calls to one address share a connection.
    dialling: tokio::sync::Mutex<()>,
}

impl<H: Handler> std::fmt::Debug for RemotingClient<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotingClient")
            .field("connections", &self.connections.lock().len())
            .finish_non_exhaustive()
    }
}

impl Default for RemotingClient<NotSupported> {
    fn default() -> Self {
        Self::new(NotSupported, TransportConfig::default())
    }
}

impl<H: Handler> RemotingClient<H> {
    /// A client whose connections serve pushed requests with `handler`.
    pub fn new(handler: H, config: TransportConfig) -> Self {
        Self {
            handler: Arc::new(handler),
            config,
            connections: Mutex::new(HashMap::new()),
            dialling: tokio::sync::Mutex::new(()),
        }
    }

    /// The live connection to `addr`, dialling one if there is none.
    ///
    /// # Errors
    ///
    /// [`TransportError::Connect`] when dialling fails or takes longer than
    /// `connect_timeout`.
    pub async fn connection(&self, addr: &str) -> TransportResult<Connection> {
        if let Some(connection) = self.live(addr) {
            return Ok(connection);
        }
        let _dialling = self.dialling.lock().await;
        if let Some(connection) = self.live(addr) {
            return Ok(connection);
        }
        let connect_error = |source| TransportError::Connect { peer: addr.to_owned(), source };
        let stream = tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_error(std::io::ErrorKind::TimedOut.into()))?
            .map_err(connect_error)?;
        let (connection, _task) =
            Connection::spawn(stream, self.handler.clone(), self.config.clone(), None)
                .map_err(connect_error)?;
        self.connections.lock().insert(addr.to_owned(), connection.clone());
        Ok(connection)
    }

    fn live(&self, addr: &str) -> Option<Connection> {
        let mut connections = self.connections.lock();
        match connections.get(addr) {
            Some(connection) if !connection.is_closed() => Some(connection.clone()),
            Some(_) => {
                connections.remove(addr);
                None
            }
            None => None,
        }
    }

    /// Sends `request` to `addr` and waits up to `timeout` for the response.
    ///
    /// # Errors
    ///
    /// [`TransportError::Connect`], [`TransportError::Closed`] or
    /// [`TransportError::Timeout`].
    pub async fn invoke(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> TransportResult<RemotingCommand> {
        let started = tokio::time::Instant::now();
        let connection = self.connection(addr).await?;
        let left = timeout.saturating_sub(started.elapsed());
        connection.request(request, left).await
    }

    /// Sends `request` to `addr` as oneway.
    ///
    /// # Errors
    ///
    /// [`TransportError::Connect`] or [`TransportError::Closed`].
    pub async fn invoke_oneway(&self, addr: &str, request: RemotingCommand) -> TransportResult<()> {
        self.connection(addr).await?.send_oneway(request).await
    }

    /// Sends `request` and calls `callback` with the outcome from a spawned task (Java's
    /// `invokeAsync`).
    pub fn invoke_with_callback(
        self: &Arc<Self>,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
        callback: impl FnOnce(TransportResult<RemotingCommand>) + Send + 'static,
    ) {
        let client = self.clone();
        let addr = addr.to_owned();
        tokio::spawn(async move { callback(client.invoke(&addr, request, timeout).await) });
    }

    /// Closes the connection to `addr`, if any.
    pub fn close(&self, addr: &str) {
        if let Some(connection) = self.connections.lock().remove(addr) {
            connection.close();
        }
    }

    /// Closes every connection.
    pub fn close_all(&self) {
        for (_, connection) in self.connections.lock().drain() {
            connection.close();
        }
    }
}
