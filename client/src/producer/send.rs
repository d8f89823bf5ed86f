//! The send machinery shared by [`crate::Producer`] and the consumers' internal producer:
//! message validation and preparation (UNIQ_KEY, compression, batch encoding), the
//! per-attempt request (client.md §3.7) and the sync, async, oneway and single-queue flows
//! with their retry rules (§3.6).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferromq_message::msg_id::UniqKeyGenerator;
use ferromq_message::validate::{self, Dialect};
use ferromq_message::{Message, property, sysflag};
use ferromq_remoting::bodies::MessageQueue;
use ferromq_remoting::headers::{SendMessageRequestHeaderV2, SendMessageResponseHeader};
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

use super::fault::LatencyFaultTolerance;
use super::{ProducerConfig, SendResult, SendStatus};
use crate::error::{Error, Result};
use crate::instance::ClientInstance;
use crate::route::TopicPublishInfo;

/// Topics no client may send to (broker.md §2.3).
const SEND_FORBIDDEN_TOPICS: [&str; 6] = [
    "SCHEDULE_TOPIC_XXXX",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "SELF_TEST_TOPIC",
    "OFFSET_MOVED_EVENT",
];

/// Broker codes after which a sync send tries again (client.md §3.1, the 5.x set).
const RETRY_RESPONSE_CODES: [ResponseCode; 8] = [
    ResponseCode::TOPIC_NOT_EXIST,
    ResponseCode::SERVICE_NOT_AVAILABLE,
    ResponseCode::SYSTEM_ERROR,
    ResponseCode::NO_PERMISSION,
    ResponseCode::NO_BUYER_ID,
    ResponseCode::NOT_IN_CURRENT_UNIT,
    ResponseCode::SYSTEM_BUSY,
    ResponseCode(1500), // GO_AWAY
];

/// How one attempt is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Wait for the response; a timeout closes the connection.
    Sync,
    /// Wait for the response; the connection stays open on timeout.
    Async,
    /// No response.
    Oneway,
}

/// A message or batch ready to go on the wire: everything but the queue is fixed, so retries
/// resend the same bytes.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) topic: String,
    pub(crate) body: Bytes,
    pub(crate) flag: i32,
    pub(crate) sys_flag: i32,
    pub(crate) properties: String,
    pub(crate) batch: bool,
    /// UNIQ_KEY, or the batch's UNIQ_KEYs joined by `,`.
    pub(crate) msg_id: String,
    pub(crate) reconsume_times: Option<i32>,
    pub(crate) max_reconsume_times: Option<i32>,
}

/// Sends for one producer group through one client instance.
#[derive(Debug)]
pub(crate) struct Sender {
    pub(crate) instance: Arc<ClientInstance>,
    pub(crate) config: ProducerConfig,
    uniq: UniqKeyGenerator,
    faults: LatencyFaultTolerance,
}

impl Sender {
    pub(crate) fn new(instance: Arc<ClientInstance>, config: ProducerConfig) -> Self {
        let ip = instance
            .config
            .client_ip
            .parse()
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        let class_loader_hash = crate::util::random_u64() as i32;
        let uniq = UniqKeyGenerator::new(ip, std::process::id(), class_loader_hash);
        Self { instance, config, uniq, faults: LatencyFaultTolerance::default() }
    }

    /// A fresh UNIQ_KEY.
    pub(crate) fn next_uniq_key(&self) -> String {
        self.uniq.next_id_now()
    }

    // ----- preparation -----

    /// Validates `message` (client.md §3.2) and turns it into an [`Outgoing`]: UNIQ_KEY and
    /// `WAIT` added if absent, body compressed above the threshold.
    pub(crate) fn prepare(&self, mut message: Message) -> Result<Outgoing> {
        self.check_message(&message)?;
        if message.uniq_key().is_none() {
            message.set_uniq_key(self.next_uniq_key());
        }
        if message.property(property::WAIT).is_none() {
            message.set_wait_store_msg_ok(true);
        }
        let mut sys_flag = 0;
        let mut body = message.body.clone();
        if body.len() >= self.config.compress_msg_body_over_bytes {
            body = Bytes::from(ferromq_message::zlib::deflate(&body, self.config.compress_level));
            sys_flag |= sysflag::COMPRESSED_FLAG | sysflag::COMPRESSION_ZLIB_TYPE;
        }
        if message.is_transaction_prepared() {
            sys_flag |= sysflag::TRANSACTION_PREPARED_TYPE;
        }
        let (reconsume_times, max_reconsume_times) =
            if message.topic.starts_with(validate::RETRY_GROUP_TOPIC_PREFIX) {
                let reconsume = message.remove_property(property::RECONSUME_TIME);
                let max = message.remove_property(property::MAX_RECONSUME_TIMES);
                (reconsume.and_then(|v| v.parse().ok()), max.and_then(|v| v.parse().ok()))
            } else {
                (None, None)
            };
        let msg_id = message.uniq_key().unwrap_or_default().to_owned();
        Ok(Outgoing {
            properties: properties_string(&message),
            topic: message.topic,
            body,
            flag: message.flag,
            sys_flag,
            batch: false,
            msg_id,
            reconsume_times,
            max_reconsume_times,
        })
    }

