//! `MessageStore`: the public face of the engine — open (with recovery), put, get, lookups,
//! flush and close — and the writer that keeps the CommitLog and ConsumeQueues in step.
//!
//! Put path: the record is encoded and its CRC computed on the caller's thread, outside any
//! lock, into a thread-local buffer. Under the writer lock the store assigns the queue
//! offset, physical offset and store timestamp (patched into the encoded bytes), copies the
//! record into the mapped segment, writes the ConsumeQueue unit and publishes the new end.
//! After the lock: a sync-flush put waits for a flush covering it (group commit), the index
//! builder is woken, and the arrival listener is told the queue grew.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ferromq_message::properties::{
    NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR, find_property, iter_properties, parse_properties,
};
use ferromq_message::record::crc_property::{CRC_PROPERTY_LEN, fill_record_crc};
use ferromq_message::record::{self, MessageVersion, RecordRef};
use ferromq_message::{batch, hash, msg_id, property, sysflag};
use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};

use crate::checkpoint::Checkpoint;
use crate::commit_log::{Appender, CommitLog};
use crate::config::{FlushMode, RecoveryMode, StoreConfig};
use crate::consume_queue::{ConsumeQueue, CqUnit, UnitCursor, WarmRequest, WarmSender};
use crate::dispatch::{Shutdown, Waker};
use crate::error::{Error, Result};
use crate::index_file::IndexService;
use crate::io::{DirLock, FsStorage, Storage};

/// The topic delayed messages wait in, one queue per level.
pub(crate) const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// Bytes a record may exceed `max_message_size` by (RocketMQ reserves 64 KiB for headers).
const RECORD_OVERHEAD_MAX: usize = 64 * 1024;
/// Largest properties field (a signed i16 length).
const PROPERTIES_MAX: usize = i16::MAX as usize;
/// How far the index thread may lag behind the CommitLog before a put wakes it.
const INDEX_WAKE_LAG_BYTES: u64 = 256 * 1024;
/// ConsumeQueue warm requests that may wait for the warm thread; more are dropped.
const QUEUE_WARM_REQUESTS_MAX: usize = 1024;
/// Upper bound of one pull's bytes (RocketMQ's 128 MiB `maxPullSize`).
const PULL_BYTES_MAX: u64 = 128 << 20;

thread_local! {
    /// Per-thread encoding buffer, so a put allocates nothing in steady state.
    static ENCODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Per-thread buffer for the properties as stored (record-CRC reservation appended).
    static PROPERTIES_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A message to store: what a producer sent, before the store assigns offsets and time.
#[derive(Debug, Clone, Copy)]
pub struct PutMessage<'a> {
    /// Topic; at most 127 bytes (255 for `%RETRY%`/`%DLQ%` topics).
    pub topic: &'a str,
    /// Queue id within the topic.
    pub queue_id: i32,
    /// The producer's opaque flag.
    pub flag: i32,
    /// Message body, at most `max_message_size` bytes.
    pub body: &'a [u8],
    /// Encoded properties (`name 0x01 value 0x02`…), at most 32,767 bytes.
    pub properties: &'a [u8],
    /// Message sysflag (compression, transaction type; host bits are set by the store).
    pub sysflag: i32,
    /// Producer timestamp, ms since the epoch.
    pub born_timestamp: i64,
    /// Producer address.
    pub born_host: SocketAddr,
    /// Times this message was consumed and sent back.
    pub reconsume_times: i32,
    /// For transaction records, the offset of the prepared record.
    pub prepared_transaction_offset: i64,
}

impl<'a> PutMessage<'a> {
    /// A plain message with no properties, born now on 127.0.0.1:0.
    pub fn new(topic: &'a str, queue_id: i32, body: &'a [u8]) -> Self {
        PutMessage {
            topic,
            queue_id,
            flag: 0,
            body,
            properties: b"",
            sysflag: 0,
            born_timestamp: now_ms(),
            born_host: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
        }
    }
}

/// RocketMQ's `PutMessageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutStatus {
    /// Stored (and flushed, under sync flush).
    PutOk,
    /// Stored, but the sync flush did not finish within `sync_flush_timeout_ms`.
    FlushDiskTimeout,
    /// Rejected: empty or oversize body, oversize record, or a bad topic.
    MessageIllegal,
    /// Rejected: properties longer than 32,767 bytes.
    PropertiesSizeExceeded,
    /// Rejected: the disk is fuller than `disk_space_warning_level_ratio`.
    ServiceNotAvailable,
}

impl PutStatus {
    /// Whether the message was stored.
    pub fn is_ok(self) -> bool {
        matches!(self, PutStatus::PutOk | PutStatus::FlushDiskTimeout)
    }
}

/// What a put did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// Outcome; the fields below are meaningful when `status.is_ok()`.
    pub status: PutStatus,
    /// Physical offset of the (first) record.
    pub phy_offset: i64,
    /// Bytes appended (all records of a batch).
    pub wrote_bytes: i32,
    /// Queue offset of the (first) message.
    pub queue_offset: i64,
    /// Messages stored (1, or the batch size).
    pub message_count: i32,
    /// Store timestamp of the record(s), ms since the epoch.
    pub store_timestamp: i64,
    /// The store host written into the record(s).
    pub store_host: SocketAddr,
    /// Physical offsets of every record of a batch (empty for a single put).
    pub batch_phy_offsets: Vec<i64>,
}

impl PutResult {
    fn rejected(status: PutStatus, store_host: SocketAddr) -> Self {
        PutResult {
            status,
            phy_offset: -1,
            wrote_bytes: 0,
            queue_offset: -1,
            message_count: 0,
            store_timestamp: 0,
            store_host,
            batch_phy_offsets: Vec::new(),
        }
    }

    /// The offset message id (store host + physical offset, upper-case hex); for a batch,
    /// the ids of every message joined by `,` as RocketMQ answers.
    pub fn msg_id(&self) -> String {
        if self.batch_phy_offsets.is_empty() {
            return msg_id::encode_offset_msg_id(self.store_host, self.phy_offset);
        }
        let ids: Vec<String> = self
            .batch_phy_offsets
            .iter()
            .map(|&offset| msg_id::encode_offset_msg_id(self.store_host, offset))
            .collect();
        ids.join(",")
    }
}

/// RocketMQ's `GetMessageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetStatus {
    /// At least one message is returned.
    Found,
    /// Units were scanned but none passed the filter.
    NoMatchedMessage,
    /// The first unit's record is no longer in the CommitLog.
    MessageWasRemoving,
    /// The topic or queue does not exist.
    NoMatchedLogicQueue,
    /// The queue exists but holds nothing.
    NoMessageInQueue,
    /// The offset is below the queue's minimum.
    OffsetTooSmall,
    /// The offset equals the queue's maximum: nothing new yet.
    OffsetOverflowOne,
    /// The offset is beyond the queue's maximum.
    OffsetOverflowBadly,
}

/// What a get returned.
#[derive(Debug, Clone)]
pub struct GetResult {
    /// Outcome.
    pub status: GetStatus,
    /// Raw stored records, each a zero-copy view of its segment.
    pub messages: Vec<Bytes>,
    /// Where the next pull should start.
    pub next_begin_offset: i64,
    /// The queue's minimum offset.
    pub min_offset: i64,
    /// The queue's maximum offset (next to be written).
    pub max_offset: i64,
    /// Whether the data read is old enough to have left memory (pull from a slave).
    pub suggest_pulling_from_slave: bool,
}

impl GetResult {
    fn status_only(status: GetStatus, next: i64, min: i64, max: i64) -> Self {
        GetResult {
            status,
            messages: Vec::new(),
            next_begin_offset: next,
            min_offset: min,
            max_offset: max,
            suggest_pulling_from_slave: false,
        }
    }
}

