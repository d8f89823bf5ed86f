//! The load generator behind `ferromq bench` (modelled on RocketMQ's benchmark `Producer`
//! and `Consumer`): many senders in flight over a few connections, per-second ticks (TPS,
//! average and maximum response time, failures) and a summary with latency percentiles
//! and throughput.
//!
//! The hot path reuses one body buffer for every message and never formats anything per
//! message unless keys are asked for; every sender records into one lock-free histogram.
//!
//! With `raw_frames`, the producer only builds the frames and resolves the broker; the run
//! replays them over plain connections (module `raw`), to measure the broker without the
//! client's per-message CPU competing for the same cores.

mod histogram;
mod raw;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferromq_message::{Message, MessageExt};

pub use histogram::Histogram;

use crate::consumer::{
    ConsumeConcurrentlyStatus, MessageListener, PushConsumer, PushConsumerConfig,
};
use crate::error::{Error, Result};
use crate::producer::{Producer, ProducerConfig};

/// How the produce bench sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// `send`: wait for each answer, retry on other brokers.
    Sync,
    /// `send_async`: Java async semantics (retry only when no answer came).
    Async,
    /// `send_oneway`: no answer; the response time is the time to hand the request over.
    Oneway,
}

/// A produce run.
#[derive(Debug, Clone)]
pub struct ProduceBench {
    /// Producer settings (group, name servers, timeouts).
    pub producer: ProducerConfig,
    /// Topic to send to.
    pub topic: String,
    /// How to send.
    pub mode: SendMode,
    /// Requests in flight at once (Java's sender threads, or async permits).
    pub concurrency: usize,
    /// Producer instances, each with its own connections.
    pub producers: usize,
    /// Body size, bytes.
    pub message_size: usize,
    /// Messages per request (1 = single sends; more = SEND_BATCH_MESSAGE).
    pub batch_size: usize,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many messages.
    pub count: Option<u64>,
    /// Give each message a unique key (indexed by the broker).
    pub keys: bool,
    /// Tag of every message.
    pub tag: Option<String>,
    /// Replay pre-encoded send frames instead of sending through the producer (measures the
    /// broker, not the client; see `raw_frames` mode in the module docs). Single async sends
    /// with binary headers only.
    pub raw_frames: bool,
}

/// A consume run.
#[derive(Debug, Clone)]
pub struct ConsumeBench {
    /// Consumer settings (group, threads, batch sizes).
    pub consumer: PushConsumerConfig,
    /// Topic to consume.
    pub topic: String,
    /// Tag expression.
    pub expression: String,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many messages.
    pub count: Option<u64>,
}

/// One second of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Seconds since the start.
    pub second: u64,
    /// Messages per second in this tick.
    pub tps: f64,
    /// Average response time in this tick (consume: born-to-consume time), ms.
    pub avg_rt_ms: f64,
    /// Largest response time in this tick, ms.
    pub max_rt_ms: f64,
    /// Failed requests in this tick.
    pub failures: u64,
    /// Messages so far.
    pub total: u64,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Messages sent (or consumed).
    pub messages: u64,
    /// Failed requests.
    pub failures: u64,
    /// Wall time, s.
    pub elapsed_s: f64,
    /// Messages per second.
    pub tps: f64,
    /// Body megabytes (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Average response time, ms.
    pub avg_ms: f64,
    /// Median response time, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Largest response time, ms.
    pub max_ms: f64,
}

/// Counters shared by every sender and the reporter.
#[derive(Debug, Default)]
struct Stats {
    messages: AtomicU64,
    failures: AtomicU64,
    rt_sum_us: AtomicU64,
    rt_count: AtomicU64,
    tick_max_us: AtomicU64,
    bytes: AtomicU64,
    histogram: Histogram,
}

impl Stats {
    fn record(&self, messages: u64, bytes: u64, rt_us: u64) {
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.rt_sum_us.fetch_add(rt_us, Ordering::Relaxed);
        self.rt_count.fetch_add(1, Ordering::Relaxed);
        self.tick_max_us.fetch_max(rt_us, Ordering::Relaxed);
        self.histogram.record(rt_us);
    }

    fn summary(&self, elapsed: Duration) -> Summary {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let messages = self.messages.load(Ordering::Relaxed);
        let count = self.rt_count.load(Ordering::Relaxed).max(1);
        let ms = |us: u64| us as f64 / 1000.0;
        Summary {
            messages,
            failures: self.failures.load(Ordering::Relaxed),
            elapsed_s: seconds,
            tps: messages as f64 / seconds,
            mb_per_s: self.bytes.load(Ordering::Relaxed) as f64 / seconds / 1e6,
            avg_ms: ms(self.rt_sum_us.load(Ordering::Relaxed)) / count as f64,
            p50_ms: ms(self.histogram.percentile(0.5)),
            p99_ms: ms(self.histogram.percentile(0.99)),
            p999_ms: ms(self.histogram.percentile(0.999)),
            max_ms: ms(self.histogram.max()),
        }
    }
}

