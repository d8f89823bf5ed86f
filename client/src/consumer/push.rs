//! The push consumer (Java `DefaultMQPushConsumer`, client.md §4–§5): rebalances the
//! subscribed topics' queues among the group, long-polls each of its queues, and hands
//! messages to the listener on the consume threads.
//!
//! Tasks: one rebalance loop (every `rebalance_interval` and on NOTIFY_CONSUMER_IDS_CHANGED),
//! one pull loop per owned queue, an offset-commit timer, and for orderly clustering
//! consumers a lock timer.
//!
//! ```no_run
//! use ferromq_client::consumer::{ConsumeConcurrentlyStatus, MessageListener, PushConsumer, PushConsumerConfig};
//!
//! # async fn demo() -> ferromq_client::Result<()> {
//! let mut config = PushConsumerConfig::new("example_consumer_group");
//! config.client.namesrv_addr = vec!["127.0.0.1:9876".into()];
//! let listener = MessageListener::concurrently(|messages: &[ferromq_client::MessageExt], _: &mut _| {
//!     for message in messages {
//!         println!("{} {:?}", message.client_msg_id(), message.message.body);
//!     }
//!     ConsumeConcurrentlyStatus::ConsumeSuccess
//! });
//! let consumer = PushConsumer::new(config, listener)?;
//! consumer.subscribe("TopicTest", "TagA || TagB")?;
//! consumer.start().await?;
//! # consumer.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use ferromq_remoting::ResponseCode;
use ferromq_remoting::bodies::{
    ConsumeFromWhere, ConsumeType, ConsumerData, MessageModel, MessageQueue, SubscriptionData,
};
use ferromq_remoting::headers::pull_sys_flag;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use super::offset_store::{OffsetStore, ReadOffsetType};
use super::pool::ConsumePool;
use super::process_queue::ProcessQueue;
use super::pull::{PullApi, PullSpec, PullStatus};
use super::rebalance::{PULL_MAX_IDLE_MS, allocate_topic, compute_pull_from_where};
use super::{AllocateStrategy, MessageListener, consume, retry_topic, subscription};
use crate::broker_calls;
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::instance::{CLIENT_INNER_PRODUCER_GROUP, ClientInstance, MemberConsumer};
use crate::producer::send::Sender;
use crate::producer::{ProducerConfig, check_group_name, invalid};

/// Pause after local flow control (Java `PULL_TIME_DELAY_MILLS_WHEN_FLOW_CONTROL`).
const FLOW_CONTROL_DELAY: Duration = Duration::from_millis(50);
/// Pause after the broker's FLOW_CONTROL answer.
const BROKER_FLOW_CONTROL_DELAY: Duration = Duration::from_millis(20);
/// Wait after OFFSET_ILLEGAL before the corrected offset is committed.
const OFFSET_ILLEGAL_DELAY: Duration = Duration::from_secs(10);

/// Push consumer settings with the Java defaults (client.md §4.1). Ranges are checked by
/// [`PushConsumerConfig::validate`].
#[derive(Debug, Clone)]
pub struct PushConsumerConfig {
    /// `consumerGroup` (required), not `DEFAULT_CONSUMER`.
    pub group: String,
    /// Shared client settings.
    pub client: ClientConfig,
    /// `messageModel`. Default clustering.
    pub message_model: MessageModel,
    /// `consumeFromWhere`: where a group without a committed offset starts. Default last
    /// offset.
    pub consume_from_where: ConsumeFromWhere,
    /// `consumeTimestamp` (`yyyyMMddHHmmss`, **UTC** here; Java uses local time) for
    /// `ConsumeFromTimestamp`. Default 30 minutes ago.
    pub consume_timestamp: String,
    /// `allocateMessageQueueStrategy`. Default averagely.
    pub allocate_strategy: AllocateStrategy,
    /// `consumeThreadMin`: consume threads. Default 20; 1..=1000.
    pub consume_thread_count: usize,
    /// `consumeConcurrentlyMaxSpan`: largest offset span cached per queue. Default 2000;
    /// 1..=65535.
    pub consume_concurrently_max_span: i64,
    /// `pullThresholdForQueue`: cached messages per queue before pulls pause. Default
    /// 1000; 1..=65535.
    pub pull_threshold_for_queue: usize,
    /// `pullThresholdSizeForQueue`: cached MiB per queue before pulls pause. Default 100;
    /// 1..=1024.
    pub pull_threshold_size_for_queue_mib: usize,
    /// `pullInterval`: pause between pulls of a queue. Default 0.
    pub pull_interval: Duration,
    /// `pullBatchSize`: messages per pull. Default 32; 1..=1024.
    pub pull_batch_size: i32,
    /// `consumeMessageBatchMaxSize`: messages per listener call. Default 1; 1..=1024.
    pub consume_message_batch_max_size: usize,
    /// `postSubscriptionWhenPull`: send the expression in every pull. Default false (the
    /// broker uses the heartbeat's subscription).
    pub post_subscription_when_pull: bool,
    /// `maxReconsumeTimes`: −1 means 16 for concurrent and unlimited for orderly.
    pub max_reconsume_times: i32,
    /// `suspendCurrentQueueTimeMillis`: orderly back-off. Default 1 s.
    pub suspend_current_queue_time: Duration,
    /// How long the broker may hold a pull. Default 15 s (Java's fixed value).
    pub broker_suspend_max_time: Duration,
    /// Client timeout of a pull. Default 30 s (Java's fixed value).
    pub pull_timeout: Duration,
    /// Orderly clustering: period of re-locking the owned queues. Default 20 s.
    pub lock_interval: Duration,
    /// At shutdown, how long to wait for listener calls already running. Default 5 s.
    pub await_termination: Duration,
    /// Broadcasting offsets live under `<dir>/<client id>/<group>/offsets.json`. Default
    /// `~/.rocketmq_offsets`.
    pub offset_store_dir: PathBuf,
}

