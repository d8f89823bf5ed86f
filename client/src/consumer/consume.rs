//! The consume services (client.md §4.6–§4.8): concurrent consumption with ack by offset
//! and send-back of failures, and orderly consumption serialised per queue under a broker
//! lock. Both run listener calls on the consume pool's threads.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferromq_message::{Message, MessageExt, property};
use ferromq_remoting::RequestCode;
use ferromq_remoting::bodies::{MessageModel, MessageQueue};
use ferromq_remoting::headers::ConsumerSendMsgBackRequestHeader;

use super::process_queue::ProcessQueue;
use super::push::PushInner;
use super::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, ConsumeOrderlyContext,
    ConsumeOrderlyStatus, MessageListener, MessageListenerConcurrently, MessageListenerOrderly,
    restore_retry_topic, retry_topic,
};
use crate::error::Result;

/// Delay before failed send-backs are consumed again locally.
const LOCAL_RETRY_DELAY: Duration = Duration::from_secs(5);
/// Timeout of CONSUMER_SEND_MSG_BACK.
const SEND_BACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Orderly: longest continuous consumption of one queue before yielding (60 s).
const MAX_TIME_CONSUME_CONTINUOUSLY: Duration = Duration::from_secs(60);

/// Hands freshly pulled messages to the consume service.
pub(super) fn dispatch(
    inner: &Arc<PushInner>,
    queue: &MessageQueue,
    pq: &Arc<ProcessQueue>,
    messages: Vec<MessageExt>,
) {
    match &inner.listener {
        MessageListener::Concurrently(listener) => {
            pq.put_pending(&messages);
            let batch = inner.config.consume_message_batch_max_size.max(1);
            let mut messages = messages;
            while !messages.is_empty() {
                let rest = messages.split_off(batch.min(messages.len()));
                submit_concurrent(inner, listener, queue, pq, messages);
                messages = rest;
            }
        }
        MessageListener::Orderly(listener) => {
            if pq.put_held(messages) {
                submit_orderly(inner, listener, queue, pq, Duration::ZERO);
            }
        }
    }
}

// ----- concurrent -----

fn submit_concurrent(
    inner: &Arc<PushInner>,
    listener: &Arc<dyn MessageListenerConcurrently>,
    queue: &MessageQueue,
    pq: &Arc<ProcessQueue>,
    messages: Vec<MessageExt>,
) {
    let (inner_job, listener, queue, pq) =
        (inner.clone(), listener.clone(), queue.clone(), pq.clone());
    let job = Box::new(move || consume_concurrently(&inner_job, &listener, &queue, &pq, messages));
    if !inner.pool.submit(job) {
        tracing::debug!("consume pool closed; messages left uncommitted");
    }
}

fn consume_concurrently(
    inner: &Arc<PushInner>,
    listener: &Arc<dyn MessageListenerConcurrently>,
    queue: &MessageQueue,
    pq: &Arc<ProcessQueue>,
    mut messages: Vec<MessageExt>,
) {
    if pq.is_dropped() || inner.is_stopping() {
        return;
    }
    let now = crate::util::now_ms().to_string();
    for message in &mut messages {
        restore_retry_topic(&inner.config.group, message);
        message.message.put_property(property::CONSUME_START_TIME, now.clone());
    }
    let mut context = ConsumeConcurrentlyContext {
        message_queue: queue.clone(),
        delay_level_when_next_consume: 0,
        ack_index: i32::MAX,
    };
    let status =
        catch_unwind(AssertUnwindSafe(|| listener.consume_message(&messages, &mut context)))
            .unwrap_or_else(|_| {
                tracing::warn!(?queue, "listener panicked; messages will be consumed again");
                ConsumeConcurrentlyStatus::ReconsumeLater
            });
    if pq.is_dropped() {
        return;
    }
    let last = i32::try_from(messages.len()).unwrap_or(i32::MAX) - 1;
    let ack_index = match status {
        ConsumeConcurrentlyStatus::ConsumeSuccess => context.ack_index.min(last),
        ConsumeConcurrentlyStatus::ReconsumeLater => -1,
    };
    let first_failed = usize::try_from(ack_index + 1).unwrap_or(0);
    let mut local_retry = Vec::new();
    let mut done: Vec<i64> = messages.iter().take(first_failed).map(|m| m.queue_offset).collect();
    let failed = messages.split_off(first_failed.min(messages.len()));
    match inner.config.message_model {
        MessageModel::Broadcasting => {
            for message in &failed {
                tracing::warn!(
                    msg_id = message.client_msg_id(),
                    "broadcast consumption failed; dropped"
                );
            }
            done.extend(failed.iter().map(|m| m.queue_offset));
        }
        MessageModel::Clustering => {
            for mut message in failed {
                if block_on(
                    inner,
                    send_back(inner, &message, context.delay_level_when_next_consume, queue),
                ) {
                    done.push(message.queue_offset);
                } else {
                    message.reconsume_times += 1;
                    local_retry.push(message);
                }
            }
        }
    }
    let offset = pq.remove(&done);
    if offset >= 0 && !pq.is_dropped() {
        inner.offsets.update(queue, offset, true);
    }
    if !local_retry.is_empty() {
        let (inner, listener, queue, pq) =
            (inner.clone(), listener.clone(), queue.clone(), pq.clone());
        spawn_later(&inner.clone(), LOCAL_RETRY_DELAY, move || {
            submit_concurrent(&inner, &listener, &queue, &pq, local_retry);
        });
    }
}

