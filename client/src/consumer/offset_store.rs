//! Consumer offset stores (client.md §6): the broker-backed store of clustering groups and
//! the local file of broadcasting groups. Offsets are "next offset to consume".

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferromq_remoting::bodies::{JsonBody, MessageQueue};
use ferromq_remoting::headers::{
    QueryConsumerOffsetRequestHeader, QueryConsumerOffsetResponseHeader,
    UpdateConsumerOffsetRequestHeader,
};
use ferromq_remoting::json::{self, JsonStyle, Object, Value};
use ferromq_remoting::{RequestCode, ResponseCode};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::instance::ClientInstance;
use crate::route::MASTER_ID;

/// Timeout of offset queries and sync updates (Java: 5 s).
const OFFSET_RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// Where [`OffsetStore::read`] looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadOffsetType {
    /// Memory only (−1 when absent).
    Memory,
    /// The broker or the file.
    Store,
    /// Memory, else the store.
    MemoryFirstThenStore,
}

/// Offset read results below zero.
pub(crate) const OFFSET_NOT_FOUND: i64 = -1;
/// The store could not be read.
pub(crate) const OFFSET_READ_ERROR: i64 = -2;

/// A group's offsets: remote (clustering) or a local file (broadcasting).
#[derive(Debug)]
pub(crate) struct OffsetStore {
    table: Mutex<HashMap<MessageQueue, i64>>,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Remote { instance: Arc<ClientInstance>, group: String },
    Local { path: PathBuf },
}

impl OffsetStore {
    /// The broker-backed store of a clustering group.
    pub(crate) fn remote(instance: Arc<ClientInstance>, group: &str) -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
            backend: Backend::Remote { instance, group: group.to_owned() },
        }
    }

    /// The local store of a broadcasting group: `<dir>/<client id>/<group>/offsets.json`,
    /// loaded now (falling back to `offsets.json.bak`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when neither file parses.
    pub(crate) fn local(dir: &Path, client_id: &str, group: &str) -> Result<Self> {
        let path = dir.join(client_id).join(group).join("offsets.json");
        let table = load_offsets_file(&path)?;
        Ok(Self { table: Mutex::new(table), backend: Backend::Local { path } })
    }

    /// Sets `queue`'s offset in memory; with `increase_only` it never goes down.
    pub(crate) fn update(&self, queue: &MessageQueue, offset: i64, increase_only: bool) {
        let mut table = self.table.lock();
        match table.get_mut(queue) {
            Some(current) if increase_only => *current = (*current).max(offset),
            Some(current) => *current = offset,
            None => {
                table.insert(queue.clone(), offset);
            }
        }
    }

    /// The in-memory offset of `queue`.
    pub(crate) fn memory(&self, queue: &MessageQueue) -> Option<i64> {
        self.table.lock().get(queue).copied()
    }

    /// Forgets `queue`'s in-memory offset.
    pub(crate) fn remove(&self, queue: &MessageQueue) {
        self.table.lock().remove(queue);
    }

    /// Reads `queue`'s offset: ≥ 0 found, [`OFFSET_NOT_FOUND`], or [`OFFSET_READ_ERROR`].
    pub(crate) async fn read(&self, queue: &MessageQueue, how: ReadOffsetType) -> i64 {
        if how != ReadOffsetType::Store {
            if let Some(offset) = self.memory(queue) {
                return offset;
            }
            if how == ReadOffsetType::Memory {
                return OFFSET_NOT_FOUND;
            }
        }
        match &self.backend {
            Backend::Remote { instance, group } => {
                match query_offset(instance, group, queue).await {
                    Ok(Some(offset)) => {
                        self.update(queue, offset, false);
                        offset
                    }
                    Ok(None) => OFFSET_NOT_FOUND,
                    Err(error) => {
                        tracing::debug!(?queue, %error, "offset query failed");
                        OFFSET_READ_ERROR
                    }
                }
            }
            Backend::Local { path } => match load_offsets_file(path) {
                Ok(table) => match table.get(queue) {
                    Some(offset) => {
                        self.update(queue, *offset, false);
                        *offset
                    }
                    None => OFFSET_NOT_FOUND,
                },
                Err(error) => {
                    tracing::warn!(%error, "cannot read the local offset file");
                    OFFSET_READ_ERROR
                }
            },
        }
    }

    /// Commits the offsets of `queues` (UPDATE_CONSUMER_OFFSET oneway, or the file) and
    /// forgets in-memory entries of other queues. Errors are logged.
    pub(crate) async fn persist_all(&self, queues: &BTreeSet<MessageQueue>) {
        let entries: Vec<(MessageQueue, i64)> = {
            let mut table = self.table.lock();
            if matches!(self.backend, Backend::Remote { .. }) {
                table.retain(|queue, _| queues.contains(queue));
            }
            table
                .iter()
                .filter(|(queue, _)| queues.contains(*queue))
                .map(|(q, o)| (q.clone(), *o))
                .collect()
        };
        if entries.is_empty() {
            return;
        }
        match &self.backend {
            Backend::Remote { instance, group } => {
                for (queue, offset) in entries {
                    if let Err(error) = update_offset(instance, group, &queue, offset, true).await {
                        tracing::debug!(?queue, %error, "offset commit failed");
                    }
                }
            }
            Backend::Local { path } => {
                if let Err(error) = write_offsets_file(path, &entries) {
                    tracing::warn!(%error, "cannot write the local offset file");
                }
            }
        }
    }

    /// Commits one queue's in-memory offset (oneway for the remote store).
    pub(crate) async fn persist(&self, queue: &MessageQueue) {
        let Some(offset) = self.memory(queue) else { return };
        match &self.backend {
            Backend::Remote { instance, group } => {
                if let Err(error) = update_offset(instance, group, queue, offset, true).await {
                    tracing::debug!(?queue, %error, "offset commit failed");
                }
            }
            Backend::Local { path } => {
                if let Err(error) = write_offsets_file(path, &[(queue.clone(), offset)]) {
                    tracing::warn!(%error, "cannot write the local offset file");
                }
            }
        }
    }
}

