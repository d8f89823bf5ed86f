//! SEND_MESSAGE / SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE (remoting.md §8.1, broker.md §3) and
//! END_TRANSACTION (§8.13).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use ferromq_message::message::canonical_socket_addr;
use ferromq_message::msg_id::encode_offset_msg_id;
use ferromq_message::properties::{
    Properties, encode_properties, find_property, iter_properties, parse_properties,
};
use ferromq_message::validate::{Dialect, RETRY_GROUP_TOPIC_PREFIX, check_topic};
use ferromq_message::{property, sysflag};
use ferromq_remoting::headers::{
    CommandHeader, EndTransactionRequestHeader, SendMessageRequestHeader,
    SendMessageResponseHeader, decode_send_request_header,
};
use ferromq_remoting::transport::{Connection, Reply};
use ferromq_remoting::{RemotingCommand, ResponseCode};
use ferromq_store::{PutMessage, PutResult, PutStatus};

use crate::broker::{Broker, bad_header, respond};
use crate::metadata::{AUTO_CREATE_TOPIC, SEND_FORBIDDEN_TOPICS, dlq_topic, perm};

/// Where half messages of transactions wait for their outcome.
pub const TRANS_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
const FAQ_URL: &str =
    "\nSee https://rocketmq.apache.org/docs/bestPractice/06FAQ for further details.";

