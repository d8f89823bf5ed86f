//! The lite pull consumer (Java `DefaultLitePullConsumer`, client.md §8): the application
//! calls [`LitePullConsumer::poll`]; background tasks keep a small cache of pulled batches
//! per queue. Queues come from a subscription (rebalanced among the group) or are assigned
//! explicitly. Offsets are committed automatically or with [`LitePullConsumer::commit_sync`];
//! failed messages are never retried.
//!
//! ```no_run
//! use std::time::Duration;
//! use ferromq_client::consumer::{LitePullConsumer, LitePullConsumerConfig};
//!
//! # async fn demo() -> ferromq_client::Result<()> {
//! let mut config = LitePullConsumerConfig::new("example_pull_group");
//! config.client.namesrv_addr = vec!["127.0.0.1:9876".into()];
//! let consumer = LitePullConsumer::new(config)?;
//! consumer.subscribe("TopicTest", "*")?;
//! consumer.start().await?;
//! let messages = consumer.poll(Duration::from_secs(1)).await;
//! consumer.commit_sync().await;
//! # consumer.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ferromq_message::MessageExt;
use ferromq_remoting::ResponseCode;
use ferromq_remoting::bodies::{
    ConsumeFromWhere, ConsumeType, ConsumerData, MessageModel, MessageQueue, SubscriptionData,
};
use ferromq_remoting::headers::pull_sys_flag;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, watch};

use super::offset_store::{OffsetStore, ReadOffsetType};
use super::process_queue::ProcessQueue;
use super::pull::{PullApi, PullSpec, PullStatus};
use super::rebalance::{allocate_topic, compute_pull_from_where};
use super::{AllocateStrategy, subscription};
use crate::broker_calls;
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::instance::{ClientInstance, MemberConsumer};
use crate::producer::{check_group_name, invalid};

/// Lite pull consumer settings with the Java defaults (client.md §8).
#[derive(Debug, Clone)]
pub struct LitePullConsumerConfig {
    /// `consumerGroup` (required).
    pub group: String,
    /// Shared client settings.
    pub client: ClientConfig,
    /// `messageModel`. Default clustering.
    pub message_model: MessageModel,
    /// Allocation among the group in subscribe mode. Default averagely.
    pub allocate_strategy: AllocateStrategy,
    /// Where a queue without a committed offset starts. Default last offset.
    pub consume_from_where: ConsumeFromWhere,
    /// `consumeTimestamp` (`yyyyMMddHHmmss`, UTC). Default 30 minutes ago.
    pub consume_timestamp: String,
    /// `autoCommit`: commit consumed offsets from `poll`. Default true.
    pub auto_commit: bool,
    /// `autoCommitIntervalMillis`. Default 5 s; at least 1 s.
    pub auto_commit_interval: Duration,
    /// `pullBatchSize`: messages per pull. Default 10; 1..=1024.
    pub pull_batch_size: i32,
    /// `pullThresholdForAll`: cached messages over all queues before pulls pause. Default
    /// 10,000.
    pub pull_threshold_for_all: usize,
    /// `pullThresholdForQueue`. Default 1000.
    pub pull_threshold_for_queue: usize,
    /// `pullThresholdSizeForQueue`, MiB. Default 100.
    pub pull_threshold_size_for_queue_mib: usize,
    /// `consumeMaxSpan`. Default 2000.
    pub consume_max_span: i64,
    /// `brokerSuspendMaxTimeMillis`: how long the broker may hold a pull. Default 20 s.
    pub broker_suspend_max_time: Duration,
    /// `consumerTimeoutMillisWhenSuspend`: a pull's client timeout. Default 30 s.
    pub pull_timeout: Duration,
    /// Broadcasting offsets directory. Default `~/.rocketmq_offsets`.
    pub offset_store_dir: PathBuf,
}

