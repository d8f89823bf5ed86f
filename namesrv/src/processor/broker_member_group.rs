//! GET_BROKER_MEMBER_GROUP (901, 5.x): the members of one broker group.

use ferromq_remoting::RemotingCommand;
use ferromq_remoting::bodies::{GetBrokerMemberGroupResponseBody, JsonBody};
use ferromq_remoting::headers::GetBrokerMemberGroupRequestHeader;

use super::{Handled, NamesrvProcessor, success};

pub(super) fn handle(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let header: GetBrokerMemberGroupRequestHeader = request.decode_header()?;
    let group =
        processor.routes.read().broker_member_group(&header.cluster_name, &header.broker_name);
    let body = GetBrokerMemberGroupResponseBody { broker_member_group: Some(group) };
    Ok(success(request).with_body(body.encode()))
}