/// QUERY_CONSUMER_OFFSET to the queue's master: `Some(offset)`, `None` when the broker has
/// none (QUERY_NOT_FOUND).
pub(crate) async fn query_offset(
    instance: &ClientInstance,
    group: &str,
    queue: &MessageQueue,
) -> Result<Option<i64>> {
    let addr = offset_broker_addr(instance, queue).await?;
    let header = QueryConsumerOffsetRequestHeader {
        consumer_group: group.to_owned(),
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        set_zero_if_not_found: None,
        broker_name: Some(queue.broker_name.clone()),
    };
    let request = instance.request(RequestCode::QUERY_CONSUMER_OFFSET).with_header(&header);
    let response = instance.invoke(&addr, request, OFFSET_RPC_TIMEOUT).await?;
    match ResponseCode(response.code) {
        ResponseCode::SUCCESS => response
            .decode_header::<QueryConsumerOffsetResponseHeader>()
            .map(|header| Some(header.offset))
            .map_err(|error| Error::decode("QueryConsumerOffsetResponseHeader", error)),
        ResponseCode::QUERY_NOT_FOUND => Ok(None),
        _ => Err(Error::broker(&addr, response.code, response.remark)),
    }
}

/// UPDATE_CONSUMER_OFFSET to the queue's master, oneway or checked.
pub(crate) async fn update_offset(
    instance: &ClientInstance,
    group: &str,
    queue: &MessageQueue,
    offset: i64,
    oneway: bool,
) -> Result<()> {
    let addr = offset_broker_addr(instance, queue).await?;
    let header = UpdateConsumerOffsetRequestHeader {
        consumer_group: group.to_owned(),
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        commit_offset: offset,
        broker_name: Some(queue.broker_name.clone()),
    };
    let request = instance.request(RequestCode::UPDATE_CONSUMER_OFFSET).with_header(&header);
    if oneway {
        instance.invoke_oneway(&addr, request).await
    } else {
        instance.invoke_ok(&addr, request, OFFSET_RPC_TIMEOUT).await.map(drop)
    }
}

/// The master of the queue's broker; after a route refresh, any member.
async fn offset_broker_addr(instance: &ClientInstance, queue: &MessageQueue) -> Result<String> {
    if let Some((addr, _)) = instance.subscribe_addr(&queue.broker_name, MASTER_ID, true) {
        return Ok(addr);
    }
    instance
        .master_addr_or_refresh(&queue.broker_name, &queue.topic)
        .await
        .ok_or_else(|| Error::BrokerNotFound { broker_name: queue.broker_name.clone() })
}

// ----- the local file -----

