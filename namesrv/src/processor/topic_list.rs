//! Topic lists: GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206), GET_TOPICS_BY_CLUSTER (224),
//! GET_SYSTEM_TOPIC_LIST_FROM_NS (304), GET_UNIT_TOPIC_LIST (311),
//! GET_HAS_UNIT_SUB_TOPIC_LIST (312), GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST (313).
//! `enableAllTopicList` gates 206 and `enableTopicList` gates 224 and 311–313, as in Java.

use ferromq_remoting::RemotingCommand;
use ferromq_remoting::bodies::{JsonBody, TopicList};
use ferromq_remoting::headers::GetTopicsByClusterRequestHeader;

use super::{Handled, NamesrvProcessor, disabled, success};
use crate::route_info::RouteInfoManager;

pub(super) fn all(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    if !processor.config.read().enable_all_topic_list {
        return Ok(disabled(request));
    }
    Ok(answer(request, &processor.routes.read().all_topics()))
}

pub(super) fn by_cluster(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    if !processor.config.read().enable_topic_list {
        return Ok(disabled(request));
    }
    let header: GetTopicsByClusterRequestHeader = request.decode_header()?;
    Ok(answer(request, &processor.routes.read().topics_by_cluster(&header.cluster)))
}

pub(super) fn system(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    Ok(answer(request, &processor.routes.read().system_topics()))
}

pub(super) fn unit(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    gated(processor, request, RouteInfoManager::unit_topics)
}

pub(super) fn has_unit_sub(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    gated(processor, request, RouteInfoManager::has_unit_sub_topics)
}

pub(super) fn has_unit_sub_ununit(
    processor: &NamesrvProcessor,
    request: &RemotingCommand,
) -> Handled {
    gated(processor, request, RouteInfoManager::has_unit_sub_ununit_topics)
}

fn gated(
    processor: &NamesrvProcessor,
    request: &RemotingCommand,
    list: impl Fn(&RouteInfoManager) -> TopicList,
) -> Handled {
    if !processor.config.read().enable_topic_list {
        return Ok(disabled(request));
    }
    Ok(answer(request, &list(&processor.routes.read())))
}

fn answer(request: &RemotingCommand, list: &TopicList) -> RemotingCommand {
    success(request).with_body(list.encode())
}