/// Serves a send request.
pub async fn send(
    broker: &Arc<Broker>,
    connection: &Connection,
    request: &RemotingCommand,
) -> Reply {
    let empty = ferromq_remoting::ExtFields::new();
    let fields = request.ext_fields.as_ref().unwrap_or(&empty);
    let header = match decode_send_request_header(request.code, fields) {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    let mut response = respond(request, ResponseCode::SYSTEM_ERROR, None);
    response.set_ext_field(property::MSG_REGION, broker.config.region_id.clone());
    response.set_ext_field(property::TRACE_ON, broker.config.trace_on.to_string());
    let born_host = canonical_socket_addr(connection.peer_addr());
    let sent = match slave_refusal(broker) {
        Some(refusal) => Err(refusal),
        None => send_checked(broker, request, &header, born_host).await,
    };
    match sent {
        Ok(sent) => {
            response.code = sent.code.code();
            response.remark = None;
            let result_header = SendMessageResponseHeader {
                msg_id: sent.msg_id,
                queue_id: sent.queue_id,
                queue_offset: sent.queue_offset,
                transaction_id: sent.transaction_id,
                batch_uniq_id: None,
                recall_handle: None,
            };
            result_header.to_ext_fields(response.ext_fields.get_or_insert_with(Default::default));
        }
        Err((code, remark)) => {
            response.code = code.code();
            response.remark = Some(remark);
        }
    }
    response.into()
}

struct Sent {
    code: ResponseCode,
    msg_id: String,
    queue_id: i32,
    queue_offset: i64,
    transaction_id: Option<String>,
}

type Refusal = (ResponseCode, String);

async fn send_checked(
    broker: &Arc<Broker>,
    request: &RemotingCommand,
    header: &SendMessageRequestHeader,
    born_host: std::net::SocketAddr,
) -> Result<Sent, Refusal> {
    let topic = header.topic.as_str();
    if let Err(violation) = check_topic(topic, Dialect::V5) {
        return Err((ResponseCode::INVALID_PARAMETER, violation.java_remark(topic, Dialect::V5)));
    }
    if SEND_FORBIDDEN_TOPICS.contains(&topic) {
        return Err((
            ResponseCode::NO_PERMISSION,
            format!("Sending message to topic[{topic}] is forbidden."),
        ));
    }
    let topic_config = match broker.topics.get(topic) {
        Some(config) => config,
        None => create_topic_for_send(broker, header)?,
    };
    if !broker.is_writeable() && topic_config.order {
        let ip = broker.config.broker_ip1;
        return Err((
            ResponseCode::NO_PERMISSION,
            format!("the broker[{ip}] sending message is forbidden"),
        ));
    }
    let queue_limit = topic_config.write_queue_nums.max(topic_config.read_queue_nums);
    let mut queue_id = header.queue_id;
    if queue_id < 0 {
        queue_id = random_queue(topic_config.write_queue_nums);
    } else if queue_id >= queue_limit {
        return Err((
            ResponseCode::INVALID_PARAMETER,
            format!(
                "request queueId[{queue_id}] is illegal, TopicConfig [topicName={topic}, readQueueNums={}, writeQueueNums={}, perm={}] Producer: {born_host}",
                topic_config.read_queue_nums, topic_config.write_queue_nums, topic_config.perm
            ),
        ));
    }
    let batch = header.batch.unwrap_or(false);
    let reconsume_times = header.reconsume_times.unwrap_or(0);
    let mut store_topic = topic.to_owned();
    let mut store_queue = queue_id;
    let mut to_dlq = false;
    if let Some(group) = topic.strip_prefix(RETRY_GROUP_TOPIC_PREFIX) {
        if batch {
            return Err((
                ResponseCode::MESSAGE_ILLEGAL,
                format!("batch request does not support retry group {topic}"),
            ));
        }
        let Some(group_config) = broker.groups.find_or_create(group) else {
            return Err((
                ResponseCode::SUBSCRIPTION_GROUP_NOT_EXIST,
                format!("subscription group not exist, {group} {FAQ_URL}"),
            ));
        };
        let max = match header.max_reconsume_times {
            Some(max) if request.version >= 121 => max,
            _ => group_config.retry_max_times,
        };
        if reconsume_times > max {
            let dlq = dlq_topic(group);
            let (_, created) = broker.topics.create_if_missing(&dlq, 1, perm::READ | perm::WRITE);
            if created {
                broker.register_soon.notify_one();
            }
            store_topic = dlq;
            store_queue = 0;
            to_dlq = true;
        }
    }
    let mut sys_flag = header.sys_flag;
    if topic_config.topic_filter_type == "MULTI_TAG" {
        sys_flag |= sysflag::MULTI_TAGS_FLAG;
    }
    let body = request.body.clone();
    if batch {
        return put_batch(broker, header, &store_topic, store_queue, sys_flag, born_host, body)
            .await;
    }
    let raw_properties = header.properties.as_deref().unwrap_or("");
    let client = Picked::scan(raw_properties.as_bytes());
    let (mut properties, uniq_key) = stored_properties(broker, raw_properties, &client, to_dlq);
    let transaction_id = Some(uniq_key);
    let half = client.half;
    if half {
        // A half message waits in the half topic until END_TRANSACTION commits it.
        let mut map = parse_properties(&properties);
        map.insert(property::REAL_TOPIC.to_owned(), store_topic.clone());
        map.insert(property::REAL_QID.to_owned(), store_queue.to_string());
        properties = encode_properties(&map);
        sys_flag = sysflag::reset_transaction_type(sys_flag, sysflag::TRANSACTION_NOT_TYPE);
        broker.topics.create_if_missing(TRANS_HALF_TOPIC, 1, perm::READ | perm::WRITE);
        store_topic = TRANS_HALF_TOPIC.to_owned();
        store_queue = 0;
    }
    let message = OwnedPut {
        topic: store_topic,
        queue_id: store_queue,
        flag: header.flag,
        body,
        properties,
        sys_flag,
        born_timestamp: header.born_timestamp,
        born_host,
        reconsume_times,
    };
    let wait = client.wait;
    let result = put(broker, message, None).await?;
    let code = put_status_code(result.status)?;
    let code = crate::ha::replication_code(broker, &result, code, wait).await;
    Ok(Sent {
        code,
        msg_id: encode_offset_msg_id(result.store_host, result.phy_offset),
        // Java reports the queue chosen before a DLQ redirect (broker.md §3.3).
        queue_id,
        queue_offset: result.queue_offset,
        transaction_id,
    })
}

fn create_topic_for_send(
    broker: &Broker,
    header: &SendMessageRequestHeader,
) -> Result<ferromq_remoting::bodies::TopicConfig, Refusal> {
    let topic = header.topic.as_str();
    let template =
        if header.default_topic.is_empty() { AUTO_CREATE_TOPIC } else { &header.default_topic };
    let created = broker
        .topics
        .create_in_send(topic, template, header.default_topic_queue_nums, 0)
        .or_else(|| {
            topic
                .starts_with(RETRY_GROUP_TOPIC_PREFIX)
                .then(|| broker.topics.create_if_missing(topic, 1, perm::READ | perm::WRITE))
        });
    match created {
        Some((config, fresh)) => {
            if fresh {
                tracing::info!(topic, "topic auto-created");
                broker.register_soon.notify_one();
            }
            Ok(config)
        }
        None => Err((
            ResponseCode::TOPIC_NOT_EXIST,
            format!("topic[{topic}] not exist, apply first please!{FAQ_URL}"),
        )),
    }
}

/// What a send needs from the client's properties, read in one pass (the last occurrence of
/// a name wins, as [`find_property`] and [`parse_properties`] have it).
struct Picked {
    uniq_key: Option<String>,
    has_cluster: bool,
    /// `TRAN_MSG=true`: a transaction's half message.
    half: bool,
    /// `WAIT` absent or not `false`: the client waits for the store (and the slave).
    wait: bool,
}

impl Picked {
    fn scan(bytes: &[u8]) -> Picked {
        let (mut uniq_key, mut cluster, mut tran, mut wait) = (None, None, None, None);
        for (name, value) in iter_properties(bytes) {
            match std::str::from_utf8(name) {
                Ok(property::UNIQ_KEY) => uniq_key = Some(value),
                Ok(property::CLUSTER) => cluster = Some(value),
                Ok(property::TRAN_MSG) => tran = Some(value),
                Ok(property::WAIT) => wait = Some(value),
                _ => {}
            }
        }
        Picked {
            uniq_key: uniq_key.map(|key| String::from_utf8_lossy(key).into_owned()),
            has_cluster: cluster.is_some(),
            half: tran.is_some_and(|v| v == b"true"),
            wait: wait.is_none_or(|v| !v.eq_ignore_ascii_case(b"false")),
        }
    }
}

/// The properties to store and their `UNIQ_KEY`: the client's, plus `UNIQ_KEY` when missing
/// and `CLUSTER` (broker.md §3.2); a DLQ redirect drops `DELAY` so no delay applies.
fn stored_properties(
    broker: &Broker,
    raw: &str,
    client: &Picked,
    to_dlq: bool,
) -> (Vec<u8>, String) {
    let bytes = raw.as_bytes();
    let cluster = broker.config.broker_cluster_name.as_str();
    let uniq_key = client.uniq_key.clone();
    if !to_dlq && !client.has_cluster {
        // Fast path: append to the client's encoding.
        let mut out = Vec::with_capacity(bytes.len() + 64);
        out.extend_from_slice(bytes);
        if !out.is_empty() && out.last() != Some(&2) {
            out.push(2);
        }
        let uniq_key = uniq_key.unwrap_or_else(|| {
            let fresh = broker.uniq_keys.next_id_now();
            append_property(&mut out, property::UNIQ_KEY, &fresh);
            fresh
        });
        append_property(&mut out, property::CLUSTER, cluster);
        return (out, uniq_key);
    }
    let mut map: Properties = parse_properties(bytes);
    let uniq_key = uniq_key.unwrap_or_else(|| {
        let fresh = broker.uniq_keys.next_id_now();
        map.insert(property::UNIQ_KEY.to_owned(), fresh.clone());
        fresh
    });
    map.insert(property::CLUSTER.to_owned(), cluster.to_owned());
    if to_dlq {
        map.remove(property::DELAY);
    }
    (encode_properties(&map), uniq_key)
}

fn append_property(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.push(1);
    out.extend_from_slice(value.as_bytes());
    out.push(2);
}

/// A put whose fields the caller owns (so it can move to a blocking thread).
#[derive(Debug, Clone)]
pub struct OwnedPut {
    /// Topic.
    pub topic: String,
    /// Queue.
    pub queue_id: i32,
    /// Flag.
    pub flag: i32,
    /// Body.
    pub body: Bytes,
    /// Encoded properties.
    pub properties: Vec<u8>,
    /// Sysflag.
    pub sys_flag: i32,
    /// Born time.
    pub born_timestamp: i64,
    /// Born host.
    pub born_host: std::net::SocketAddr,
    /// Reconsume times.
    pub reconsume_times: i32,
}

impl OwnedPut {
    fn as_put(&self) -> PutMessage<'_> {
        PutMessage {
            topic: &self.topic,
            queue_id: self.queue_id,
            flag: self.flag,
            body: &self.body,
            properties: &self.properties,
            sysflag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            born_host: self.born_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: 0,
        }
    }
}