/// Messages found by key.
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    /// Raw records whose key hash matched (callers compare the actual key).
    pub messages: Vec<Bytes>,
    /// End time of the newest IndexFile.
    pub index_last_update_timestamp: i64,
    /// Physical offset of the newest indexed record.
    pub index_last_update_phy_offset: i64,
}

/// A queue grew: what the arrival listener is told (storage.md §12.1).
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// Topic of the new message(s).
    pub topic: &'a str,
    /// Queue id.
    pub queue_id: i32,
    /// The queue's new maximum offset (next to be written).
    pub max_offset: i64,
    /// Tags code of the last new message.
    pub tags_code: i64,
    /// Store timestamp of the last new message.
    pub store_timestamp: i64,
}

type Listener = Arc<dyn Fn(&Arrival<'_>) + Send + Sync>;

/// The embeddable message store. Cheap to share: every method takes `&self`.
pub struct MessageStore {
    pub(crate) inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for MessageStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageStore")
            .field("root", &self.inner.config.store_path_root_dir)
            .finish()
    }
}

/// State shared with the background threads.
pub(crate) struct Inner {
    pub config: StoreConfig,
    pub storage: Arc<dyn Storage>,
    pub commit_log: CommitLog,
    pub queues: RwLock<HashMap<String, HashMap<i32, Arc<ConsumeQueue>>>>,
    pub writer: Mutex<Writer>,
    pub flush_lock: Mutex<()>,
    /// Group commit: whether a put thread is flushing for everybody, and where the waiting
    /// puts sleep until it is done.
    group_commit: Mutex<bool>,
    group_commit_done: Condvar,
    pub checkpoint: Checkpoint,
    pub index: IndexService,
    pub index_waker: Waker,
    /// ConsumeQueue ranges for the warm thread to fault in (only when it runs).
    pub queue_warm: Option<(WarmSender, crossbeam_channel::Receiver<WarmRequest>)>,
    /// Physical offset from which the index thread reads next.
    pub index_reput: AtomicU64,
    pub shutdown: Shutdown,
    pub poison: OnceLock<String>,
    pub disk_full: AtomicBool,
    pub closed: AtomicBool,
    listener: RwLock<Option<Listener>>,
    pub delay_levels_ms: Vec<u64>,
    pub memory_bytes: u64,
    pub recovery_mode: RecoveryMode,
    _dir_lock: DirLock,
}

/// Writer-only state, behind `Inner::writer`.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub appender: Appender,
    /// Per (topic, queue id): the queue, its next offset and the file units go to.
    pub queues: WriteQueues,
    /// On a slave: the end of the replicated records already dispatched.
    pub replica_dispatched: u64,
}

/// The writer's state of every queue, by topic and queue id. Hashed with foldhash (seeded
/// per process, so topic names cannot be chosen to collide): SipHash was 5% of a put.
pub(crate) type WriteQueues = HashMap<String, HashMap<i32, WriteQueue, FastHash>, FastHash>;
type FastHash = foldhash::fast::RandomState;

/// The writer's state of one queue.
#[derive(Debug)]
pub(crate) struct WriteQueue {
    pub cq: Arc<ConsumeQueue>,
    /// The queue offset the next dispatched record gets.
    pub next_offset: i64,
    pub cursor: UnitCursor,
}

impl WriteQueue {
    fn new(cq: Arc<ConsumeQueue>, next_offset: i64, warm: Option<WarmSender>) -> WriteQueue {
        let cursor = UnitCursor::new(warm.map(|warm| (warm, Arc::downgrade(&cq))));
        WriteQueue { cq, next_offset, cursor }
    }
}

/// One encoded record waiting in the put buffer.
#[derive(Debug, Clone, Copy)]
struct Pending {
    start: usize,
    len: usize,
    sysflag: i32,
    tags_code: i64,
    delay_level: u32,
    /// `WAIT` absent or `true`: a sync-flush put waits for the flush.
    wait: bool,
    /// The properties end with 20 bytes reserved for the record CRC.
    with_crc: bool,
}

impl MessageStore {
    /// Opens (creating if needed) the store at `config.store_path_root_dir`, recovering it as
    /// RocketMQ does (storage.md §13), and starts its flush, index and expiry threads.
    ///
    /// # Errors
    /// `InvalidConfig`; `Locked` if another store has the directory open; `Corrupt` for
    /// files that cannot be read as their format; I/O errors.
    pub fn open(config: StoreConfig) -> Result<Self> {
        Self::open_with_storage(config, Arc::new(FsStorage))
    }

    /// Opens the store on the in-memory simulated disk of `crate::sim` (crash testing).
    ///
    /// # Errors
    /// As [`MessageStore::open`].
    #[cfg(any(test, feature = "internals"))]
    #[doc(hidden)]
    pub fn open_simulated(
        config: StoreConfig,
        storage: Arc<crate::sim::SimStorage>,
    ) -> Result<Self> {
        Self::open_with_storage(config, storage)
    }

    pub(crate) fn open_with_storage(
        config: StoreConfig,
        storage: Arc<dyn Storage>,
    ) -> Result<Self> {
        config.validate()?;
        let inner = Arc::new(crate::recovery::open(config, storage)?);
        Self::start(inner)
    }

    /// Starts the background threads of a recovered store.
    fn start(inner: Arc<Inner>) -> Result<Self> {
        let store = MessageStore { inner: inner.clone(), threads: Mutex::new(Vec::new()) };
        let mut threads = store.threads.lock();
        threads.push(spawn("ferromq-flush", inner.clone(), crate::dispatch::run_flush)?);
        let index_thread = spawn("ferromq-index", inner.clone(), crate::dispatch::run_index)?;
        inner.index_waker.register(index_thread.thread().clone());
        threads.push(index_thread);
        threads.push(spawn("ferromq-expiry", inner.clone(), crate::expiry::run)?);
        if inner.commit_log.prefault_enabled() {
            threads.push(spawn("ferromq-warm", inner.clone(), crate::dispatch::run_warm)?);
        }
        drop(threads);
        Ok(store)
    }

    /// Opens the store as [`MessageStore::open`] does, then — before any reader or
    /// background thread exists — cuts the CommitLog at the last record boundary at or below
    /// `phy_offset`, and the ConsumeQueues and IndexFiles with it: what a slave does with the
    /// tail its new master does not have (after a master change). A cut inside the BLANK
    /// that closes a segment keeps the BLANK.
    ///
    /// Crash safety: later segments are unlinked (directory synced), then the cut segment's
    /// tail is zeroed and synced, then queues, index and checkpoint are cut and flushed. A
    /// crash part-way leaves a valid prefix of the old CommitLog that still reaches
    /// `phy_offset`, so calling this again finishes the job.
    ///
    /// # Errors
    /// As [`MessageStore::open`].
    pub fn open_truncated(config: StoreConfig, phy_offset: i64) -> Result<Self> {
        Self::open_truncated_with_storage(config, Arc::new(FsStorage), phy_offset)
    }

    /// [`MessageStore::open_truncated`] on the simulated disk of `crate::sim`.
    ///
    /// # Errors
    /// As [`MessageStore::open`].
    #[cfg(any(test, feature = "internals"))]
    #[doc(hidden)]
    pub fn open_truncated_simulated(
        config: StoreConfig,
        storage: Arc<crate::sim::SimStorage>,
        phy_offset: i64,
    ) -> Result<Self> {
        Self::open_truncated_with_storage(config, storage, phy_offset)
    }

    fn open_truncated_with_storage(
        config: StoreConfig,
        storage: Arc<dyn Storage>,
        phy_offset: i64,
    ) -> Result<Self> {
        config.validate()?;
        let inner = crate::recovery::open(config, storage)?;
        inner.cut_replica_tail(u64::try_from(phy_offset).unwrap_or(0))?;
        Self::start(Arc::new(inner))
    }

    /// Which recovery `open` ran.
    pub fn recovery_mode(&self) -> RecoveryMode {
        self.inner.recovery_mode
    }