impl PushConsumerConfig {
    /// Defaults for `group`.
    pub fn new(group: impl Into<String>) -> Self {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        Self {
            group: group.into(),
            client: ClientConfig::default(),
            message_model: MessageModel::Clustering,
            consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
            consume_timestamp: crate::util::format_timestamp_utc(
                crate::util::now_ms() - 30 * 60 * 1000,
            ),
            allocate_strategy: AllocateStrategy::Averagely,
            consume_thread_count: 20,
            consume_concurrently_max_span: 2000,
            pull_threshold_for_queue: 1000,
            pull_threshold_size_for_queue_mib: 100,
            pull_interval: Duration::ZERO,
            pull_batch_size: 32,
            consume_message_batch_max_size: 1,
            post_subscription_when_pull: false,
            max_reconsume_times: -1,
            suspend_current_queue_time: Duration::from_secs(1),
            broker_suspend_max_time: Duration::from_secs(15),
            pull_timeout: Duration::from_secs(30),
            lock_interval: Duration::from_secs(20),
            await_termination: Duration::from_secs(5),
            offset_store_dir: home.join(".rocketmq_offsets"),
        }
    }

    /// Checks every field's range.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        check_group_name("group", &self.group)?;
        if self.group == "DEFAULT_CONSUMER" {
            return Err(invalid("group", &self.group, "a group other than DEFAULT_CONSUMER"));
        }
        self.client.validate()?;
        let ranges: [(&'static str, i64, i64, i64); 6] = [
            ("consume_thread_count", self.consume_thread_count as i64, 1, 1000),
            ("consume_concurrently_max_span", self.consume_concurrently_max_span, 1, 65535),
            ("pull_threshold_for_queue", self.pull_threshold_for_queue as i64, 1, 65535),
            (
                "pull_threshold_size_for_queue_mib",
                self.pull_threshold_size_for_queue_mib as i64,
                1,
                1024,
            ),
            ("pull_batch_size", i64::from(self.pull_batch_size), 1, 1024),
            ("consume_message_batch_max_size", self.consume_message_batch_max_size as i64, 1, 1024),
        ];
        for (field, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(invalid(field, value, "within the documented range"));
            }
        }
        if crate::util::parse_timestamp_utc(&self.consume_timestamp).is_none() {
            return Err(invalid("consume_timestamp", &self.consume_timestamp, "yyyyMMddHHmmss"));
        }
        if self.max_reconsume_times < -1 {
            return Err(invalid("max_reconsume_times", self.max_reconsume_times, "≥ -1"));
        }
        Ok(())
    }
}

const CREATED: u8 = 0;
const RUNNING: u8 = 1;
const SHUT_DOWN: u8 = 2;

/// A push consumer. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct PushConsumer {
    inner: Arc<PushInner>,
}