/// Stores a message (or a batch, when `batch_body` is given): inline under async flush,
/// on a blocking thread under sync flush, bounded by the send queue capacity.
///
/// # Errors
///
/// SYSTEM_BUSY when the send queue is full; SYSTEM_ERROR when the store fails.
pub async fn put(
    broker: &Arc<Broker>,
    message: OwnedPut,
    batch_body: Option<Bytes>,
) -> Result<PutResult, Refusal> {
    if let Some(refusal) = slave_refusal(broker) {
        return Err(refusal);
    }
    let Ok(_slot) = broker.put_slots.try_acquire() else {
        return Err((
            ResponseCode::SYSTEM_BUSY,
            "[OVERLOAD]system busy, start flow control for a while".to_owned(),
        ));
    };
    let store_put = move |broker: &Broker| match &batch_body {
        Some(batch) => broker.store.put_batch(&message.as_put(), batch),
        None => broker.store.put(&message.as_put()),
    };
    let result = if broker.puts_inline() {
        store_put(broker)
    } else {
        match broker.blocking(store_put).await {
            Some(result) => result,
            None => return Err((ResponseCode::SYSTEM_ERROR, "store task failed".to_owned())),
        }
    };
    match result {
        Ok(result) => {
            if result.status.is_ok() {
                let count = u64::try_from(result.message_count).unwrap_or(0);
                broker.stats.put_messages.fetch_add(count, Ordering::Relaxed);
            }
            Ok(result)
        }
        Err(error) => {
            tracing::error!(%error, "put failed");
            Err((ResponseCode::SYSTEM_ERROR, format!("store error: {error}")))
        }
    }
}