impl LitePullConsumerConfig {
    /// Defaults for `group`.
    pub fn new(group: impl Into<String>) -> Self {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        Self {
            group: group.into(),
            client: ClientConfig::default(),
            message_model: MessageModel::Clustering,
            allocate_strategy: AllocateStrategy::Averagely,
            consume_from_where: ConsumeFromWhere::ConsumeFromLastOffset,
            consume_timestamp: crate::util::format_timestamp_utc(
                crate::util::now_ms() - 30 * 60 * 1000,
            ),
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            pull_batch_size: 10,
            pull_threshold_for_all: 10_000,
            pull_threshold_for_queue: 1000,
            pull_threshold_size_for_queue_mib: 100,
            consume_max_span: 2000,
            broker_suspend_max_time: Duration::from_secs(20),
            pull_timeout: Duration::from_secs(30),
            offset_store_dir: home.join(".rocketmq_offsets"),
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        check_group_name("group", &self.group)?;
        self.client.validate()?;
        if !(1..=1024).contains(&self.pull_batch_size) {
            return Err(invalid("pull_batch_size", self.pull_batch_size, "1..=1024"));
        }
        if self.auto_commit_interval < Duration::from_secs(1) {
            return Err(invalid(
                "auto_commit_interval",
                format!("{:?}", self.auto_commit_interval),
                "at least 1 s",
            ));
        }
        if crate::util::parse_timestamp_utc(&self.consume_timestamp).is_none() {
            return Err(invalid("consume_timestamp", &self.consume_timestamp, "yyyyMMddHHmmss"));
        }
        if self.broker_suspend_max_time >= self.pull_timeout {
            return Err(invalid(
                "broker_suspend_max_time",
                format!("{:?}", self.broker_suspend_max_time),
                "shorter than pull_timeout",
            ));
        }
        Ok(())
    }
}

const CREATED: u8 = 0;
const RUNNING: u8 = 1;
const SHUT_DOWN: u8 = 2;

/// Subscribe or assign mode (mutually exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unset,
    Subscribe,
    Assign,
}

/// A lite pull consumer. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct LitePullConsumer {
    inner: Arc<LiteInner>,
}

#[derive(Debug)]
struct LiteInner {
    config: LitePullConsumerConfig,
    instance: Arc<ClientInstance>,
    offsets: OffsetStore,
    pull_api: PullApi,
    mode: Mutex<Mode>,
    subscriptions: RwLock<BTreeMap<String, SubscriptionData>>,
    queues: Mutex<BTreeMap<MessageQueue, Arc<LiteQueue>>>,
    ready: Mutex<VecDeque<Batch>>,
    ready_signal: Notify,
    /// Messages in `ready`, for `pull_threshold_for_all`.
    ready_count: AtomicU64,
    next_auto_commit: Mutex<Instant>,
    state: AtomicU8,
    stop: watch::Sender<bool>,
    consume_timestamp_ms: i64,
}

/// One owned queue.
#[derive(Debug, Default)]
struct LiteQueue {
    pq: ProcessQueue,
    seek: Mutex<Option<i64>>,
    paused: AtomicBool,
    /// Offset after the last polled batch, −1 when nothing was polled.
    consumed: AtomicI64,
    /// Bumped by seeks: batches of an older generation are dropped.
    generation: AtomicU64,
    /// Interrupts a held pull after a seek.
    wake: Notify,
}

#[derive(Debug)]
struct Batch {
    queue: MessageQueue,
    generation: u64,
    messages: Vec<MessageExt>,
}

impl LitePullConsumer {
    /// A consumer for `config`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`], or [`Error::Io`] for a broadcasting offset file.
    pub fn new(mut config: LitePullConsumerConfig) -> Result<Self> {
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
        let (stop, _) = watch::channel(false);
        let consume_timestamp_ms =
            crate::util::parse_timestamp_utc(&config.consume_timestamp).unwrap_or_default();
        Ok(Self {
            inner: Arc::new(LiteInner {
                next_auto_commit: Mutex::new(Instant::now() + config.auto_commit_interval),
                pull_api: PullApi::new(instance.clone()),
                instance,
                offsets,
                mode: Mutex::new(Mode::Unset),
                subscriptions: RwLock::new(BTreeMap::new()),
                queues: Mutex::new(BTreeMap::new()),
                ready: Mutex::new(VecDeque::new()),
                ready_signal: Notify::new(),
                ready_count: AtomicU64::new(0),
                state: AtomicU8::new(CREATED),
                stop,
                consume_timestamp_ms,
                config,
            }),
        })
    }