/// Turns counters into ticks.
#[derive(Debug, Default)]
struct Ticker {
    second: u64,
    messages: u64,
    failures: u64,
    rt_sum_us: u64,
    rt_count: u64,
    last: Option<Instant>,
}

impl Ticker {
    fn tick(&mut self, stats: &Stats) -> Tick {
        let now = Instant::now();
        let seconds =
            self.last.map_or(1.0, |last| now.duration_since(last).as_secs_f64().max(1e-9));
        self.last = Some(now);
        self.second += 1;
        let messages = stats.messages.load(Ordering::Relaxed);
        let failures = stats.failures.load(Ordering::Relaxed);
        let rt_sum = stats.rt_sum_us.load(Ordering::Relaxed);
        let rt_count = stats.rt_count.load(Ordering::Relaxed);
        let tick = Tick {
            second: self.second,
            tps: (messages - self.messages) as f64 / seconds,
            avg_rt_ms: if rt_count > self.rt_count {
                (rt_sum - self.rt_sum_us) as f64 / (rt_count - self.rt_count) as f64 / 1000.0
            } else {
                0.0
            },
            max_rt_ms: stats.tick_max_us.swap(0, Ordering::Relaxed) as f64 / 1000.0,
            failures: failures - self.failures,
            total: messages,
        };
        (self.messages, self.failures, self.rt_sum_us, self.rt_count) =
            (messages, failures, rt_sum, rt_count);
        tick
    }
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

/// Runs a produce bench, calling `on_tick` every second; must run inside a tokio runtime
/// (a single-threaded one is the cheapest per message).
///
/// # Errors
///
/// [`Error::InvalidConfig`] for a run without a stop condition or with zero senders;
/// producer start errors; [`Error::NoRoute`] when the topic cannot be reached at all.
pub async fn run_produce(bench: &ProduceBench, mut on_tick: impl FnMut(&Tick)) -> Result<Summary> {
    if bench.duration.is_none() && bench.count.is_none() {
        return Err(Error::InvalidConfig {
            field: "duration/count",
            value: "none".into(),
            expected: "one of them",
        });
    }
    if bench.concurrency == 0
        || bench.producers == 0
        || bench.batch_size == 0
        || bench.message_size == 0
    {
        return Err(Error::InvalidConfig {
            field: "concurrency/producers/batch_size/message_size",
            value: "0".into(),
            expected: "at least 1",
        });
    }
    let mut producers = Vec::with_capacity(bench.producers);
    for _ in 0..bench.producers {
        let producer = Producer::new(bench.producer.clone())?;
        producer.start().await?;
        // Warm the route (and fail early when there is none).
        producer.publish_queues(&bench.topic).await?;
        producers.push(producer);
    }
    let body =
        Bytes::from((0..bench.message_size).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>());
    let stats = Arc::new(Stats::default());
    if bench.raw_frames {
        return run_raw_frames(bench, producers, &body, stats, on_tick).await;
    }
    let claimed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = bench.duration.map(|duration| started + duration);
    let mut senders = tokio::task::JoinSet::new();
    for index in 0..bench.concurrency {
        let sender = Sender {
            producer: producers[index % producers.len()].clone(),
            bench: bench.clone(),
            body: body.clone(),
            stats: stats.clone(),
            claimed: claimed.clone(),
            deadline,
            index,
        };
        senders.spawn(sender.run());
    }
    let mut ticker = Ticker { last: Some(started), ..Ticker::default() };
    let mut interval = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    loop {
        tokio::select! {
            _ = interval.tick() => on_tick(&ticker.tick(&stats)),
            joined = senders.join_next() => if joined.is_none() { break },
        }
    }
    let summary = stats.summary(started.elapsed());
    for producer in producers {
        producer.shutdown().await;
    }
    Ok(summary)
}

/// [`run_produce`] in raw-frames mode: the replay runs while this reports ticks.
async fn run_raw_frames(
    bench: &ProduceBench,
    producers: Vec<Producer>,
    body: &Bytes,
    stats: Arc<Stats>,
    mut on_tick: impl FnMut(&Tick),
) -> Result<Summary> {
    let started = Instant::now();
    let mut ticker = Ticker { last: Some(started), ..Ticker::default() };
    let mut interval = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let outcome = {
        let replay = raw::run(bench, &producers[0], body, &stats);
        tokio::pin!(replay);
        loop {
            tokio::select! {
                _ = interval.tick() => on_tick(&ticker.tick(&stats)),
                outcome = &mut replay => break outcome,
            }
        }
    };
    let summary = stats.summary(started.elapsed());
    for producer in producers {
        producer.shutdown().await;
    }
    outcome.map(|()| summary)
}

/// One sender in flight.
struct Sender {
    producer: Producer,
    bench: ProduceBench,
    body: Bytes,
    stats: Arc<Stats>,
    claimed: Arc<AtomicU64>,
    deadline: Option<Instant>,
    index: usize,
}

impl Sender {
    async fn run(self) {
        let batch = u64::try_from(self.bench.batch_size).unwrap_or(1);
        let bytes = batch * u64::try_from(self.body.len()).unwrap_or(0);
        let mut sequence = 0u64;
        loop {
            if self.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return;
            }
            if let Some(count) = self.bench.count {
                let before = self.claimed.fetch_add(batch, Ordering::Relaxed);
                if before >= count {
                    return;
                }
            }
            let started = Instant::now();
            let outcome = if self.bench.batch_size > 1 {
                let messages =
                    (0..self.bench.batch_size).map(|_| self.message(&mut sequence)).collect();
                match self.bench.mode {
                    SendMode::Sync => self.producer.send_batch(messages).await.map(drop),
                    SendMode::Async => self.producer.send_batch_async(messages).await.map(drop),
                    SendMode::Oneway => self.producer.send_batch_oneway(messages).await,
                }
            } else {
                let message = self.message(&mut sequence);
                match self.bench.mode {
                    SendMode::Sync => self.producer.send(message).await.map(drop),
                    SendMode::Async => self.producer.send_async(message).await.map(drop),
                    SendMode::Oneway => self.producer.send_oneway(message).await,
                }
            };
            match outcome {
                Ok(()) => self.stats.record(batch, bytes, micros(started.elapsed())),
                Err(error) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%error, "bench send failed");
                    if matches!(
                        error,
                        Error::NotRunning(_) | Error::NoRoute { .. } | Error::NoNameServer
                    ) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }

