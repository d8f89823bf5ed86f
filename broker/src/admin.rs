//! Queries and the admin requests `mqadmin` uses every day (broker.md §2.7, §6, §13);
//! UPDATE_BROKER_CONFIG is in [`crate::config_update`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ferromq_remoting::bodies::{
    ConsumeStats, GroupList, JsonBody, KvTable, MessageQueue, OffsetWrapper,
    SubscriptionGroupConfig, TopicConfig,
};
use ferromq_remoting::headers::{
    CommandHeader, CreateTopicRequestHeader, DeleteTopicRequestHeader, QueryMessageRequestHeader,
    QueryMessageResponseHeader, ViewMessageRequestHeader,
};
use ferromq_remoting::json::{self, JsonStyle, Object, Value};
use ferromq_remoting::transport::Reply;
use ferromq_remoting::{RemotingCommand, RequestCode, ResponseCode};

use crate::broker::{Broker, bad_header, now_ms, respond};

fn ok(request: &RemotingCommand) -> RemotingCommand {
    respond(request, ResponseCode::SUCCESS, None)
}

fn field<'a>(request: &'a RemotingCommand, name: &str) -> Result<&'a str, Box<Reply>> {
    request.ext_field(name).ok_or_else(|| {
        let remark = format!(
            "org.apache.rocketmq.remoting.exception.RemotingCommandException: the custom field <{name}> is null"
        );
        Box::new(respond(request, ResponseCode::SYSTEM_ERROR, remark).into())
    })
}

/// QUERY_MESSAGE: messages by key through the IndexFile; the body is their raw records.
pub async fn query_message(broker: &Arc<Broker>, request: &RemotingCommand) -> Reply {
    let header = match request.decode_header::<QueryMessageRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    let mut max = usize::try_from(header.max_num.max(0)).unwrap_or(0);
    if request.ext_field("_UNIQUE_KEY_QUERY") == Some("true") {
        max = usize::try_from(broker.config.default_query_max_num.max(0)).unwrap_or(32);
    }
    let (begin, end) = (header.begin_timestamp, header.end_timestamp);
    let (topic, key) = (header.topic, header.key);
    let found = broker.blocking(move |b| b.store.query_by_key(&topic, &key, max, begin, end)).await;
    let Some(Ok(found)) = found else {
        return respond(request, ResponseCode::SYSTEM_ERROR, "query failed".to_owned()).into();
    };
    let response_header = QueryMessageResponseHeader {
        index_last_update_timestamp: found.index_last_update_timestamp,
        index_last_update_phyoffset: found.index_last_update_phy_offset,
    };
    let code = if found.messages.is_empty() {
        ResponseCode::QUERY_NOT_FOUND
    } else {
        ResponseCode::SUCCESS
    };
    let remark = found
        .messages
        .is_empty()
        .then(|| "can not find message, maybe time range not correct".to_owned());
    let mut response = respond(request, code, remark);
    response_header.to_ext_fields(response.ext_fields.get_or_insert_with(Default::default));
    Reply::with_chunks(response, found.messages)
}

/// VIEW_MESSAGE_BY_ID: the record at a physical offset.
pub async fn view_message(broker: &Arc<Broker>, request: &RemotingCommand) -> Reply {
    let header = match request.decode_header::<ViewMessageRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    let offset = header.offset;
    match broker.blocking(move |b| b.store.message_by_phy_offset(offset)).await {
        Some(Ok(Some(record))) => Reply::with_chunks(ok(request), vec![record]),
        _ => {
            let remark = format!("can not find message by the offset, {offset}");
            respond(request, ResponseCode::SYSTEM_ERROR, remark).into()
        }
    }
}

