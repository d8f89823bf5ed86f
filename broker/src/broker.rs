//! The broker's state and its request dispatch: one [`Broker`] shared by every connection,
//! and [`BrokerHandler`], the transport handler that routes each request code to a
//! processor (send, pull, consumer management, admin).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use ferromq_message::msg_id::UniqKeyGenerator;
use ferromq_remoting::headers::NotifyConsumerIdsChangedRequestHeader;
use ferromq_remoting::transport::{Connection, Handler, RemotingClient, Reply};
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};
use ferromq_store::{FlushMode, MessageStore};
use tokio::sync::{Notify, Semaphore};

use crate::clients::{ClientManager, LockManager};
use crate::config::BrokerConfig;
use crate::hold::PullHold;
use crate::metadata::{DelayOffsets, GroupManager, LoadError, OffsetManager, TopicManager};

/// Why a broker cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store cannot open.
    #[error("cannot open the store: {0}")]
    Store(#[from] ferromq_store::Error),
    /// A metadata file is corrupt.
    #[error(transparent)]
    Metadata(#[from] LoadError),
    /// The listener cannot bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Counters for GET_BROKER_RUNTIME_INFO.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages stored.
    pub put_messages: AtomicU64,
    /// Messages served by pulls.
    pub got_messages: AtomicU64,
}

/// Everything a broker knows, shared by all connections and background tasks.
#[derive(Debug)]
pub struct Broker {
    /// Settings.
    pub config: BrokerConfig,
    /// The message store.
    pub store: Arc<MessageStore>,
    /// Topics.
    pub topics: TopicManager,
    /// Subscription groups.
    pub groups: GroupManager,
    /// Consumer offsets.
    pub offsets: OffsetManager,
    /// Delay-level progress.
    pub delay_offsets: DelayOffsets,
    /// Producers and consumers.
    pub clients: ClientManager,
    /// Orderly-consumption queue locks.
    pub locks: LockManager,
    /// Held (long-polling) pulls.
    pub hold: Arc<PullHold>,
    /// Asks the registration task to register with the name servers now.
    pub register_soon: Notify,
    /// Client of name servers (registration) and of consumers (relays).
    pub outbound: RemotingClient,
    /// Counters.
    pub stats: Stats,
    /// `UNIQ_KEY`s for messages that arrive without one.
    pub uniq_keys: UniqKeyGenerator,
    /// Puts waiting for (or inside) the store, bounded by `sendThreadPoolQueueCapacity`.
    pub put_slots: Semaphore,
    /// When the broker started (ms since the epoch).
    pub boot_timestamp: i64,
    /// Monotonic start.
    pub started: Instant,
    /// Master/slave replication.
    pub ha: crate::ha::Ha,
}

impl Broker {
    /// Opens the store and loads the metadata. The store's arrival hook is wired to the
    /// long-polling table.
    ///
    /// # Errors
    ///
    /// [`StartError`] naming what failed.
    pub fn open(mut config: BrokerConfig) -> Result<Arc<Self>, StartError> {
        config.finish()?;
        // A slave may first have to cut the CommitLog tail its master lacks (crate::ha).
        let store = Arc::new(crate::ha::truncate::open_store(&config)?);
        let hold = Arc::new(PullHold::default());
        let ha = crate::ha::Ha::new(&config);
        {
            let hold = hold.clone();
            let ha_data = ha.data_signal();
            store.set_arrival_listener(move |arrival| {
                hold.on_arrival(
                    arrival.topic,
                    arrival.queue_id,
                    arrival.max_offset,
                    arrival.tags_code,
                );
                ha_data.ring();
            });
        }
        let broker = Broker {
            topics: TopicManager::load(&config)?,
            groups: GroupManager::load(&config)?,
            offsets: OffsetManager::load(&config)?,
            delay_offsets: DelayOffsets::load(&config)?,
            clients: ClientManager::default(),
            locks: LockManager::default(),
            hold,
            register_soon: Notify::new(),
            outbound: RemotingClient::default(),
            stats: Stats::default(),
            uniq_keys: UniqKeyGenerator::for_this_process(),
            put_slots: Semaphore::new(config.send_thread_pool_queue_capacity.max(1)),
            boot_timestamp: now_ms(),
            started: Instant::now(),
            ha,
            store,
            config,
        };
        Ok(Arc::new(broker))
    }

    /// Whether the broker-wide permission allows writes.
    pub fn is_writeable(&self) -> bool {
        crate::metadata::perm::is_writeable(self.config.broker_permission)
    }

    /// Whether the broker-wide permission allows reads.
    pub fn is_readable(&self) -> bool {
        crate::metadata::perm::is_readable(self.config.broker_permission)
    }

    /// Runs a blocking store call off the async runtime's workers.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Broker) -> T + Send + 'static,
    ) -> Option<T> {
        let broker = self.clone();
        match tokio::task::spawn_blocking(move || work(&broker)).await {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::error!(%error, "blocking store task failed");
                None
            }
        }
    }

    /// Whether puts may run inline on a runtime worker: under async flush a put copies into
    /// mapped memory the warm thread has faulted in and never waits for the disk; under sync
    /// flush it waits for the group commit and must leave the runtime.
    pub fn puts_inline(&self) -> bool {
        self.config.store.flush_disk_type == FlushMode::Async
    }

    /// Sends NOTIFY_CONSUMER_IDS_CHANGED (oneway) to every member of `group`.
    pub fn notify_consumer_ids_changed(&self, group: &str) {
        if !self.config.notify_consumer_ids_changed_enable {
            return;
        }
        let header = NotifyConsumerIdsChangedRequestHeader { consumer_group: group.to_owned() };
        for connection in self.clients.consumer_connections(group) {
            let request = RemotingCommand::request(RequestCode::NOTIFY_CONSUMER_IDS_CHANGED.code())
                .with_header(&header);
            tokio::spawn(async move {
                if let Err(error) = connection.send_oneway(request).await {
                    tracing::debug!(%error, "cannot notify consumer");
                }
            });
        }
    }

    /// Periodic work: client expiry every 10 s, offsets and delay offsets every
    /// `flushConsumerOffsetInterval`, expired CommitLog files every 10 s.
    pub async fn housekeeping(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_scan = Instant::now();
        let mut last_persist = Instant::now();
        loop {
            tick.tick().await;
            if last_scan.elapsed() >= Duration::from_secs(10) {
                last_scan = Instant::now();
                self.clients.scan_expired(Instant::now(), self.config.channel_expired_timeout);
                let expired = self.blocking(|broker| broker.store.delete_expired_files()).await;
                if let Some(Err(error)) = expired {
                    tracing::warn!(%error, "deleting expired CommitLog files failed");
                }
            }
            if last_persist.elapsed() >= self.config.flush_consumer_offset_interval {
                last_persist = Instant::now();
                self.persist_offsets().await;
            }
        }
    }

    /// Writes `consumerOffset.json` and `delayOffset.json`.
    pub async fn persist_offsets(self: &Arc<Self>) {
        let result = self
            .blocking(|broker| {
                broker.offsets.persist().and_then(|()| broker.delay_offsets.persist())
            })
            .await;
        if let Some(Err(error)) = result {
            tracing::error!(%error, "cannot persist consumer or delay offsets");
        }
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A response to `request` with `code` and `remark`.
pub fn respond(
    request: &RemotingCommand,
    code: ResponseCode,
    remark: impl Into<Option<String>>,
) -> RemotingCommand {
    RemotingCommand::response_to(request, code.code(), remark.into())
}

/// The answer Java gives when a header does not decode: SYSTEM_ERROR with the exception text.
pub fn bad_header(request: &RemotingCommand, error: &ferromq_remoting::Error) -> Reply {
    respond(
        request,
        ResponseCode::SYSTEM_ERROR,
        format!("org.apache.rocketmq.remoting.exception.RemotingCommandException: {error}"),
    )
    .into()
}

/// The transport handler of a broker's listener.
#[derive(Debug, Clone)]
pub struct BrokerHandler {
    /// The broker.
    pub broker: Arc<Broker>,
    /// Whether this is the "fast"/VIP port (`listenPort − 2`), which serves everything but
    /// pulls (broker.md §1.4).
    pub fast_port: bool,
}

impl Handler for BrokerHandler {
    async fn handle(&self, connection: Connection, request: RemotingCommand) -> Option<Reply> {
        let broker = &self.broker;
        let code = RequestCode(request.code);
        if self.fast_port
            && matches!(code, RequestCode::PULL_MESSAGE | RequestCode::LITE_PULL_MESSAGE)
        {
            return Some(Reply::code_not_supported(&request));
        }
        let reply = match code {
            RequestCode::SEND_MESSAGE
            | RequestCode::SEND_MESSAGE_V2
            | RequestCode::SEND_BATCH_MESSAGE => {
                crate::send::send(broker, &connection, &request).await
            }
            RequestCode::PULL_MESSAGE | RequestCode::LITE_PULL_MESSAGE => {
                crate::pull::pull(broker, &request).await
            }
            RequestCode::HEART_BEAT => crate::consumer::heartbeat(broker, &connection, &request),
            RequestCode::UNREGISTER_CLIENT => {
                crate::consumer::unregister_client(broker, &connection, &request)
            }
            RequestCode::GET_CONSUMER_LIST_BY_GROUP => {
                crate::consumer::consumer_list(broker, &request)
            }
            RequestCode::QUERY_CONSUMER_OFFSET => crate::consumer::query_offset(broker, &request),
            RequestCode::UPDATE_CONSUMER_OFFSET => crate::consumer::update_offset(broker, &request),
            RequestCode::GET_MAX_OFFSET => crate::consumer::max_offset(broker, &request),
            RequestCode::GET_MIN_OFFSET => crate::consumer::min_offset(broker, &request),
            RequestCode::SEARCH_OFFSET_BY_TIMESTAMP => {
                crate::consumer::search_offset(broker, &request).await
            }
            RequestCode::GET_EARLIEST_MSG_STORETIME => {
                crate::consumer::earliest_msg_storetime(broker, &request).await
            }
            RequestCode::CONSUMER_SEND_MSG_BACK => {
                crate::consumer::send_back(broker, &connection, &request).await
            }
            RequestCode::LOCK_BATCH_MQ => crate::consumer::lock_batch(broker, &request),
            RequestCode::UNLOCK_BATCH_MQ => crate::consumer::unlock_batch(broker, &request),
            RequestCode::CHECK_CLIENT_CONFIG => crate::consumer::check_client_config(&request),
            RequestCode::QUERY_MESSAGE => crate::admin::query_message(broker, &request).await,
            RequestCode::VIEW_MESSAGE_BY_ID => crate::admin::view_message(broker, &request).await,
            RequestCode::END_TRANSACTION => crate::send::end_transaction(broker, &request).await,
            RequestCode::GET_CONSUMER_RUNNING_INFO | RequestCode::CONSUME_MESSAGE_DIRECTLY => {
                crate::admin::relay_to_consumer(broker, &request).await
            }
            code => match crate::admin::handle(broker, code, &request).await {
                Some(reply) => reply,
                None => Reply::code_not_supported(&request),
            },
        };
        Some(reply)
    }

    fn on_close(&self, connection: &Connection) {
        for group in self.broker.clients.connection_closed(connection) {
            self.broker.notify_consumer_ids_changed(&group);
        }
    }
}