    fn set_mode(&self, wanted: Mode) -> Result<()> {
        let mut mode = self.inner.mode.lock();
        if *mode != Mode::Unset && *mode != wanted {
            return Err(Error::InvalidArgument(
                "subscribe and assign are mutually exclusive".into(),
            ));
        }
        *mode = wanted;
        Ok(())
    }

    /// Subscribes to `topic` with a tag expression; the group's rebalance assigns queues.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a bad expression or after [`LitePullConsumer::assign`].
    pub fn subscribe(&self, topic: &str, expression: &str) -> Result<()> {
        self.set_mode(Mode::Subscribe)?;
        let data = subscription::build_tag_subscription(topic, Some(expression))?;
        self.inner.subscriptions.write().insert(topic.to_owned(), data);
        if self.inner.state.load(Ordering::Acquire) == RUNNING {
            self.inner.instance.wake_rebalance();
        }
        Ok(())
    }

    /// Takes exactly `queues` (no rebalance), pulling every message (`*`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] after [`LitePullConsumer::subscribe`].
    pub fn assign(&self, queues: Vec<MessageQueue>) -> Result<()> {
        self.set_mode(Mode::Assign)?;
        {
            let mut subscriptions = self.inner.subscriptions.write();
            for queue in &queues {
                if !subscriptions.contains_key(&queue.topic) {
                    let data = subscription::build_tag_subscription(&queue.topic, None)?;
                    subscriptions.insert(queue.topic.clone(), data);
                }
            }
        }
        let wanted: BTreeSet<MessageQueue> = queues.into_iter().collect();
        if self.inner.state.load(Ordering::Acquire) == RUNNING {
            self.inner.update_queues(None, &wanted);
        } else {
            let mut table = self.inner.queues.lock();
            table.clear();
            for queue in wanted {
                table.insert(queue, Arc::new(LiteQueue::new()));
            }
        }
        Ok(())
    }

    /// Starts pulling (and, in subscribe mode, rebalancing).
    ///
    /// # Errors
    ///
    /// [`Error::NotRunning`] after shutdown; [`Error::InvalidArgument`] with neither a
    /// subscription nor an assignment.
    pub async fn start(&self) -> Result<()> {
        let inner = &self.inner;
        match inner.state.compare_exchange(CREATED, RUNNING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {}
            Err(RUNNING) => return Ok(()),
            Err(_) => return Err(Error::NotRunning("the consumer was shut down")),
        }
        let mode = *inner.mode.lock();
        if mode == Mode::Unset {
            inner.state.store(CREATED, Ordering::Release);
            return Err(Error::InvalidArgument("subscribe or assign first".into()));
        }
        let member: Weak<dyn MemberConsumer> = Arc::downgrade(inner) as Weak<LiteInner>;
        inner.instance.register_consumer(member);
        inner.instance.start();
        let topics: Vec<String> = inner.subscriptions.read().keys().cloned().collect();
        for topic in topics {
            if let Err(error) = inner.instance.update_route(&topic).await {
                tracing::warn!(topic, %error, "no route yet");
            }
        }
        inner.instance.send_heartbeat_to_all().await;
        if mode == Mode::Subscribe {
            let task = tokio::spawn(rebalance_loop(Arc::downgrade(inner)));
            inner.instance.keep_task(task);
        } else {
            let queues: Vec<(MessageQueue, Arc<LiteQueue>)> =
                inner.queues.lock().iter().map(|(q, l)| (q.clone(), l.clone())).collect();
            for (queue, lite) in queues {
                tokio::spawn(pull_task(inner.clone(), queue, lite));
            }
        }
        let weak = Arc::downgrade(inner);
        let every = inner.config.client.persist_consumer_offset_interval;
        let persist = inner.instance.spawn_periodic(every, every, move |_| {
            let weak = weak.clone();
            async move {
                if let Some(inner) = weak.upgrade() {
                    inner.persist_all().await;
                }
            }
        });
        inner.instance.keep_task(persist);
        Ok(())
    }