    /// Validates a batch (client.md §3.10) and encodes its body.
    pub(crate) fn prepare_batch(&self, messages: Vec<Message>) -> Result<Outgoing> {
        let Some(first) = messages.first() else {
            return Err(Error::InvalidArgument("a batch needs at least one message".into()));
        };
        let topic = first.topic.clone();
        let wait = first.wait_store_msg_ok();
        if topic.starts_with(validate::RETRY_GROUP_TOPIC_PREFIX) {
            return Err(Error::InvalidArgument(
                "retry group topics are not supported in batches".into(),
            ));
        }
        let mut body = Vec::new();
        let mut ids = Vec::with_capacity(messages.len());
        for mut message in messages {
            if message.topic != topic {
                return Err(Error::InvalidArgument(
                    "the topic of the messages in one batch should be the same".into(),
                ));
            }
            if message.wait_store_msg_ok() != wait {
                return Err(Error::InvalidArgument(
                    "the waitStoreMsgOK of the messages in one batch should be the same".into(),
                ));
            }
            if message.delay_level() > 0 {
                return Err(Error::InvalidArgument(
                    "delay messages are not supported in batches".into(),
                ));
            }
            self.check_message(&message)?;
            if message.uniq_key().is_none() {
                message.set_uniq_key(self.next_uniq_key());
            }
            if message.property(property::WAIT).is_none() {
                message.set_wait_store_msg_ok(true);
            }
            ferromq_message::batch::encode_message(&message, &mut body)?;
            ids.push(message.uniq_key().unwrap_or_default().to_owned());
        }
        if body.len() > self.config.max_message_size_bytes {
            return Err(Error::MessageTooLarge {
                size: body.len(),
                max: self.config.max_message_size_bytes,
            });
        }
        let mut wrapper = Message::new(topic, Bytes::new());
        wrapper.set_wait_store_msg_ok(wait);
        Ok(Outgoing {
            properties: properties_string(&wrapper),
            topic: wrapper.topic,
            body: Bytes::from(body),
            flag: 0,
            sys_flag: 0,
            batch: true,
            msg_id: ids.join(","),
            reconsume_times: None,
            max_reconsume_times: None,
        })
    }