    /// Sets the function told about every put (after it is visible to readers), e.g. to wake
    /// long-polling pulls. It runs on the putting thread: keep it short.
    pub fn set_arrival_listener(&self, listener: impl Fn(&Arrival<'_>) + Send + Sync + 'static) {
        *self.inner.listener.write() = Some(Arc::new(listener));
    }

    /// Stores one message.
    ///
    /// # Errors
    /// `Poisoned` after a failed flush, `Closed`, `DiskFull` when a segment cannot be
    /// allocated, I/O errors. Messages that break size or name limits are not errors: they
    /// return a `PutResult` whose status says why.
    pub fn put(&self, message: &PutMessage<'_>) -> Result<PutResult> {
        let inner = &*self.inner;
        inner.check_writable()?;
        if let Some(status) = inner.check_message(message.topic, message.body.len()) {
            return Ok(PutResult::rejected(status, inner.config.store_host));
        }
        if !crate::commit_log::is_well_formed_properties(message.properties) {
            return Ok(PutResult::rejected(PutStatus::MessageIllegal, inner.config.store_host));
        }
        if message.properties.len() > PROPERTIES_MAX {
            return Ok(PutResult::rejected(
                PutStatus::PropertiesSizeExceeded,
                inner.config.store_host,
            ));
        }
        let picked = PutProperties::scan(message.properties);
        let delay_level = picked.delay_level(message.sysflag, inner.max_delay_level());
        if delay_level > 0 {
            return self.put_delayed(message, delay_level);
        }
        ENCODE_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.clear();
            let pending = match inner.encode(
                message,
                message.topic,
                message.queue_id,
                message.properties,
                &picked,
                &mut buf,
            ) {
                Ok(pending) => pending,
                Err(status) => return Ok(PutResult::rejected(status, inner.config.store_host)),
            };
            inner.append(message.topic, message.queue_id, &mut buf, &[pending], false)
        })
    }

    /// A message with a delay level goes to the schedule topic, queue `level - 1`, with its
    /// real topic and queue saved in `REAL_TOPIC` / `REAL_QID` (storage.md §7.1).
    fn put_delayed(&self, message: &PutMessage<'_>, level: u32) -> Result<PutResult> {
        let inner = &*self.inner;
        let mut properties = parse_properties(message.properties);
        properties.insert(property::REAL_TOPIC.to_owned(), message.topic.to_owned());
        properties.insert(property::REAL_QID.to_owned(), message.queue_id.to_string());
        properties.insert(property::DELAY.to_owned(), level.to_string());
        let encoded = ferromq_message::properties::encode_properties(&properties);
        if encoded.len() > PROPERTIES_MAX {
            return Ok(PutResult::rejected(
                PutStatus::PropertiesSizeExceeded,
                inner.config.store_host,
            ));
        }
        let queue_id = level as i32 - 1;
        let mut buf = Vec::new();
        let picked = PutProperties::scan(&encoded);
        let mut pending =
            match inner.encode(message, SCHEDULE_TOPIC, queue_id, &encoded, &picked, &mut buf) {
                Ok(pending) => pending,
                Err(status) => return Ok(PutResult::rejected(status, inner.config.store_host)),
            };
        pending.delay_level = level;
        inner.append(SCHEDULE_TOPIC, queue_id, &mut buf, &[pending], false)
    }

    /// Stores a client batch (the body of `SEND_BATCH_MESSAGE`, storage.md §3.5) into one
    /// queue under one lock acquisition, with consecutive queue offsets. `template` gives
    /// the topic, queue, sysflag, born time and host and reconsume times; its body and
    /// properties are ignored.
    ///
    /// # Errors
    /// As [`MessageStore::put`]; a malformed batch body returns `MessageIllegal`.
    pub fn put_batch(&self, template: &PutMessage<'_>, batch_body: &[u8]) -> Result<PutResult> {
        let inner = &*self.inner;
        inner.check_writable()?;
        let host = inner.config.store_host;
        let tx_type = sysflag::transaction_type(template.sysflag);
        if tx_type != sysflag::TRANSACTION_NOT_TYPE {
            return Ok(PutResult::rejected(PutStatus::MessageIllegal, host));
        }
        if let Some(status) = inner.check_message(template.topic, 0) {
            return Ok(PutResult::rejected(status, host));
        }
        let Ok(items) = batch::decode_batch(batch_body) else {
            return Ok(PutResult::rejected(PutStatus::MessageIllegal, host));
        };
        if items.is_empty() {
            return Ok(PutResult::rejected(PutStatus::MessageIllegal, host));
        }
        ENCODE_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.clear();
            let mut pendings = Vec::with_capacity(items.len());
            for item in &items {
                if let Some(status) = inner.check_message(template.topic, item.body.len()) {
                    return Ok(PutResult::rejected(status, host));
                }
                let picked = PutProperties::scan(item.properties);
                if !crate::commit_log::is_well_formed_properties(item.properties)
                    || picked.delay_level(template.sysflag, inner.max_delay_level()) > 0
                {
                    return Ok(PutResult::rejected(PutStatus::MessageIllegal, host));
                }
                let message = PutMessage {
                    flag: item.flag,
                    body: item.body,
                    properties: item.properties,
                    ..*template
                };
                match inner.encode(
                    &message,
                    template.topic,
                    template.queue_id,
                    item.properties,
                    &picked,
                    &mut buf,
                ) {
                    Ok(pending) => pendings.push(pending),
                    Err(status) => return Ok(PutResult::rejected(status, host)),
                }
            }
            if buf.len() + record::BLANK_RECORD_SIZE > inner.commit_log.file_size() as usize {
                return Ok(PutResult::rejected(PutStatus::MessageIllegal, host));
            }
            inner.append(template.topic, template.queue_id, &mut buf, &pendings, true)
        })
    }

    /// Up to `max_count` messages of `topic`/`queue_id` from queue offset `offset` whose tags
    /// code passes `filter`, within the byte budgets of storage.md §16.
    ///
    /// Every record returned has been checked as recovery checks it, CRC included. A damaged
    /// record ends the answer before it; when it is the first one, the get fails instead.
    ///
    /// # Errors
    /// `Corrupt` naming the CommitLog file, the offset, the queue offset and what is wrong
    /// when the first record to return is damaged (a pull from the next offset goes on);
    /// I/O errors reading the ConsumeQueue.
    pub fn get(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_count: u32,
        filter: &dyn Fn(i64) -> bool,
    ) -> Result<GetResult> {
        self.inner.get(topic, queue_id, offset, max_count, PULL_BYTES_MAX, filter)
    }

    /// As [`MessageStore::get`] with an explicit byte budget.
    ///
    /// # Errors
    /// As [`MessageStore::get`].
    pub fn get_with_max_bytes(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_count: u32,
        max_bytes: u64,
        filter: &dyn Fn(i64) -> bool,
    ) -> Result<GetResult> {
        self.inner.get(topic, queue_id, offset, max_count, max_bytes.min(PULL_BYTES_MAX), filter)
    }

    /// The record at physical offset `phy_offset`, if stored there, checked (CRC included).
    ///
    /// # Errors
    /// `Corrupt` naming the file and offset when a record starts there but is damaged; I/O
    /// errors.
    pub fn message_by_phy_offset(&self, phy_offset: i64) -> Result<Option<Bytes>> {
        let Ok(offset) = u64::try_from(phy_offset) else {
            return Ok(None);
        };
        if offset >= self.inner.readable_end() {
            return Ok(None);
        }
        self.inner.commit_log.checked_record_at(offset)
    }

    /// The record named by an offset message id (32 or 56 hex digits).
    ///
    /// # Errors
    /// `InvalidArgument` for a malformed id; I/O errors.
    pub fn message_by_msg_id(&self, id: &str) -> Result<Option<Bytes>> {
        let (_host, offset) = msg_id::decode_offset_msg_id(id)
            .map_err(|e| Error::InvalidArgument(format!("message id {id:?}: {e}")))?;
        self.message_by_phy_offset(offset)
    }

    /// Messages of `topic` whose `KEYS` or `UNIQ_KEY` hash as `key` does, stored within
    /// `[begin_timestamp, end_timestamp]`, at most `max_count` (capped by
    /// `max_msgs_num_batch`).
    ///
    /// # Errors
    /// I/O errors.
    pub fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max_count: usize,
        begin_timestamp: i64,
        end_timestamp: i64,
    ) -> Result<QueryResult> {
        let inner = &*self.inner;
        let max = max_count.min(inner.config.max_msgs_num_batch as usize);
        let found = inner.index.query(topic, key, max, begin_timestamp, end_timestamp)?;
        let mut messages = Vec::with_capacity(found.phy_offsets.len());
        for offset in found.phy_offsets {
            match self.message_by_phy_offset(offset) {
                Ok(Some(record)) => messages.push(record),
                Ok(None) => {}
                // The index is a hint: a damaged record it names is left out of the answer.
                Err(err @ Error::Corrupt { .. }) => {
                    tracing::warn!(%err, key, "query by key skips a damaged record");
                }
                Err(err) => return Err(err),
            }
        }
        Ok(QueryResult {
            messages,
            index_last_update_timestamp: found.index_last_update_timestamp,
            index_last_update_phy_offset: found.index_last_update_phy_offset,
        })
    }

    /// The queue's minimum offset (0 if the queue does not exist).
    pub fn min_offset_in_queue(&self, topic: &str, queue_id: i32) -> i64 {
        self.inner.find_queue(topic, queue_id).map_or(0, |cq| cq.min_offset())
    }

    /// The queue's maximum offset, i.e. the next to be written (0 if it does not exist).
    ///
    /// # Errors
    /// I/O errors reading the ConsumeQueue.
    pub fn max_offset_in_queue(&self, topic: &str, queue_id: i32) -> Result<i64> {
        match self.inner.find_queue(topic, queue_id) {
            Some(cq) => self.inner.visible_max_offset(&cq),
            None => Ok(0),
        }
    }

    /// The first queue offset whose message was stored at or after `timestamp` (ms); the
    /// maximum offset if none was.
    ///
    /// # Errors
    /// I/O errors.
    pub fn offset_by_time(&self, topic: &str, queue_id: i32, timestamp: i64) -> Result<i64> {
        self.inner.offset_by_time(topic, queue_id, timestamp)
    }

    /// Store time of the oldest message still in the queue.
    ///
    /// # Errors
    /// I/O errors.
    pub fn earliest_message_time(&self, topic: &str, queue_id: i32) -> Result<Option<i64>> {
        let Some(cq) = self.inner.find_queue(topic, queue_id) else {
            return Ok(None);
        };
        self.inner.store_time_at(&cq, cq.min_offset())
    }

    /// Store time of the oldest record in the CommitLog.
    ///
    /// # Errors
    /// I/O errors.
    pub fn earliest_store_time(&self) -> Result<Option<i64>> {
        let Some(record) = self.inner.commit_log.record_at(self.inner.commit_log.min_offset())?
        else {
            return Ok(None);
        };
        Ok(record::decode_record(&record).ok().map(|(rec, _)| rec.store_timestamp))
    }

    /// Physical offset of the oldest stored byte.
    pub fn min_phy_offset(&self) -> i64 {
        self.inner.commit_log.min_offset() as i64
    }

    /// Physical end of the stored records.
    pub fn max_phy_offset(&self) -> i64 {
        self.inner.commit_log.max_offset() as i64
    }

    /// Physical end of the records known durable.
    pub fn flushed_phy_offset(&self) -> i64 {
        self.inner.commit_log.flushed_offset() as i64
    }

    /// Raw CommitLog bytes from `phy_offset` to the end of what is written in its segment:
    /// what a master streams to a slave.
    ///
    /// # Errors
    /// I/O errors.
    pub fn commit_log_data(&self, phy_offset: i64) -> Result<Option<Bytes>> {
        let Ok(offset) = u64::try_from(phy_offset) else {
            return Ok(None);
        };
        self.inner.commit_log.data_from(offset)
    }

    /// Appends raw CommitLog bytes replicated from a master at `phy_offset`, which must equal
    /// the current end; the records are checked and dispatched like local puts.
    ///
    /// # Errors
    /// `InvalidArgument` if `phy_offset` is not the current end or the bytes do not hold
    /// whole valid records; I/O errors.
    ///
    /// An empty store (no CommitLog segment) also takes data at any segment boundary: a new
    /// slave starts where its master's stream starts (the master's last segment, as RocketMQ
    /// does), and its first segment is created there.
    pub fn append_replicated(&self, phy_offset: i64, data: &[u8]) -> Result<()> {
        self.inner.check_writable()?;
        if !data.is_empty() {
            self.inner.start_replica_at(phy_offset)?;
        }
        crate::recovery::append_replicated(&self.inner, phy_offset, data)
    }

    /// Flushes everything written so far (CommitLog, ConsumeQueues, IndexFiles, checkpoint).
    ///
    /// # Errors
    /// `Poisoned` once any flush failed; I/O errors, and a failed flush poisons the store:
    /// no later flush or put succeeds until it is reopened.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush_commit_log()?;
        self.inner.flush_other_files()
    }

    /// Deletes expired files now, as if the `deleteWhen` hour had come.
    ///
    /// # Errors
    /// I/O errors.
    pub fn delete_expired_files(&self) -> Result<usize> {
        crate::expiry::clean(&self.inner, true)
    }

    /// Stops the background threads, flushes everything and removes the `abort` file so the
    /// next open runs normal recovery.
    ///
    /// # Errors
    /// I/O errors while flushing (the abort file then stays, forcing abnormal recovery).
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    /// How many background CommitLog segment allocations this store started (one at open,
    /// one per roll): a crash harness waits for each before it cuts the power.
    #[cfg(any(test, feature = "internals"))]
    #[doc(hidden)]
    pub fn preallocations_started(&self) -> u64 {
        self.inner.commit_log.preallocations_started()
    }

    /// Stops the background threads and drops the store without flushing anything or
    /// removing the `abort` file: what a crash leaves behind (minus lost page cache).
    #[cfg(any(test, feature = "internals"))]
    #[doc(hidden)]
    pub fn simulate_crash(self) {
        let inner = &*self.inner;
        inner.closed.store(true, Ordering::Release);
        inner.shutdown.signal();
        inner.index_waker.wake();
        for thread in self.threads.lock().drain(..) {
            let _ = thread.join();
        }
    }

    fn shutdown(&self) -> Result<()> {
        let inner = &*self.inner;
        if inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        inner.shutdown.signal();
        inner.index_waker.wake();
        for thread in self.threads.lock().drain(..) {
            let _ = thread.join();
        }
        // Wait for in-flight puts, then flush and catch the index up.
        let mut writer = inner.writer.lock();
        inner.commit_log.finish_preallocation(&mut writer.appender);
        if let Some(cause) = inner.poison.get() {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        crate::dispatch::index_catch_up(inner)?;
        inner.flush_commit_log()?;
        inner.flush_other_files()?;
        let abort = inner.config.store_path_root_dir.join(crate::recovery::ABORT_FILE);
        inner.storage.remove_file(&abort).map_err(|e| Error::io("remove", &abort, e))?;
        let root = &inner.config.store_path_root_dir;
        inner.storage.sync_dir(root).map_err(|e| Error::io("sync dir", root, e))
    }
}

