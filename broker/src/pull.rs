//! PULL_MESSAGE / LITE_PULL_MESSAGE (remoting.md §8.2, broker.md §8) with long polling.
//!
//! A FOUND answer's body is the stored records themselves: the store hands out views of its
//! mapped segments and the transport writes them with one vectored write, no copy.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ferromq_remoting::bodies::MessageModel;
use ferromq_remoting::headers::{
    CommandHeader, PullMessageRequestHeader, PullMessageResponseHeader, pull_sys_flag,
};
use ferromq_remoting::transport::Reply;
use ferromq_remoting::{RemotingCommand, ResponseCode};
use ferromq_store::{GetResult, GetStatus};

use crate::broker::{Broker, bad_header, respond};
use crate::filter::TagFilter;
use crate::metadata::perm;

const FAQ_URL: &str =
    "\nSee https://rocketmq.apache.org/docs/bestPractice/06FAQ for further details.";

/// Serves a pull, holding it when nothing is there yet and the client allows suspension.
pub async fn pull(broker: &Arc<Broker>, request: &RemotingCommand) -> Reply {
    let header = match request.decode_header::<PullMessageRequestHeader>() {
        Ok(header) => header,
        Err(error) => return bad_header(request, &error),
    };
    let filter = match check(broker, request, &header) {
        Ok(filter) => Arc::new(filter),
        Err(reply) => return *reply,
    };
    if header.sys_flag & pull_sys_flag::COMMIT_OFFSET != 0 && broker.config.is_master() {
        broker.offsets.commit(
            &header.consumer_group,
            &header.topic,
            header.queue_id,
            header.commit_offset,
        );
    }
    let Some(result) = get(broker, &header, filter.clone()).await else {
        return respond(request, ResponseCode::SYSTEM_ERROR, "store read failed".to_owned()).into();
    };
    let may_hold = header.sys_flag & pull_sys_flag::SUSPEND != 0;
    if may_hold && response_code(&header, result.status) == ResponseCode::PULL_NOT_FOUND {
        let timeout = if broker.config.long_polling_enable {
            Duration::from_millis(header.suspend_timeout_millis.max(0).unsigned_abs())
        } else {
            broker.config.short_polling_time
        };
        let store = broker.store.clone();
        let (topic, queue_id) = (header.topic.clone(), header.queue_id);
        broker
            .hold
            .wait(
                &header.topic,
                header.queue_id,
                header.queue_offset,
                filter.clone(),
                timeout,
                move || store.max_offset_in_queue(&topic, queue_id).unwrap_or(0),
            )
            .await;
        // Re-executed without suspension or commit; answered whatever it finds.
        let Some(result) = get(broker, &header, filter).await else {
            return respond(request, ResponseCode::SYSTEM_ERROR, "store read failed".to_owned())
                .into();
        };
        return answer(broker, request, &header, result);
    }
    answer(broker, request, &header, result)
}

async fn get(
    broker: &Arc<Broker>,
    header: &PullMessageRequestHeader,
    filter: Arc<TagFilter>,
) -> Option<GetResult> {
    let (topic, queue_id, offset) = (header.topic.clone(), header.queue_id, header.queue_offset);
    let max = u32::try_from(header.max_msg_nums.clamp(1, 32 * 1024)).unwrap_or(32);
    let max_bytes =
        header.max_msg_bytes.and_then(|bytes| u64::try_from(bytes).ok()).filter(|b| *b > 0);
    let result = broker
        .blocking(move |broker| {
            let accept = |tags_code: i64| filter.matches(tags_code);
            match max_bytes {
                Some(bytes) => {
                    broker.store.get_with_max_bytes(&topic, queue_id, offset, max, bytes, &accept)
                }
                None => broker.store.get(&topic, queue_id, offset, max, &accept),
            }
        })
        .await?;
    match result {
        Ok(result) => Some(result),
        Err(error) => {
            tracing::error!(%error, topic = header.topic, queue_id, "pull read failed");
            None
        }
    }
}