    fn message(&self, sequence: &mut u64) -> Message {
        let mut message = Message::new(self.bench.topic.clone(), self.body.clone());
        if let Some(tag) = &self.bench.tag {
            message.set_tags(tag.clone());
        }
        if self.bench.keys {
            message.set_keys([format!("bench-{}-{sequence}", self.index)]);
        }
        *sequence += 1;
        message
    }
}

/// Runs a consume bench with a push consumer, calling `on_tick` every second. Response
/// time is born-to-consume (producer clock to consumer clock).
///
/// # Errors
///
/// [`Error::InvalidConfig`] for a run without a stop condition; consumer start errors.
pub async fn run_consume(bench: &ConsumeBench, mut on_tick: impl FnMut(&Tick)) -> Result<Summary> {
    if bench.duration.is_none() && bench.count.is_none() {
        return Err(Error::InvalidConfig {
            field: "duration/count",
            value: "none".into(),
            expected: "one of them",
        });
    }
    let stats = Arc::new(Stats::default());
    let done = Arc::new(AtomicBool::new(false));
    let listener_stats = stats.clone();
    let listener = MessageListener::concurrently(move |messages: &[MessageExt], _: &mut _| {
        let now = crate::util::now_ms();
        for message in messages {
            let born_to_consume_us =
                u64::try_from(now - message.born_timestamp).unwrap_or(0) * 1000;
            let bytes = u64::try_from(message.message.body.len()).unwrap_or(0);
            listener_stats.record(1, bytes, born_to_consume_us);
        }
        ConsumeConcurrentlyStatus::ConsumeSuccess
    });
    let consumer = PushConsumer::new(bench.consumer.clone(), listener)?;
    consumer.subscribe(&bench.topic, &bench.expression)?;
    consumer.start().await?;
    let started = Instant::now();
    let mut ticker = Ticker { last: Some(started), ..Ticker::default() };
    let mut interval = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    while !done.load(Ordering::Relaxed) {
        let wait = match bench.duration {
            Some(duration) => duration.saturating_sub(started.elapsed()),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = interval.tick() => on_tick(&ticker.tick(&stats)),
            () = tokio::time::sleep(wait) => done.store(true, Ordering::Relaxed),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        if bench.count.is_some_and(|count| stats.messages.load(Ordering::Relaxed) >= count) {
            done.store(true, Ordering::Relaxed);
        }
    }
    let summary = stats.summary(started.elapsed());
    consumer.shutdown().await;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_report_deltas_and_summary_percentiles() {
        let stats = Stats::default();
        let mut ticker = Ticker::default();
        for rt in [1000, 3000] {
            stats.record(10, 100, rt);
        }
        let tick = ticker.tick(&stats);
        assert_eq!(tick.total, 20);
        assert!((tick.avg_rt_ms - 2.0).abs() < 1e-9);
        assert!((tick.max_rt_ms - 3.0).abs() < 1e-9);
        stats.failures.fetch_add(2, Ordering::Relaxed);
        let tick = ticker.tick(&stats);
        assert_eq!((tick.failures, tick.max_rt_ms, tick.avg_rt_ms), (2, 0.0, 0.0));
        let summary = stats.summary(Duration::from_secs(2));
        assert_eq!(summary.messages, 20);
        assert!((summary.tps - 10.0).abs() < 1e-9);
        assert!((summary.mb_per_s - 0.0001).abs() < 1e-12);
        assert!(summary.p99_ms >= 2.9 && summary.max_ms == 3.0);
    }
}