impl Drop for MessageStore {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            tracing::warn!(%err, "closing the store on drop failed; the next open recovers");
        }
    }
}

impl Inner {
    #[expect(clippy::too_many_arguments, reason = "assembles the parts recovery loaded")]
    pub(crate) fn new(
        config: StoreConfig,
        storage: Arc<dyn Storage>,
        commit_log: CommitLog,
        queues: HashMap<String, HashMap<i32, Arc<ConsumeQueue>>>,
        checkpoint: Checkpoint,
        index: IndexService,
        recovery_mode: RecoveryMode,
        dir_lock: DirLock,
    ) -> Result<Self> {
        let delay_levels_ms = config.delay_levels_ms()?;
        let memory_bytes = config.physical_memory_bytes.unwrap_or_else(physical_memory_bytes) / 100
            * u64::from(config.access_message_in_memory_max_ratio);
        let queue_warm = commit_log
            .prefault_enabled()
            .then(|| crossbeam_channel::bounded(QUEUE_WARM_REQUESTS_MAX));
        let warm_sender = || queue_warm.as_ref().map(|(sender, _)| sender.clone());
        let mut write_queues = WriteQueues::default();
        for (topic, by_id) in &queues {
            for (&queue_id, cq) in by_id {
                let entry = write_queues.entry(topic.clone()).or_default();
                entry.insert(queue_id, WriteQueue::new(cq.clone(), cq.max_offset(), warm_sender()));
            }
        }
        Ok(Inner {
            config,
            storage,
            commit_log,
            queues: RwLock::new(queues),
            writer: Mutex::new(Writer {
                appender: Appender::default(),
                queues: write_queues,
                replica_dispatched: 0,
            }),
            flush_lock: Mutex::new(()),
            group_commit: Mutex::new(false),
            group_commit_done: Condvar::new(),
            checkpoint,
            index,
            index_waker: Waker::default(),
            queue_warm,
            index_reput: AtomicU64::new(0),
            shutdown: Shutdown::default(),
            poison: OnceLock::new(),
            disk_full: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            listener: RwLock::new(None),
            delay_levels_ms,
            memory_bytes,
            recovery_mode,
            _dir_lock: dir_lock,
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.config.store_path_root_dir
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if let Some(cause) = self.poison.get() {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Records the first failed flush; every later put and flush fails.
    pub(crate) fn poison(&self, err: &Error) {
        let _ = self.poison.set(err.to_string());
        tracing::error!(%err, "flush failed: the store refuses writes until it is reopened");
    }

    /// Poisons the store if `err` is a failed sync.
    pub(crate) fn poison_if_sync_failed(&self, err: &Error) {
        if err.is_sync_failure() {
            self.poison(err);
        }
    }

    /// Runs a flush of files other than the CommitLog (ConsumeQueues, IndexFiles, the
    /// checkpoint) as the CommitLog's is run: refused once the store is poisoned, and
    /// poisoning it if it fails. A failed `fsync` may have dropped the dirty pages it was
    /// given, so a later one that succeeds proves nothing about them (and the checkpoint
    /// written after it would vouch for data that is not on disk).
    pub(crate) fn guarded_flush(&self, flush: impl FnOnce() -> Result<()>) -> Result<()> {
        if let Some(cause) = self.poison.get() {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        flush().inspect_err(|err| self.poison(err))
    }

    /// Flushes every ConsumeQueue, IndexFile and the checkpoint (guarded).
    pub(crate) fn flush_other_files(&self) -> Result<()> {
        self.guarded_flush(|| {
            crate::dispatch::flush_consume_queues(self, 0)?;
            self.index.flush()?;
            self.checkpoint.flush()
        })
    }

    fn max_delay_level(&self) -> u32 {
        self.delay_levels_ms.len() as u32
    }

    /// Size and name checks of storage.md §3.4; `None` when the message may be stored.
    fn check_message(&self, topic: &str, body_len: usize) -> Option<PutStatus> {
        if self.disk_full.load(Ordering::Acquire) {
            return Some(PutStatus::ServiceNotAvailable);
        }
        let retry_or_dlq = topic.starts_with("%RETRY%") || topic.starts_with("%DLQ%");
        let topic_max = if retry_or_dlq { 255 } else { 127 };
        if topic.len() > topic_max || !crate::commit_log::is_valid_topic(topic) {
            return Some(PutStatus::MessageIllegal);
        }
        if body_len > self.config.max_message_size as usize {
            return Some(PutStatus::MessageIllegal);
        }
        None
    }

    /// Encodes `message` as a record of `topic`/`queue_id` at the end of `buf` with zero
    /// offsets and time (patched under the lock). A `__CRC32#` property the message carries
    /// is dropped, as RocketMQ drops it; with `enabled_append_prop_crc` the properties get
    /// 20 reserved bytes at their end for the record CRC, filled under the lock too.
    fn encode(
        &self,
        message: &PutMessage<'_>,
        topic: &str,
        queue_id: i32,
        properties: &[u8],
        picked: &PutProperties,
        buf: &mut Vec<u8>,
    ) -> std::result::Result<Pending, PutStatus> {
        let with_crc = self.config.enabled_append_prop_crc;
        if !with_crc && !picked.has_crc {
            return self.encode_record(message, topic, queue_id, properties, picked, false, buf);
        }
        PROPERTIES_BUF.with(|cell| {
            let mut stored = cell.borrow_mut();
            stored.clear();
            if picked.has_crc {
                strip_crc_property(properties, &mut stored);
            } else {
                stored.extend_from_slice(properties);
            }
            if with_crc {
                stored.extend_from_slice(&[0; CRC_PROPERTY_LEN]);
            }
            if stored.len() > PROPERTIES_MAX {
                return Err(PutStatus::PropertiesSizeExceeded);
            }
            self.encode_record(message, topic, queue_id, &stored, picked, with_crc, buf)
        })
    }

    #[expect(clippy::too_many_arguments, reason = "the parts of one record")]
    fn encode_record(
        &self,
        message: &PutMessage<'_>,
        topic: &str,
        queue_id: i32,
        properties: &[u8],
        picked: &PutProperties,
        with_crc: bool,
        buf: &mut Vec<u8>,
    ) -> std::result::Result<Pending, PutStatus> {
        let rec = RecordRef {
            version: MessageVersion::for_topic(topic),
            body_crc: 0,
            queue_id,
            flag: message.flag,
            queue_offset: 0,
            physical_offset: 0,
            sysflag: message.sysflag,
            born_timestamp: message.born_timestamp,
            born_host: message.born_host,
            store_timestamp: 0,
            store_host: self.config.store_host,
            reconsume_times: message.reconsume_times,
            prepared_transaction_offset: message.prepared_transaction_offset,
            body: message.body,
            topic,
            properties,
        };
        let start = buf.len();
        let len = record::encode_record(&rec, buf).map_err(|_| PutStatus::MessageIllegal)?;
        let record_max = self.config.max_message_size as usize + RECORD_OVERHEAD_MAX;
        if len > record_max
            || len + record::BLANK_RECORD_SIZE > self.commit_log.file_size() as usize
        {
            buf.truncate(start);
            return Err(PutStatus::MessageIllegal);
        }
        let sysflag = read_i32(buf, start + record::SYSFLAG_POS);
        let (tags_code, wait) = (picked.tags_code, picked.wait);
        Ok(Pending { start, len, sysflag, tags_code, delay_level: 0, wait, with_crc })
    }

    /// Appends the encoded records of `buf` (all for one queue) under the writer lock, then
    /// waits for the flush (sync mode) and tells the listener.
    fn append(
        &self,
        topic: &str,
        queue_id: i32,
        buf: &mut [u8],
        pendings: &[Pending],
        is_batch: bool,
    ) -> Result<PutResult> {
        let total_len = buf.len() as u64;
        let mut writer = self.writer.lock();
        self.check_writable()?;
        // Creating a file (a ConsumeQueue's, or the CommitLog's next segment) syncs its
        // directory: a failed sync poisons the store here too.
        let poison_on_sync = |err: &Error| self.poison_if_sync_failed(err);
        let Writer { appender, queues, .. } = &mut *writer;
        let queue = self.queue_for_write(queues, topic, queue_id)?;
        let mut queue_offset = queue.next_offset;
        let dispatched = pendings.iter().filter(|p| dispatches(p.sysflag)).count() as i64;
        if dispatched > 0 {
            let last = queue_offset + dispatched - 1;
            queue.cq.ensure_capacity_with(&mut queue.cursor, last).inspect_err(poison_on_sync)?;
        }
        let (phy_offset, segment) =
            self.commit_log.reserve(appender, total_len).inspect_err(poison_on_sync)?;
        let store_timestamp = now_ms().max(self.commit_log.last_store_timestamp());
        let first_queue_offset = queue_offset;
        for pending in pendings {
            let record_queue_offset = if dispatches(pending.sysflag) { queue_offset } else { 0 };
            let record_phy = (phy_offset + pending.start as u64) as i64;
            let record = &mut buf[pending.start..pending.start + pending.len];
            patch_i64(record, record::QUEUE_OFFSET_POS, record_queue_offset);
            patch_i64(record, record::PHYSICAL_OFFSET_POS, record_phy);
            patch_i64(record, record::store_timestamp_pos(pending.sysflag), store_timestamp);
            if pending.with_crc {
                // Last: the CRC covers the offsets and time just patched.
                let crc = fill_record_crc(record);
                assert!(crc.is_some(), "record of {} bytes has no CRC reservation", record.len());
            }
            if dispatches(pending.sysflag) {
                queue_offset += 1;
            }
        }
        self.commit_log.write(&segment, phy_offset, buf)?;
        let end = phy_offset + total_len;
        // The CommitLog end is published before the units: a reader that finds a unit can
        // always read its record.
        self.commit_log.publish(end, store_timestamp);
        let mut unit_offset = first_queue_offset;
        let mut last_tags_code = None;
        for pending in pendings.iter().filter(|p| dispatches(p.sysflag)) {
            let tags_code = if pending.delay_level > 0 {
                store_timestamp + self.delay_ms(pending.delay_level)
            } else {
                pending.tags_code
            };
            let record_phy = (phy_offset + pending.start as u64) as i64;
            let unit = CqUnit { phy_offset: record_phy, size: pending.len as i32, tags_code };
            if let Err(err) = queue.cq.append_unit(&mut queue.cursor, unit_offset, unit) {
                // Capacity was ensured above, so this is a broken mapping: the CommitLog
                // holds the record but its queue does not. Recovery repairs that.
                self.poison(&err);
                return Err(err);
            }
            unit_offset += 1;
            last_tags_code = Some(tags_code);
        }
        assert_eq!(unit_offset, queue_offset, "every dispatched record got a unit");
        queue.next_offset = queue.next_offset.max(queue_offset);
        drop(writer);
        // The index thread polls every few ms anyway; waking it on every put would cost a
        // futex call per put, so only hurry it when it falls behind.
        if end.saturating_sub(self.index_reput.load(Ordering::Relaxed)) > INDEX_WAKE_LAG_BYTES {
            self.index_waker.wake();
        }

        crate::crash_point::hit(crate::crash_point::PUT_BEFORE_FLUSH);
        let wait = pendings.iter().any(|p| p.wait);
        let status = match self.config.flush_disk_type {
            FlushMode::Sync if wait => self.wait_flushed(end)?,
            _ => PutStatus::PutOk,
        };
        if let Some(tags_code) = last_tags_code {
            self.notify_arrival(topic, queue_id, queue_offset, tags_code, store_timestamp);
        }
        let batch_phy_offsets = if is_batch {
            pendings.iter().map(|p| (phy_offset + p.start as u64) as i64).collect()
        } else {
            Vec::new()
        };
        Ok(PutResult {
            status,
            phy_offset: phy_offset as i64,
            wrote_bytes: total_len as i32,
            queue_offset: first_queue_offset,
            message_count: pendings.len() as i32,
            store_timestamp,
            store_host: self.config.store_host,
            batch_phy_offsets,
        })
    }

    fn delay_ms(&self, level: u32) -> i64 {
        let index = (level as usize).clamp(1, self.delay_levels_ms.len().max(1)) - 1;
        self.delay_levels_ms.get(index).map_or(1000, |&ms| ms as i64)
    }

    /// The ConsumeQueue and next offset of a queue, creating the queue on first use.
    pub(crate) fn queue_for_write<'w>(
        &self,
        queues: &'w mut WriteQueues,
        topic: &str,
        queue_id: i32,
    ) -> Result<&'w mut WriteQueue> {
        if !queues.get(topic).is_some_and(|by_id| by_id.contains_key(&queue_id)) {
            let cq = self.create_queue(topic, queue_id)?;
            let warm = self.queue_warm.as_ref().map(|(sender, _)| sender.clone());
            let queue = WriteQueue::new(cq, 0, warm);
            queues.entry(topic.to_owned()).or_default().insert(queue_id, queue);
        }
        match queues.get_mut(topic).and_then(|by_id| by_id.get_mut(&queue_id)) {
            Some(queue) => Ok(queue),
            None => unreachable!("queue {topic}/{queue_id} was just inserted"),
        }
    }

    fn create_queue(&self, topic: &str, queue_id: i32) -> Result<Arc<ConsumeQueue>> {
        let cq = Arc::new(ConsumeQueue::open(
            self.storage.clone(),
            &self.root().join(crate::recovery::CONSUME_QUEUE_DIR),
            topic,
            queue_id,
            self.config.consume_queue_file_size(),
        )?);
        self.queues.write().entry(topic.to_owned()).or_default().insert(queue_id, cq.clone());
        Ok(cq)
    }

    /// Group commit: returns once a flush covering `end` completed, sharing flushes with
    /// concurrent puts (whoever holds the flush lock flushes for everybody).
    fn wait_flushed(&self, end: u64) -> Result<PutStatus> {
        let deadline = Instant::now() + Duration::from_millis(self.config.sync_flush_timeout_ms);
        let mut flushing = self.group_commit.lock();
        loop {
            if self.commit_log.flushed_offset() >= end {
                return Ok(PutStatus::PutOk);
            }
            self.check_writable()?;
            if *flushing {
                // Someone is flushing; their flush may not cover us, so check again after.
                if self.group_commit_done.wait_until(&mut flushing, deadline).timed_out()
                    && self.commit_log.flushed_offset() < end
                {
                    return Ok(PutStatus::FlushDiskTimeout);
                }
                continue;
            }
            // Lead: flush everything written so far (every waiting put's record included),
            // then wake all waiters at once.
            *flushing = true;
            let before = self.commit_log.flushed_offset();
            let flushed = MutexGuard::unlocked(&mut flushing, || self.flush_commit_log());
            *flushing = false;
            self.group_commit_done.notify_all();
            flushed?;
            let after = self.commit_log.flushed_offset();
            if after < end && after == before {
                // A flush that cannot advance must not spin: report the timeout.
                return Ok(PutStatus::FlushDiskTimeout);
            }
        }
    }

    /// Flushes the CommitLog (taking the flush lock).
    pub(crate) fn flush_commit_log(&self) -> Result<()> {
        let _guard = self.flush_lock.lock();
        self.flush_commit_log_locked()
    }

    fn flush_commit_log_locked(&self) -> Result<()> {
        if let Some(cause) = self.poison.get() {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        // Read the timestamp before the flush: it belongs to a record at or below the end
        // that the flush will cover.
        let timestamp = self.commit_log.last_store_timestamp();
        match self.commit_log.files().flush() {
            Ok(_) => {
                crate::crash_point::hit(crate::crash_point::FLUSH_BEFORE_ACK);
                if timestamp > 0 {
                    self.checkpoint.physic_msg_timestamp.store(timestamp, Ordering::Release);
                }
                Ok(())
            }
            Err(err) => {
                self.poison(&err);
                Err(err)
            }
        }
    }

    fn notify_arrival(&self, topic: &str, queue_id: i32, max_offset: i64, tags_code: i64, ts: i64) {
        // Called under the read lock: no reference count to bump on every put. Setting a
        // listener waits for the calls in progress.
        if let Some(listener) = &*self.listener.read() {
            listener(&Arrival { topic, queue_id, max_offset, tags_code, store_timestamp: ts });
        }
    }

    pub(crate) fn find_queue(&self, topic: &str, queue_id: i32) -> Option<Arc<ConsumeQueue>> {
        self.queues.read().get(topic)?.get(&queue_id).cloned()
    }

    /// Physical end of what readers may see: flushed data under sync flush (a reader must
    /// never see a message a power cut could take back), everything written otherwise.
    pub(crate) fn readable_end(&self) -> u64 {
        match self.config.flush_disk_type {
            FlushMode::Sync => self.commit_log.flushed_offset(),
            FlushMode::Async => self.commit_log.max_offset(),
        }
    }

    fn visible_max_offset(&self, cq: &ConsumeQueue) -> Result<i64> {
        match self.config.flush_disk_type {
            FlushMode::Sync => cq.max_offset_within(self.readable_end() as i64),
            FlushMode::Async => Ok(cq.max_offset()),
        }
    }

    /// The read path of storage.md §16.
    fn get(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_count: u32,
        max_bytes: u64,
        filter: &dyn Fn(i64) -> bool,
    ) -> Result<GetResult> {
        let Some(cq) = self.find_queue(topic, queue_id) else {
            return Ok(GetResult::status_only(GetStatus::NoMatchedLogicQueue, 0, 0, 0));
        };
        let (min, max) = (cq.min_offset(), self.visible_max_offset(&cq)?);
        let status = if max == 0 {
            Some((GetStatus::NoMessageInQueue, 0))
        } else if offset < min {
            Some((GetStatus::OffsetTooSmall, min))
        } else if offset == max {
            Some((GetStatus::OffsetOverflowOne, offset))
        } else if offset > max {
            Some((GetStatus::OffsetOverflowBadly, max))
        } else {
            None
        };
        if let Some((status, next)) = status {
            return Ok(GetResult::status_only(status, next, min, max));
        }
        let scan_units =
            (self.config.max_filter_message_size as usize / 20).max(max_count as usize);
        let scan_units = scan_units.min((max - offset) as usize);
        let units = cq.units_from(offset, scan_units)?;
        if units.is_empty() && offset < cq.min_offset() {
            // Expiry deleted the file holding `offset` since the minimum was read.
            let min = cq.min_offset();
            return Ok(GetResult::status_only(GetStatus::OffsetTooSmall, min, min, max));
        }
        let max_phy = self.commit_log.max_offset() as i64;
        let commit_log_min = self.commit_log.min_offset() as i64;
        let mut result = GetResult::status_only(GetStatus::NoMatchedMessage, offset, min, max);
        let (mut bytes, mut last_phy) = (0u64, None);
        for (index, unit) in units.iter().enumerate() {
            let count = result.messages.len();
            let size = u64::try_from(unit.size).unwrap_or(0);
            let in_memory = max_phy - unit.phy_offset <= self.memory_bytes as i64;
            if count > 0 && self.batch_full(count, bytes, size, max_count, max_bytes, in_memory) {
                break;
            }
            result.next_begin_offset = offset + index as i64 + 1;
            last_phy = Some(unit.phy_offset);
            if unit.is_blank() {
                continue;
            }
            if unit.phy_offset < commit_log_min {
                if count == 0 {
                    result.status = GetStatus::MessageWasRemoving;
                }
                continue;
            }
            if !filter(unit.tags_code) {
                continue;
            }
            match self.commit_log.read_record(unit.phy_offset as u64, size as usize) {
                Ok(Some(record)) => {
                    bytes += size;
                    result.messages.push(record);
                    result.status = GetStatus::Found;
                }
                Ok(None) if count == 0 => result.status = GetStatus::MessageWasRemoving,
                Ok(None) => {}
                // A damaged record: the messages before it are returned, and a pull that
                // starts at it gets the error; every other message stays readable.
                Err(Error::Corrupt { .. }) if count > 0 => {
                    result.next_begin_offset -= 1;
                    break;
                }
                Err(Error::Corrupt { path, reason }) => {
                    let queue_offset = offset + index as i64;
                    let reason = format!("{reason}; {topic}/{queue_id} offset {queue_offset}");
                    return Err(Error::Corrupt { path, reason });
                }
                Err(err) => return Err(err),
            }
        }
        if let Some(phy) = last_phy {
            result.suggest_pulling_from_slave = max_phy - phy > self.memory_bytes as i64;
        }
        Ok(result)
    }

    fn batch_full(
        &self,
        count: usize,
        bytes: u64,
        size: u64,
        max_count: u32,
        max_bytes: u64,
        in_memory: bool,
    ) -> bool {
        let config = &self.config;
        if count + 1 > max_count as usize || bytes + size > max_bytes {
            return true;
        }
        if in_memory {
            bytes + size > config.max_transfer_bytes_on_message_in_memory
                || count >= config.max_transfer_count_on_message_in_memory as usize
        } else {
            bytes + size > config.max_transfer_bytes_on_message_in_disk
                || count >= config.max_transfer_count_on_message_in_disk as usize
        }
    }

    fn store_time_at(&self, cq: &ConsumeQueue, queue_offset: i64) -> Result<Option<i64>> {
        let Some(unit) = cq.unit(queue_offset)? else {
            return Ok(None);
        };
        if unit.is_blank() {
            return Ok(None);
        }
        let ts_pos =
            match self.commit_log.view(unit.phy_offset as u64 + record::SYSFLAG_POS as u64, 4)? {
                Some(sysflag) => record::store_timestamp_pos(read_i32(&sysflag, 0)),
                None => return Ok(None),
            };
        let ts = self.commit_log.view(unit.phy_offset as u64 + ts_pos as u64, 8)?;
        Ok(ts.map(|b| read_i64(&b, 0)))
    }

    fn offset_by_time(&self, topic: &str, queue_id: i32, timestamp: i64) -> Result<i64> {
        let Some(cq) = self.find_queue(topic, queue_id) else {
            return Ok(0);
        };
        let (mut low, mut high) = (cq.min_offset(), self.visible_max_offset(&cq)?);
        while low < high {
            let mid = low + (high - low) / 2;
            match self.store_time_at(&cq, mid)? {
                Some(ts) if ts >= timestamp => high = mid,
                _ => low = mid + 1,
            }
        }
        Ok(low)
    }
}

/// Replication support for a slave: cutting the tail its master lacks, and starting an
/// empty CommitLog where the master's stream starts.
impl Inner {
    /// The cut of [`MessageStore::open_truncated`], run before any reader or thread exists.
    fn cut_replica_tail(&self, phy_offset: u64) -> Result<()> {
        let log = &self.commit_log;
        let mut writer = self.writer.lock();
        log.finish_preallocation(&mut writer.appender);
        let end = log.max_offset();
        let target = phy_offset.clamp(log.min_offset(), end);
        let segment_start = (target - target % log.file_size()).max(log.min_offset());
        let mut last_timestamp = 0;
        let scan = log.scan(segment_start, target, false, |found| {
            last_timestamp = found.record.store_timestamp;
            Ok(())
        })?;
        let cut = scan.valid_end.min(target);
        assert!(cut <= end, "cut {cut} past the end {end}");
        // Files past the end go first: the pre-allocated segment after the old end.
        self.remove_stray_segments()?;
        if cut < end {
            tracing::warn!(from = end, to = cut, "cutting the commit log tail the master lacks");
            // `truncate_to` removes later segments newest first, each removal durable before
            // the next (a power cut must not keep a newer segment and lose an older one: a
            // gap the next open rejects), and zeroes the tail of the segment holding `cut`
            // (one starting exactly at `cut` stays, emptied, as recovery leaves it).
            log.files().truncate_to(cut)?;
            log.set_last_store_timestamp(last_timestamp);
        }
        let cut_signed = cut as i64;
        for cq in self.queues.read().values().flat_map(|m| m.values()) {
            if cq.max_phy_end() > cut_signed {
                cq.truncate_dirty(cut_signed)?;
                cq.flush_all()?;
            }
        }
        for queue in writer.queues.values_mut().flat_map(|m| m.values_mut()) {
            queue.next_offset = queue.cq.max_offset();
        }
        self.index.truncate_after(cut_signed)?;
        self.index.flush()?;
        // Abnormal recovery starts from the checkpoint's times: they must not claim records
        // that are gone (0 when the cut left no record in its segment: recover from the start).
        let checkpoint = &self.checkpoint;
        for stamp in [
            &checkpoint.physic_msg_timestamp,
            &checkpoint.logics_msg_timestamp,
            &checkpoint.index_msg_timestamp,
        ] {
            stamp.fetch_min(last_timestamp, Ordering::AcqRel);
        }
        checkpoint.flush()?;
        writer.replica_dispatched = cut;
        self.index_reput.fetch_min(cut, Ordering::AcqRel);
        let next_segment = match log.files().segment_for(cut) {
            Some(segment) => segment.end_offset(),
            None => cut - cut % log.file_size(),
        };
        log.preallocate(&mut writer.appender, next_segment);
        assert_eq!(log.max_offset(), cut, "the commit log ends at the cut");
        Ok(())
    }

    /// Lets an empty CommitLog start at `phy_offset` (a segment boundary): the next
    /// replicated append then creates its first segment there. No-op when the store has a
    /// segment or already ends at `phy_offset`.
    fn start_replica_at(&self, phy_offset: i64) -> Result<()> {
        let log = &self.commit_log;
        let Ok(offset) = u64::try_from(phy_offset) else {
            return Ok(());
        };
        if log.files().segment_count() > 0 || offset == log.max_offset() {
            return Ok(());
        }
        if offset % log.file_size() != 0 {
            return Err(Error::InvalidArgument(format!(
                "an empty commit log can start at a segment boundary (a multiple of {}), not at {offset}",
                log.file_size()
            )));
        }
        let mut writer = self.writer.lock();
        if log.files().segment_count() > 0 {
            return Ok(());
        }
        // The segment pre-allocated at the old end would leave a gap before the new one.
        log.finish_preallocation(&mut writer.appender);
        self.remove_stray_segments()?;
        log.files().set_write_end(offset);
        log.files().set_flushed_end(offset);
        writer.replica_dispatched = offset;
        self.index_reput.store(offset, Ordering::Release);
        log.preallocate(&mut writer.appender, offset);
        assert_eq!(log.max_offset(), offset, "empty commit log moved to {offset}");
        Ok(())
    }

    /// Deletes CommitLog segment files that are not part of the log (a finished
    /// pre-allocation past a cut), so the directory holds no gap at the next open.
    fn remove_stray_segments(&self) -> Result<()> {
        let dir = self.root().join(crate::recovery::COMMIT_LOG_DIR);
        let entries = self.storage.list(&dir).map_err(|e| Error::io("list", &dir, e))?;
        let mut stray: Vec<(u64, String)> = entries
            .into_iter()
            .filter(|entry| !entry.is_dir)
            .filter_map(|entry| {
                let from_offset = crate::file_queue::parse_segment_name(&entry.name)?;
                let listed = self
                    .commit_log
                    .files()
                    .segment_for(from_offset)
                    .is_some_and(|segment| segment.from_offset == from_offset);
                (!listed).then_some((from_offset, entry.name))
            })
            .collect();
        // Newest first, each removal durable before the next (no gap after a power cut).
        stray.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.0));
        for (_, name) in stray {
            let path = dir.join(&name);
            self.storage.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            self.storage.sync_dir(&dir).map_err(|e| Error::io("sync dir", &dir, e))?;
        }
        Ok(())
    }
}

/// Whether records of this sysflag get a ConsumeQueue unit (NOT and COMMIT types).
pub(crate) fn dispatches(flag: i32) -> bool {
    let tx = sysflag::transaction_type(flag);
    tx == sysflag::TRANSACTION_NOT_TYPE || tx == sysflag::TRANSACTION_COMMIT_TYPE
}

/// Tags code of a record's properties: Java `hashCode` of `TAGS`, 0 without tags.
pub(crate) fn tags_code_of(properties: &[u8]) -> i64 {
    match find_property(properties, property::TAGS) {
        Some(tags) if !tags.is_empty() => i64::from(hash::java_bytes_hash(tags)),
        _ => 0,
    }
}

/// The properties a put needs, picked in one pass over the encoded bytes (the last
/// occurrence of a name wins, as in `find_property`).
#[derive(Debug, Clone, Copy)]
struct PutProperties<'a> {
    tags_code: i64,
    delay: Option<&'a [u8]>,
    /// `WAIT` absent or `true`: a sync-flush put waits for the flush.
    wait: bool,
    /// A `__CRC32#` property is present (only the store may write it).
    has_crc: bool,
}

impl<'a> PutProperties<'a> {
    fn scan(properties: &'a [u8]) -> Self {
        let (mut tags, mut delay, mut wait, mut has_crc) = (None, None, None, false);
        for (name, value) in iter_properties(properties) {
            if name == property::TAGS.as_bytes() {
                tags = Some(value);
            } else if name == property::DELAY.as_bytes() {
                delay = Some(value);
            } else if name == property::WAIT.as_bytes() {
                wait = Some(value);
            } else if name == property::CRC32.as_bytes() {
                has_crc = true;
            }
        }
        PutProperties {
            tags_code: tags
                .filter(|t| !t.is_empty())
                .map_or(0, |t| i64::from(hash::java_bytes_hash(t))),
            delay,
            wait: wait.is_none_or(|value| value.eq_ignore_ascii_case(b"true")),
            has_crc,
        }
    }