    fn check_message(&self, message: &Message) -> Result<()> {
        if let Err(violation) = validate::check_topic(&message.topic, Dialect::V5) {
            return Err(Error::InvalidArgument(violation.java_remark(&message.topic, Dialect::V5)));
        }
        if SEND_FORBIDDEN_TOPICS.contains(&message.topic.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "Sending message to topic[{}] is forbidden.",
                message.topic
            )));
        }
        if message.body.is_empty() {
            return Err(Error::InvalidArgument("the message body length is zero".into()));
        }
        if message.body.len() > self.config.max_message_size_bytes {
            return Err(Error::MessageTooLarge {
                size: message.body.len(),
                max: self.config.max_message_size_bytes,
            });
        }
        Ok(())
    }

    // ----- flows -----

    async fn publish_info(&self, topic: &str) -> Result<Arc<TopicPublishInfo>> {
        self.instance
            .find_publish_info(
                topic,
                &self.config.create_topic_key,
                self.config.default_topic_queue_nums,
            )
            .await
    }

    /// Sync send with retries on other brokers (client.md §3.6), within `timeout` in total.
    pub(crate) async fn send_sync(&self, out: &Outgoing, timeout: Duration) -> Result<SendResult> {
        let begin = Instant::now();
        let info = self.publish_info(&out.topic).await?;
        let attempts_max = 1 + self.config.retry_times_when_send_failed;
        let mut brokers = Vec::new();
        let mut last_error = None;
        let mut last_result = None;
        for _ in 0..attempts_max {
            let Some(queue) = self.select_queue(&info, brokers.last().map(String::as_str)) else {
                break;
            };
            let elapsed = begin.elapsed();
            if elapsed >= timeout {
                last_error = Some(Error::Timeout { what: "send", elapsed });
                break;
            }
            brokers.push(queue.broker_name.clone());
            let started = Instant::now();
            match self.send_kernel(out, &queue, Mode::Sync, timeout - elapsed).await {
                Ok(Some(result)) => {
                    self.record_latency(&queue.broker_name, started.elapsed(), false);
                    if result.status != SendStatus::SendOk
                        && self.config.retry_another_broker_when_not_store_ok
                    {
                        last_result = Some(result);
                        continue;
                    }
                    return Ok(result);
                }
                Ok(None) => {
                    return Err(Error::InvalidArgument("a sync send got no response".into()));
                }
                Err(error) => {
                    self.record_latency(&queue.broker_name, started.elapsed(), true);
                    tracing::debug!(broker = %queue.broker_name, %error, "send attempt failed");
                    if !retryable(&error) {
                        return match last_result {
                            Some(result) => Ok(result),
                            None => Err(error),
                        };
                    }
                    last_error = Some(error);
                }
            }
        }
        if let Some(result) = last_result {
            return Ok(result);
        }
        let last = last_error.unwrap_or(Error::NoRoute { topic: out.topic.clone() });
        if matches!(last, Error::Timeout { .. }) && brokers.is_empty() {
            return Err(last);
        }
        Err(Error::SendFailed {
            topic: out.topic.clone(),
            attempts: u32::try_from(brokers.len()).unwrap_or(u32::MAX),
            elapsed_ms: u64::try_from(begin.elapsed().as_millis()).unwrap_or(u64::MAX),
            brokers,
            last: Box::new(last),
        })
    }

    /// Async send (client.md §3.6): one queue choice; resent to another broker's master
    /// (same queue id) only when no response came, never after a broker error code.
    pub(crate) async fn send_async(&self, out: &Outgoing, timeout: Duration) -> Result<SendResult> {
        let begin = Instant::now();
        let info = self.publish_info(&out.topic).await?;
        let Some(mut queue) = self.select_queue(&info, None) else {
            return Err(Error::NoRoute { topic: out.topic.clone() });
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let elapsed = begin.elapsed();
            if elapsed >= timeout {
                return Err(Error::Timeout { what: "send", elapsed });
            }
            let started = Instant::now();
            match self.send_kernel(out, &queue, Mode::Async, timeout - elapsed).await {
                Ok(Some(result)) => {
                    self.record_latency(&queue.broker_name, started.elapsed(), false);
                    return Ok(result);
                }
                Ok(None) => {
                    return Err(Error::InvalidArgument("an async send got no response".into()));
                }
                Err(error) => {
                    self.record_latency(&queue.broker_name, started.elapsed(), true);
                    let no_response =
                        matches!(error, Error::Transport(_) | Error::BrokerNotFound { .. });
                    if !no_response || attempts > self.config.retry_times_when_send_async_failed {
                        return Err(error);
                    }
                    let Some(other) = self.select_queue(&info, Some(&queue.broker_name)) else {
                        return Err(error);
                    };
                    tracing::debug!(%error, retry_broker = %other.broker_name, "async send retried");
                    queue.broker_name = other.broker_name;
                }
            }
        }
    }

    /// Oneway send: one attempt, no response, no retry.
    pub(crate) async fn send_oneway(&self, out: &Outgoing) -> Result<()> {
        let info = self.publish_info(&out.topic).await?;
        let Some(queue) = self.select_queue(&info, None) else {
            return Err(Error::NoRoute { topic: out.topic.clone() });
        };
        self.send_kernel(out, &queue, Mode::Oneway, self.config.send_msg_timeout).await.map(drop)
    }

    /// One attempt to a chosen queue (selector and explicit-queue sends never retry).
    pub(crate) async fn send_to_queue(
        &self,
        out: &Outgoing,
        queue: &MessageQueue,
        oneway: bool,
        timeout: Duration,
    ) -> Result<Option<SendResult>> {
        if queue.topic != out.topic {
            return Err(Error::InvalidArgument(format!(
                "message's topic {} does not match the queue's topic {}",
                out.topic, queue.topic
            )));
        }
        self.instance.add_topic(&out.topic);
        let mode = if oneway { Mode::Oneway } else { Mode::Sync };
        self.send_kernel(out, queue, mode, timeout).await
    }

    /// The publish queues of `topic`, for selectors.
    pub(crate) async fn publish_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        Ok(self.publish_info(topic).await?.queues.clone())
    }

    fn select_queue(
        &self,
        info: &TopicPublishInfo,
        last_broker: Option<&str>,
    ) -> Option<MessageQueue> {
        if self.config.send_latency_fault_enable {
            for _ in 0..info.queues.len() {
                let candidate = info.next_queue()?;
                if self.faults.is_available(&candidate.broker_name)
                    && Some(candidate.broker_name.as_str()) != last_broker
                {
                    return Some(candidate.clone());
                }
            }
        }
        info.select_queue(last_broker).cloned()
    }

    fn record_latency(&self, broker: &str, latency: Duration, failed: bool) {
        if self.config.send_latency_fault_enable {
            self.faults.update(broker, latency, failed);
        }
    }

    // ----- one attempt -----

    /// One request to the master of `queue`'s broker (client.md §3.7). `None` for oneway.
    pub(crate) async fn send_kernel(
        &self,
        out: &Outgoing,
        queue: &MessageQueue,
        mode: Mode,
        timeout: Duration,
    ) -> Result<Option<SendResult>> {
        let (oneway, sync) = (mode == Mode::Oneway, mode == Mode::Sync);
        let addr = match self.instance.master_addr(&queue.broker_name) {
            Some(addr) => addr,
            None => self
                .instance
                .master_addr_or_refresh(&queue.broker_name, &out.topic)
                .await
                .ok_or_else(|| Error::BrokerNotFound { broker_name: queue.broker_name.clone() })?,
        };
        let request = self.build_request(out, queue);
        if oneway {
            self.instance.invoke_oneway(&addr, request).await?;
            return Ok(None);
        }
        let response = if sync {
            self.instance.invoke(&addr, request, timeout).await?
        } else {
            self.instance.invoke_async(&addr, request, timeout).await?
        };
        process_send_response(&addr, out, queue, &response).map(Some)
    }

    pub(crate) fn build_request(&self, out: &Outgoing, queue: &MessageQueue) -> RemotingCommand {
        let header = SendMessageRequestHeaderV2 {
            a: self.config.group.clone(),
            b: out.topic.clone(),
            c: self.config.create_topic_key.clone(),
            d: self.config.default_topic_queue_nums,
            e: queue.queue_id,
            f: out.sys_flag,
            g: crate::util::now_ms(),
            h: out.flag,
            i: Some(out.properties.clone()),
            j: Some(out.reconsume_times.unwrap_or(0)),
            k: Some(false),
            l: out.max_reconsume_times,
            m: Some(out.batch),
            n: Some(queue.broker_name.clone()),
        };
        let code =
            if out.batch { RequestCode::SEND_BATCH_MESSAGE } else { RequestCode::SEND_MESSAGE_V2 };
        self.instance.request(code).with_header(&header).with_body(out.body.clone())
    }
}