/// The admin codes; `None` for a code nobody serves.
pub async fn handle(
    broker: &Arc<Broker>,
    code: RequestCode,
    request: &RemotingCommand,
) -> Option<Reply> {
    let reply = match code {
        RequestCode::UPDATE_AND_CREATE_TOPIC => update_topic(broker, request),
        RequestCode::DELETE_TOPIC_IN_BROKER => delete_topic(broker, request),
        RequestCode::GET_ALL_TOPIC_CONFIG => {
            ok(request).with_body(broker.topics.wrapper().encode()).into()
        }
        RequestCode::GET_TOPIC_CONFIG => match field(request, "topic") {
            Ok(topic) => match broker.topics.get(topic) {
                Some(config) => ok(request).with_body(config.encode()).into(),
                None => {
                    let remark = format!("No topic in this broker. topic: {topic}");
                    respond(request, ResponseCode::TOPIC_NOT_EXIST, remark).into()
                }
            },
            Err(reply) => *reply,
        },
        RequestCode::GET_ALL_CONSUMER_OFFSET => {
            ok(request).with_body(broker.offsets.wrapper().encode()).into()
        }
        RequestCode::GET_ALL_DELAY_OFFSET => {
            ok(request).with_body(broker.delay_offsets.encode()).into()
        }
        RequestCode::GET_ALL_SUBSCRIPTIONGROUP_CONFIG => {
            ok(request).with_body(broker.groups.wrapper().encode()).into()
        }
        RequestCode::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => {
            match SubscriptionGroupConfig::decode(&request.body) {
                Ok(config) if !config.group_name.is_empty() => {
                    broker.groups.update(config);
                    ok(request).into()
                }
                Ok(_) => {
                    respond(request, ResponseCode::SYSTEM_ERROR, "groupName is blank".to_owned())
                        .into()
                }
                Err(error) => {
                    respond(request, ResponseCode::SYSTEM_ERROR, error.to_string()).into()
                }
            }
        }
        RequestCode::DELETE_SUBSCRIPTIONGROUP => match field(request, "groupName") {
            Ok(group) => {
                broker.groups.delete(group);
                let clean = ["removeOffset", "cleanOffset"]
                    .iter()
                    .any(|k| request.ext_field(k) == Some("true"));
                if clean {
                    broker.offsets.remove_group(group);
                }
                ok(request).into()
            }
            Err(reply) => *reply,
        },
        RequestCode::GET_TOPIC_STATS_INFO => topic_stats(broker, request),
        RequestCode::GET_CONSUME_STATS => consume_stats(broker, request),
        RequestCode::QUERY_TOPIC_CONSUME_BY_WHO => match field(request, "topic") {
            Ok(topic) => {
                let mut groups = broker.offsets.groups_of_topic(topic);
                groups.extend(broker.clients.groups_subscribing(topic));
                let body = GroupList { group_list: groups.into_iter().collect() };
                ok(request).with_body(body.encode()).into()
            }
            Err(reply) => *reply,
        },
        RequestCode::GET_CONSUMER_CONNECTION_LIST => consumer_connections(broker, request),
        RequestCode::GET_PRODUCER_CONNECTION_LIST => producer_connections(broker, request),
        RequestCode::GET_BROKER_RUNTIME_INFO => runtime_info(broker, request),
        RequestCode::GET_BROKER_CONFIG => broker_config(broker, request),
        RequestCode::UPDATE_BROKER_CONFIG => crate::config_update::update(broker, request).await,
        RequestCode::INVOKE_BROKER_TO_RESET_OFFSET => reset_offset(broker, request).await,
        RequestCode::GET_SYSTEM_TOPIC_LIST_FROM_BROKER => {
            let topics: Vec<String> =
                broker.topics.names().into_iter().filter(|t| broker.topics.is_system(t)).collect();
            let body =
                ferromq_remoting::bodies::TopicList { topic_list: topics, broker_addr: None };
            ok(request).with_body(body.encode()).into()
        }
        _ => return None,
    };
    Some(reply)
}

fn update_topic(broker: &Broker, request: &RemotingCommand) -> Reply {
    let header = match request.decode_header::<CreateTopicRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    let topic = header.topic.as_str();
    let dialect = ferromq_message::validate::Dialect::V5;
    if let Err(violation) = ferromq_message::validate::check_topic(topic, dialect) {
        return respond(
            request,
            ResponseCode::INVALID_PARAMETER,
            violation.java_remark(topic, dialect),
        )
        .into();
    }
    if broker.topics.is_system(topic) {
        let remark = format!("The topic[{topic}] is conflict with system topic.");
        return respond(request, ResponseCode::INVALID_PARAMETER, remark).into();
    }
    if !(0..=7).contains(&header.perm) || header.read_queue_nums < 0 || header.write_queue_nums < 0
    {
        return respond(
            request,
            ResponseCode::INVALID_PARAMETER,
            "invalid perm or queue numbers".to_owned(),
        )
        .into();
    }
    let config = TopicConfig {
        topic_name: topic.to_owned(),
        read_queue_nums: header.read_queue_nums,
        write_queue_nums: header.write_queue_nums,
        perm: header.perm,
        topic_filter_type: header.topic_filter_type.clone(),
        topic_sys_flag: header.topic_sys_flag.unwrap_or(0),
        order: header.order,
        attributes: None,
    };
    if broker.topics.update(config) {
        broker.register_soon.notify_one();
    }
    ok(request).into()
}