/// Shared state of a push consumer; the consume services work on it.
#[derive(Debug)]
pub(super) struct PushInner {
    pub(super) config: PushConsumerConfig,
    pub(super) listener: MessageListener,
    pub(super) instance: Arc<ClientInstance>,
    subscriptions: RwLock<BTreeMap<String, SubscriptionData>>,
    process_queues: Mutex<BTreeMap<MessageQueue, Arc<ProcessQueue>>>,
    pub(super) offsets: OffsetStore,
    pull_api: PullApi,
    /// The internal producer (`CLIENT_INNER_PRODUCER`) for send-back fallbacks.
    pub(super) sender: Sender,
    pub(super) pool: ConsumePool,
    pub(super) runtime: OnceLock<tokio::runtime::Handle>,
    state: AtomicU8,
    /// Set at shutdown: queued consume jobs are skipped (their messages stay uncommitted).
    stopping: AtomicBool,
    stop: watch::Sender<bool>,
    consume_timestamp_ms: i64,
    rebalance_lock: tokio::sync::Mutex<()>,
}

impl PushConsumer {
    /// A consumer for `config` calling `listener`; subscribe before or after starting.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`]; [`Error::Io`] when a broadcasting group's offset file
    /// cannot be read.
    pub fn new(mut config: PushConsumerConfig, listener: MessageListener) -> Result<Self> {
        config.validate()?;
        if config.message_model == MessageModel::Clustering {
            config.client.change_instance_name_to_pid();
        }
        let instance = ClientInstance::new(config.client.clone());
        let offsets = match config.message_model {
            MessageModel::Clustering => OffsetStore::remote(instance.clone(), &config.group),
            MessageModel::Broadcasting => {
                OffsetStore::local(&config.offset_store_dir, &instance.client_id, &config.group)?
            }
        };
        let producer = ProducerConfig {
            client: config.client.clone(),
            ..ProducerConfig::new(CLIENT_INNER_PRODUCER_GROUP)
        };
        let sender = Sender::new(instance.clone(), producer);
        let consume_timestamp_ms =
            crate::util::parse_timestamp_utc(&config.consume_timestamp).unwrap_or_default();
        let (stop, _) = watch::channel(false);
        let pool =
            ConsumePool::new(&format!("consume-{}", config.group), config.consume_thread_count);
        let inner = Arc::new(PushInner {
            pull_api: PullApi::new(instance.clone()),
            listener,
            instance,
            subscriptions: RwLock::new(BTreeMap::new()),
            process_queues: Mutex::new(BTreeMap::new()),
            offsets,
            sender,
            pool,
            runtime: OnceLock::new(),
            state: AtomicU8::new(CREATED),
            stopping: AtomicBool::new(false),
            stop,
            consume_timestamp_ms,
            rebalance_lock: tokio::sync::Mutex::new(()),
            config,
        });
        Ok(Self { inner })
    }

    /// Subscribes to `topic` with a tag expression (`*`, `TagA || TagB`). On a running
    /// consumer the brokers learn it at once (heartbeat) and a rebalance follows.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a bad expression.
    pub fn subscribe(&self, topic: &str, expression: &str) -> Result<()> {
        let data = subscription::build_tag_subscription(topic, Some(expression))?;
        self.add_subscription(data);
        Ok(())
    }

    /// Subscribes with a SQL92 expression (the broker must enable property filtering).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an empty expression.
    pub fn subscribe_sql(&self, topic: &str, expression: &str) -> Result<()> {
        let data = subscription::build_sql_subscription(topic, expression)?;
        self.add_subscription(data);
        Ok(())
    }

    fn add_subscription(&self, data: SubscriptionData) {
        let topic = data.topic.clone();
        self.inner.subscriptions.write().insert(topic.clone(), data);
        if self.inner.state.load(Ordering::Acquire) == RUNNING {
            let inner = self.inner.clone();
            tokio::spawn(async move {
                if let Err(error) = inner.instance.update_route(&topic).await {
                    tracing::debug!(topic, %error, "route lookup failed");
                }
                inner.instance.send_heartbeat_to_all().await;
                inner.instance.wake_rebalance();
            });
        }
    }

    /// Stops consuming `topic` (its queues are dropped at the next rebalance).
    pub fn unsubscribe(&self, topic: &str) {
        self.inner.subscriptions.write().remove(topic);
    }