/// Maps a send response to a [`SendResult`] or a broker error (Java
/// `processSendResponse`).
fn process_send_response(
    addr: &str,
    out: &Outgoing,
    queue: &MessageQueue,
    response: &RemotingCommand,
) -> Result<SendResult> {
    let status = match ResponseCode(response.code) {
        ResponseCode::SUCCESS => SendStatus::SendOk,
        ResponseCode::FLUSH_DISK_TIMEOUT => SendStatus::FlushDiskTimeout,
        ResponseCode::FLUSH_SLAVE_TIMEOUT => SendStatus::FlushSlaveTimeout,
        ResponseCode::SLAVE_NOT_AVAILABLE => SendStatus::SlaveNotAvailable,
        _ => return Err(Error::broker(addr, response.code, response.remark.clone())),
    };
    let header = response
        .decode_header::<SendMessageResponseHeader>()
        .map_err(|error| Error::decode("SendMessageResponseHeader", error))?;
    Ok(SendResult {
        status,
        msg_id: out.msg_id.clone(),
        offset_msg_id: header.msg_id,
        message_queue: MessageQueue {
            topic: queue.topic.clone(),
            broker_name: queue.broker_name.clone(),
            queue_id: header.queue_id,
        },
        queue_offset: header.queue_offset,
        transaction_id: header.transaction_id,
        region_id: response.ext_field(property::MSG_REGION).unwrap_or("DefaultRegion").to_owned(),
        trace_on: response.ext_field(property::TRACE_ON) != Some("false"),
    })
}