fn delete_topic(broker: &Broker, request: &RemotingCommand) -> Reply {
    let header = match request.decode_header::<DeleteTopicRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    if broker.topics.is_system(&header.topic) {
        let remark = format!("The topic[{}] is conflict with system topic.", header.topic);
        return respond(request, ResponseCode::INVALID_PARAMETER, remark).into();
    }
    broker.topics.delete(&header.topic);
    broker.offsets.remove_topic(&header.topic);
    ok(request).into()
}

fn message_queue(broker: &Broker, topic: &str, queue_id: i32) -> MessageQueue {
    MessageQueue {
        topic: topic.to_owned(),
        broker_name: broker.config.broker_name.clone(),
        queue_id,
    }
}

/// Store time of the message at `offset` in a queue, 0 when there is none.
fn store_time_at(broker: &Broker, topic: &str, queue_id: i32, offset: i64) -> i64 {
    if offset < 0 {
        return 0;
    }
    match broker.store.get(topic, queue_id, offset, 1, &|_| true) {
        Ok(result) => result
            .messages
            .first()
            .and_then(|record| ferromq_message::record::decode_record(record).ok())
            .map_or(0, |(record, _)| record.store_timestamp),
        Err(_) => 0,
    }
}

fn topic_stats(broker: &Broker, request: &RemotingCommand) -> Reply {
    let topic = match field(request, "topic") {
        Ok(topic) => topic,
        Err(reply) => return *reply,
    };
    let Some(config) = broker.topics.get(topic) else {
        return respond(
            request,
            ResponseCode::TOPIC_NOT_EXIST,
            format!("topic[{topic}] not exist"),
        )
        .into();
    };
    let mut table = Object::new();
    for queue_id in 0..config.write_queue_nums {
        let min = broker.store.min_offset_in_queue(topic, queue_id).max(0);
        let max = broker.store.max_offset_in_queue(topic, queue_id).unwrap_or(0).max(0);
        let last = if max > 0 { store_time_at(broker, topic, queue_id, max - 1) } else { 0 };
        let mut offsets = Object::new();
        offsets.insert("lastUpdateTimestamp", Value::int(last));
        offsets.insert("maxOffset", Value::int(max));
        offsets.insert("minOffset", Value::int(min));
        table.insert_key(message_queue(broker, topic, queue_id).to_json(), Value::Object(offsets));
    }
    let mut body = Object::new();
    body.insert("offsetTable", Value::Object(table));
    ok(request).with_body(json::to_vec(&Value::Object(body), JsonStyle::Fastjson)).into()
}

fn consume_stats(broker: &Broker, request: &RemotingCommand) -> Reply {
    let group = match field(request, "consumerGroup") {
        Ok(group) => group,
        Err(reply) => return *reply,
    };
    let topics: Vec<String> = match request.ext_field("topic").filter(|t| !t.is_empty()) {
        Some(topic) => vec![topic.to_owned()],
        None => broker.offsets.topics_of_group(group).into_iter().collect(),
    };
    let subscribed = broker.clients.consumer_group(group).map(|info| info.subscriptions);
    let mut stats = ConsumeStats::default();
    for topic in topics {
        let Some(config) = broker.topics.get(&topic) else { continue };
        if let Some(subscriptions) = &subscribed
            && !subscriptions.is_empty()
            && !subscriptions.contains_key(&topic)
        {
            continue;
        }
        for queue_id in 0..config.read_queue_nums {
            let broker_offset =
                broker.store.max_offset_in_queue(&topic, queue_id).unwrap_or(0).max(0);
            let consumer_offset = broker.offsets.query(group, &topic, queue_id).unwrap_or(0).max(0);
            let last_timestamp = store_time_at(broker, &topic, queue_id, consumer_offset - 1);
            stats.offset_table.insert(
                message_queue(broker, &topic, queue_id),
                OffsetWrapper { broker_offset, consumer_offset, pull_offset: None, last_timestamp },
            );
        }
    }
    ok(request).with_body(stats.encode()).into()
}

fn connection_json(channel: &crate::clients::ClientChannel) -> Value {
    let mut object = Object::new();
    object.insert("clientAddr", Value::string(channel.connection.peer_addr().to_string()));
    object.insert("clientId", Value::string(channel.client_id.clone()));
    object.insert("language", Value::string(channel.language.name()));
    object.insert("version", Value::int(channel.version));
    Value::Object(object)
}