/// The response code of a put status (remoting.md §8.1 item 7).
fn put_status_code(status: PutStatus) -> Result<ResponseCode, Refusal> {
    match status {
        PutStatus::PutOk => Ok(ResponseCode::SUCCESS),
        PutStatus::FlushDiskTimeout => Ok(ResponseCode::FLUSH_DISK_TIMEOUT),
        PutStatus::MessageIllegal | PutStatus::PropertiesSizeExceeded => Err((
            ResponseCode::MESSAGE_ILLEGAL,
            "the message is illegal, maybe msg body or properties length not matched. msg body length limit 4194304B, msg properties length limit 32KB.".to_owned(),
        )),
        PutStatus::ServiceNotAvailable => Err((
            ResponseCode::SERVICE_NOT_AVAILABLE,
            "service not available now. It may be caused by one of the following reasons: the broker's disk is full, messages are put to the slave, message store has been shut down, etc.".to_owned(),
        )),
    }
}

/// A slave refuses writes as a 4.9 broker does: SERVICE_NOT_AVAILABLE (broker.md §12.2),
/// which Java producers retry on another broker.
fn slave_refusal(broker: &Broker) -> Option<Refusal> {
    (!broker.config.is_master()).then(|| {
        (
            ResponseCode::SERVICE_NOT_AVAILABLE,
            "service not available now. It may be caused by one of the following reasons: the broker's disk is full, messages are put to the slave, message store has been shut down, etc.".to_owned(),
        )
    })
}

/// `WAIT` absent or not `false`: a SYNC_MASTER put waits for a slave (R§13.3).
fn waits_for_store(properties: &[u8]) -> bool {
    find_property(properties, property::WAIT)
        .is_none_or(|value| !value.eq_ignore_ascii_case(b"false"))
}

