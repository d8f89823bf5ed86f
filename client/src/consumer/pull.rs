//! The pull request and its result (client.md §4.3–§4.4, Java `PullAPIWrapper`): which
//! broker node to ask, the header, the status mapping and the decoding and re-filtering of
//! the messages found.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferromq_message::record::{DecodeOptions, decode_messages_shared};
use ferromq_message::{MessageExt, property};
use ferromq_remoting::bodies::{MessageQueue, SubscriptionData};
use ferromq_remoting::headers::{
    PullMessageRequestHeader, PullMessageResponseHeader, pull_sys_flag,
};
use ferromq_remoting::{RequestCode, ResponseCode};
use parking_lot::Mutex;

use super::subscription;
use crate::error::{Error, Result};
use crate::instance::ClientInstance;
use crate::route::MASTER_ID;

/// What a pull found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PullStatus {
    /// Messages (possibly all filtered out by the client).
    Found,
    /// Nothing new (after the broker held the request).
    NoNewMsg,
    /// Messages exist but none matched the filter.
    NoMatchedMsg,
    /// The requested offset is outside the queue; use `next_begin_offset`.
    OffsetIllegal,
}

/// A pull's answer.
#[derive(Debug)]
pub(crate) struct PullResult {
    pub(crate) status: PullStatus,
    pub(crate) next_begin_offset: i64,
    /// Messages that passed the client-side tag check.
    pub(crate) messages: Vec<MessageExt>,
}

/// One pull's parameters.
#[derive(Debug)]
pub(crate) struct PullSpec<'a> {
    pub(crate) group: &'a str,
    pub(crate) queue: &'a MessageQueue,
    pub(crate) offset: i64,
    pub(crate) max_nums: i32,
    pub(crate) sys_flag: i32,
    pub(crate) commit_offset: i64,
    pub(crate) suspend_timeout: Duration,
    pub(crate) subscription: &'a SubscriptionData,
    pub(crate) timeout: Duration,
}

/// Sends pulls, remembering each queue's suggested broker node.
#[derive(Debug)]
pub(crate) struct PullApi {
    instance: Arc<ClientInstance>,
    suggested: Mutex<HashMap<MessageQueue, i64>>,
}

impl PullApi {
    pub(crate) fn new(instance: Arc<ClientInstance>) -> Self {
        Self { instance, suggested: Mutex::new(HashMap::new()) }
    }

    /// Sends one pull and maps the answer.
    ///
    /// # Errors
    ///
    /// [`Error::BrokerNotFound`], a transport error, or [`Error::Broker`] for any other
    /// response code (FLOW_CONTROL, SUBSCRIPTION_NOT_LATEST, …).
    pub(crate) async fn pull(&self, spec: &PullSpec<'_>) -> Result<PullResult> {
        let queue = spec.queue;
        let suggested = self.suggested.lock().get(queue).copied().unwrap_or(MASTER_ID);
        let found = match self.instance.subscribe_addr(&queue.broker_name, suggested, false) {
            Some(found) => Some(found),
            None => {
                if let Err(error) = self.instance.update_route(&queue.topic).await {
                    tracing::debug!(topic = %queue.topic, %error, "route refresh failed");
                }
                self.instance.subscribe_addr(&queue.broker_name, suggested, false)
            }
        };
        let (addr, broker_id) = found
            .ok_or_else(|| Error::BrokerNotFound { broker_name: queue.broker_name.clone() })?;
        let mut sys_flag = spec.sys_flag;
        if broker_id != MASTER_ID {
            sys_flag &= !pull_sys_flag::COMMIT_OFFSET;
        }
        let with_subscription = sys_flag & pull_sys_flag::SUBSCRIPTION != 0;
        let header = PullMessageRequestHeader {
            consumer_group: spec.group.to_owned(),
            topic: queue.topic.clone(),
            queue_id: queue.queue_id,
            queue_offset: spec.offset,
            max_msg_nums: spec.max_nums,
            sys_flag,
            commit_offset: spec.commit_offset,
            suspend_timeout_millis: i64::try_from(spec.suspend_timeout.as_millis())
                .unwrap_or(i64::MAX),
            subscription: with_subscription.then(|| spec.subscription.sub_string.clone()),
            sub_version: spec.subscription.sub_version,
            expression_type: Some(spec.subscription.expression_type.clone()),
            max_msg_bytes: None,
            request_source: None,
            proxy_froward_client_id: None,
            broker_name: Some(queue.broker_name.clone()),
        };
        let request = self.instance.request(RequestCode::PULL_MESSAGE).with_header(&header);
        let response = self.instance.invoke_async(&addr, request, spec.timeout).await?;
        let status = match ResponseCode(response.code) {
            ResponseCode::SUCCESS => PullStatus::Found,
            ResponseCode::PULL_NOT_FOUND => PullStatus::NoNewMsg,
            ResponseCode::PULL_RETRY_IMMEDIATELY => PullStatus::NoMatchedMsg,
            ResponseCode::PULL_OFFSET_MOVED => PullStatus::OffsetIllegal,
            _ => return Err(Error::broker(&addr, response.code, response.remark)),
        };
        let header = response
            .decode_header::<PullMessageResponseHeader>()
            .map_err(|error| Error::decode("PullMessageResponseHeader", error))?;
        self.suggested.lock().insert(queue.clone(), header.suggest_which_broker_id);
        let messages = if status == PullStatus::Found {
            decode_found(&response.body, spec.subscription, &header)?
        } else {
            Vec::new()
        };
        Ok(PullResult { status, next_begin_offset: header.next_begin_offset, messages })
    }

    /// Forgets a queue's suggested node.
    pub(crate) fn forget(&self, queue: &MessageQueue) {
        self.suggested.lock().remove(queue);
    }
}

/// Decodes a FOUND body (bodies inflated), keeps the messages passing the tag re-check and
/// adds `MIN_OFFSET`/`MAX_OFFSET`.
fn decode_found(
    body: &bytes::Bytes,
    subscription: &SubscriptionData,
    header: &PullMessageResponseHeader,
) -> Result<Vec<MessageExt>> {
    let mut messages = decode_messages_shared(body, &DecodeOptions::default())?;
    messages.retain(|message| subscription::matches(subscription, message));
    let (min, max) = (header.min_offset.to_string(), header.max_offset.to_string());
    for message in &mut messages {
        message.message.put_property(property::MIN_OFFSET, min.clone());
        message.message.put_property(property::MAX_OFFSET, max.clone());
    }
    Ok(messages)
}
