//! REGISTER_TOPIC_IN_NAMESRV (217, 5.x): an operator sets a topic's queue data directly; the
//! body is a TopicRouteData whose `queueDatas` are used. Java answers SUCCESS even when a
//! queue names an unknown broker group (and then changes nothing); so does this.

use ferromq_remoting::RemotingCommand;
use ferromq_remoting::bodies::{JsonBody, TopicRouteData};
use ferromq_remoting::headers::RegisterTopicRequestHeader;

use super::{Handled, NamesrvProcessor, success};

pub(super) fn handle(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let header: RegisterTopicRequestHeader = request.decode_header()?;
    if !request.body.is_empty() {
        let route = TopicRouteData::decode(&request.body)?;
        processor.routes.write().register_topic(&header.topic, route.queue_datas);
    }
    Ok(success(request))
}