async fn put_batch(
    broker: &Arc<Broker>,
    header: &SendMessageRequestHeader,
    topic: &str,
    queue_id: i32,
    sys_flag: i32,
    born_host: std::net::SocketAddr,
    body: Bytes,
) -> Result<Sent, Refusal> {
    let template = OwnedPut {
        topic: topic.to_owned(),
        queue_id,
        flag: header.flag,
        body: Bytes::new(),
        properties: Vec::new(),
        sys_flag,
        born_timestamp: header.born_timestamp,
        born_host,
        reconsume_times: header.reconsume_times.unwrap_or(0),
    };
    let wait = waits_for_store(header.properties.as_deref().unwrap_or("").as_bytes());
    let result = put(broker, template, Some(body)).await?;
    let code = put_status_code(result.status)?;
    let code = crate::ha::replication_code(broker, &result, code, wait).await;
    let ids: Vec<String> = result
        .batch_phy_offsets
        .iter()
        .map(|offset| encode_offset_msg_id(result.store_host, *offset))
        .collect();
    Ok(Sent {
        code,
        msg_id: ids.join(","),
        queue_id,
        queue_offset: result.queue_offset,
        transaction_id: None,
    })
}

/// END_TRANSACTION: a commit re-stores the half message under its real topic and queue;
/// a rollback (or "unknown") stores nothing. Oneway from Java producers.
pub async fn end_transaction(broker: &Arc<Broker>, request: &RemotingCommand) -> Reply {
    let header = match request.decode_header::<EndTransactionRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    if header.commit_or_rollback != sysflag::TRANSACTION_COMMIT_TYPE {
        return respond(request, ResponseCode::SUCCESS, None).into();
    }
    let offset = header.commit_log_offset;
    let record = broker.blocking(move |broker| broker.store.message_by_phy_offset(offset)).await;
    let Some(Ok(Some(record))) = record else {
        return respond(
            request,
            ResponseCode::SYSTEM_ERROR,
            "Find prepared transaction message failed".to_owned(),
        )
        .into();
    };
    let Ok((decoded, _)) = ferromq_message::record::decode_record(&record) else {
        return respond(
            request,
            ResponseCode::SYSTEM_ERROR,
            "Find prepared transaction message failed".to_owned(),
        )
        .into();
    };
    let mut map = parse_properties(decoded.properties);
    let real_topic = map.remove(property::REAL_TOPIC);
    let real_queue = map.remove(property::REAL_QID).and_then(|q| q.parse::<i32>().ok());
    let (Some(real_topic), Some(real_queue)) = (real_topic, real_queue) else {
        return respond(
            request,
            ResponseCode::SYSTEM_ERROR,
            "the prepared message has no real topic".to_owned(),
        )
        .into();
    };
    map.remove(property::TRAN_MSG);
    let message = OwnedPut {
        topic: real_topic,
        queue_id: real_queue,
        flag: decoded.flag,
        body: Bytes::copy_from_slice(decoded.body),
        properties: encode_properties(&map),
        sys_flag: sysflag::reset_transaction_type(
            decoded.sysflag,
            sysflag::TRANSACTION_COMMIT_TYPE,
        ),
        born_timestamp: decoded.born_timestamp,
        born_host: decoded.born_host,
        reconsume_times: decoded.reconsume_times,
    };
    let wait = waits_for_store(&message.properties);
    let stored = put(broker, message, None)
        .await
        .and_then(|result| put_status_code(result.status).map(|code| (result, code)));
    match stored {
        Ok((result, code)) => {
            let code = crate::ha::replication_code(broker, &result, code, wait).await;
            respond(request, code, None).into()
        }
        Err((code, remark)) => respond(request, code, remark).into(),
    }
}

/// A queue for a send with a negative queue id: uniform over the writable queues.
pub fn random_queue(write_queue_nums: i32) -> i32 {
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    // xorshift64*: cheap, lock-free, good enough to spread load.
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    let random = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33;
    let queues = u64::try_from(write_queue_nums.max(1)).unwrap_or(1);
    i32::try_from(random % queues).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_queues_cover_all() {
        let mut seen = [0u32; 4];
        for _ in 0..400 {
            let queue = random_queue(4);
            seen[usize::try_from(queue).unwrap()] += 1;
        }
        assert!(seen.iter().all(|count| *count > 50), "{seen:?}");
        assert_eq!(random_queue(0), 0);
    }
}
