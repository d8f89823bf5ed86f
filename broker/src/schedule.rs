//! Delivery of delayed messages (broker.md §4): a thread polls each delay level's queue of
//! `SCHEDULE_TOPIC_XXXX` every 100 ms and re-stores the messages whose time has come under
//! their real topic and queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferromq_message::properties::{encode_properties, parse_properties};
use ferromq_message::property;
use ferromq_store::PutMessage;

use crate::broker::{Broker, now_ms};
use crate::metadata::SCHEDULE_TOPIC;
use crate::send::TRANS_HALF_TOPIC;

/// Messages looked at per level and round.
const BATCH: u32 = 256;

/// Starts the delivery thread; it stops when `stop` turns true.
///
/// # Errors
///
/// The thread cannot be spawned.
pub fn start(
    broker: Arc<Broker>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("ferromq-schedule".to_owned()).spawn(move || {
        let levels = match broker.config.store.delay_levels_ms() {
            Ok(levels) => levels,
            Err(error) => {
                tracing::error!(%error, "bad messageDelayLevel; delayed messages are not delivered");
                return;
            }
        };
        while !stop.load(Ordering::Relaxed) {
            let mut busy = false;
            for (index, delay_ms) in levels.iter().enumerate() {
                let level = i32::try_from(index + 1).unwrap_or(i32::MAX);
                busy |= deliver_level(&broker, level, *delay_ms);
            }
            if !busy {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
}

/// Delivers the due messages of one level; true when a full batch was delivered (more may
/// be waiting).
fn deliver_level(broker: &Broker, level: i32, delay_ms: u64) -> bool {
    let queue_id = level - 1;
    let offset = broker.delay_offsets.get(level);
    let result = match broker.store.get(SCHEDULE_TOPIC, queue_id, offset, BATCH, &|_| true) {
        Ok(result) => result,
        Err(error) => {
            tracing::warn!(%error, level, "reading the schedule queue failed");
            return false;
        }
    };
    if result.messages.is_empty() {
        // Jump over a gap (expired files) or back inside the queue.
        if result.next_begin_offset != offset && result.next_begin_offset >= 0 {
            broker.delay_offsets.set(level, result.next_begin_offset);
        }
        return false;
    }
    let now = now_ms();
    let delay = i64::try_from(delay_ms).unwrap_or(i64::MAX);
    let mut delivered = 0u32;
    for record in &result.messages {
        let Ok((message, _)) = ferromq_message::record::decode_record(record) else {
            // Unreadable record: skip it rather than block the level forever.
            broker.delay_offsets.set(level, broker.delay_offsets.get(level) + 1);
            continue;
        };
        let deliver_at = message.store_timestamp.saturating_add(delay);
        if deliver_at > now {
            return false;
        }
        let mut properties = parse_properties(message.properties);
        properties.remove(property::DELAY);
        let real_topic = properties.get(property::REAL_TOPIC).cloned();
        let real_queue = properties.get(property::REAL_QID).and_then(|q| q.parse::<i32>().ok());
        let next = message.queue_offset + 1;
        let (Some(topic), Some(queue)) = (real_topic, real_queue) else {
            tracing::warn!(
                level,
                offset = message.queue_offset,
                "delayed message without REAL_TOPIC/REAL_QID; dropped"
            );
            broker.delay_offsets.set(level, next);
            continue;
        };
        if topic == TRANS_HALF_TOPIC {
            tracing::warn!(level, "delayed half message discarded");
            broker.delay_offsets.set(level, next);
            continue;
        }
        properties.insert(property::WAIT.to_owned(), "false".to_owned());
        let encoded = encode_properties(&properties);
        let put = PutMessage {
            topic: &topic,
            queue_id: queue,
            flag: message.flag,
            body: message.body,
            properties: &encoded,
            sysflag: message.sysflag,
            born_timestamp: message.born_timestamp,
            born_host: message.born_host,
            reconsume_times: message.reconsume_times,
            prepared_transaction_offset: 0,
        };
        match broker.store.put(&put) {
            Ok(result) if result.status.is_ok() => {
                broker.delay_offsets.set(level, next);
                delivered += 1;
            }
            Ok(result) => {
                tracing::warn!(level, status = ?result.status, "delayed delivery refused; retrying");
                return false;
            }
            Err(error) => {
                tracing::warn!(level, %error, "delayed delivery failed; retrying");
                return false;
            }
        }
    }
    delivered == BATCH
}