    /// Starts: routes, heartbeat, then rebalance and pulls (client.md §4.2).
    ///
    /// # Errors
    ///
    /// [`Error::NotRunning`] when shut down before, [`Error::InvalidArgument`] without any
    /// subscription.
    pub async fn start(&self) -> Result<()> {
        let inner = &self.inner;
        match inner.state.compare_exchange(CREATED, RUNNING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {}
            Err(RUNNING) => return Ok(()),
            Err(_) => return Err(Error::NotRunning("the consumer was shut down")),
        }
        if inner.subscriptions.read().is_empty() {
            inner.state.store(CREATED, Ordering::Release);
            return Err(Error::InvalidArgument("subscribe to at least one topic first".into()));
        }
        let _ = inner.runtime.set(tokio::runtime::Handle::current());
        if inner.config.message_model == MessageModel::Clustering {
            let retry =
                subscription::build_tag_subscription(&retry_topic(&inner.config.group), None)?;
            inner.subscriptions.write().insert(retry.topic.clone(), retry);
        }
        let member: Weak<dyn MemberConsumer> = Arc::downgrade(inner) as Weak<PushInner>;
        inner.instance.register_consumer(member);
        inner.instance.start();
        for topic in inner.topics() {
            if let Err(error) = inner.instance.update_route(&topic).await {
                tracing::warn!(topic, %error, "no route yet; the rebalance will retry");
            }
        }
        inner.instance.send_heartbeat_to_all().await;
        self.spawn_loops();
        Ok(())
    }

    fn spawn_loops(&self) {
        let inner = &self.inner;
        let rebalance = tokio::spawn(rebalance_loop(Arc::downgrade(inner)));
        inner.instance.keep_task(rebalance);
        let weak = Arc::downgrade(inner);
        let persist_every = inner.config.client.persist_consumer_offset_interval;
        let persist = inner.instance.spawn_periodic(persist_every, persist_every, move |_| {
            let weak = weak.clone();
            async move {
                if let Some(inner) = weak.upgrade() {
                    inner.persist_all().await;
                }
            }
        });
        inner.instance.keep_task(persist);
        if inner.listener.is_orderly() && inner.config.message_model == MessageModel::Clustering {
            let weak = Arc::downgrade(inner);
            let every = inner.config.lock_interval;
            let locks = inner.instance.spawn_periodic(
                Duration::from_secs(1).min(every),
                every,
                move |_| {
                    let weak = weak.clone();
                    async move {
                        if let Some(inner) = weak.upgrade() {
                            inner.lock_all().await;
                        }
                    }
                },
            );
            inner.instance.keep_task(locks);
        }
    }

    /// Stops pulling, lets running listener calls finish (up to `await_termination`),
    /// commits offsets, unlocks orderly queues, unregisters and closes connections.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if inner.state.swap(SHUT_DOWN, Ordering::AcqRel) != RUNNING {
            return;
        }
        inner.stopping.store(true, Ordering::Release);
        inner.stop.send_replace(true);
        let pool_inner = inner.clone();
        let wait = inner.config.await_termination;
        let idle = tokio::task::spawn_blocking(move || pool_inner.pool.wait_idle(wait)).await;
        if !matches!(idle, Ok(true)) {
            tracing::warn!(group = %inner.config.group, "listener calls still running at shutdown");
        }
        inner.pool.shutdown();
        inner.persist_all().await;
        if inner.listener.is_orderly() && inner.config.message_model == MessageModel::Clustering {
            inner.unlock_all().await;
        }
        for queue in inner.process_queues.lock().values() {
            queue.set_dropped();
        }
        inner.instance.unregister(None, Some(&inner.config.group)).await;
        inner.instance.shutdown();
    }

    /// The client id the brokers see.
    pub fn client_id(&self) -> &str {
        &self.inner.instance.client_id
    }

    /// The queues this consumer currently owns (retry queues included).
    pub fn assigned_queues(&self) -> Vec<MessageQueue> {
        self.inner.process_queues.lock().keys().cloned().collect()
    }

    /// The in-memory committed offset of `queue` (what the next commit sends).
    pub fn committed_offset(&self, queue: &MessageQueue) -> Option<i64> {
        self.inner.offsets.memory(queue)
    }

    /// Runs a rebalance now (normally every `rebalance_interval` and on notification).
    pub async fn rebalance_now(&self) {
        self.inner.rebalance_all().await;
    }
}