/// CONSUMER_SEND_MSG_BACK, falling back to sending to `%RETRY%<group>` with the internal
/// producer (client.md §4.8). True when either worked.
async fn send_back(
    inner: &PushInner,
    message: &MessageExt,
    delay_level: i32,
    queue: &MessageQueue,
) -> bool {
    match send_back_to_broker(inner, message, delay_level, queue).await {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(msg_id = message.client_msg_id(), %error, "send-back refused; sending to the retry topic");
            let retry = retry_message(inner, message, message.reconsume_times + 1);
            match prepare_and_send(inner, retry).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(msg_id = message.client_msg_id(), %error, "send-back failed; consuming again locally");
                    false
                }
            }
        }
    }
}

async fn send_back_to_broker(
    inner: &PushInner,
    message: &MessageExt,
    delay_level: i32,
    queue: &MessageQueue,
) -> Result<()> {
    let addr = match inner.instance.master_addr(&queue.broker_name) {
        Some(addr) => addr,
        None => message.store_host.to_string(),
    };
    let header = ConsumerSendMsgBackRequestHeader {
        offset: message.commit_log_offset,
        group: inner.config.group.clone(),
        delay_level,
        origin_msg_id: Some(message.client_msg_id().to_owned()),
        origin_topic: Some(message.message.topic.clone()),
        unit_mode: Some(false),
        max_reconsume_times: Some(inner.max_reconsume_times()),
    };
    let request = inner.instance.request(RequestCode::CONSUMER_SEND_MSG_BACK).with_header(&header);
    inner.instance.invoke_ok(&addr, request, SEND_BACK_TIMEOUT).await.map(drop)
}

/// A copy of `message` addressed to the group's retry topic (client.md §4.7–§4.8).
fn retry_message(inner: &PushInner, message: &MessageExt, reconsume_times: i32) -> Message {
    let mut retry = Message::new(retry_topic(&inner.config.group), message.message.body.clone());
    retry.flag = message.message.flag;
    retry.properties = message.message.properties.clone();
    if retry.property(property::ORIGIN_MESSAGE_ID).is_none_or(str::is_empty) {
        retry.put_property(property::ORIGIN_MESSAGE_ID, message.client_msg_id());
    }
    retry.put_property(property::RETRY_TOPIC, message.message.topic.clone());
    retry.put_property(property::RECONSUME_TIME, reconsume_times.to_string());
    retry.put_property(property::MAX_RECONSUME_TIMES, inner.max_reconsume_times().to_string());
    retry.remove_property(property::TRAN_MSG);
    retry.set_delay_level(3 + message.reconsume_times);
    retry
}

async fn prepare_and_send(inner: &PushInner, message: Message) -> Result<()> {
    let out = inner.sender.prepare(message)?;
    let timeout = inner.sender.config.send_msg_timeout;
    inner.sender.send_sync(&out, timeout).await.map(drop)
}

// ----- orderly -----

fn submit_orderly(
    inner: &Arc<PushInner>,
    listener: &Arc<dyn MessageListenerOrderly>,
    queue: &MessageQueue,
    pq: &Arc<ProcessQueue>,
    delay: Duration,
) {
    let (inner_job, listener, queue, pq) =
        (inner.clone(), listener.clone(), queue.clone(), pq.clone());
    let run = move || {
        let job_inner = inner_job.clone();
        let job = Box::new(move || consume_orderly(&job_inner, &listener, &queue, &pq));
        if !inner_job.pool.submit(job) {
            tracing::debug!("consume pool closed");
        }
    };
    if delay.is_zero() {
        run();
    } else {
        spawn_later(inner, delay, run);
    }
}

