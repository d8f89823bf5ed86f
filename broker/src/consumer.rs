//! Client and consumer management: HEART_BEAT, UNREGISTER_CLIENT, consumer lists, offsets,
//! CONSUMER_SEND_MSG_BACK, queue locks (remoting.md §8.5–§8.12, broker.md §5, §7, §9, §10).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ferromq_message::properties::{encode_properties, parse_properties};
use ferromq_message::property;
use ferromq_remoting::bodies::{
    ConsumerListByGroupResponseBody, HeartbeatData, JsonBody, LockBatchRequestBody,
    LockBatchResponseBody, UnlockBatchRequestBody,
};
use ferromq_remoting::headers::{
    CommandHeader, ConsumerSendMsgBackRequestHeader, GetConsumerListByGroupRequestHeader,
    GetEarliestMsgStoretimeRequestHeader, GetEarliestMsgStoretimeResponseHeader,
    GetMaxOffsetRequestHeader, GetMaxOffsetResponseHeader, GetMinOffsetRequestHeader,
    GetMinOffsetResponseHeader, QueryConsumerOffsetRequestHeader,
    QueryConsumerOffsetResponseHeader, SearchOffsetRequestHeader, SearchOffsetResponseHeader,
    UnregisterClientRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use ferromq_remoting::transport::{Connection, Reply};
use ferromq_remoting::{RemotingCommand, ResponseCode};

use crate::broker::{Broker, bad_header, respond};
use crate::clients::ClientChannel;
use crate::metadata::{dlq_topic, perm, retry_topic};
use crate::send::{OwnedPut, put};

const FAQ_URL: &str =
    "\nSee https://rocketmq.apache.org/docs/bestPractice/06FAQ for further details.";

fn ok(request: &RemotingCommand) -> RemotingCommand {
    respond(request, ResponseCode::SUCCESS, None)
}

fn with_header<H: CommandHeader>(mut response: RemotingCommand, header: &H) -> Reply {
    header.to_ext_fields(response.ext_fields.get_or_insert_with(Default::default));
    response.into()
}

/// HEART_BEAT (broker.md §7.2).
pub fn heartbeat(broker: &Broker, connection: &Connection, request: &RemotingCommand) -> Reply {
    let data = match HeartbeatData::decode(&request.body) {
        Ok(data) => data,
        Err(error) => {
            return respond(
                request,
                ResponseCode::SYSTEM_ERROR,
                format!("decode heartbeat body failed: {error}"),
            )
            .into();
        }
    };
    let channel = |client_id: &str| ClientChannel {
        connection: connection.clone(),
        client_id: client_id.to_owned(),
        language: request.language,
        version: request.version,
        last_update: Instant::now(),
    };
    for consumer in &data.consumer_data_set {
        if let Some(group) = broker.groups.find_or_create(&consumer.group_name) {
            let (_, created) = broker.topics.create_if_missing(
                &retry_topic(&consumer.group_name),
                group.retry_queue_nums,
                perm::READ | perm::WRITE,
            );
            if created {
                broker.register_soon.notify_one();
            }
            let changed = broker.clients.register_consumer(channel(&data.client_id), consumer);
            if changed && group.notify_consumer_ids_changed_enable {
                broker.notify_consumer_ids_changed(&consumer.group_name);
            }
        } else {
            broker.clients.register_consumer(channel(&data.client_id), consumer);
        }
    }
    for producer in &data.producer_data_set {
        broker.clients.register_producer(&producer.group_name, channel(&data.client_id));
    }
    ok(request).into()
}

/// UNREGISTER_CLIENT: removes the requesting connection from the named groups.
pub fn unregister_client(
    broker: &Broker,
    connection: &Connection,
    request: &RemotingCommand,
) -> Reply {
    let header = match request.decode_header::<UnregisterClientRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    if let Some(group) = header.producer_group.as_deref().filter(|g| !g.is_empty()) {
        broker.clients.unregister_producer(group, connection);
    }
    if let Some(group) = header.consumer_group.as_deref().filter(|g| !g.is_empty())
        && broker.clients.unregister_consumer(group, connection)
        && broker.groups.get(group).is_none_or(|config| config.notify_consumer_ids_changed_enable)
    {
        broker.notify_consumer_ids_changed(group);
    }
    ok(request).into()
}

/// GET_CONSUMER_LIST_BY_GROUP.
pub fn consumer_list(broker: &Broker, request: &RemotingCommand) -> Reply {
    let header = match request.decode_header::<GetConsumerListByGroupRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    let ids = broker.clients.consumer_ids(&header.consumer_group);
    if ids.is_empty() {
        let remark = format!("no consumer for this group, {}", header.consumer_group);
        return respond(request, ResponseCode::SYSTEM_ERROR, remark).into();
    }
    let body = ConsumerListByGroupResponseBody { consumer_id_list: ids };
    ok(request).with_body(body.encode()).into()
}

/// QUERY_CONSUMER_OFFSET (broker.md §9.2; a queue with nothing at offset 0 answers 0, the
/// 4.9 rule, unless the client says `setZeroIfNotFound=false`).
pub fn query_offset(broker: &Broker, request: &RemotingCommand) -> Reply {
    let header = match request.decode_header::<QueryConsumerOffsetRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    if let Some(offset) =
        broker.offsets.query(&header.consumer_group, &header.topic, header.queue_id)
        && offset >= 0
    {
        return with_header(ok(request), &QueryConsumerOffsetResponseHeader { offset });
    }
    if header.set_zero_if_not_found == Some(false) {
        let remark = "Not found, do not set to zero, maybe this group boot first".to_owned();
        return respond(request, ResponseCode::QUERY_NOT_FOUND, remark).into();
    }
    let min = broker.store.min_offset_in_queue(&header.topic, header.queue_id);
    if min <= 0 && !first_message_on_disk(broker, &header.topic, header.queue_id) {
        return with_header(ok(request), &QueryConsumerOffsetResponseHeader { offset: 0 });
    }
    let remark = "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first".to_owned();
    respond(request, ResponseCode::QUERY_NOT_FOUND, remark).into()
}

/// Whether the message at queue offset 0 has left memory (storage.md §16.1 heuristic).
fn first_message_on_disk(broker: &Broker, topic: &str, queue_id: i32) -> bool {
    match broker.store.get(topic, queue_id, 0, 1, &|_| true) {
        Ok(result) if !result.messages.is_empty() => result.suggest_pulling_from_slave,
        _ => false,
    }
}

/// UPDATE_CONSUMER_OFFSET (usually oneway).
pub fn update_offset(broker: &Broker, request: &RemotingCommand) -> Reply {
    let header = match request.decode_header::<UpdateConsumerOffsetRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    broker.offsets.commit(
        &header.consumer_group,
        &header.topic,
        header.queue_id,
        header.commit_offset,
    );
    ok(request).into()
}

/// GET_MAX_OFFSET.
pub fn max_offset(broker: &Broker, request: &RemotingCommand) -> Reply {
    let header = match request.decode_header::<GetMaxOffsetRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    let offset = broker.store.max_offset_in_queue(&header.topic, header.queue_id).unwrap_or(0);
    with_header(ok(request), &GetMaxOffsetResponseHeader { offset })
}

/// GET_MIN_OFFSET.
pub fn min_offset(broker: &Broker, request: &RemotingCommand) -> Reply {
    let header = match request.decode_header::<GetMinOffsetRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    let offset = broker.store.min_offset_in_queue(&header.topic, header.queue_id);
    with_header(ok(request), &GetMinOffsetResponseHeader { offset })
}

/// SEARCH_OFFSET_BY_TIMESTAMP.
pub async fn search_offset(broker: &Arc<Broker>, request: &RemotingCommand) -> Reply {
    let header = match request.decode_header::<SearchOffsetRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    let (topic, queue_id, timestamp) = (header.topic, header.queue_id, header.timestamp);
    let found = broker.blocking(move |b| b.store.offset_by_time(&topic, queue_id, timestamp)).await;
    match found {
        Some(Ok(offset)) => with_header(ok(request), &SearchOffsetResponseHeader { offset }),
        _ => respond(request, ResponseCode::SYSTEM_ERROR, "search offset failed".to_owned()).into(),
    }
}

/// GET_EARLIEST_MSG_STORETIME.
pub async fn earliest_msg_storetime(broker: &Arc<Broker>, request: &RemotingCommand) -> Reply {
    let header = match request.decode_header::<GetEarliestMsgStoretimeRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    let (topic, queue_id) = (header.topic, header.queue_id);
    let found = broker.blocking(move |b| b.store.earliest_message_time(&topic, queue_id)).await;
    match found {
        Some(Ok(time)) => with_header(
            ok(request),
            &GetEarliestMsgStoretimeResponseHeader { timestamp: time.unwrap_or(-1) },
        ),
        _ => respond(request, ResponseCode::SYSTEM_ERROR, "read failed".to_owned()).into(),
    }
}

/// CONSUMER_SEND_MSG_BACK (broker.md §5): the failed message goes to `%RETRY%<group>`
/// through the delay levels, or to `%DLQ%<group>` after its last attempt.
pub async fn send_back(
    broker: &Arc<Broker>,
    _connection: &Connection,
    request: &RemotingCommand,
) -> Reply {
    let header = match request.decode_header::<ConsumerSendMsgBackRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    let group = header.group.as_str();
    let Some(group_config) = broker.groups.find_or_create(group) else {
        let remark = format!("subscription group not exist, {group} {FAQ_URL}");
        return respond(request, ResponseCode::SUBSCRIPTION_GROUP_NOT_EXIST, remark).into();
    };
    if !broker.is_writeable() {
        let remark =
            format!("the broker[{}] sending message is forbidden", broker.config.broker_ip1);
        return respond(request, ResponseCode::NO_PERMISSION, remark).into();
    }
    if group_config.retry_queue_nums <= 0 {
        return ok(request).into();
    }
    let retry = retry_topic(group);
    let (retry_config, created) = broker.topics.create_if_missing(
        &retry,
        group_config.retry_queue_nums,
        perm::READ | perm::WRITE,
    );
    if created {
        broker.register_soon.notify_one();
    }
    if !perm::is_writeable(retry_config.perm) {
        let remark = format!("the topic[{retry}] sending message is forbidden");
        return respond(request, ResponseCode::NO_PERMISSION, remark).into();
    }
    let offset = header.offset;
    let record = broker.blocking(move |b| b.store.message_by_phy_offset(offset)).await;
    let Some(Ok(Some(record))) = record else {
        let remark = format!("look message by offset failed, {offset}");
        return respond(request, ResponseCode::SYSTEM_ERROR, remark).into();
    };
    let Ok((original, _)) = ferromq_message::record::decode_record(&record) else {
        let remark = format!("look message by offset failed, {offset}");
        return respond(request, ResponseCode::SYSTEM_ERROR, remark).into();
    };
    let mut properties = parse_properties(original.properties);
    properties.entry(property::RETRY_TOPIC.to_owned()).or_insert_with(|| original.topic.to_owned());
    properties.insert(property::WAIT.to_owned(), "false".to_owned());
    let max = match header.max_reconsume_times {
        Some(max) if request.version >= 121 => max,
        _ => group_config.retry_max_times,
    };
    let (topic, queue_id) = if original.reconsume_times >= max || header.delay_level < 0 {
        let dlq = dlq_topic(group);
        let (_, created) = broker.topics.create_if_missing(&dlq, 1, perm::READ | perm::WRITE);
        if created {
            broker.register_soon.notify_one();
        }
        properties.remove(property::DELAY);
        (dlq, 0)
    } else {
        let level =
            if header.delay_level == 0 { 3 + original.reconsume_times } else { header.delay_level };
        properties.insert(property::DELAY.to_owned(), level.to_string());
        (retry, crate::send::random_queue(retry_config.write_queue_nums))
    };
    let origin_id = properties
        .get(property::ORIGIN_MESSAGE_ID)
        .filter(|id| !id.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| original.offset_msg_id());
    properties.insert(property::ORIGIN_MESSAGE_ID.to_owned(), origin_id);
    let message = OwnedPut {
        topic,
        queue_id,
        flag: original.flag,
        body: Bytes::copy_from_slice(original.body),
        properties: encode_properties(&properties),
        sys_flag: original.sysflag,
        born_timestamp: original.born_timestamp,
        born_host: original.born_host,
        reconsume_times: original.reconsume_times + 1,
    };
    match put(broker, message, None).await {
        Ok(result) if result.status.is_ok() => ok(request).into(),
        Ok(result) => {
            respond(request, ResponseCode::SYSTEM_ERROR, format!("{:?}", result.status)).into()
        }
        Err((code, remark)) => respond(request, code, remark).into(),
    }
}

/// LOCK_BATCH_MQ.
pub fn lock_batch(broker: &Broker, request: &RemotingCommand) -> Reply {
    let body = match LockBatchRequestBody::decode(&request.body) {
        Ok(body) => body,
        Err(error) => {
            return respond(request, ResponseCode::SYSTEM_ERROR, error.to_string()).into();
        }
    };
    let granted =
        broker.locks.lock(&body.consumer_group, &body.client_id, &body.mq_set, Instant::now());
    let response = LockBatchResponseBody { lock_ok_mq_set: granted };
    ok(request).with_body(response.encode()).into()
}

/// UNLOCK_BATCH_MQ.
pub fn unlock_batch(broker: &Broker, request: &RemotingCommand) -> Reply {
    let body = match UnlockBatchRequestBody::decode(&request.body) {
        Ok(body) => body,
        Err(error) => {
            return respond(request, ResponseCode::SYSTEM_ERROR, error.to_string()).into();
        }
    };
    broker.locks.unlock(&body.consumer_group, &body.client_id, &body.mq_set);
    ok(request).into()
}

/// CHECK_CLIENT_CONFIG: TAG subscriptions pass; property filters are not supported.
pub fn check_client_config(request: &RemotingCommand) -> Reply {
    let text = String::from_utf8_lossy(&request.body);
    let non_tag =
        ["\"SQL92\"", "\"expressionType\":\"SQL"].iter().any(|needle| text.contains(needle));
    if non_tag {
        let remark = "The broker does not support consumer to filter message by SQL92".to_owned();
        return respond(request, ResponseCode::SYSTEM_ERROR, remark).into();
    }
    ok(request).into()
}