/// Permission, group, topic and subscription checks; the tag filter to apply.
fn check(
    broker: &Broker,
    request: &RemotingCommand,
    header: &PullMessageRequestHeader,
) -> Result<TagFilter, Box<Reply>> {
    let refuse = |code: ResponseCode, remark: String| -> Box<Reply> {
        Box::new(respond(request, code, remark).into())
    };
    if !broker.is_readable() {
        let ip = broker.config.broker_ip1;
        return Err(refuse(
            ResponseCode::NO_PERMISSION,
            format!("the broker[{ip}] pulling message is forbidden"),
        ));
    }
    let group = &header.consumer_group;
    let Some(group_config) = broker.groups.find_or_create(group) else {
        return Err(refuse(
            ResponseCode::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("subscription group [{group}] does not exist, {FAQ_URL}"),
        ));
    };
    if !group_config.consume_enable {
        return Err(refuse(
            ResponseCode::NO_PERMISSION,
            format!("subscription group no permission, {group}"),
        ));
    }
    let topic = &header.topic;
    let Some(topic_config) = broker.topics.get(topic) else {
        return Err(refuse(
            ResponseCode::TOPIC_NOT_EXIST,
            format!("topic[{topic}] not exist, apply first please! {FAQ_URL}"),
        ));
    };
    if !perm::is_readable(topic_config.perm) {
        return Err(refuse(
            ResponseCode::NO_PERMISSION,
            format!("the topic[{topic}] pulling message is forbidden"),
        ));
    }
    if header.queue_id < 0 || header.queue_id >= topic_config.read_queue_nums {
        return Err(refuse(
            ResponseCode::INVALID_PARAMETER,
            format!(
                "queueId[{}] is illegal, topic:[{topic}] topicConfig.readQueueNums:[{}] consumer:[{}]",
                header.queue_id,
                topic_config.read_queue_nums,
                request.ext_field("clientId").unwrap_or("")
            ),
        ));
    }
    let expression_type = header.expression_type.as_deref().unwrap_or("TAG");
    if expression_type != "TAG" {
        return Err(refuse(
            ResponseCode::SYSTEM_ERROR,
            "The broker does not support consumer to filter message by SQL92".to_owned(),
        ));
    }
    if header.sys_flag & pull_sys_flag::SUBSCRIPTION != 0 {
        let expression = header.subscription.as_deref().unwrap_or("*");
        return TagFilter::parse(expression).ok_or_else(|| {
            refuse(
                ResponseCode::SUBSCRIPTION_PARSE_FAILED,
                format!("parse the consumer's subscription[{expression}] failed, group: {group}"),
            )
        });
    }
    let Some((message_model, subscription)) = broker.clients.pull_subscription(group, topic) else {
        return Err(refuse(
            ResponseCode::SUBSCRIPTION_NOT_EXIST,
            format!("the consumer's group info not exist{FAQ_URL}"),
        ));
    };
    if message_model == MessageModel::Broadcasting && !group_config.consume_broadcast_enable {
        return Err(refuse(
            ResponseCode::NO_PERMISSION,
            format!("the consumer group[{group}] can not consume by broadcast way"),
        ));
    }
    let Some(subscription) = subscription else {
        return Err(refuse(
            ResponseCode::SUBSCRIPTION_NOT_EXIST,
            format!("the consumer's subscription not exist{FAQ_URL}"),
        ));
    };
    if subscription.sub_version < header.sub_version {
        return Err(refuse(
            ResponseCode::SUBSCRIPTION_NOT_LATEST,
            "the consumer's subscription not latest".to_owned(),
        ));
    }
    Ok(TagFilter::from_codes(&subscription.sub_string, &subscription.code_set))
}

/// The response code of a store status (remoting.md §8.2.2 step 6).
fn response_code(header: &PullMessageRequestHeader, status: GetStatus) -> ResponseCode {
    match status {
        GetStatus::Found => ResponseCode::SUCCESS,
        GetStatus::MessageWasRemoving | GetStatus::NoMatchedMessage => {
            ResponseCode::PULL_RETRY_IMMEDIATELY
        }
        GetStatus::NoMatchedLogicQueue | GetStatus::NoMessageInQueue => {
            if header.queue_offset != 0 {
                ResponseCode::PULL_OFFSET_MOVED
            } else {
                ResponseCode::PULL_NOT_FOUND
            }
        }
        GetStatus::OffsetOverflowOne => ResponseCode::PULL_NOT_FOUND,
        GetStatus::OffsetOverflowBadly | GetStatus::OffsetTooSmall => {
            ResponseCode::PULL_OFFSET_MOVED
        }
    }
}

/// Java's `GetMessageStatus` names, sent as the remark.
fn status_name(status: GetStatus) -> &'static str {
    match status {
        GetStatus::Found => "FOUND",
        GetStatus::NoMatchedMessage => "NO_MATCHED_MESSAGE",
        GetStatus::MessageWasRemoving => "MESSAGE_WAS_REMOVING",
        GetStatus::NoMatchedLogicQueue => "NO_MATCHED_LOGIC_QUEUE",
        GetStatus::NoMessageInQueue => "NO_MESSAGE_IN_QUEUE",
        GetStatus::OffsetTooSmall => "OFFSET_TOO_SMALL",
        GetStatus::OffsetOverflowOne => "OFFSET_OVERFLOW_ONE",
        GetStatus::OffsetOverflowBadly => "OFFSET_OVERFLOW_BADLY",
    }
}

fn answer(
    broker: &Broker,
    request: &RemotingCommand,
    header: &PullMessageRequestHeader,
    result: GetResult,
) -> Reply {
    let mut code = response_code(header, result.status);
    let mut next_begin_offset = result.next_begin_offset;
    // broker.md §8.5: with slave reads on, a backlog too old for memory is sent to the
    // group's slow-consumption broker, anything else to the group's broker (0, the master).
    let slave_moved = !broker.config.is_master() && code == ResponseCode::PULL_OFFSET_MOVED;
    let (slow_broker, usual_broker) = if broker.config.slave_read_enable || slave_moved {
        broker
            .groups
            .get(&header.consumer_group)
            .map_or((1, 0), |group| (group.which_broker_when_consume_slowly, group.broker_id))
    } else {
        (1, 0)
    };
    let mut suggest = match (broker.config.slave_read_enable, result.suggest_pulling_from_slave) {
        (true, true) => slow_broker,
        (true, false) => usual_broker,
        (false, _) => 0,
    };
    if slave_moved {
        // A slave may just lag its master: it never moves a consumer's offset (no
        // `offsetCheckInSlave`), it sends the consumer back to the group's broker.
        code = ResponseCode::PULL_RETRY_IMMEDIATELY;
        next_begin_offset = header.queue_offset;
        suggest = usual_broker;
    }
    let mut response = respond(request, code, status_name(result.status).to_owned());
    let response_header = PullMessageResponseHeader {
        suggest_which_broker_id: suggest,
        next_begin_offset,
        min_offset: result.min_offset,
        max_offset: result.max_offset,
        offset_delta: None,
        topic_sys_flag: None,
        group_sys_flag: None,
        forbidden_type: None,
    };
    response_header.to_ext_fields(response.ext_fields.get_or_insert_with(Default::default));
    if code == ResponseCode::SUCCESS {
        let count = u64::try_from(result.messages.len()).unwrap_or(0);
        broker.stats.got_messages.fetch_add(count, Ordering::Relaxed);
        return Reply::with_chunks(response, result.messages);
    }
    response.into()
}