    /// Commits (if auto-commit is on), unregisters and closes connections.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        if inner.state.swap(SHUT_DOWN, Ordering::AcqRel) != RUNNING {
            return;
        }
        inner.stop.send_replace(true);
        if inner.config.auto_commit {
            inner.commit_consumed();
        }
        inner.persist_all().await;
        for lite in inner.queues.lock().values() {
            lite.pq.set_dropped();
        }
        inner.instance.unregister(None, Some(&inner.config.group)).await;
        inner.instance.shutdown();
    }

    /// The messages of one pulled batch (one queue), waiting up to `timeout`; empty when
    /// nothing arrived. With auto-commit, offsets of earlier polls are committed once per
    /// `auto_commit_interval`.
    pub async fn poll(&self, timeout: Duration) -> Vec<MessageExt> {
        let inner = &self.inner;
        if inner.config.auto_commit {
            let due = {
                let mut next = inner.next_auto_commit.lock();
                let now = Instant::now();
                if now >= *next {
                    *next = now + inner.config.auto_commit_interval;
                    true
                } else {
                    false
                }
            };
            if due {
                inner.commit_consumed();
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = inner.ready_signal.notified();
            if let Some(messages) = inner.take_batch() {
                return messages;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return inner.take_batch().unwrap_or_default();
            }
        }
    }

    /// Commits every queue's polled offset now (memory, then the broker or the file).
    pub async fn commit_sync(&self) {
        self.inner.commit_consumed();
        self.inner.persist_all().await;
    }

    /// Moves `queue`'s next pull to `offset` (within the queue's min..=max offsets),
    /// dropping what is cached.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an unassigned queue or an offset out of range; broker
    /// errors of the range lookup.
    pub async fn seek(&self, queue: &MessageQueue, offset: i64) -> Result<()> {
        let lite = self.assigned(queue)?;
        let min = broker_calls::min_offset(&self.inner.instance, queue).await?;
        let max = broker_calls::max_offset(&self.inner.instance, queue).await?;
        if offset < min || offset > max {
            return Err(Error::InvalidArgument(format!(
                "seek offset {offset} is outside the queue's range {min}..={max}"
            )));
        }
        lite.generation.fetch_add(1, Ordering::AcqRel);
        *lite.seek.lock() = Some(offset);
        lite.pq.clear();
        lite.consumed.store(-1, Ordering::Release);
        lite.wake.notify_one();
        Ok(())
    }

    /// Seeks to the queue's first available offset.
    ///
    /// # Errors
    ///
    /// As [`LitePullConsumer::seek`].
    pub async fn seek_to_begin(&self, queue: &MessageQueue) -> Result<()> {
        let min = broker_calls::min_offset(&self.inner.instance, queue).await?;
        self.seek(queue, min).await
    }

    /// Seeks past the queue's last message.
    ///
    /// # Errors
    ///
    /// As [`LitePullConsumer::seek`].
    pub async fn seek_to_end(&self, queue: &MessageQueue) -> Result<()> {
        let max = broker_calls::max_offset(&self.inner.instance, queue).await?;
        self.seek(queue, max).await
    }

    /// The committed offset of `queue` (memory first, then the store); negative when none.
    pub async fn committed(&self, queue: &MessageQueue) -> i64 {
        self.inner.offsets.read(queue, ReadOffsetType::MemoryFirstThenStore).await
    }

    /// Stops pulling `queues` until [`LitePullConsumer::resume`].
    pub fn pause(&self, queues: &[MessageQueue]) {
        for queue in queues {
            if let Some(lite) = self.inner.queues.lock().get(queue) {
                lite.paused.store(true, Ordering::Release);
            }
        }
    }

    /// Resumes pulling `queues`.
    pub fn resume(&self, queues: &[MessageQueue]) {
        for queue in queues {
            if let Some(lite) = self.inner.queues.lock().get(queue) {
                lite.paused.store(false, Ordering::Release);
            }
        }
    }

    /// The queues currently owned.
    pub fn assignment(&self) -> Vec<MessageQueue> {
        self.inner.queues.lock().keys().cloned().collect()
    }

    /// Every readable queue of `topic` (for `assign`).
    ///
    /// # Errors
    ///
    /// [`Error::NoRoute`] when the topic has no route.
    pub async fn fetch_message_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        self.inner
            .instance
            .subscribe_queues(topic)
            .await
            .map(|queues| queues.into_iter().collect())
            .ok_or_else(|| Error::NoRoute { topic: topic.to_owned() })
    }

    /// The client id the brokers see.
    pub fn client_id(&self) -> &str {
        &self.inner.instance.client_id
    }

    fn assigned(&self, queue: &MessageQueue) -> Result<Arc<LiteQueue>> {
        self.inner.queues.lock().get(queue).cloned().ok_or_else(|| {
            Error::InvalidArgument(format!("{queue:?} is not assigned to this consumer"))
        })
    }
}