fn bak_path(path: &Path) -> PathBuf {
    path.with_extension("json.bak")
}

fn tmp_path(path: &Path) -> PathBuf {
    path.with_extension("json.tmp")
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io { path: path.to_owned(), source }
}

/// Reads `offsets.json`, else `offsets.json.bak`; both missing or empty is an empty table.
fn load_offsets_file(path: &Path) -> Result<HashMap<MessageQueue, i64>> {
    match read_offsets(path) {
        Ok(Some(table)) => return Ok(table),
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "offsets.json unreadable; trying the backup"),
    }
    let bak = bak_path(path);
    match read_offsets(&bak) {
        Ok(table) => Ok(table.unwrap_or_default()),
        Err(error) => Err(error),
    }
}

/// `None` for a missing or empty file.
fn read_offsets(path: &Path) -> Result<Option<HashMap<MessageQueue, i64>>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(path, error)),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let bad = |reason: String| {
        io_error(path, std::io::Error::new(std::io::ErrorKind::InvalidData, reason))
    };
    let value = json::parse(&bytes).map_err(|error| bad(error.to_string()))?;
    let table = value
        .as_object()
        .and_then(|object| object.get("offsetTable"))
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no offsetTable object".to_owned()))?;
    let mut offsets = HashMap::new();
    for (key, offset) in table.iter() {
        let queue = MessageQueue::from_json(key).map_err(|error| bad(error.to_string()))?;
        let offset = offset.to_i64_lenient().ok_or_else(|| bad("offset is not a number".into()))?;
        offsets.insert(queue, offset);
    }
    Ok(Some(offsets))
}

/// Merges `entries` into the file and replaces it safely: write `.tmp`, copy the old file to
/// `.bak`, rename `.tmp` over it (client.md §6.2).
fn write_offsets_file(path: &Path, entries: &[(MessageQueue, i64)]) -> Result<()> {
    let mut table: BTreeMap<MessageQueue, i64> =
        read_offsets(path).ok().flatten().unwrap_or_default().into_iter().collect();
    for (queue, offset) in entries {
        table.insert(queue.clone(), *offset);
    }
    let mut offsets = Object::new();
    for (queue, offset) in &table {
        offsets.insert_key(queue.to_json(), Value::int(*offset));
    }
    let mut root = Object::new();
    root.insert("offsetTable", Value::Object(offsets));
    let text = json::to_vec(&Value::Object(root), JsonStyle::Fastjson);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|error| io_error(dir, error))?;
    }
    let tmp = tmp_path(path);
    std::fs::write(&tmp, &text).map_err(|error| io_error(&tmp, error))?;
    if path.exists() {
        let bak = bak_path(path);
        std::fs::copy(path, &bak).map_err(|error| io_error(&bak, error))?;
    }
    std::fs::rename(&tmp, path).map_err(|error| io_error(path, error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::queue;

    #[test]
    fn local_file_round_trip_with_object_keys_and_backup() {
        let dir = tempfile::tempdir().unwrap();
        let store = OffsetStore::local(dir.path(), "ip@DEFAULT", "G").unwrap();
        let (q0, q1) = (queue("T", "b", 0), queue("T", "b", 1));
        store.update(&q0, 5, true);
        store.update(&q0, 3, true);
        assert_eq!(store.memory(&q0), Some(5), "increase-only never lowers");
        store.update(&q1, 9, false);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(store.persist_all(&[q0.clone(), q1.clone()].into()));
        let path = dir.path().join("ip@DEFAULT/G/offsets.json");
        let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:5,{"brokerName":"b","queueId":1,"topic":"T"}:9}}"#
        );
        store.update(&q0, 6, false);
        runtime.block_on(store.persist(&q0));
        assert!(path.with_extension("json.bak").exists());
        // A new store reads the file; a corrupt main file falls back to the backup.
        let again = OffsetStore::local(dir.path(), "ip@DEFAULT", "G").unwrap();
        assert_eq!(runtime.block_on(again.read(&q0, ReadOffsetType::Store)), 6);
        std::fs::write(&path, b"{garbage").unwrap();
        let from_bak = OffsetStore::local(dir.path(), "ip@DEFAULT", "G").unwrap();
        assert_eq!(from_bak.memory(&q1), Some(9));
        assert_eq!(
            runtime.block_on(from_bak.read(&queue("T", "b", 7), ReadOffsetType::Memory)),
            -1
        );
    }
}
