//! Requests to the broker that consumers and the admin client share (Java `MQAdminImpl` and
//! parts of `MQClientAPIImpl`): queue offsets, the group's consumer ids, queue locks.

use std::collections::BTreeSet;
use std::time::Duration;

use ferromq_remoting::RequestCode;
use ferromq_remoting::bodies::{
    ConsumerListByGroupResponseBody, JsonBody, LockBatchRequestBody, LockBatchResponseBody,
    MessageQueue,
};
use ferromq_remoting::headers::{
    GetConsumerListByGroupRequestHeader, GetEarliestMsgStoretimeRequestHeader,
    GetEarliestMsgStoretimeResponseHeader, GetMaxOffsetRequestHeader, GetMaxOffsetResponseHeader,
    GetMinOffsetRequestHeader, GetMinOffsetResponseHeader, SearchOffsetRequestHeader,
    SearchOffsetResponseHeader,
};

use crate::error::{Error, Result};
use crate::instance::ClientInstance;

/// Timeout of offset lookups at the queue's master (Java `MQAdminImpl`: 6 s).
const QUEUE_OFFSET_TIMEOUT: Duration = Duration::from_secs(6);
/// Timeout of LOCK_BATCH_MQ (Java: 1 s).
const LOCK_TIMEOUT: Duration = Duration::from_secs(1);

async fn master(instance: &ClientInstance, queue: &MessageQueue) -> Result<String> {
    instance
        .master_addr_or_refresh(&queue.broker_name, &queue.topic)
        .await
        .ok_or_else(|| Error::BrokerNotFound { broker_name: queue.broker_name.clone() })
}

/// GET_MAX_OFFSET: the queue's max offset (one past its last message).
pub(crate) async fn max_offset(instance: &ClientInstance, queue: &MessageQueue) -> Result<i64> {
    let addr = master(instance, queue).await?;
    let header = GetMaxOffsetRequestHeader {
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        committed: None,
        broker_name: Some(queue.broker_name.clone()),
    };
    let request = instance.request(RequestCode::GET_MAX_OFFSET).with_header(&header);
    let response = instance.invoke_ok(&addr, request, QUEUE_OFFSET_TIMEOUT).await?;
    response
        .decode_header::<GetMaxOffsetResponseHeader>()
        .map(|header| header.offset)
        .map_err(|error| Error::decode("GetMaxOffsetResponseHeader", error))
}

/// GET_MIN_OFFSET: the queue's first available offset.
pub(crate) async fn min_offset(instance: &ClientInstance, queue: &MessageQueue) -> Result<i64> {
    let addr = master(instance, queue).await?;
    let header = GetMinOffsetRequestHeader {
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        broker_name: Some(queue.broker_name.clone()),
    };
    let request = instance.request(RequestCode::GET_MIN_OFFSET).with_header(&header);
    let response = instance.invoke_ok(&addr, request, QUEUE_OFFSET_TIMEOUT).await?;
    response
        .decode_header::<GetMinOffsetResponseHeader>()
        .map(|header| header.offset)
        .map_err(|error| Error::decode("GetMinOffsetResponseHeader", error))
}

/// SEARCH_OFFSET_BY_TIMESTAMP: the offset of the first message stored at or after
/// `timestamp_ms`.
pub(crate) async fn search_offset(
    instance: &ClientInstance,
    queue: &MessageQueue,
    timestamp_ms: i64,
) -> Result<i64> {
    let addr = master(instance, queue).await?;
    let header = SearchOffsetRequestHeader {
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        timestamp: timestamp_ms,
        boundary_type: None,
        broker_name: Some(queue.broker_name.clone()),
    };
    let request = instance.request(RequestCode::SEARCH_OFFSET_BY_TIMESTAMP).with_header(&header);
    let response = instance.invoke_ok(&addr, request, QUEUE_OFFSET_TIMEOUT).await?;
    response
        .decode_header::<SearchOffsetResponseHeader>()
        .map(|header| header.offset)
        .map_err(|error| Error::decode("SearchOffsetResponseHeader", error))
}