impl LiteQueue {
    fn new() -> Self {
        Self { consumed: AtomicI64::new(-1), ..Self::default() }
    }
}

impl MemberConsumer for LiteInner {
    fn consumer_data(&self) -> ConsumerData {
        ConsumerData {
            group_name: self.config.group.clone(),
            consume_type: ConsumeType::ConsumeActively,
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

impl LiteInner {
    /// Pops the first batch of a live queue and records its consumed offset.
    fn take_batch(&self) -> Option<Vec<MessageExt>> {
        loop {
            let batch = self.ready.lock().pop_front()?;
            let count = u64::try_from(batch.messages.len()).unwrap_or(0);
            self.ready_count.fetch_sub(count, Ordering::AcqRel);
            let Some(lite) = self.queues.lock().get(&batch.queue).cloned() else { continue };
            if lite.pq.is_dropped() || lite.generation.load(Ordering::Acquire) != batch.generation {
                continue;
            }
            let offsets: Vec<i64> = batch.messages.iter().map(|m| m.queue_offset).collect();
            let consumed = lite.pq.remove(&offsets);
            if consumed >= 0 {
                lite.consumed.store(consumed, Ordering::Release);
            }
            return Some(batch.messages);
        }
    }

    /// Copies polled offsets into the offset store's memory.
    fn commit_consumed(&self) {
        for (queue, lite) in self.queues.lock().iter() {
            let consumed = lite.consumed.load(Ordering::Acquire);
            if consumed >= 0 {
                self.offsets.update(queue, consumed, false);
            }
        }
    }

    async fn persist_all(&self) {
        let queues: BTreeSet<MessageQueue> = self.queues.lock().keys().cloned().collect();
        self.offsets.persist_all(&queues).await;
    }

    /// Replaces the queues of `topic` (or all, for `None`) by `wanted`.
    fn update_queues(
        self: &Arc<Self>,
        topic: Option<&str>,
        wanted: &BTreeSet<MessageQueue>,
    ) -> bool {
        let mut changed = false;
        let mut started = Vec::new();
        {
            let mut table = self.queues.lock();
            table.retain(|queue, lite| {
                let in_scope = topic.is_none_or(|topic| queue.topic == topic);
                if in_scope && !wanted.contains(queue) {
                    lite.pq.set_dropped();
                    changed = true;
                    return false;
                }
                true
            });
            for queue in wanted {
                if !table.contains_key(queue) {
                    let lite = Arc::new(LiteQueue::new());
                    table.insert(queue.clone(), lite.clone());
                    started.push((queue.clone(), lite));
                    changed = true;
                }
            }
        }
        for (queue, lite) in started {
            self.offsets.remove(&queue);
            tokio::spawn(pull_task(self.clone(), queue, lite));
        }
        changed
    }

    async fn rebalance(self: &Arc<Self>) {
        let topics: Vec<String> = self.subscriptions.read().keys().cloned().collect();
        let mut changed = false;
        for topic in &topics {
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
            let removed: Vec<MessageQueue> = self
                .queues
                .lock()
                .keys()
                .filter(|queue| queue.topic == *topic && !allocated.contains(*queue))
                .cloned()
                .collect();
            self.commit_consumed();
            for queue in &removed {
                self.offsets.persist(queue).await;
                self.offsets.remove(queue);
            }
            changed |= self.update_queues(Some(topic), &allocated);
        }
        if changed {
            self.instance.send_heartbeat_to_all().await;
        }
    }
}

async fn rebalance_loop(weak: Weak<LiteInner>) {
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
        inner.rebalance().await;
        drop(inner);
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            changed = signal.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// One queue's pull task (client.md §8).
async fn pull_task(inner: Arc<LiteInner>, queue: MessageQueue, lite: Arc<LiteQueue>) {
    let mut stop = inner.stop.subscribe();
    let mut next_offset: Option<i64> = None;
    let size_limit = inner.config.pull_threshold_size_for_queue_mib * 1024 * 1024;
    loop {
        if lite.pq.is_dropped() || *stop.borrow() {
            return;
        }
        let flow_limited = inner.ready_count.load(Ordering::Acquire)
            > u64::try_from(inner.config.pull_threshold_for_all).unwrap_or(u64::MAX)
            || lite.pq.count() > inner.config.pull_threshold_for_queue
            || lite.pq.size_bytes() > size_limit
            || lite.pq.span() > inner.config.consume_max_span;
        let delay = if lite.paused.load(Ordering::Acquire) {
            Some(Duration::from_secs(1))
        } else if flow_limited {
            Some(Duration::from_millis(50))
        } else {
            None
        };
        if let Some(delay) = delay {
            if sleep_or_stop(&mut stop, delay).await {
                return;
            }
            continue;
        }
        if let Some(seek) = lite.seek.lock().take() {
            next_offset = Some(seek);
        }
        let offset = match next_offset {
            Some(offset) => offset,
            None => match compute_pull_from_where(
                &inner.instance,
                &inner.offsets,
                inner.config.consume_from_where,
                inner.consume_timestamp_ms,
                &queue,
                ReadOffsetType::MemoryFirstThenStore,
            )
            .await
            {
                Some(offset) => offset,
                None => {
                    if sleep_or_stop(&mut stop, Duration::from_secs(3)).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let Some(mut subscription) = inner.subscriptions.read().get(&queue.topic).cloned() else {
            if sleep_or_stop(&mut stop, Duration::from_secs(1)).await {
                return;
            }
            continue;
        };
        if subscription.expression_type == subscription::EXPRESSION_TYPE_TAG {
            subscription.sub_version = 0;
        }
        let generation = lite.generation.load(Ordering::Acquire);
        let spec = PullSpec {
            group: &inner.config.group,
            queue: &queue,
            offset,
            max_nums: inner.config.pull_batch_size,
            sys_flag: pull_sys_flag::SUSPEND
                | pull_sys_flag::SUBSCRIPTION
                | pull_sys_flag::LITE_PULL,
            commit_offset: 0,
            suspend_timeout: inner.config.broker_suspend_max_time,
            subscription: &subscription,
            timeout: inner.config.pull_timeout,
        };
        let result = tokio::select! {
            result = inner.pull_api.pull(&spec) => Some(result),
            () = lite.wake.notified() => None,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let Some(result) = result else { continue };
        if lite.generation.load(Ordering::Acquire) != generation {
            // A seek happened meanwhile: its offset wins.
            next_offset = None;
            continue;
        }
        let delay = match result {
            Ok(result) => {
                next_offset = Some(result.next_begin_offset);
                if result.status == PullStatus::Found && !result.messages.is_empty() {
                    lite.pq.put_pending(&result.messages);
                    let count = u64::try_from(result.messages.len()).unwrap_or(0);
                    inner.ready_count.fetch_add(count, Ordering::AcqRel);
                    inner.ready.lock().push_back(Batch {
                        queue: queue.clone(),
                        generation,
                        messages: result.messages,
                    });
                    inner.ready_signal.notify_waiters();
                    inner.ready_signal.notify_one();
                }
                None
            }
            Err(error) if error.response_code() == Some(ResponseCode::FLOW_CONTROL.code()) => {
                Some(Duration::from_millis(20))
            }
            Err(error) => {
                tracing::debug!(?queue, %error, "pull failed");
                Some(Duration::from_secs(1))
            }
        };
        if let Some(delay) = delay
            && sleep_or_stop(&mut stop, delay).await
        {
            return;
        }
    }
}

async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(delay) => false,
        _ = stop.wait_for(|stop| *stop) => true,
    };
    stopped || *stop.borrow()
}
