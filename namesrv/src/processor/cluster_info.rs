//! GET_BROKER_CLUSTER_INFO (106): every broker group and cluster, in fastjson's default form.

use ferromq_remoting::RemotingCommand;
use ferromq_remoting::bodies::JsonBody;

use super::{Handled, NamesrvProcessor, success};

pub(super) fn handle(processor: &NamesrvProcessor, request: &RemotingCommand) -> Handled {
    let info = processor.routes.read().cluster_info();
    Ok(success(request).with_body(info.encode()))
}