/// GET_EARLIEST_MSG_STORETIME: store time of the queue's oldest message, ms.
pub(crate) async fn earliest_msg_store_time(
    instance: &ClientInstance,
    queue: &MessageQueue,
) -> Result<i64> {
    let addr = master(instance, queue).await?;
    let header = GetEarliestMsgStoretimeRequestHeader {
        topic: queue.topic.clone(),
        queue_id: queue.queue_id,
        broker_name: Some(queue.broker_name.clone()),
    };
    let request = instance.request(RequestCode::GET_EARLIEST_MSG_STORETIME).with_header(&header);
    let response = instance.invoke_ok(&addr, request, QUEUE_OFFSET_TIMEOUT).await?;
    response
        .decode_header::<GetEarliestMsgStoretimeResponseHeader>()
        .map(|header| header.timestamp)
        .map_err(|error| Error::decode("GetEarliestMsgStoretimeResponseHeader", error))
}

/// GET_CONSUMER_LIST_BY_GROUP to one random broker of `topic` (client.md §5.2); `None`
/// when no broker is known or the answer is an error.
pub(crate) async fn consumer_ids(
    instance: &ClientInstance,
    group: &str,
    topic: &str,
) -> Option<Vec<String>> {
    let addr = match instance.any_broker_of_topic(topic) {
        Some(addr) => addr,
        None => {
            if let Err(error) = instance.update_route(topic).await {
                tracing::debug!(topic, %error, "route refresh failed");
            }
            instance.any_broker_of_topic(topic)?
        }
    };
    let header = GetConsumerListByGroupRequestHeader { consumer_group: group.to_owned() };
    let request = instance.request(RequestCode::GET_CONSUMER_LIST_BY_GROUP).with_header(&header);
    match instance.invoke_ok(&addr, request, instance.config.mq_client_api_timeout).await {
        Ok(response) => match ConsumerListByGroupResponseBody::decode(&response.body) {
            Ok(body) => Some(body.consumer_id_list),
            Err(error) => {
                tracing::warn!(%addr, %error, "bad consumer list body");
                None
            }
        },
        Err(error) => {
            tracing::debug!(%addr, group, %error, "consumer list unavailable");
            None
        }
    }
}

/// LOCK_BATCH_MQ for `queues` (all on `broker_name`) at its master: the queues now held.
pub(crate) async fn lock_batch(
    instance: &ClientInstance,
    group: &str,
    broker_name: &str,
    queues: Vec<MessageQueue>,
) -> Result<BTreeSet<MessageQueue>> {
    let addr = instance
        .subscribe_addr(broker_name, crate::route::MASTER_ID, true)
        .map(|(addr, _)| addr)
        .ok_or_else(|| Error::BrokerNotFound { broker_name: broker_name.to_owned() })?;
    let body = LockBatchRequestBody {
        consumer_group: group.to_owned(),
        client_id: instance.client_id.clone(),
        only_this_broker: true,
        mq_set: queues,
    };
    let request = instance.request(RequestCode::LOCK_BATCH_MQ).with_body(body.encode());
    let response = instance.invoke_ok(&addr, request, LOCK_TIMEOUT).await?;
    LockBatchResponseBody::decode(&response.body)
        .map(|body| body.lock_ok_mq_set.into_iter().collect())
        .map_err(|error| Error::decode("LockBatchResponseBody", error))
}

/// UNLOCK_BATCH_MQ for `queues` (all on `broker_name`), oneway or checked.
pub(crate) async fn unlock_batch(
    instance: &ClientInstance,
    group: &str,
    broker_name: &str,
    queues: Vec<MessageQueue>,
    oneway: bool,
) -> Result<()> {
    let addr = instance
        .subscribe_addr(broker_name, crate::route::MASTER_ID, true)
        .map(|(addr, _)| addr)
        .ok_or_else(|| Error::BrokerNotFound { broker_name: broker_name.to_owned() })?;
    let body = LockBatchRequestBody {
        consumer_group: group.to_owned(),
        client_id: instance.client_id.clone(),
        only_this_broker: true,
        mq_set: queues,
    };
    let request = instance.request(RequestCode::UNLOCK_BATCH_MQ).with_body(body.encode());
    if oneway {
        instance.invoke_oneway(&addr, request).await
    } else {
        instance.invoke_ok(&addr, request, LOCK_TIMEOUT).await.map(drop)
    }
}