fn consumer_connections(broker: &Broker, request: &RemotingCommand) -> Reply {
    let group = match field(request, "consumerGroup") {
        Ok(group) => group,
        Err(reply) => return *reply,
    };
    let Some(info) = broker.clients.consumer_group(group) else {
        let remark = format!("the consumer group[{group}] not online");
        return respond(request, ResponseCode::CONSUMER_NOT_ONLINE, remark).into();
    };
    let mut subscriptions = Object::new();
    for (topic, subscription) in &info.subscriptions {
        subscriptions.insert(topic.clone(), subscription.to_json());
    }
    let mut body = Object::new();
    body.insert(
        "connectionSet",
        Value::Array(info.channels.values().map(connection_json).collect()),
    );
    body.insert("consumeFromWhere", Value::string(info.consume_from_where.name()));
    body.insert("consumeType", Value::string(info.consume_type.name()));
    body.insert("messageModel", Value::string(info.message_model.name()));
    body.insert("subscriptionTable", Value::Object(subscriptions));
    ok(request).with_body(json::to_vec(&Value::Object(body), JsonStyle::Fastjson)).into()
}

fn producer_connections(broker: &Broker, request: &RemotingCommand) -> Reply {
    let group = match field(request, "producerGroup") {
        Ok(group) => group,
        Err(reply) => return *reply,
    };
    let channels = broker.clients.producer_channels(group);
    if channels.is_empty() {
        let remark = format!("the producer group[{group}] not exist");
        return respond(request, ResponseCode::SYSTEM_ERROR, remark).into();
    }
    let mut body = Object::new();
    body.insert("connectionSet", Value::Array(channels.iter().map(connection_json).collect()));
    ok(request).with_body(json::to_vec(&Value::Object(body), JsonStyle::Fastjson)).into()
}

fn runtime_info(broker: &Broker, request: &RemotingCommand) -> Reply {
    let puts = broker.stats.put_messages.load(Ordering::Relaxed).to_string();
    let gets = broker.stats.got_messages.load(Ordering::Relaxed).to_string();
    let earliest = broker.store.earliest_store_time().ok().flatten().unwrap_or(0);
    let mut table = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        table.insert(key.to_owned(), value);
    };
    put("brokerVersionDesc", "V5_3_3".to_owned());
    put("brokerVersion", ferromq_remoting::command::CURRENT_VERSION.to_string());
    for key in ["msgPutTotalYesterdayMorning", "msgPutTotalTodayMorning"] {
        put(key, "0".to_owned());
    }
    put("msgPutTotalTodayNow", puts);
    for key in ["msgGetTotalYesterdayMorning", "msgGetTotalTodayMorning"] {
        put(key, "0".to_owned());
    }
    put("msgGetTotalTodayNow", gets);
    for key in [
        "sendThreadPoolQueueSize",
        "pullThreadPoolQueueSize",
        "queryThreadPoolQueueSize",
        "pageCacheLockTimeMills",
        "sendThreadPoolQueueHeadWaitTimeMills",
        "pullThreadPoolQueueHeadWaitTimeMills",
        "queryThreadPoolQueueHeadWaitTimeMills",
        "dispatchBehindBytes",
    ] {
        put(key, "0".to_owned());
    }
    put("sendThreadPoolQueueCapacity", broker.config.send_thread_pool_queue_capacity.to_string());
    put("earliestMessageTimeStamp", earliest.to_string());
    put("bootTimestamp", broker.boot_timestamp.to_string());
    let uptime = broker.started.elapsed().as_secs();
    put(
        "runtime",
        format!(
            "[ {} days, {} hours, {} minutes, {} seconds ]",
            uptime / 86_400,
            uptime / 3600 % 24,
            uptime / 60 % 60,
            uptime % 60
        ),
    );
    for key in ["putTps", "getFoundTps", "getMissTps", "getTotalTps", "getTransferedTps"] {
        put(key, "0.0 0.0 0.0".to_owned());
    }
    put("commitLogMinOffset", broker.store.min_phy_offset().to_string());
    put("commitLogMaxOffset", broker.store.max_phy_offset().to_string());
    put("commitLogDiskRatio", "0.0".to_owned());
    put("consumeQueueDiskRatio", "0.0".to_owned());
    put("startAcceptSendRequestTimeStamp", "0".to_owned());
    let _ = now_ms;
    ok(request).with_body(KvTable { table }.encode()).into()
}