/// After `delay`, locks the queue at its broker and resubmits (Java `tryLockLaterAndReconsume`).
fn lock_later(
    inner: &Arc<PushInner>,
    listener: &Arc<dyn MessageListenerOrderly>,
    queue: &MessageQueue,
    pq: &Arc<ProcessQueue>,
    delay: Duration,
) {
    let Some(runtime) = inner.runtime.get() else { return };
    let (inner, listener, queue, pq) = (inner.clone(), listener.clone(), queue.clone(), pq.clone());
    runtime.spawn(async move {
        tokio::time::sleep(delay).await;
        let locked = inner.lock_queue(&queue).await;
        let retry_in = if locked { Duration::from_millis(10) } else { Duration::from_secs(3) };
        submit_orderly(&inner, &listener, &queue, &pq, retry_in);
    });
}

fn consume_orderly(
    inner: &Arc<PushInner>,
    listener: &Arc<dyn MessageListenerOrderly>,
    queue: &MessageQueue,
    pq: &Arc<ProcessQueue>,
) {
    if pq.is_dropped() || inner.is_stopping() {
        return;
    }
    let clustering = inner.config.message_model == MessageModel::Clustering;
    let lock_ok = || !clustering || (pq.is_locked() && !pq.is_lock_expired());
    if !lock_ok() {
        lock_later(inner, listener, queue, pq, Duration::from_millis(100));
        return;
    }
    let begin = Instant::now();
    let batch = inner.config.consume_message_batch_max_size.max(1);
    loop {
        if pq.is_dropped() || inner.is_stopping() {
            return;
        }
        if !lock_ok() {
            lock_later(inner, listener, queue, pq, Duration::from_millis(10));
            return;
        }
        if begin.elapsed() > MAX_TIME_CONSUME_CONTINUOUSLY {
            submit_orderly(inner, listener, queue, pq, Duration::from_millis(10));
            return;
        }
        let mut messages = pq.take(batch);
        if messages.is_empty() {
            return;
        }
        for message in &mut messages {
            restore_retry_topic(&inner.config.group, message);
        }
        let mut context = ConsumeOrderlyContext {
            message_queue: queue.clone(),
            auto_commit: true,
            suspend_current_queue_time: inner.config.suspend_current_queue_time,
        };
        let status = {
            let _consuming = pq.consume_lock.lock();
            if pq.is_dropped() {
                return;
            }
            catch_unwind(AssertUnwindSafe(|| listener.consume_message(&messages, &mut context)))
                .unwrap_or(ConsumeOrderlyStatus::SuspendCurrentQueueAMoment)
        };
        let suspend = context
            .suspend_current_queue_time
            .clamp(Duration::from_millis(10), Duration::from_secs(30));
        let commit = match (context.auto_commit, status) {
            (_, ConsumeOrderlyStatus::SuspendCurrentQueueAMoment) => {
                if suspend_for_reconsume(inner, &mut messages) {
                    pq.put_back(messages);
                    submit_orderly(inner, listener, queue, pq, suspend);
                    return;
                }
                context.auto_commit
            }
            (false, ConsumeOrderlyStatus::Rollback) => {
                pq.put_back(messages);
                submit_orderly(inner, listener, queue, pq, suspend);
                return;
            }
            (false, ConsumeOrderlyStatus::Success) => false,
            _ => true,
        };
        if commit {
            let offset = pq.commit();
            if offset >= 0 && !pq.is_dropped() {
                inner.offsets.update(queue, offset, false);
            }
        }
    }
}

/// Java `checkReconsumeTimes`: messages at the limit go to the DLQ through the retry topic;
/// the rest (and any whose DLQ send failed) count one more attempt. True when something
/// must be consumed again.
fn suspend_for_reconsume(inner: &Arc<PushInner>, messages: &mut [MessageExt]) -> bool {
    let max = inner.max_reconsume_times();
    let mut suspend = false;
    for message in messages.iter_mut() {
        if message.reconsume_times >= max {
            let retry = retry_message(inner, message, message.reconsume_times);
            if !block_on(inner, async { prepare_and_send(inner, retry).await.is_ok() }) {
                suspend = true;
                message.reconsume_times += 1;
            }
        } else {
            suspend = true;
            message.reconsume_times += 1;
        }
    }
    suspend
}

// ----- helpers -----

/// Runs `future` to completion from a consume thread.
fn block_on<T>(inner: &PushInner, future: impl Future<Output = T>) -> T
where
    T: Default,
{
    match inner.runtime.get() {
        Some(runtime) => runtime.block_on(future),
        None => T::default(),
    }
}

/// Runs `work` after `delay` on the runtime.
fn spawn_later(inner: &Arc<PushInner>, delay: Duration, work: impl FnOnce() + Send + 'static) {
    let Some(runtime) = inner.runtime.get() else { return };
    runtime.spawn(async move {
        tokio::time::sleep(delay).await;
        work();
    });
}