impl MemberConsumer for PushInner {
    fn consumer_data(&self) -> ConsumerData {
        ConsumerData {
            group_name: self.config.group.clone(),
            consume_type: ConsumeType::ConsumePassively,
            message_model: self.config.message_model,
            consume_from_where: self.config.consume_from_where,
            subscription_data_set: self.subscriptions.read().values().cloned().collect(),
            unit_mode: false,
        }
    }

    fn topics(&self) -> Vec<String> {
        self.subscriptions.read().keys().cloned().collect()
    }
}

async fn rebalance_loop(weak: Weak<PushInner>) {
    let Some(inner) = weak.upgrade() else { return };
    let mut signal = inner.instance.rebalance_signal();
    let mut stop = inner.stop.subscribe();
    let interval = inner.config.client.rebalance_interval;
    drop(inner);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if *stop.borrow() {
            return;
        }
        inner.rebalance_all().await;
        drop(inner);
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            changed = signal.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

impl PushInner {
    pub(super) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    fn is_running(&self) -> bool {
        self.state.load(Ordering::Acquire) == RUNNING && !self.is_stopping()
    }

    fn subscription(&self, topic: &str) -> Option<SubscriptionData> {
        self.subscriptions.read().get(topic).cloned()
    }

    /// The allocated queues of every topic.
    fn allocated(&self) -> BTreeSet<MessageQueue> {
        self.process_queues.lock().keys().cloned().collect()
    }

    /// The effective max reconsume times: 16 concurrent, unlimited orderly, unless set.
    pub(super) fn max_reconsume_times(&self) -> i32 {
        match (self.config.max_reconsume_times, self.listener.is_orderly()) {
            (-1, false) => 16,
            (-1, true) => i32::MAX,
            (times, _) => times,
        }
    }

    pub(super) async fn persist_all(&self) {
        self.offsets.persist_all(&self.allocated()).await;
    }

    // ----- rebalance -----

    async fn rebalance_all(self: &Arc<Self>) {
        if !self.is_running() {
            return;
        }
        let _one_at_a_time = self.rebalance_lock.lock().await;
        let subscriptions: Vec<String> = self.subscriptions.read().keys().cloned().collect();
        for topic in &subscriptions {
            let Some(allocated) = allocate_topic(
                &self.instance,
                &self.config.group,
                self.config.message_model,
                self.config.allocate_strategy,
                topic,
            )
            .await
            else {
                continue;
            };
            self.update_process_queues(topic, &allocated).await;
        }
        // Queues of topics no longer subscribed.
        let stale: Vec<(MessageQueue, Arc<ProcessQueue>)> = self
            .process_queues
            .lock()
            .iter()
            .filter(|(queue, _)| !subscriptions.contains(&queue.topic))
            .map(|(queue, pq)| (queue.clone(), pq.clone()))
            .collect();
        for (queue, pq) in stale {
            pq.set_dropped();
            if self.remove_unnecessary(&queue, &pq).await {
                self.process_queues.lock().remove(&queue);
            }
        }
    }

    /// Java `updateProcessQueueTableInRebalance` (client.md §5.4).
    async fn update_process_queues(
        self: &Arc<Self>,
        topic: &str,
        allocated: &BTreeSet<MessageQueue>,
    ) {
        let mut changed = false;
        let current: Vec<(MessageQueue, Arc<ProcessQueue>)> = self
            .process_queues
            .lock()
            .iter()
            .filter(|(queue, _)| queue.topic == topic)
            .map(|(queue, pq)| (queue.clone(), pq.clone()))
            .collect();
        for (queue, pq) in current {
            let expired = pq.is_pull_expired(PULL_MAX_IDLE_MS);
            if allocated.contains(&queue) && !expired {
                continue;
            }
            pq.set_dropped();
            if self.remove_unnecessary(&queue, &pq).await {
                self.process_queues.lock().remove(&queue);
                changed = true;
                tracing::info!(group = %self.config.group, ?queue, expired, "queue released");
            }
        }
        let mut started = Vec::new();
        for queue in allocated {
            if self.process_queues.lock().contains_key(queue) {
                continue;
            }
            let orderly_clustering =
                self.listener.is_orderly() && self.config.message_model == MessageModel::Clustering;
            if orderly_clustering && !self.lock_one(queue).await {
                continue;
            }
            self.offsets.remove(queue);
            let Some(next_offset) = compute_pull_from_where(
                &self.instance,
                &self.offsets,
                self.config.consume_from_where,
                self.consume_timestamp_ms,
                queue,
                ReadOffsetType::Store,
            )
            .await
            else {
                continue;
            };
            let pq = Arc::new(ProcessQueue::default());
            pq.set_locked(true);
            self.process_queues.lock().insert(queue.clone(), pq.clone());
            tracing::info!(group = %self.config.group, ?queue, next_offset, "queue taken");
            started.push((queue.clone(), pq, next_offset));
            changed = true;
        }
        if changed {
            if let Some(data) = self.subscriptions.write().get_mut(topic) {
                data.sub_version = crate::util::now_ms();
            }
            self.instance.send_heartbeat_to_all().await;
        }
        for (queue, pq, next_offset) in started {
            tokio::spawn(pull_loop(self.clone(), queue, pq, next_offset));
        }
    }

    /// Java `removeUnnecessaryMessageQueue`: commits and forgets the queue's offset;
    /// orderly clustering consumers also unlock it once no listener call is running.
    async fn remove_unnecessary(&self, queue: &MessageQueue, pq: &Arc<ProcessQueue>) -> bool {
        self.offsets.persist(queue).await;
        self.offsets.remove(queue);
        self.pull_api.forget(queue);
        if !(self.listener.is_orderly() && self.config.message_model == MessageModel::Clustering) {
            return true;
        }
        let waiting = pq.clone();
        let idle = tokio::task::spawn_blocking(move || {
            waiting.consume_lock.try_lock_for(Duration::from_secs(1)).is_some()
        })
        .await
        .unwrap_or(false);
        if !idle {
            return false;
        }
        let result = broker_calls::unlock_batch(
            &self.instance,
            &self.config.group,
            &queue.broker_name,
            vec![queue.clone()],
            true,
        )
        .await;
        if let Err(error) = result {
            tracing::debug!(?queue, %error, "unlock failed");
        }
        true
    }

    // ----- locks (orderly clustering) -----

    async fn lock_one(&self, queue: &MessageQueue) -> bool {
        let result = broker_calls::lock_batch(
            &self.instance,
            &self.config.group,
            &queue.broker_name,
            vec![queue.clone()],
        )
        .await;
        match result {
            Ok(locked) => {
                let granted = locked.contains(queue);
                if let Some(pq) = self.process_queues.lock().get(queue) {
                    pq.set_locked(granted);
                }
                granted
            }
            Err(error) => {
                tracing::debug!(?queue, %error, "lock failed");
                false
            }
        }
    }

    pub(super) async fn lock_queue(&self, queue: &MessageQueue) -> bool {
        self.lock_one(queue).await
    }

    async fn lock_all(&self) {
        let queues = self.process_queues.lock().clone();
        let mut by_broker: BTreeMap<String, Vec<MessageQueue>> = BTreeMap::new();
        for queue in queues.keys() {
            by_broker.entry(queue.broker_name.clone()).or_default().push(queue.clone());
        }
        for (broker, wanted) in by_broker {
            let locked = match broker_calls::lock_batch(
                &self.instance,
                &self.config.group,
                &broker,
                wanted.clone(),
            )
            .await
            {
                Ok(locked) => locked,
                Err(error) => {
                    tracing::debug!(broker, %error, "lock batch failed");
                    BTreeSet::new()
                }
            };
            for queue in wanted {
                if let Some(pq) = queues.get(&queue) {
                    pq.set_locked(locked.contains(&queue));
                }
            }
        }
    }

    async fn unlock_all(&self) {
        let mut by_broker: BTreeMap<String, Vec<MessageQueue>> = BTreeMap::new();
        for queue in self.process_queues.lock().keys() {
            by_broker.entry(queue.broker_name.clone()).or_default().push(queue.clone());
        }
        for (broker, queues) in by_broker {
            let result = broker_calls::unlock_batch(
                &self.instance,
                &self.config.group,
                &broker,
                queues,
                false,
            )
            .await;
            if let Err(error) = result {
                tracing::debug!(broker, %error, "unlock failed");
            }
        }
    }

    // ----- pulling -----

    fn remove_process_queue(&self, queue: &MessageQueue, pq: &Arc<ProcessQueue>) {
        let mut queues = self.process_queues.lock();
        if queues.get(queue).is_some_and(|current| Arc::ptr_eq(current, pq)) {
            queues.remove(queue);
        }
    }
}

/// One queue's pull loop (client.md §4.3): runs until the queue is dropped or the consumer
/// stops.
async fn pull_loop(
    inner: Arc<PushInner>,
    queue: MessageQueue,
    pq: Arc<ProcessQueue>,
    mut next_offset: i64,
) {
    let mut stop = inner.stop.subscribe();
    let mut previously_locked = false;
    let orderly = inner.listener.is_orderly();
    let clustering = inner.config.message_model == MessageModel::Clustering;
    let exception_delay = inner.config.client.pull_time_delay_when_exception;
    let size_limit = inner.config.pull_threshold_size_for_queue_mib * 1024 * 1024;
    loop {
        if pq.is_dropped() || *stop.borrow() {
            return;
        }
        pq.touch_pull();
        let delay = if pq.count() > inner.config.pull_threshold_for_queue
            || pq.size_bytes() > size_limit
            || (!orderly && pq.span() > inner.config.consume_concurrently_max_span)
        {
            Some(FLOW_CONTROL_DELAY)
        } else if orderly && clustering && !pq.is_locked() {
            Some(exception_delay)
        } else {
            None
        };
        if let Some(delay) = delay {
            if sleep_or_stop(&mut stop, delay).await {
                return;
            }
            continue;
        }
        if orderly && !previously_locked {
            match compute_pull_from_where(
                &inner.instance,
                &inner.offsets,
                inner.config.consume_from_where,
                inner.consume_timestamp_ms,
                &queue,
                ReadOffsetType::Store,
            )
            .await
            {
                Some(offset) => {
                    next_offset = offset;
                    previously_locked = true;
                }
                None => {
                    if sleep_or_stop(&mut stop, exception_delay).await {
                        return;
                    }
                    continue;
                }
            }
        }
        let Some(subscription) = inner.subscription(&queue.topic) else {
            if sleep_or_stop(&mut stop, exception_delay).await {
                return;
            }
            continue;
        };
        let commit_offset = if clustering {
            inner.offsets.memory(&queue).filter(|offset| *offset > 0)
        } else {
            None
        };
        let mut sys_flag = pull_sys_flag::SUSPEND;
        if commit_offset.is_some() {
            sys_flag |= pull_sys_flag::COMMIT_OFFSET;
        }
        if inner.config.post_subscription_when_pull {
            sys_flag |= pull_sys_flag::SUBSCRIPTION;
        }
        let spec = PullSpec {
            group: &inner.config.group,
            queue: &queue,
            offset: next_offset,
            max_nums: inner.config.pull_batch_size,
            sys_flag,
            commit_offset: commit_offset.unwrap_or(0),
            suspend_timeout: inner.config.broker_suspend_max_time,
            subscription: &subscription,
            timeout: inner.config.pull_timeout,
        };
        let result = tokio::select! {
            result = inner.pull_api.pull(&spec) => result,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let delay = match result {
            Ok(result) => match result.status {
                PullStatus::Found => {
                    next_offset = result.next_begin_offset;
                    if !result.messages.is_empty() {
                        consume::dispatch(&inner, &queue, &pq, result.messages);
                        (!inner.config.pull_interval.is_zero())
                            .then_some(inner.config.pull_interval)
                    } else {
                        None
                    }
                }
                PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {
                    next_offset = result.next_begin_offset;
                    if pq.is_empty() {
                        inner.offsets.update(&queue, result.next_begin_offset, true);
                    }
                    None
                }
                PullStatus::OffsetIllegal => {
                    tracing::warn!(
                        ?queue,
                        offset = next_offset,
                        next = result.next_begin_offset,
                        "pull offset illegal; queue dropped for 10 s"
                    );
                    pq.set_dropped();
                    let corrected = result.next_begin_offset;
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(OFFSET_ILLEGAL_DELAY).await;
                        inner.offsets.update(&queue, corrected, false);
                        inner.offsets.persist(&queue).await;
                        inner.remove_process_queue(&queue, &pq);
                    });
                    return;
                }
            },
            Err(error) if error.response_code() == Some(ResponseCode::FLOW_CONTROL.code()) => {
                Some(BROKER_FLOW_CONTROL_DELAY)
            }
            Err(error) => {
                tracing::debug!(?queue, %error, "pull failed");
                Some(exception_delay)
            }
        };
        if let Some(delay) = delay
            && sleep_or_stop(&mut stop, delay).await
        {
            return;
        }
    }
}

/// Sleeps `delay`; true when the consumer stopped meanwhile.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(delay) => false,
        _ = stop.wait_for(|stop| *stop) => true,
    };
    stopped || *stop.borrow()
}