/// GET_BROKER_CONFIG: every setting as `key=value` lines. Values an UPDATE_BROKER_CONFIG
/// accepted show at once, while the broker reopens to apply them.
fn broker_config(broker: &Broker, request: &RemotingCommand) -> Reply {
    let pending = broker.ha.pending_config();
    let config = pending.as_ref().unwrap_or(&broker.config);
    let body: String =
        config.to_properties().iter().map(|(key, value)| format!("{key}={value}\n")).collect();
    let mut response = ok(request).with_body(body.into_bytes());
    response.set_ext_field("version", r#"{"counter":0,"timestamp":0}"#);
    response.into()
}

/// GET_CONSUMER_RUNNING_INFO / CONSUME_MESSAGE_DIRECTLY from an admin: forwarded to the
/// consumer's connection, its answer returned as is (broker.md §13.4).
pub async fn relay_to_consumer(broker: &Broker, request: &RemotingCommand) -> Reply {
    let group = request.ext_field("consumerGroup").unwrap_or_default();
    let client_id = request.ext_field("clientId").unwrap_or_default();
    let Some(channel) = broker.clients.find_consumer_channel(group, client_id) else {
        let remark = format!("The Consumer <{group}> <{client_id}> not online");
        return respond(request, ResponseCode::SYSTEM_ERROR, remark).into();
    };
    let mut forward = RemotingCommand::request(request.code);
    forward.ext_fields.clone_from(&request.ext_fields);
    forward.body = request.body.clone();
    match channel.connection.request(forward, std::time::Duration::from_secs(10)).await {
        Ok(answer) => answer.into(),
        Err(ferromq_remoting::transport::TransportError::Timeout { .. }) => {
            let remark = format!("consumer <{group}> <{client_id}> Timeout");
            respond(request, ResponseCode::CONSUME_MSG_TIMEOUT, remark).into()
        }
        Err(error) => {
            let remark = format!("invoke consumer <{group}> <{client_id}> Exception: {error}");
            respond(request, ResponseCode::SYSTEM_ERROR, remark).into()
        }
    }
}

/// INVOKE_BROKER_TO_RESET_OFFSET (broker.md §9.5): computes each queue's offset for the
/// timestamp, stores it, and tells every online member of the group with
/// RESET_CONSUMER_CLIENT_OFFSET so their in-memory offsets follow.
pub async fn reset_offset(broker: &Arc<Broker>, request: &RemotingCommand) -> Reply {
    let (topic, group) = match (field(request, "topic"), field(request, "group")) {
        (Ok(topic), Ok(group)) => (topic.to_owned(), group.to_owned()),
        (Err(reply), _) | (_, Err(reply)) => return *reply,
    };
    let timestamp = request.ext_field_as::<i64>("timestamp").unwrap_or(-1);
    let force = request.ext_field_as::<bool>("isForce").unwrap_or(true);
    let Some(config) = broker.topics.get(&topic) else {
        let remark =
            format!("[reset-offset] reset offset failed, no topic in this broker. topic={topic}");
        return respond(request, ResponseCode::TOPIC_NOT_EXIST, remark).into();
    };
    let mut table = Object::new();
    let mut offsets = Vec::new();
    for queue_id in 0..config.write_queue_nums {
        let target = if timestamp < 0 {
            broker.store.max_offset_in_queue(&topic, queue_id).unwrap_or(0)
        } else {
            broker.store.offset_by_time(&topic, queue_id, timestamp).unwrap_or(0).max(0)
        };
        let stored = broker.offsets.query(&group, &topic, queue_id);
        let offset = match stored {
            Some(stored) if !force && target >= stored => stored,
            _ => target,
        };
        offsets.push((queue_id, offset));
        table.insert_key(message_queue(broker, &topic, queue_id).to_json(), Value::int(offset));
    }
    for (queue_id, offset) in &offsets {
        broker.offsets.commit(&group, &topic, *queue_id, *offset);
    }
    let mut body = Object::new();
    body.insert("offsetTable", Value::Object(table));
    let body = json::to_vec(&Value::Object(body), JsonStyle::Fastjson);
    let members = broker.clients.consumer_connections(&group);
    if members.is_empty() {
        let remark = format!(
            "Consumer not online, so can not reset offset, Group: {group} Topic: {topic} Timestamp: {timestamp}"
        );
        return respond(request, ResponseCode::CONSUMER_NOT_ONLINE, remark).into();
    }
    for connection in members {
        let mut notice = RemotingCommand::request(RequestCode::RESET_CONSUMER_CLIENT_OFFSET.code())
            .with_body(body.clone());
        notice.set_ext_field("topic", topic.clone());
        notice.set_ext_field("group", group.clone());
        notice.set_ext_field("timestamp", timestamp.to_string());
        if let Err(error) = connection.send_oneway(notice).await {
            tracing::debug!(%error, "cannot tell a consumer to reset its offset");
        }
    }
    ok(request).with_body(body).into()
}
