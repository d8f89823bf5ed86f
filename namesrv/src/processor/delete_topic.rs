//! DELETE_TOPIC_IN_NAMESRV (216): removes a topic's routes, everywhere or (5.x header
//! `clusterName`) only from one cluster's broker groups.

use ferromq_remoting::RemotingCommand;
use ferromq_remoting::headers::DeleteTopicFromNamesrvRequestHeader;

use super::{Handled, NamesrvProcessor, success};

pub(super) fn handle(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let header: DeleteTopicFromNamesrvRequestHeader = request.decode_header()?;
    let cluster = header.cluster_name.as_deref().filter(|name| !name.is_empty());
    processor.routes.write().delete_topic(&header.topic, cluster);
    tracing::info!(topic = header.topic, cluster, "topic deleted");
    Ok(success(request))
}