    /// The `DELAY` level of a message that may be delayed (NOT/COMMIT types), clamped to the
    /// highest level; 0 when not delayed.
    fn delay_level(&self, flag: i32, max_level: u32) -> u32 {
        if !dispatches(flag) {
            return 0;
        }
        self.delay
            .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<i64>().ok())
            .filter(|&level| level > 0)
            .map_or(0, |level| level.min(i64::from(max_level)) as u32)
    }
}

/// Copies the `0x02`-terminated pairs of `properties` to `out`, byte for byte, except those
/// named `__CRC32#` (RocketMQ removes the property before it reserves its own).
fn strip_crc_property(properties: &[u8], out: &mut Vec<u8>) {
    let name = property::CRC32.as_bytes();
    for pair in properties.split_inclusive(|&b| b == PROPERTY_SEPARATOR) {
        let is_crc =
            pair.strip_prefix(name).is_some_and(|rest| rest.first() == Some(&NAME_VALUE_SEPARATOR));
        if !is_crc {
            out.extend_from_slice(pair);
        }
    }
}

fn patch_i64(record: &mut [u8], pos: usize, value: i64) {
    record[pos..pos + 8].copy_from_slice(&value.to_be_bytes());
}

pub(crate) fn read_i32(buf: &[u8], pos: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[pos..pos + 4]);
    i32::from_be_bytes(b)
}

pub(crate) fn read_i64(buf: &[u8], pos: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[pos..pos + 8]);
    i64::from_be_bytes(b)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Total RAM from `/proc/meminfo`; 24 GiB if unknown (RocketMQ's fallback).
fn physical_memory_bytes() -> u64 {
    const FALLBACK: u64 = 24 << 30;
    let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") else {
        return FALLBACK;
    };
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(FALLBACK, |kib| kib * 1024)
}

fn spawn(name: &str, inner: Arc<Inner>, run: fn(&Inner)) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || run(&inner))
        .map_err(|e| Error::io("spawn thread", PathBuf::from(name), e))
}