/// True when a sync send should try again after `error`.
fn retryable(error: &Error) -> bool {
    match error {
        Error::Transport(_) | Error::BrokerNotFound { .. } => true,
        Error::Broker { code, .. } => RETRY_RESPONSE_CODES.contains(&ResponseCode(*code)),
        _ => false,
    }
}

fn properties_string(message: &Message) -> String {
    let bytes = message.encode_properties();
    String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClientConfig;

    fn sender() -> Sender {
        let instance = ClientInstance::new(ClientConfig::with_namesrv("127.0.0.1:1"));
        Sender::new(instance, ProducerConfig::new("PG"))
    }

    #[tokio::test]
    async fn prepare_adds_uniq_key_and_wait_and_compresses_large_bodies() {
        let sender = sender();
        let out = sender.prepare(Message::new("T", &b"small"[..])).unwrap();
        assert_eq!(out.sys_flag, 0);
        assert!(out.properties.contains("WAIT\u{1}true\u{2}"));
        assert!(out.properties.contains(&format!("UNIQ_KEY\u{1}{}\u{2}", out.msg_id)));
        assert_eq!(out.msg_id.len(), 32);
        let big = vec![b'x'; 4096];
        let out = sender.prepare(Message::new("T", big.clone())).unwrap();
        assert_eq!(out.sys_flag, 0x301);
        assert!(out.body.len() < big.len());
        let back = ferromq_message::zlib::inflate(&out.body, 1 << 20).unwrap();
        assert_eq!(back, big);
    }

    #[tokio::test]
    async fn prepare_rejects_bad_messages() {
        let sender = sender();
        let empty = sender.prepare(Message::new("T", Bytes::new())).unwrap_err();
        assert!(empty.to_string().contains("body length is zero"));
        let forbidden = sender.prepare(Message::new("SCHEDULE_TOPIC_XXXX", &b"x"[..])).unwrap_err();
        assert!(forbidden.to_string().contains("is forbidden"));
        let bad = sender.prepare(Message::new("a b", &b"x"[..])).unwrap_err();
        assert!(matches!(bad, Error::InvalidArgument(_)));
        let huge = sender.prepare(Message::new("T", vec![0; 4 * 1024 * 1024 + 1])).unwrap_err();
        assert!(matches!(huge, Error::MessageTooLarge { size: 4_194_305, max: 4_194_304 }));
    }

    #[tokio::test]
    async fn retry_topic_properties_move_into_the_header() {
        let sender = sender();
        let mut message = Message::new("%RETRY%G", &b"x"[..]);
        message.put_property(property::RECONSUME_TIME, "3");
        message.put_property(property::MAX_RECONSUME_TIMES, "16");
        let out = sender.prepare(message).unwrap();
        assert_eq!((out.reconsume_times, out.max_reconsume_times), (Some(3), Some(16)));
        assert!(!out.properties.contains("RECONSUME_TIME"));
    }

    #[tokio::test]
    async fn batches_must_share_topic_and_have_no_delay() {
        let sender = sender();
        let out = sender
            .prepare_batch(vec![Message::new("T", &b"a"[..]), Message::new("T", &b"bb"[..])])
            .unwrap();
        assert!(out.batch);
        assert_eq!(out.msg_id.split(',').count(), 2);
        let items = ferromq_message::batch::decode_batch(&out.body).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].body, b"bb");
        let mixed = sender
            .prepare_batch(vec![Message::new("T", &b"a"[..]), Message::new("U", &b"b"[..])])
            .unwrap_err();
        assert!(mixed.to_string().contains("should be the same"));
        let mut delayed = Message::new("T", &b"a"[..]);
        delayed.set_delay_level(2);
        assert!(sender.prepare_batch(vec![delayed]).is_err());
        assert!(sender.prepare_batch(Vec::new()).is_err());
    }

    #[test]
    fn retryable_codes() {
        assert!(retryable(&Error::broker("a", 2, None)));
        assert!(retryable(&Error::broker("a", 17, None)));
        assert!(!retryable(&Error::broker("a", 13, None)));
        assert!(!retryable(&Error::InvalidArgument("x".into())));
    }
}
